"""``consortia insights``: the analytics insights one member may see, as tables or charts.

Two modes, one output. Remote (``--url``/``--key``/``--consortium``): a member asks the TEP
over HTTPS (``GET /v1/consortia/{cid}/insights``) with its signed token, and the server
decides its view. Local (``--data DIR --member ID``): the operator, on the TEP host, reads
the ledger and the analytics store (``analytics.duckdb``) directly; ``--member`` then picks a
view, it proves nothing. Both get the same JSON document
(:func:`~consortia.analytics.insights.insights_json`) and render tables and ``--plot`` PNG
charts (:mod:`consortia.analytics.plots`, the Telco pack's from :mod:`consortia.telco.plots`)
from it. The command registers the Telco insights plug before it computes or reads a
document (:func:`~consortia.telco.insights.register_telco_insights`).
"""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from consortia.analytics.insights import (
    OUTCOMES,
    Insights,
    bucket_label,
    compute_insights,
    insights_from_json,
    insights_json,
    open_store,
    quantile,
    viewer_for,
)
from consortia.cli.member import _client, _common, _run, _table
from consortia.engine.consortium import ConsortiumRuntime
from consortia.engine.datadir import DataDir
from consortia.engine.service import ServiceIdentity
from consortia.errors import BadRequest, NotFound
from consortia.governance.constitution import Constitution
from consortia.identity.box import Sealer
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.sqlite import SQLiteStore
from consortia.telco.insights import OrderInsights, StockLine, register_telco_insights

__all__ = [
    "add_insights_parser",
    "format_duration",
    "read_constitution",
    "render_insights",
]

#: The analytics store's file name in the platform's data directory.


def read_constitution(data: Path, consortium: str) -> Constitution:
    """The consortium's current constitution, read-only from the ledger in ``data``."""
    ledger = DataDir(data).ledger
    if not ledger.is_file():
        raise NotFound(f"no platform ledger at {ledger}; --data names the platform's folder")
    node_key = load_node_key(DataDir(data).node_key)
    store = SQLiteStore(ledger, read_only=True)
    try:
        service = ServiceIdentity.load(store, node_key)
        runtime = ConsortiumRuntime.open(
            store,
            consortium,
            node_key=node_key,
            sealer=Sealer(service.encryption),
            service_key=service.signing,
            restore=False,
        )
        return runtime.read_constitution()
    finally:
        store.close()


def format_duration(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 04h``: a duration a person reads at a glance."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _when(t: float | None, fmt: str = "%Y-%m-%dT%H:%MZ") -> str:
    """A time as a person reads it: ISO 8601, UTC."""
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t, tz=datetime.UTC).strftime(fmt)


def _codes(codes: Mapping[str, int]) -> str:
    return ", ".join(f"{c} {n}" for c, n in sorted(codes.items(), key=lambda i: -i[1])) or "-"


def _durations(values: Iterable[float | None]) -> list[str]:
    done = [v for v in values if v is not None]
    return [format_duration(quantile(done, q)) for q in (0.5, 0.9, 1.0)]


def _requests(ins: Insights) -> list[str]:
    header = ["action", "total", *OUTCOMES, "p50 ms", "p95 ms", "refusal codes"]
    rows = [
        [a.action, str(a.total)]
        + [str(a.outcomes.get(o, 0)) for o in OUTCOMES]
        + [f"{a.p50_ms:.1f}", f"{a.p95_ms:.1f}", _codes(a.codes)]
        for a in ins.actions
    ]
    out = [
        "REQUESTS PER ACTION (consortium-wide; a voted request counts as pending, then again "
        "with its decision; latency is the platform's first answer)",
        _table(rows, header),
        "",
    ]
    members = [*ins.members, *([ins.others] if ins.others else [])]
    rows = [
        [m.member, str(m.total)] + [str(m.outcomes.get(o, 0)) for o in OUTCOMES] + [_codes(m.codes)]
        for m in members
    ]
    out += ["REQUESTS PER MEMBER", _table(rows, ["member", "total", *OUTCOMES, "refusal codes"])]
    return [*out, ""]


