"""The misuse detector: the analytics loopback that watches the event stream for abuse.

Two layers, because they fail differently:

- Hard rules catch the obvious within seconds and explain themselves: a burst of bad
  signatures under one member's name, a flood of replayed or stale requests, a member asking
  for several actions it may not run (probing), a member touching many distinct objects
  (scraping). Each counts over a sliding window and fires at a threshold.
- An online anomaly model (river's HalfSpaceTrees, one per consortium) scores each member's
  tumbling window of requests against the consortium's normal windows, on features relative
  to the member's own habits (:mod:`consortia.analytics.features`). It catches the unusual
  that no rule names: odd hours, an odd mix of actions, an odd volume. It stays silent until
  it has learnt a warm-up's worth of windows, and it learns only from windows it did not
  flag. It judges only what a member signed: authentication refusals name an identity
  someone else may have used, and feed the hard rules alone (see ATTRIBUTED_RULES).

Everything is driven by ``Event.time`` (simulated or real), never by a clock, so the same
stream gives the same alerts; the anomaly model's randomness comes from the seed. Memory is
bounded per member (see features.py), and the number of members tracked is bounded too (the
least recently active is forgotten first), since a bad-signature event names a *claimed* id
that an attacker chooses. Alerts are de-duplicated: at most one per member and rule per
cool-down.

``observe`` runs on the sink's thread for every request, so its common path is a few dict
and deque operations; the anomaly model runs only when a member's window closes.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from river.anomaly import HalfSpaceTrees

from consortia._json import JSON
from consortia.analytics.events import ATTRIBUTED_RULES, Alert, Event
from consortia.analytics.features import (
    AUTH_CODES,
    PERMISSION_CODES,
    REPLAY_CODES,
    CountInWindow,
    DistinctInWindow,
    MemberProfile,
    WindowStats,
    window_features,
)

__all__ = ["ATTRIBUTED_RULES", "RULES", "DetectorConfig", "MisuseDetector"]

#: Every rule name an Alert from this detector may carry.
RULES = ("bad_signature_burst", "replay_flood", "probing", "scraping", "anomaly")


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Thresholds and windows (seconds). The defaults are tuned on the simulated Telco days
    (bench/detector_eval.py), where honest traffic stays well below every hard threshold."""

    #: bad_signature refusals under one claimed member id within ``burst_window``.
    bad_signature_threshold: int = 5
    #: replay / stale_request refusals of one member within ``burst_window``.
    replay_threshold: int = 5
    burst_window: float = 60.0
    #: distinct actions refused as not permitted (permission_denied, not_public,
    #: unknown_action) within ``probing_window``.
    probing_distinct_actions: int = 3
    probing_window: float = 300.0
    #: distinct objects read within ``scraping_window``; and the slow tier, for a scraper
    #: that paces itself.
    scraping_distinct_objects: int = 30
    scraping_window: float = 60.0
    slow_scraping_distinct_objects: int = 300
    slow_scraping_window: float = 3600.0
    #: One alert per member and rule within this many seconds.
    cooldown: float = 900.0
    #: The anomaly model: tumbling window per member and score threshold. On the simulated
    #: Telco days (8 seeds) normal windows scored 0.71 at most, the night-shift insider's
    #: alerted windows 0.91 or more; 0.8 splits the gap.
    anomaly_window: float = 300.0
    anomaly_threshold: float = 0.8
    #: Windows with fewer requests are neither scored nor learnt by the model: one honest
    #: refusal of a quiet member is an outlier, not a misuse (the hard rules still see it).
    anomaly_min_requests: int = 5
    #: Windows the model must learn before its scores count (at least 2 x hst_window_size,
    #: so both of its reference masses are filled).
    anomaly_warmup_windows: int = 200
    hst_trees: int = 40
    hst_height: int = 6
    hst_window_size: int = 100
    #: Members (per consortium, id) whose state is kept, and consortia whose model is kept;
    #: the least recently seen go first.
    max_members: int = 10_000
    max_consortia: int = 1_000

    def __post_init__(self) -> None:
        at_least_one = (
            "bad_signature_threshold",
            "replay_threshold",
            "probing_distinct_actions",
            "scraping_distinct_objects",
            "slow_scraping_distinct_objects",
            "anomaly_min_requests",
            "anomaly_warmup_windows",
            "hst_trees",
            "hst_height",
            "hst_window_size",
            "max_members",
            "max_consortia",
        )
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        positive = (
            "burst_window",
            "probing_window",
            "scraping_window",
            "slow_scraping_window",
            "anomaly_window",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive seconds, got {getattr(self, name)}")
        if self.cooldown < 0:
            raise ValueError(f"cooldown must not be negative, got {self.cooldown}")
        if not 0.0 < self.anomaly_threshold <= 1.0:
            raise ValueError(f"anomaly_threshold must be in (0, 1], got {self.anomaly_threshold}")


@dataclass(slots=True)
class _MemberState:
    """Everything the detector remembers about one member of one consortium (bounded)."""

    bad_signatures: CountInWindow
    replays: CountInWindow
    probed: DistinctInWindow
    scraped: DistinctInWindow
    slow_scraped: DistinctInWindow
    window: WindowStats
    profile: MemberProfile = field(default_factory=MemberProfile)
    #: Hard-rule alerts in the current tumbling window: keep it out of the model's lessons.
    flagged: bool = False
    last_alert: dict[str, float] = field(default_factory=dict)


class _Model:
    """One consortium's HalfSpaceTrees and how many windows it has learnt.

    Consortia on one TEP share nothing but the process, so each has its own model: one
    consortium's traffic never shapes what counts as normal in another.
    """

    __slots__ = ("hst", "learnt")

    def __init__(self, hst: HalfSpaceTrees) -> None:
        self.hst = hst
        self.learnt = 0

    def score(self, x: dict[str, float]) -> float:
        """0 (usual) .. 1 (nothing like what was learnt)."""
        return float(self.hst.score_one(x))  # type: ignore[no-untyped-call]  # river is untyped

    def learn(self, x: dict[str, float]) -> None:
        """Count ``x`` as normal."""
        self.hst.learn_one(x)  # type: ignore[no-untyped-call]  # river is untyped
        self.learnt += 1


class MisuseDetector:
    """Feed events in time order with :meth:`observe`; get alerts back as they fire.

    Not thread-safe: one detector belongs to one thread (the sink's).
    """

    def __init__(self, config: DetectorConfig | None = None, *, seed: int = 0) -> None:
        self.config = config or DetectorConfig()
        self._seed = seed
        self._models: OrderedDict[str, _Model] = OrderedDict()
        self._members: OrderedDict[tuple[str, str], _MemberState] = OrderedDict()
        self.events_seen = 0
        self.windows_scored = 0

    def warmed_up(self, consortium: str) -> bool:
        """Whether the consortium's anomaly model has learnt enough windows to be heard."""
        model = self._models.get(consortium)
        return model is not None and model.learnt >= self.config.anomaly_warmup_windows

    @property
    def consortia_modelled(self) -> int:
        """How many consortium models are held now (<= ``max_consortia``)."""
        return len(self._models)

    def _model(self, consortium: str) -> _Model:
        models = self._models
        model = models.get(consortium)
        if model is not None:
            models.move_to_end(consortium)
            return model
        c = self.config
        # A seed per consortium, stable across runs (unlike hash()), derived from the seed.
        seed = zlib.crc32(consortium.encode(), self._seed & 0xFFFFFFFF)
        model = _Model(HalfSpaceTrees(c.hst_trees, c.hst_height, c.hst_window_size, seed=seed))
        models[consortium] = model
        if len(models) > c.max_consortia:
            models.popitem(last=False)
        return model

    @property
    def members_tracked(self) -> int:
        """How many (consortium, member) states are held now (<= ``max_members``)."""
        return len(self._members)

    def observe(self, event: Event) -> list[Alert]:
        """Account one event; return the alerts it triggers (usually none)."""
        self.events_seen += 1
        member = event.member
        if member is None or not math.isfinite(event.time):
            # Nothing parsed far enough to name anyone: there is no one to attribute it to.
            # (A time that is no number cannot be placed in any window.)
            return []
        state = self._state(event.consortium, member, event.time)
        alerts: list[Alert] = []
        if event.time >= state.window.start + self.config.anomaly_window:
            self._close_window(event.consortium, member, state, event.time, alerts)
        if event.code not in AUTH_CODES:
            # The member's behaviour is what it signed; see ATTRIBUTED_RULES.
            state.window.add(event)
        self._rules(event, member, state, alerts)
        return alerts

    def observe_all(self, events: Iterable[Event]) -> list[Alert]:
        """Observe a time-ordered stream; return every alert, in order."""
        alerts: list[Alert] = []
        for event in events:
            alerts.extend(self.observe(event))
        return alerts

    def tick(self, now: float) -> list[Alert]:
        """Close the windows of members quiet since a full window before ``now``.

        The sink may call it now and then, so a member that stops after an odd burst is
        still scored; ``observe`` alone closes a window on the member's next event.
        """
        alerts: list[Alert] = []
        for (consortium, member), state in list(self._members.items()):
            if now >= state.window.start + self.config.anomaly_window:
                self._close_window(consortium, member, state, now, alerts)
        return alerts

    # -- state --------------------------------------------------------------------------

    def _state(self, consortium: str, member: str, now: float) -> _MemberState:
        key = (consortium, member)
        members = self._members
        state = members.get(key)
        if state is not None:
            members.move_to_end(key)
            return state
        c = self.config
        state = _MemberState(
            bad_signatures=CountInWindow(c.burst_window, c.bad_signature_threshold),
            replays=CountInWindow(c.burst_window, c.replay_threshold),
            probed=DistinctInWindow(c.probing_window, c.probing_distinct_actions),
            scraped=DistinctInWindow(c.scraping_window, c.scraping_distinct_objects),
            slow_scraped=DistinctInWindow(c.slow_scraping_window, c.slow_scraping_distinct_objects),
            window=WindowStats(start=self._window_start(now)),
        )
        members[key] = state
        if len(members) > c.max_members:
            members.popitem(last=False)
        return state

    def _window_start(self, t: float) -> float:
        w = self.config.anomaly_window
        return (t // w) * w

    # -- hard rules ---------------------------------------------------------------------

    def _rules(self, event: Event, member: str, state: _MemberState, alerts: list[Alert]) -> None:
        c = self.config
        t = event.time
        code = event.code
        if code == "bad_signature":
            n = state.bad_signatures.add(t)
            if n >= c.bad_signature_threshold:
                self._fire(
                    alerts, event, state, "bad_signature_burst", n, c.bad_signature_threshold,
                    {"bad_signature": n, "window_s": c.burst_window},
                )  # fmt: skip
        elif code in REPLAY_CODES:
            n = state.replays.add(t)
            if n >= c.replay_threshold:
                self._fire(
                    alerts, event, state, "replay_flood", n, c.replay_threshold,
                    {"replay_or_stale": n, "window_s": c.burst_window},
                )  # fmt: skip
        elif code in PERMISSION_CODES:
            n = state.probed.add(event.action or "", t)
            if n >= c.probing_distinct_actions:
                self._fire(
                    alerts, event, state, "probing", n, c.probing_distinct_actions,
                    {"refused_distinct_actions": n, "window_s": c.probing_window},
                )  # fmt: skip
        ref = event.object_ref
        if ref is not None and event.kind == "read":
            n = state.scraped.add(ref, t)
            slow = state.slow_scraped.add(ref, t)
            if n >= c.scraping_distinct_objects:
                self._fire(
                    alerts, event, state, "scraping", n, c.scraping_distinct_objects,
                    {"distinct_objects_read": n, "window_s": c.scraping_window},
                )  # fmt: skip
            elif slow >= c.slow_scraping_distinct_objects:
                self._fire(
                    alerts, event, state, "scraping", slow, c.slow_scraping_distinct_objects,
                    {"distinct_objects_read": slow, "window_s": c.slow_scraping_window},
                )  # fmt: skip

    def _fire(
        self,
        alerts: list[Alert],
        event: Event,
        state: _MemberState,
        rule: str,
        count: int,
        threshold: int,
        evidence: dict[str, JSON],
    ) -> None:
        state.flagged = True
        # At the threshold a rule is fairly sure (0.75); at twice the threshold, certain.
        score = min(1.0, 0.5 + 0.25 * count / threshold)
        self._emit(alerts, event.time, event.consortium, event.member or "", state, rule, score,
                   evidence)  # fmt: skip

    def _emit(
        self,
        alerts: list[Alert],
        t: float,
        consortium: str,
        member: str,
        state: _MemberState,
        rule: str,
        score: float,
        evidence: dict[str, JSON],
    ) -> None:
        last = state.last_alert.get(rule)
        if last is not None and t - last < self.config.cooldown:
            return
        state.last_alert[rule] = t
        alerts.append(Alert(t, consortium, member, rule, score, evidence))

    # -- anomaly model ------------------------------------------------------------------

    def _close_window(
        self, consortium: str, member: str, state: _MemberState, now: float, alerts: list[Alert]
    ) -> None:
        stats = state.window
        state.window = WindowStats(start=self._window_start(now))
        flagged, state.flagged = state.flagged, False
        if stats.count == 0:
            return
        x = window_features(stats, state.profile)
        big_enough = stats.count >= self.config.anomaly_min_requests
        if big_enough and state.profile.trusted and self.warmed_up(consortium):
            score = self._model(consortium).score(x)
            self.windows_scored += 1
            if score >= self.config.anomaly_threshold:
                evidence: dict[str, JSON] = {
                    "requests": stats.count,
                    "refusals": stats.refusals,
                    "distinct_objects": len(stats.objects),
                    "distinct_actions": len(stats.actions),
                    "refusals_by_code": {code: n for code, n in sorted(stats.codes.items())},
                    "window_s": self.config.anomaly_window,
                }
                evidence.update({f"f_{name}": round(value, 3) for name, value in x.items()})
                self._emit(alerts, now, consortium, member, state, "anomaly", score, evidence)
                return
        if flagged:
            return
        state.profile.learn(stats, now)
        if big_enough:
            # The model learns the population it judges: windows too small to be scored
            # would fill its notion of normal with noise.
            self._model(consortium).learn(x)
