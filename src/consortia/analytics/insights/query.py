"""Computing the insights: SQL over the analytics DuckDB store, for one viewer.

The sink writes redacted events (and the detector its alerts) to DuckDB; :func:`compute_insights`
reads them back as :class:`~consortia.analytics.insights.Insights`. Everything is computed from
events alone, the ledger is never read. Vote durations run from a ``pending`` event to the
first committed/failed/refused event of the same txid; each registered domain plug gets the
committed events of the actions it names.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consortia._json import JSON
from consortia.analytics.insights.domain import DomainEvent, DomainSection, registered_domains
from consortia.analytics.insights.figures import (
    BUCKETS,
    ActionFigures,
    AlertRow,
    Bucket,
    Insights,
    MemberFigures,
    VoteDuration,
    pick_bucket,
)
from consortia.analytics.insights.viewer import Viewer
from consortia.errors import NotFound, Unavailable

if TYPE_CHECKING:  # duckdb is imported when a store is opened: the CLI starts faster
    import duckdb

__all__ = ["compute_insights", "json_object", "open_store"]


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


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def _label(kind: str, action: str | None) -> str:
    """Executes by action name; reads as ``read:<kind>`` so the two never mix."""
    name = action or "?"
    return name if kind == "execute" else f"read:{name}"


def json_object(text: Any) -> dict[str, JSON]:
    """A stored JSON object (``fields``, ``evidence``) as a dict; ``{}`` when it is none."""
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _as_seen(viewer: Viewer, outcome: str, code: str | None) -> tuple[str, str | None]:
    """A read of something hidden counts apart from refusals only for a viewer who sees every
    member's figures (the insiders): to any other, it is the ``not_found`` its reader got,
    so no count can tell a hidden key from a missing one."""
    if outcome == "hidden" and not viewer.full:
        return "refused", "not_found"
    return outcome, code


def _actions(
    con: duckdb.DuckDBPyConnection, cid: str, lo: float, viewer: Viewer
) -> list[ActionFigures]:
    rows = con.execute(
        "SELECT kind, action, outcome, code, count(*) FROM events "
        "WHERE consortium = ? AND time >= ? GROUP BY ALL",
        [cid, lo],
    ).fetchall()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    for kind, action, raw_outcome, raw_code, n in rows:
        outcome, code = _as_seen(viewer, raw_outcome, raw_code)
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
    for member, raw_outcome, raw_code, n in rows:
        outcome, code = _as_seen(viewer, raw_outcome, raw_code)
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
    for b, kind, action, raw_outcome, raw_code, is_own, n in rows:
        outcome, code = _as_seen(viewer, raw_outcome, raw_code)
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
    return [DomainEvent(t, a, m, json_object(f)) for t, a, m, f in rows]


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
    return [AlertRow(t, m, r, float(s), json_object(e)) for t, m, r, s, e in rows]


def compute_insights(
    con: duckdb.DuckDBPyConnection,
    consortium: str,
    viewer: Viewer,
    *,
    bucket_s: int | None = None,
    since: float | None = None,
) -> Insights:
    """Every figure ``viewer`` may see of ``consortium``.

    What the viewer sees follows the analytics policy (:mod:`consortia.analytics.insights`).

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
        actions=_actions(con, consortium, lo, viewer),
        members=members,
        others=others,
        timeline=timeline,
        votes=_votes(con, consortium, lo, viewer),
        domains=_domains(con, consortium, lo, viewer),
        alerts=_alerts(con, consortium, lo) if viewer.alerts else None,
    )
