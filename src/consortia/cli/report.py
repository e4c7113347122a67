"""``consortia report order|asset|stock ID``: Telco reports from this member's own reads.

The report logic is :mod:`consortia.telco.reports` (pure functions over a reader); here it
runs in a worker thread over a reader that forwards each read to the member SDK on the
event loop, so a report shows exactly what this member may see over HTTP. A supplier,
which cannot read the order's revisions, learns its device ids from its notifications.
Same connection flags, environment variables and exit codes as the other member commands.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from consortia._json import JSON, JSONObject
from consortia.cli.member import _client, _common, _iso, _run, _table
from consortia.client import MemberClient
from consortia.errors import NotFound
from consortia.telco.reports import (
    asset_report,
    assets_report,
    device_orders_report,
    hints_from_events,
    known_orders,
    order_ids_from_events,
    order_report,
    orders_report,
    stock_report,
)

__all__ = ["add_report_parser", "member_report", "render"]

#: Notifications per page (the server's maximum).
_PAGE = 1000


class _ClientReader:
    """``Reader`` over a ``MemberClient``, for a report running in a worker thread."""

    def __init__(self, client: MemberClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def object(self, key: str) -> JSONObject:
        found = asyncio.run_coroutine_threadsafe(self._client.object(key), self._loop).result()
        return found if isinstance(found, dict) else {"key": key, "value": found}

    def history(self, key: str) -> list[JSONObject]:
        found = asyncio.run_coroutine_threadsafe(self._client.history(key), self._loop).result()
        items = found if isinstance(found, list) else []
        return [v for v in items if isinstance(v, dict)]

    def keys(self, prefix: str, *, limit: int = 1000, cursor: str | None = None) -> JSONObject:
        listed = self._client.list_keys(prefix, limit=limit, cursor=cursor)
        found = asyncio.run_coroutine_threadsafe(listed, self._loop).result()
        return found if isinstance(found, dict) else {"prefix": prefix, "keys": [], "next": None}


async def _events(client: MemberClient) -> list[JSON]:
    """Bodies of every notice this member received (TMF events among them)."""
    bodies: list[JSON] = []
    after = 0
    while True:
        page = await client.notification_page(after, _PAGE)
        bodies += [n.body for n in page if n.kind == "notice"]
        if len(page) < _PAGE:
            return bodies
        after = page[-1].id


#: The listing reports: one row per object, exportable as CSV.
LISTINGS = {"orders": "orders", "devices": "deviceOrders", "assets": "assets"}


async def member_listing(client: MemberClient, kind: str, args: argparse.Namespace) -> JSONObject:
    """Listing report ``kind`` (orders, devices, assets) from this member's reads only."""
    reader = _ClientReader(client, asyncio.get_running_loop())
    compute: Callable[[], JSONObject]
    if kind == "assets":
        compute = partial(assets_report, reader, status=args.status)
    else:
        hints = order_ids_from_events(await _events(client))
        if kind == "orders":
            compute = partial(orders_report, reader, hints, project=args.project, state=args.state)
        else:

            def compute() -> JSONObject:
                ids = args.order or known_orders(reader, hints, args.project)
                return device_orders_report(reader, ids, state=args.state)

    return await asyncio.to_thread(compute)


async def member_report(
    client: MemberClient, kind: str, ident: str, devices: Sequence[str] = ()
) -> JSONObject:
    """Report ``kind`` (order, stock or asset) on ``ident`` from this member's reads only.

    Order and stock reports also look for the device ids and parts named in this member's
    notifications, and for ``devices``. NotFound when the member may see no such thing.
    """
    reader = _ClientReader(client, asyncio.get_running_loop())
    compute: Callable[[], JSONObject]
    if kind == "asset":
        compute = partial(asset_report, reader, ident)
    else:
        known, parts = hints_from_events(await _events(client), ident)
        known += [d for d in devices if d not in known]
        if kind == "order":
            compute = partial(order_report, reader, ident, known)
        else:
            compute = partial(stock_report, reader, ident, known, parts)
    try:
        return await asyncio.to_thread(compute)
    except LookupError as exc:
        raise NotFound(str(exc).strip("'\"")) from None


def render(kind: str, report: JSONObject) -> str:
    """A report as readable tables."""
    return _RENDER[kind](report)