def _timeline(ins: Insights) -> list[str]:
    span = bucket_label(ins.bucket_s)
    rows = []
    for b in ins.timeline:
        top = max(b.by_action.items(), key=lambda i: i[1], default=("-", 0))
        rows.append(
            [
                _when(b.start),
                str(sum(b.by_action.values())),
                str(sum(b.refused_by_code.values())),
                str(b.own),
                f"{top[0]} {top[1]}" if top[1] else "-",
            ]
        )
    header = ["bucket (UTC)", "requests", "refused+failed", "yours", "busiest action"]
    title = f"REQUESTS OVER TIME (per {span}, consortium-wide; YOURS = {ins.viewer.member})"
    return [title, _table(rows, header) if rows else "  no events", ""]


def _votes(ins: Insights) -> list[str]:
    out = ["VOTES (from pending to the decision)"]
    if not ins.votes:
        return [*out, "  no voted requests", ""]
    by_action: dict[str, list[float | None]] = {}
    for v in ins.votes:
        by_action.setdefault(v.action, []).append(v.seconds)
    rows = []
    for action, seconds in sorted(by_action.items()):
        mine = [v for v in ins.votes if v.action == action]
        counts = [sum(1 for v in mine if v.outcome == o) for o in _VOTE_OUTCOMES]
        rows.append([action, str(len(mine)), *map(str, counts), *_durations(seconds)])
    header = ["action", "votes", *_VOTE_OUTCOMES, "median", "p90", "max"]
    out.append(_table(rows, header))
    seen = [v for v in ins.votes if v.requester is not None]
    if seen:
        rows = [
            [v.action, str(v.requester), _when(v.pending), format_duration(v.seconds), v.outcome]
            for v in seen
        ]
        out += ["", _table(rows, ["action", "requester", "pending since", "took", "outcome"])]
    return [*out, ""]


_VOTE_OUTCOMES = ("approved", "rejected", "failed", "open")


def _orders(ins: Insights) -> list[str]:
    telco = OrderInsights.of(ins)
    if telco is None:
        return []
    out = ["ORDER CYCLE TIMES (Telco orders, placeOrder to completed/cancelled)"]
    if not telco.orders_all:
        return [*out, "  no orders (none placed, or the policy grants no order fields)", ""]
    rows = []
    for state in ("completed", "cancelled", "open"):
        group = [o for o in telco.orders_all if o.state == state]
        if group:
            rows.append([state, str(len(group)), *_durations(o.cycle_s for o in group)])
    out.append(_table(rows, ["state", "orders", "median", "p90", "max"]))
    if telco.orders:
        rows = [
            [
                o.order,
                str(o.placed_by),
                _when(o.placed),
                _when(o.closed),
                o.state,
                format_duration(o.cycle_s),
            ]
            for o in sorted(telco.orders, key=lambda o: o.placed)
        ]
        header = ["order", "placed by", "placed (UTC)", "closed (UTC)", "state", "cycle"]
        out += ["", _table(rows, header)]
    if telco.skipped_order_events:
        out.append(f"skipped {telco.skipped_order_events} order event(s) lacking granted fields")
    return [*out, ""]


def _stock_row(line: StockLine) -> list[str]:
    figures = [line.reserved, line.consumed, line.released, line.returned, line.pending]
    return [line.supplier, *map(str, figures), str(line.leak)]


def _stock(ins: Insights) -> list[str]:
    telco = OrderInsights.of(ins)
    if telco is None:
        return []
    out = ["STOCK PER SUPPLIER (units; leak = reserved, not consumed/released/pending)"]
    if not telco.stock_total.reserved and not telco.stock:
        return [*out, "  no stock movements seen", ""]
    rows = [_stock_row(s) for s in telco.stock] + [_stock_row(telco.stock_total)]
    header = ["supplier", "reserved", "consumed", "released", "returned", "pending", "leak"]
    out.append(_table(rows, header))
    out += [
        f"LEAK: {s.supplier}: {s.leak} unit(s) reserved and unaccounted"
        for s in telco.stock
        if s.leak
    ]
    return [*out, ""]


def _alerts(ins: Insights) -> list[str]:
    if ins.alerts is None:
        return ["MISUSE ALERTS: not shown (the analytics policy's alert_to does not name you)"]
    if not ins.alerts:
        return ["MISUSE ALERTS: none"]
    rows = [
        [
            _when(a.time, "%Y-%m-%dT%H:%M:%SZ"),
            a.member,
            a.rule,
            f"{a.score:.2f}",
            json.dumps(a.evidence, sort_keys=True),
        ]
        for a in ins.alerts
    ]
    return ["MISUSE ALERTS", _table(rows, ["time (UTC)", "member", "rule", "score", "evidence"])]


