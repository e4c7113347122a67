"""Simulated Telco consortium traffic, as the analytics sink would see it.

The misuse detector is judged on it: a normal day (a seller, two suppliers, an installer
and a customer, each at realistic rates by hour, with the occasional honest refusal), and
four attacks that can be mixed into it: a member probing actions it may not run, a replay
flood under a member's name, a member scraping objects, a burst of bad signatures. Every
stream is a list of :class:`Event` in time order, reproducible from its seed; nothing
sleeps, time is ``Event.time``.

The rates and mixes are modelled on the Telco pack (``consortia.telco``): who may run which
action comes from its template; the volumes are assumptions stated here, not measurements.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from consortia.analytics.events import Alert, Event

__all__ = [
    "ATTACK_HOURS",
    "CONSORTIUM",
    "DAY",
    "MEMBERS",
    "Attack",
    "attack_day",
    "bad_signature_burst",
    "days",
    "detection_delay",
    "make_event",
    "merge",
    "night_shift",
    "normal_day",
    "object_ref",
    "probing",
    "replay_flood",
    "scraping",
]

DAY = 86_400.0
CONSORTIUM = "telco-sim"
#: Member id -> role, as in the Telco template's founders.
MEMBERS: dict[str, str] = {
    "seller": "seller",
    "supplier1": "supplier",
    "supplier2": "supplier",
    "installer": "installer",
    "customer": "customer",
}

#: Relative activity by UTC hour: a business day with a lunch dip and a quiet night.
HOURLY_PROFILE = (
    0.03, 0.02, 0.02, 0.02, 0.03, 0.05, 0.15, 0.45,
    0.9, 1.0, 1.0, 0.95, 0.6, 0.9, 1.0, 1.0,
    0.9, 0.7, 0.4, 0.25, 0.15, 0.1, 0.06, 0.04,
)  # fmt: skip

#: Requests per hour at the busiest hour, per role.
PEAK_RATE = {"seller": 120.0, "supplier": 40.0, "installer": 20.0, "customer": 6.0}

# (kind, action, weight, object type or None). Reads name their read kind as the action.
_Mix = tuple[tuple[str, str, float, str | None], ...]
MIX: dict[str, _Mix] = {
    "seller": (
        ("execute", "placeOrder", 12, "productOrder"),
        ("execute", "reviseOrder", 5, "productOrder"),
        ("execute", "createProject", 2, "project"),
        ("execute", "createAsset", 8, "resource"),
        ("execute", "reserveStock", 8, "stock"),
        ("execute", "updateAssetStatus", 5, "resource"),
        ("execute", "recordActivationTest", 4, "resource"),
        ("execute", "getDeviceStatus", 8, "resource"),
        ("execute", "voteFor", 5, None),
        ("execute", "cancelOrder", 1, "productOrder"),
        ("read", "object", 30, "productOrder"),
        ("read", "history", 3, "productOrder"),
        ("read", "notifications", 9, None),
    ),
    "supplier": (
        ("execute", "updateDeviceOrder", 25, "resourceOrder"),
        ("execute", "bindSerial", 12, "resource"),
        ("execute", "consumeStock", 8, "stock"),
        ("execute", "releaseStock", 4, "stock"),
        ("execute", "getDeviceStatus", 8, "resource"),
        ("execute", "updateAssetStatus", 5, "resource"),
        ("read", "object", 28, "resourceOrder"),
        ("read", "notifications", 10, None),
    ),
    "installer": (
        ("execute", "updateAssetStatus", 30, "resource"),
        ("execute", "recordActivationTest", 25, "resource"),
        ("execute", "getDeviceStatus", 10, "resource"),
        ("read", "object", 25, "resource"),
        ("read", "notifications", 10, None),
    ),
    "customer": (
        ("execute", "getDeviceStatus", 40, "resource"),
        ("read", "object", 45, "productOrder"),
        ("read", "notifications", 15, None),
    ),
}

#: Honest refusals: an action's own validation failing, a stale clock, a client retry bug,
#: a wrong button, a key mix-up; and reads of what is gone.
_EXECUTE_REFUSALS = (
    ("action_failed", 0.03),
    ("permission_denied", 0.002),
    ("stale_request", 0.001),
    ("replay", 0.0005),
    ("bad_signature", 0.0005),
)
_READ_NOT_FOUND = 0.02
#: Actions no role but the seller may run: what a probing member asks for.
_FORBIDDEN = ("placeOrder", "cancelOrder", "createProject", "createAsset", "reviseOrder")
_INTERNAL = ("approveAction", "sendNotifications")
_WORKING_SET = 40


def object_ref(key: str) -> str:
    """A stand-in for the sink's keyed hash of an object key (16 hex chars)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _event(
    t: float,
    member: str,
    kind: str,
    action: str,
    outcome: str,
    code: str | None,
    rng: random.Random,
    key: str | None = None,
) -> Event:
    return make_event(
        t,
        member,
        kind=kind,
        action=action,
        outcome=outcome,
        code=code,
        key=key,
        latency_ms=rng.lognormvariate(1.5, 0.5),
        txid=None if kind == "read" else f"{rng.getrandbits(64):016x}",
    )