async def _report(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        if args.report in LISTINGS:
            report = await member_listing(client, args.report, args)
        else:
            report = await member_report(
                client, args.report, args.id, getattr(args, "device", None) or ()
            )
    form = "json" if args.json else getattr(args, "format", "table")
    if form == "json":
        print(json.dumps(report, sort_keys=True))
    elif form == "csv":
        sys.stdout.write(csv_rows(report[LISTINGS[args.report]]))
    else:
        print(render(args.report, report))
    return 0


def csv_rows(rows: JSON) -> str:
    """Rows of a listing report as CSV (RFC 4180, a header line first)."""
    items = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    if not items:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(items[0]), lineterminator="\r\n")
    writer.writeheader()
    for row in items:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def _render_listing(rows: Any, header: Sequence[str], counts: Any, what: str) -> str:
    if not rows:
        return f"no {what} this member may see"
    table = _table([[_cell(r.get(h)) for h in header] for r in rows], header)
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    return f"{table}\n\n{len(rows)} {what}: {summary}"


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _render_order(r: Any) -> str:
    out = [f"product order {r['productOrderId']}"]
    h = r["header"]
    if h is None:
        out.append("  header: hidden from this member" if r["hidden"]["header"] else "  header: -")
    else:
        out.append(f"  state {h['state']}, revision {h['revision']}, project {h['projectId']}")
    if r["services"]:
        rows = [[s["id"], s["action"], str(s["version"])] for s in r["services"]]
        out += ["", _table(rows, ["service", "action", "version"])]
    if r["devices"]:
        rows = [
            [
                d["id"],
                d["supplier"],
                d["part"],
                d["site"],
                d["state"],
                str(d["revision"]),
                _cell(d["resourceId"]),
            ]
            for d in r["devices"]
        ]
        header = ["device", "supplier", "part", "site", "state", "rev", "asset"]
        out += ["", _table(rows, header)]
    elif not r["hidden"]["deviceIds"]:
        out += ["", "devices: none this member may see (or knows of)"]
    hidden = r["hidden"]
    out += [
        "",
        f"hidden: {hidden['revisions']} revision(s), {hidden['deviceOrders']} device order(s)"
        + (f" ({', '.join(hidden['deviceIds'])})" if hidden["deviceIds"] else ""),
    ]
    return "\n".join(out)


def _render_stock(r: Any) -> str:
    out = [f"stock of product order {r['productOrderId']}"]
    keys = ["reserved", "consumed", "released", "returned", "remainder", "pending", "leak"]
    rows = [[s["supplier"], s["part"]] + [str(s[k]) for k in keys] for s in r["lines"]]
    out.append(_table(rows, ["supplier", "part", *keys]) if rows else "  no stock visible")
    leaks = [s for s in r["lines"] if s["leak"]]
    for s in leaks:
        out.append(f"LEAK: {s['supplier']} {s['part']}: {s['leak']} reserved and unaccounted")
    if r["hidden"]:
        names = ", ".join(f"{h['supplier']}/{h['part']}" for h in r["hidden"])
        out.append(f"hidden: {len(r['hidden'])} line(s) ({names})")
    return "\n".join(out)


def _render_asset(r: Any) -> str:
    out = [
        f"asset {r['id']}: {r['status']}, serial {_cell(r['serialNumber'])}",
        f"  {r['part']} from {r['supplier']}, device {r['device']} of order "
        f"{r['productOrderId']} (project {r['projectId']}), services "
        f"{', '.join(r['supportingService']) or '-'}"
        + (f", replaces {r['replaces']}" if r["replaces"] else ""),
        "",
        _table(
            [[str(s["seqno"]), s["status"], _cell(s["serialNumber"])] for s in r["lifecycle"]],
            ["seqno", "status", "serial"],
        ),
    ]
    if r["serialHistory"]:
        rows = [[h["action"], h["serialNumber"], _iso(h.get("date"))] for h in r["serialHistory"]]
        out += ["", _table(rows, ["serial action", "serial", "date"])]
    if r["hiddenVersions"]:
        out.append(f"hidden: {r['hiddenVersions']} version(s)")
    return "\n".join(out)


_RENDER: dict[str, Callable[[Any], str]] = {
    "order": _render_order,
    "stock": _render_stock,
    "asset": _render_asset,
    "orders": lambda r: _render_listing(
        r["orders"], ["productOrderId", "projectId", "state", "revision"], r["byState"], "orders"
    ),
    "devices": lambda r: _render_listing(
        r["deviceOrders"],
        ["productOrderId", "device", "state", "supplier", "part", "site", "resourceId"],
        r["byState"],
        "device orders",
    ),
    "assets": lambda r: _render_listing(
        r["assets"],
        ["id", "status", "serialNumber", "supplier", "part", "productOrderId", "device"],
        r["byStatus"],
        "assets",
    ),
}


def add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``consortia report order|asset|stock ID``."""
    common = _common()
    report = sub.add_parser("report", help="Telco reports from what this member may see")
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    helps = {
        "order": "order status: header, services, the device orders this member may see",
        "stock": "stock per supplier and part: reserved/consumed/released/returned, leaks",
        "asset": "an asset's lifecycle and serial history",
    }
    for kind, text in helps.items():
        cmd = kinds.add_parser(kind, parents=[common], help=text)
        cmd.add_argument("id", metavar="ASSET_ID" if kind == "asset" else "ORDER_ID")
        if kind != "asset":
            cmd.add_argument(
                "--device",
                action="append",
                metavar="ID",
                help="a device id to look for besides those learnt (repeatable)",
            )
        cmd.set_defaults(run=_run(_report))
    listings = {
        "orders": "the orders this member may see, with their states (by project, by state)",
        "devices": "the device orders this member may read (a supplier: its own), by state",
        "assets": "the assets this member may read, by lifecycle status",
    }
    for kind, text in listings.items():
        cmd = kinds.add_parser(kind, parents=[common], help=text)
        if kind in ("orders", "devices"):
            cmd.add_argument("--project", metavar="ID", help="only this customer project")
            cmd.add_argument("--state", help="only rows in this state")
        if kind == "devices":
            cmd.add_argument(
                "--order", action="append", metavar="ID", help="only this order (repeatable)"
            )
        if kind == "assets":
            cmd.add_argument("--status", help="only assets in this lifecycle status")
        cmd.add_argument(
            "--format",
            choices=["table", "csv", "json"],
            default="table",
            help="table for people, csv or json to export (default: %(default)s)",
        )
        cmd.set_defaults(run=_run(_report))
