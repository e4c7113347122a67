"""Insights over the analytics store, as the constitution lets one member see them.

The sink writes redacted events (and the detector its alerts) to DuckDB; this module reads
them back for one viewing member. What the viewer sees follows the analytics policy:

- a member named (by id or role) in ``insights_full`` sees every member's rows;
- any other member sees consortium-wide aggregates per action, and its own rows only:
  other members are folded into totals, never named;
- misuse alerts are shown to the members ``alert_to`` names, who are told of them anyway.

Figures: throughput, refusals and latency per action and member over time buckets; vote
durations (a ``pending`` event to the first committed/failed/refused event of the same
txid). Everything is computed from events alone: the ledger is never read.

Figures of a domain (a template pack's orders, stock, ...) come from a plug: a
:class:`DomainInsights` the pack registers with :func:`register_domain`. It names the
actions whose committed events (with their granted fields) it needs, turns them into a
:class:`DomainSection` for the viewer, and reads that section back from the document. Its
keys sit at the top level of the document, before ``alerts``; analytics knows no pack.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from consortia._json import JSON
from consortia.errors import BadRequest, NotFound, Unavailable
from consortia.governance.constitution import Constitution

if TYPE_CHECKING:  # duckdb is imported when a store is opened: the CLI starts faster
    import duckdb

__all__ = [
    "BUCKETS",
    "OUTCOMES",
    "ActionFigures",
    "AlertRow",
    "Bucket",
    "DomainEvent",
    "DomainInsights",
    "DomainSection",
    "Insights",
    "MemberFigures",
    "QueryableStore",
    "Viewer",
    "VoteDuration",
    "bucket_label",
    "compute_insights",
    "insights_from_json",
    "insights_json",
    "open_store",
    "pick_bucket",
    "quantile",
    "register_domain",
    "registered_domains",
    "sink_insights",
    "viewer_for",
]

#: Time bucket sizes (seconds) tried in order; the first giving at most ~60 buckets wins.
BUCKETS = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
_MAX_BUCKETS = 60
#: Outcomes in the order tables and charts show them.
OUTCOMES = ("committed", "ok", "pending", "refused", "failed")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking, and what the analytics policy lets them see."""

    member: str
    full: bool = False  # in insights_full: sees every member's rows
    alerts: bool = True  # in alert_to: sees misuse alerts

    def sees(self, member: str | None) -> bool:
        """Whether rows of ``member`` may be shown to this viewer by name."""
        return self.full or member == self.member


def viewer_for(constitution: Constitution, member: str) -> Viewer:
    """The viewer for ``member`` under the constitution's analytics policy.

    Raises NotFound when ``member`` is not a member of the consortium.
    """
    if member not in constitution.members:
        raise NotFound(f"{member!r} is not a member of this consortium; insights are per member")
    role = constitution.role_of(member)
    policy = constitution.analytics
    return Viewer(member, policy.sees_full(member, role), policy.alerted(member, role))


@dataclass(frozen=True, slots=True)
class ActionFigures:
    """One action's (or read kind's) requests by outcome, refusal codes and latency."""

    action: str
    outcomes: Mapping[str, int]
    codes: Mapping[str, int]  # refusal/failure code -> count
    p50_ms: float
    p95_ms: float

    @property
    def total(self) -> int:
        """Requests of every outcome."""
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class MemberFigures:
    """One member's requests by outcome and refusal code (only members the viewer sees)."""

    member: str
    outcomes: Mapping[str, int]
    codes: Mapping[str, int]

    @property
    def total(self) -> int:
        """Requests of every outcome."""
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class Bucket:
    """Requests in one time bucket: per action (consortium-wide) and the viewer's own."""

    start: float
    by_action: Mapping[str, int]
    refused_by_code: Mapping[str, int]  # refused or failed, consortium-wide
    own: int  # the viewer's requests in this bucket