def make_event(
    t: float,
    member: str | None,
    *,
    kind: str = "execute",
    action: str | None = "placeOrder",
    outcome: str | None = None,
    code: str | None = None,
    key: str | None = None,
    consortium: str = CONSORTIUM,
    latency_ms: float = 1.0,
    txid: str | None = None,
) -> Event:
    """One event as the sink would emit it; the outcome follows from ``code`` unless given."""
    if outcome is None:
        outcome = ("ok" if kind == "read" else "committed") if code is None else "refused"
    return Event(
        time=t,
        consortium=consortium,
        kind=kind,
        action=action,
        member=member,
        outcome=outcome,
        code=code,
        latency_ms=latency_ms,
        object_type=key.split("/", 1)[0] if key else None,
        object_ref=object_ref(key) if key else None,
        txid=txid,
        fields={},
    )


def _arrivals(rng: random.Random, start: float, peak_per_hour: float) -> Iterable[float]:
    """Arrival times over one day: a Poisson process whose rate follows HOURLY_PROFILE."""
    for hour, weight in enumerate(HOURLY_PROFILE):
        rate = peak_per_hour * weight / 3600.0
        t = start + hour * 3600.0
        end = t + 3600.0
        while True:
            t += rng.expovariate(rate)
            if t >= end:
                break
            yield t


def _pick_mix(rng: random.Random, mix: _Mix) -> tuple[str, str, str | None]:
    kind, action, _, otype = rng.choices(mix, weights=[w for _, _, w, _ in mix])[0]
    return kind, action, otype


def _outcome(rng: random.Random, kind: str, action: str) -> tuple[str, str | None]:
    if kind == "read":
        if rng.random() < _READ_NOT_FOUND:
            return "refused", "not_found"
        return "ok", None
    roll = rng.random()
    for code, p in _EXECUTE_REFUSALS:
        if roll < p:
            return ("failed" if code == "action_failed" else "refused"), code
        roll -= p
    if action in ("bindSerial", "reviseOrder") and rng.random() < 0.5:
        return "pending", None
    return "committed", None


def normal_day(seed: int, start: float = 0.0, *, day_index: int = 0) -> list[Event]:
    """One normal consortium day from ``start`` (a UTC midnight), in time order."""
    rng = random.Random(seed * 1009 + day_index)  # noqa: S311 - a reproducible simulation
    streams: list[list[Event]] = []
    orders = [f"O{day_index}-{i}" for i in range(_WORKING_SET)]
    for member, role in MEMBERS.items():
        events: list[Event] = []
        for t in _arrivals(rng, start, PEAK_RATE[role]):
            kind, action, otype = _pick_mix(rng, MIX[role])
            if action == "placeOrder":
                orders.append(f"O{day_index}-{len(orders)}")
            # Recent orders are touched most: a working set, newest first.
            recent = orders[-_WORKING_SET:]
            idx = min(len(recent) - 1, int(rng.expovariate(1 / 8.0)))
            order = recent[-1 - idx]
            key = None
            if otype is not None:
                suffix = f"/{member}" if otype in ("resourceOrder", "stock") else ""
                key = f"{otype}/{order}{suffix}"
            outcome, code = _outcome(rng, kind, action)
            events.append(_event(t, member, kind, action, outcome, code, rng, key))
        streams.append(events)
    return merge(streams)


def merge(streams: Iterable[Sequence[Event]]) -> list[Event]:
    """Interleave time-ordered streams into one, in time order."""
    return list(heapq.merge(*streams, key=lambda e: e.time))


@dataclass(frozen=True, slots=True)
class Attack:
    """An attack's events and the alert it should raise: whose, which rule, from when."""

    member: str
    rule: str
    start: float
    events: list[Event]