def render_insights(ins: Insights) -> str:
    """The insights as plain aligned tables, in the order a reader wants them."""
    scope = (
        "every member's rows (insights_full)"
        if ins.viewer.full
        else "your own rows and consortium-wide totals"
    )
    head = [
        f"insights of consortium {ins.consortium!r} as member {ins.viewer.member!r} may see "
        f"them: {scope}",
        f"events from {_when(ins.first)} to {_when(ins.last)}",
        "",
    ]
    if ins.first is None:
        return "\n".join([*head[:1], "no events recorded for this consortium yet"])
    parts = [_requests, _timeline, _votes, _orders, _stock, _alerts]
    return "\n".join(head + [line for part in parts for line in part(ins)]).rstrip()


def _local_document(args: argparse.Namespace) -> dict[str, Any]:
    """The operator's side: read the ledger and the DuckDB file in ``--data`` directly."""
    if args.url:
        raise BadRequest(
            "--data (local, on the TEP host) and --url (remote, as a member) exclude each other"
        )
    if not args.consortium or not args.member:
        raise BadRequest("with --data, give --consortium and --member (whose view to show)")
    data = Path(args.data)
    constitution = read_constitution(data, args.consortium)
    viewer = viewer_for(constitution, args.member)
    con = open_store(DataDir(data).analytics)
    try:
        ins = compute_insights(con, args.consortium, viewer, bucket_s=args.bucket, since=args.since)
    finally:
        con.close()
    return insights_json(ins)


def _show_document(args: argparse.Namespace, doc: Any) -> int:
    """Tables (or the JSON document) and charts: the same code for both modes."""
    ins = insights_from_json(doc)
    if args.json:
        print(json.dumps(doc, sort_keys=True))
    else:
        print(render_insights(ins))
    if args.plot:
        from consortia.analytics.plots import CHARTS, write_charts
        from consortia.telco.plots import TELCO_CHARTS

        for path in write_charts(ins, Path(args.plot), {**CHARTS, **TELCO_CHARTS}):
            print(f"wrote {path}")
    return 0


async def _remote(args: argparse.Namespace) -> int:
    if args.member:
        raise BadRequest("with --url the key file says who you are; drop --member")
    async with _client(args) as client:
        doc = await client.insights(bucket=args.bucket, since=args.since)
    return _show_document(args, doc)


def _insights(args: argparse.Namespace) -> int:
    register_telco_insights()  # the document, computed or read, carries the Telco section
    if args.bucket is not None and args.bucket < 1:
        raise BadRequest(f"--bucket must be a positive number of seconds, not {args.bucket}")
    if args.since is not None and args.since < 0:
        raise BadRequest(f"--since must be unix seconds, not {args.since}")
    if args.data:
        return _show_document(args, _local_document(args))
    if not args.url:
        raise BadRequest(
            "give --url, --key and --consortium (a member, remote) or --data, --consortium "
            "and --member (the operator, on the TEP host)"
        )
    return _run(_remote)(args)


def add_insights_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``consortia insights (--url URL --key FILE | --data DIR --member ID) --consortium CID``."""
    cmd = sub.add_parser(
        "insights",
        parents=[_common()],
        help="analytics insights one member may see: requests, refusals, votes, orders, stock",
        description="Two modes. As a member, anywhere: --url, --key, --consortium (and "
        "--service-fingerprint) ask the TEP over HTTPS with your signed token, and you see "
        "what the constitution lets you see. As the operator, on the TEP host: --data DIR "
        "--consortium CID --member ID reads the platform's files directly (no "
        "authentication: --member only picks whose view to show; it reads between the "
        "running sink's writes, so prefer the remote mode against a live platform).",
    )
    local = cmd.add_argument_group("operator mode, on the TEP host")
    local.add_argument("--data", metavar="DIR", help="the platform's data folder (local mode)")
    local.add_argument("--member", metavar="ID", help="local mode: show what this member may see")
    cmd.add_argument(
        "--bucket", type=int, metavar="SECONDS", help="time bucket (default: fits ~60 buckets)"
    )
    cmd.add_argument(
        "--since", type=float, metavar="UNIX", help="only events from this time (unix seconds)"
    )
    cmd.add_argument("--plot", metavar="DIR", help="also write PNG charts into DIR")
    cmd.set_defaults(run=_insights)