@dataclass(frozen=True, slots=True)
class VoteDuration:
    """One voted request: from pending to its decision (None while still open)."""

    action: str
    requester: str | None  # None when the viewer may not see who asked
    pending: float
    decided: float | None
    outcome: str  # "approved", "rejected", "failed", "open"

    @property
    def seconds(self) -> float | None:
        """How long the vote took; None while open."""
        return None if self.decided is None else self.decided - self.pending


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A misuse alert as stored by the detector."""

    time: float
    member: str
    rule: str
    score: float
    evidence: Mapping[str, JSON]


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """A committed action as a domain plug sees it: when, what, who, granted fields."""

    time: float
    action: str
    member: str | None
    fields: Mapping[str, JSON]


class DomainSection(Protocol):
    """A plug's figures for one viewer: what it adds to the insights document."""

    def to_json(self) -> dict[str, Any]:
        """The section's top-level keys of the document, with derived figures spelt out."""
        ...


class DomainInsights(Protocol):
    """A template pack's insights plug (see the module docstring)."""

    @property
    def name(self) -> str:
        """The key of its section in :attr:`Insights.domains`."""
        ...

    @property
    def actions(self) -> tuple[str, ...]:
        """The actions whose committed events (and granted fields) it needs."""
        ...

    def compute(self, events: Sequence[DomainEvent], viewer: Viewer) -> DomainSection:
        """Its figures from those events (oldest first), as ``viewer`` may see them."""
        ...

    def from_json(self, doc: Mapping[str, Any]) -> DomainSection:
        """Its section read back from a whole insights document.

        A wrong shape raises KeyError, TypeError or ValueError (answered as bad_request).
        """
        ...


_DOMAINS: dict[str, DomainInsights] = {}


def register_domain(plug: DomainInsights) -> None:
    """Add ``plug`` to every insights computed or read from now on (same name: replaced)."""
    _DOMAINS[plug.name] = plug


def registered_domains() -> tuple[DomainInsights, ...]:
    """The plugs registered so far, in registration order."""
    return tuple(_DOMAINS.values())