def probing(
    seed: int, start: float, member: str = "supplier2", *, interval: float = 8.0, n: int = 20
) -> Attack:
    """``member`` tries actions it may not run, one every ``interval`` seconds or so."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    events = []
    t = start
    targets = [*_FORBIDDEN, *_INTERNAL, "deleteAll", "exportLedger"]
    for i in range(n):
        action = targets[i % len(targets)]
        code = (
            "not_public"
            if action in _INTERNAL
            else "permission_denied"
            if action in _FORBIDDEN
            else "unknown_action"
        )
        events.append(_event(t, member, "execute", action, "refused", code, rng))
        t += rng.uniform(0.5, 1.5) * interval
    return Attack(member, "probing", start, events)


def replay_flood(
    seed: int, start: float, member: str = "seller", *, per_second: float = 5.0, n: int = 300
) -> Attack:
    """Captured requests of ``member`` resent by someone else: refused as replay or stale."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    events = []
    t = start
    for _ in range(n):
        code = "replay" if rng.random() < 0.7 else "stale_request"
        events.append(_event(t, member, "execute", "placeOrder", "refused", code, rng))
        t += rng.expovariate(per_second)
    return Attack(member, "replay_flood", start, events)


def scraping(
    seed: int, start: float, member: str = "customer", *, per_second: float = 1.0, n: int = 400
) -> Attack:
    """``member`` reads object after object, enumerating keys; most are not its to see."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    events = []
    t = start
    for i in range(n):
        key = f"productOrder/X{i}"
        ok = rng.random() < 0.1
        outcome, code = ("ok", None) if ok else ("refused", "not_found")
        events.append(_event(t, member, "read", "object", outcome, code, rng, key))
        t += rng.expovariate(per_second)
    return Attack(member, "scraping", start, events)


def bad_signature_burst(
    seed: int, start: float, member: str = "installer", *, per_second: float = 2.0, n: int = 60
) -> Attack:
    """Requests claiming to be ``member`` whose signatures do not verify."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    events = []
    t = start
    for _ in range(n):
        events.append(_event(t, member, "execute", "updateAssetStatus", "refused",
                             "bad_signature", rng))  # fmt: skip
        t += rng.expovariate(per_second)
    return Attack(member, "bad_signature_burst", start, events)


def night_shift(
    seed: int, start: float, member: str = "supplier1", *, interval: float = 10.0, n: int = 180
) -> Attack:
    """``member`` working at night in a way it never does: status queries and reads of
    orders, paced below every hard rule; only the anomaly model can tell."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    events = []
    t = start
    for i in range(n):
        if i % 3 == 0:
            events.append(_event(t, member, "execute", "getDeviceStatus", "committed", None, rng,
                                 f"resource/N{i}"))  # fmt: skip
        else:
            events.append(_event(t, member, "read", "history", "ok", None, rng,
                                 f"productOrder/N{i % 40}"))  # fmt: skip
        t += rng.uniform(0.5, 1.5) * interval
    return Attack(member, "anomaly", start, events)


def days(seed: int, n: int, start: float = 0.0) -> list[Event]:
    """``n`` consecutive normal days from ``start``."""
    return merge(normal_day(seed, start + i * DAY, day_index=i) for i in range(n))


#: When each attack of :func:`attack_day` starts, in hours after midnight UTC.
ATTACK_HOURS = {"anomaly": 3.0, "probing": 10.0, "replay_flood": 11.5, "scraping": 14.0,
                "bad_signature_burst": 16.0}  # fmt: skip


def attack_day(seed: int, start: float, *, day_index: int = 0) -> tuple[list[Event], list[Attack]]:
    """A normal day from ``start`` with the five attacks of this module mixed in."""
    attacks = [
        night_shift(seed, start + ATTACK_HOURS["anomaly"] * 3600.0),
        probing(seed, start + ATTACK_HOURS["probing"] * 3600.0),
        replay_flood(seed, start + ATTACK_HOURS["replay_flood"] * 3600.0),
        scraping(seed, start + ATTACK_HOURS["scraping"] * 3600.0),
        bad_signature_burst(seed, start + ATTACK_HOURS["bad_signature_burst"] * 3600.0),
    ]
    normal = normal_day(seed, start, day_index=day_index)
    return merge([normal, *(a.events for a in attacks)]), attacks


def detection_delay(alerts: Iterable[Alert], attack: Attack) -> float | None:
    """Seconds from the attack's start to the first alert naming its member and rule."""
    for alert in alerts:
        if (
            alert.member == attack.member
            and alert.rule == attack.rule
            and alert.time >= attack.start
        ):
            return alert.time - attack.start
    return None