@dataclass(frozen=True, slots=True)
class Insights:
    """Everything one viewer may see of one consortium's analytics.

    A domain section's figures also read as attributes (``ins.orders`` is the Telco
    section's ``orders``); :attr:`domains` has them by plug name.
    """

    consortium: str
    viewer: Viewer
    first: float | None  # time of the first and last event (None: no events)
    last: float | None
    bucket_s: int
    actions: list[ActionFigures]
    members: list[MemberFigures]  # every member if viewer.full, else the viewer only
    others: MemberFigures | None  # every member the viewer may not see, folded together
    timeline: list[Bucket]
    votes: list[VoteDuration]  # requester hidden unless the viewer sees that member
    domains: Mapping[str, DomainSection]  # plug name -> its section for this viewer
    alerts: list[AlertRow] | None  # None: the viewer is not among those alerted

    def __getattr__(self, name: str) -> Any:
        """A figure of a domain section (only called when no field has ``name``)."""
        if name == "domains" or name.startswith("__"):
            raise AttributeError(name)
        for section in self.domains.values():
            if hasattr(section, name):
                return getattr(section, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def open_store(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the analytics DuckDB file read-only; NotFound/Unavailable say what to do."""
    if not path.is_file():
        raise NotFound(
            f"no analytics store at {path}: the platform writes it once the analytics sink "
            "is on and a request was answered"
        )
    import duckdb

    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise Unavailable(
            f"cannot open {path} read-only ({exc}); if the platform holds it open for "
            "writing, stop it or read a copy of the file"
        ) from None


def bucket_label(seconds: int) -> str:
    """``15 min``, ``hour``, ``6 h``, ``day``: a bucket size as a reader says it."""
    for size, one, unit in ((86400, "day", "d"), (3600, "hour", "h"), (60, "minute", "min")):
        if seconds % size == 0:
            return one if seconds == size else f"{seconds // size} {unit}"
    return f"{seconds} s"


def pick_bucket(first: float, last: float) -> int:
    """The smallest bucket size that shows the span in at most about 60 buckets."""
    span = max(last - first, 1.0)
    for size in BUCKETS:
        if span / size <= _MAX_BUCKETS:
            return size
    return BUCKETS[-1]


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def _label(kind: str, action: str | None) -> str:
    """Executes by action name; reads as ``read:<kind>`` so the two never mix."""
    name = action or "?"
    return name if kind == "execute" else f"read:{name}"


def _fields(text: Any) -> dict[str, JSON]:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _actions(con: duckdb.DuckDBPyConnection, cid: str, lo: float) -> list[ActionFigures]:
    rows = con.execute(
        "SELECT kind, action, outcome, code, count(*) FROM events "
        "WHERE consortium = ? AND time >= ? GROUP BY ALL",
        [cid, lo],
    ).fetchall()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    for kind, action, outcome, code, n in rows:
        label = _label(kind, action)
        outcomes[label][outcome] += n
        if code:
            codes[label][code] += n
    latency = {
        _label(kind, action): (float(p50 or 0.0), float(p95 or 0.0))
        for kind, action, p50, p95 in con.execute(
            # A vote's decision repeats the txid of its pending answer, with the vote's
            # duration as latency: leave it out, so latency is the platform's answer time.
            "WITH voted AS (SELECT DISTINCT txid FROM events WHERE consortium = ? "
            "  AND time >= ? AND outcome = 'pending' AND txid IS NOT NULL) "
            "SELECT kind, action, quantile_cont(latency_ms, 0.5), "
            "quantile_cont(latency_ms, 0.95) FROM events WHERE consortium = ? AND time >= ? "
            "AND NOT (outcome <> 'pending' AND coalesce(txid IN (SELECT txid FROM voted), false)) "
            "GROUP BY ALL",
            [cid, lo, cid, lo],
        ).fetchall()
    }
    figures = [
        ActionFigures(a, dict(outcomes[a]), dict(codes[a]), *latency.get(a, (0.0, 0.0)))
        for a in outcomes
    ]
    return sorted(figures, key=lambda f: (-f.total, f.action))


def _members(
    con: duckdb.DuckDBPyConnection, cid: str, lo: float, viewer: Viewer
) -> tuple[list[MemberFigures], MemberFigures | None]:
    rows = con.execute(
        "SELECT member, outcome, code, count(*) FROM events "
        "WHERE consortium = ? AND time >= ? AND member IS NOT NULL GROUP BY ALL",
        [cid, lo],
    ).fetchall()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    other_outcomes: Counter[str] = Counter()
    other_codes: Counter[str] = Counter()
    for member, outcome, code, n in rows:
        seen = viewer.sees(member)
        (outcomes[member] if seen else other_outcomes)[outcome] += n
        if code:
            (codes[member] if seen else other_codes)[code] += n
    mine = [MemberFigures(m, dict(outcomes[m]), dict(codes[m])) for m in sorted(outcomes)]
    others = (
        MemberFigures("(other members)", dict(other_outcomes), dict(other_codes))
        if other_outcomes
        else None
    )
    return mine, others


def _timeline(
    con: duckdb.DuckDBPyConnection, cid: str, lo: float, viewer: Viewer, first: float, bucket: int
) -> list[Bucket]:
    # Buckets start on multiples of their size (08:00, 08:15, ...), so labels read well.
    first = math.floor(first / bucket) * bucket
    rows = con.execute(
        "SELECT floor((time - ?) / ?)::BIGINT AS b, kind, action, outcome, code, "
        "member = ? AS own, count(*) FROM events WHERE consortium = ? AND time >= ? "
        "GROUP BY ALL",
        [first, bucket, viewer.member, cid, lo],
    ).fetchall()
    count = max((r[0] for r in rows), default=-1) + 1
    by_action: list[Counter[str]] = [Counter() for _ in range(count)]
    refused: list[Counter[str]] = [Counter() for _ in range(count)]
    own = [0] * count
    for b, kind, action, outcome, code, is_own, n in rows:
        by_action[b][_label(kind, action)] += n
        if outcome in ("refused", "failed"):
            refused[b][code or outcome] += n
        if is_own:
            own[b] += n
    return [
        Bucket(first + i * bucket, dict(by_action[i]), dict(refused[i]), own[i])
        for i in range(count)
    ]


def _votes(
    con: duckdb.DuckDBPyConnection, cid: str, lo: float, viewer: Viewer
) -> list[VoteDuration]:
    # The first decision at or after the first pending event of the same txid.
    rows = con.execute(
        "WITH p AS (SELECT txid, any_value(action) AS action, any_value(member) AS member, "
        "  min(time) AS t0 FROM events WHERE consortium = ? AND time >= ? "
        "  AND outcome = 'pending' "
        "  AND txid IS NOT NULL GROUP BY txid) "
        "SELECT p.action, p.member, p.t0, min(e.time), arg_min(e.outcome, e.time), "
        "  arg_min(e.code, e.time) FROM p LEFT JOIN events e ON e.consortium = ? "
        "  AND e.txid = p.txid AND e.time >= p.t0 "
        "  AND e.outcome IN ('committed', 'failed', 'refused') "
        "GROUP BY p.txid, p.action, p.member, p.t0 ORDER BY p.t0",
        [cid, lo, cid],
    ).fetchall()
    votes = []
    for action, member, t0, t1, outcome, code in rows:
        if t1 is None:
            decision = "open"
        elif outcome == "committed":
            decision = "approved"
        elif code == "vote_rejected":
            decision = "rejected"
        else:
            decision = "failed"
        requester = member if viewer.sees(member) else None
        votes.append(VoteDuration(action or "?", requester, t0, t1, decision))
    return votes


def _domain_events(
    con: duckdb.DuckDBPyConnection, cid: str, lo: float, actions: Iterable[str]
) -> list[DomainEvent]:
    wanted = sorted(set(actions))
    if not wanted:
        return []
    rows = con.execute(
        "SELECT time, action, member, fields::VARCHAR FROM events WHERE consortium = ? "
        "AND time >= ? AND kind = 'execute' AND outcome = 'committed' "
        "AND list_contains(?, action) ORDER BY time",
        [cid, lo, wanted],
    ).fetchall()
    return [DomainEvent(t, a, m, _fields(f)) for t, a, m, f in rows]


def _domains(
    con: duckdb.DuckDBPyConnection, cid: str, lo: float, viewer: Viewer
) -> dict[str, DomainSection]:
    plugs = registered_domains()
    events = _domain_events(con, cid, lo, (a for plug in plugs for a in plug.actions))
    sections = {}
    for plug in plugs:
        mine = set(plug.actions)
        sections[plug.name] = plug.compute([e for e in events if e.action in mine], viewer)
    return sections


def _alerts(con: duckdb.DuckDBPyConnection, cid: str, lo: float) -> list[AlertRow]:
    if not _table_exists(con, "alerts"):
        return []
    rows = con.execute(
        "SELECT time, member, rule, score, evidence::VARCHAR FROM alerts "
        "WHERE consortium = ? AND time >= ? ORDER BY time",
        [cid, lo],
    ).fetchall()
    return [AlertRow(t, m, r, float(s), _fields(e)) for t, m, r, s, e in rows]


def compute_insights(
    con: duckdb.DuckDBPyConnection,
    consortium: str,
    viewer: Viewer,
    *,
    bucket_s: int | None = None,
    since: float | None = None,
) -> Insights:
    """Every figure ``viewer`` may see of ``consortium`` (see the module docstring).

    ``since`` (unix seconds) keeps only the events and alerts from then on, for the domain
    plugs too (an order placed before it is not replayed by the Telco pack's).
    """
    if not _table_exists(con, "events"):
        raise NotFound("the analytics store holds no events table yet")
    lo = -math.inf if since is None else float(since)
    span = con.execute(
        "SELECT min(time), max(time) FROM events WHERE consortium = ? AND time >= ?",
        [consortium, lo],
    ).fetchone()
    first: float | None = span[0] if span else None
    last: float | None = span[1] if span else None
    if bucket_s is not None and bucket_s < 1:
        raise ValueError(f"a time bucket is at least 1 second, not {bucket_s}")
    if bucket_s is None:
        bucket_s = BUCKETS[0] if first is None or last is None else pick_bucket(first, last)
    members, others = _members(con, consortium, lo, viewer)
    timeline = [] if first is None else _timeline(con, consortium, lo, viewer, first, bucket_s)
    return Insights(
        consortium=consortium,
        viewer=viewer,
        first=first,
        last=last,
        bucket_s=bucket_s,
        actions=_actions(con, consortium, lo),
        members=members,
        others=others,
        timeline=timeline,
        votes=_votes(con, consortium, lo, viewer),
        domains=_domains(con, consortium, lo, viewer),
        alerts=_alerts(con, consortium, lo) if viewer.alerts else None,
    )


def insights_json(ins: Insights) -> dict[str, Any]:
    """The insights as JSON, with the derived figures (totals, durations) spelt out.

    The one document both ``consortia insights --json`` and ``GET .../insights`` answer;
    :func:`insights_from_json` reads it back for the tables and charts. Each domain
    section's keys come at the top level, before ``alerts``.
    """
    doc = asdict(replace(ins, domains={}))
    del doc["domains"]
    alerts = doc.pop("alerts")
    for section in ins.domains.values():
        doc.update(section.to_json())
    doc["alerts"] = alerts
    for row, figures in zip(doc["actions"], ins.actions, strict=True):
        row["total"] = figures.total
    for row, member in zip(doc["members"], ins.members, strict=True):
        row["total"] = member.total
    if ins.others is not None:
        doc["others"]["total"] = ins.others.total
    for row, vote in zip(doc["votes"], ins.votes, strict=True):
        row["seconds"] = vote.seconds
    return doc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _counts(value: Any) -> dict[str, int]:
    return {str(k): int(n) for k, n in dict(value).items()}


def _member_figures(row: Mapping[str, Any]) -> MemberFigures:
    return MemberFigures(str(row["member"]), _counts(row["outcomes"]), _counts(row["codes"]))


def insights_from_json(doc: Any) -> Insights:
    """Rebuild :class:`Insights` from :func:`insights_json`'s document (local or remote).

    Derived figures (``total``, ``seconds``, a plug's own) are recomputed, not read; each
    registered plug reads its section. A document of the wrong shape raises
    ``bad_request``: it came from a server, after all.
    """
    try:
        viewer = doc["viewer"]
        others = doc["others"]
        alerts = doc["alerts"]
        return Insights(
            consortium=str(doc["consortium"]),
            viewer=Viewer(str(viewer["member"]), bool(viewer["full"]), bool(viewer["alerts"])),
            first=_opt_float(doc["first"]),
            last=_opt_float(doc["last"]),
            bucket_s=int(doc["bucket_s"]),
            actions=[
                ActionFigures(
                    str(a["action"]),
                    _counts(a["outcomes"]),
                    _counts(a["codes"]),
                    float(a["p50_ms"]),
                    float(a["p95_ms"]),
                )
                for a in doc["actions"]
            ],
            members=[_member_figures(m) for m in doc["members"]],
            others=None if others is None else _member_figures(others),
            timeline=[
                Bucket(
                    float(b["start"]),
                    _counts(b["by_action"]),
                    _counts(b["refused_by_code"]),
                    int(b["own"]),
                )
                for b in doc["timeline"]
            ],
            votes=[
                VoteDuration(
                    str(v["action"]),
                    None if v["requester"] is None else str(v["requester"]),
                    float(v["pending"]),
                    _opt_float(v["decided"]),
                    str(v["outcome"]),
                )
                for v in doc["votes"]
            ],
            domains={plug.name: plug.from_json(doc) for plug in registered_domains()},
            alerts=None
            if alerts is None
            else [
                AlertRow(
                    float(a["time"]),
                    str(a["member"]),
                    str(a["rule"]),
                    float(a["score"]),
                    _fields(a["evidence"]),
                )
                for a in alerts
            ],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(
            f"not an insights document ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None


@runtime_checkable
class QueryableStore(Protocol):
    """A sink backend that can also be read, between its own writes (DuckDB's does)."""

    def query(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn`` on the store; ``unavailable`` when the store is busy elsewhere."""
        ...


def sink_insights(
    sink: object,
    constitution: Constitution,
    consortium: str,
    member: str,
    *,
    bucket_s: int | None = None,
    since: float | None = None,
    flush_timeout: float = 2.0,
) -> dict[str, Any]:
    """The insights document of ``member``, read from a running platform's own sink.

    Blocking (run it on a worker thread). The sink is flushed first, up to
    ``flush_timeout`` seconds, so the answer includes the requests just answered; then the
    store is read through the backend, under the lock its writes take, so reading never
    makes the sink drop a batch. NotFound when the sink keeps no store that can be read.
    """
    viewer = viewer_for(constitution, member)
    flush = getattr(sink, "flush", None)
    if callable(flush):
        flush(flush_timeout)
    backend = getattr(sink, "backend", None)
    if not isinstance(backend, QueryableStore):
        raise NotFound(
            "this platform's analytics sink keeps no store it can read back; insights need "
            "the embedded DuckDB store"
        )
    return backend.query(
        lambda con: insights_json(
            compute_insights(con, consortium, viewer, bucket_s=bucket_s, since=since)
        )
    )


def quantile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1, linear interpolation) of ``values``; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
