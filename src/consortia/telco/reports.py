"""Telco reports a member computes from its own reads (client side, never on the platform).

Each report is a pure function over a :class:`Reader`: anything with ``object(key)`` and
``history(key)`` as the platform's read API answers them (``MemberView`` in-process; the
CLI adapts ``MemberClient`` over HTTP). A report therefore shows exactly what that member
may see: a key it knows of but may not read is counted as hidden, never guessed at.

Keys follow the actions (``actions/common.star``): ``productOrder/<oid>`` (header: insiders
and customer), ``productOrder/<oid>/revision/<n>`` (insiders), ``resourceOrder/<oid>/<dev>``
(its supplier and the insiders), ``stock/<supplier>/<part>/<oid>`` (that supplier and the
insiders), ``resource/<asset>`` (supplier, insiders, installers, customer).

Device ids are learnt from the revisions the reader may see, plus ``devices`` hints (a
supplier learns its own from its notifications: :func:`hints_from_events`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from consortia._json import JSON, JSONObject, json_list

__all__ = [
    "Lister",
    "Reader",
    "asset_report",
    "assets_report",
    "device_orders_report",
    "hints_from_events",
    "known_orders",
    "order_ids_from_events",
    "order_report",
    "orders_report",
    "stock_report",
]

#: Stop probing revisions after this many (an order never gets near it).
MAX_REVISIONS = 1000
#: Device orders still holding their reservation, not yet shipped (common.star NOT_SHIPPED).
_UNSHIPPED = ("acknowledged", "inProgress", "held")
_KINDS = ("reserve", "consume", "release", "return")


class Reader(Protocol):
    """The two reads a report needs; ``MemberView`` satisfies it as is."""

    def object(self, key: str) -> JSONObject:
        """``{"key","value","seqno","txid"}`` of the newest visible version, else NotFound."""
        ...

    def history(self, key: str) -> list[JSONObject]:
        """Every version, oldest first, hidden ones as ``{seqno, txid, digest}``."""
        ...


class Lister(Reader, Protocol):
    """A reader that can also list the keys under a prefix it may read (``GET …/keys``)."""

    def keys(self, prefix: str, *, limit: int = ..., cursor: str | None = None) -> JSONObject:
        """One page: ``{"prefix", "keys": [{"key","value","seqno","txid"}], "next"}``."""
        ...


#: Listing pages followed at most (200,000 keys at the server's default page): a report
#: never loops on a cursor.
MAX_PAGES = 2000


def _listed(reader: Lister, prefix: str) -> list[JSONObject]:
    """Every entry under ``prefix`` the reader may read, following the cursors."""
    out: list[JSONObject] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page: Any = reader.keys(prefix, cursor=cursor)
        out += [entry for entry in page.get("keys", []) if isinstance(entry, dict)]
        cursor = page.get("next")
        if not isinstance(cursor, str):
            break
    return out


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "code", None) == "not_found"


def _read(reader: Reader, key: str) -> tuple[str, Any]:
    """``("visible", value)``, ``("hidden", None)`` (exists, unreadable) or ``("absent", None)``."""
    try:
        return "visible", reader.object(key)["value"]
    except Exception as exc:
        if not _not_found(exc):
            raise
    return ("hidden", None) if _exists(reader, key) else ("absent", None)


def _exists(reader: Reader, key: str) -> bool:
    try:
        reader.history(key)
    except Exception as exc:
        if not _not_found(exc):
            raise
        return False
    return True


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class _Order:
    """What a reader can learn about one order: header, revisions, device orders."""

    def __init__(self, reader: Reader, oid: str, devices: Sequence[str]) -> None:
        self.oid = oid
        self.header_seen, self.header = _read(reader, f"productOrder/{oid}")
        # The derived state is an object of its own (a supplier may write it, never the
        # header); a reader who sees the header sees the state too.
        self.state_seen, self.state = _read(reader, f"productOrder/{oid}/state")
        self.revisions: list[dict[str, Any]] = []
        self.hidden_revisions = 0
        for number in range(1, MAX_REVISIONS + 1):
            seen, value = _read(reader, f"productOrder/{oid}/revision/{number}")
            if seen == "absent":
                break
            if seen == "visible":
                self.revisions.append(value)
            else:
                self.hidden_revisions += 1
        known = [d["id"] for r in self.revisions for d in r.get("devices", [])]
        self.device_ids = _unique([*known, *devices])
        self.device_orders: list[dict[str, Any]] = []
        self.hidden_devices: list[str] = []
        for dev in self.device_ids:
            seen, value = _read(reader, f"resourceOrder/{oid}/{dev}")
            if seen == "visible":
                self.device_orders.append(value)
            elif seen == "hidden":
                self.hidden_devices.append(dev)

    def stock_lines(self, parts: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """(supplier, part) pairs the reader knows of for this order, sorted."""
        pairs = [(d["supplier"], d["part"]) for d in self.device_orders]
        pairs += [(d["supplier"], d["part"]) for r in self.revisions for d in r["devices"]]
        return sorted(set(pairs) | set(parts))


def order_report(reader: Reader, order_id: str, devices: Sequence[str] = ()) -> JSONObject:
    """Order status as the reader may see it: header, services and device orders.

    ``hidden`` counts what exists but is not the reader's to see: the header, revisions,
    and device orders among the device ids it knows of (``devices`` adds ids it learnt
    elsewhere, e.g. from its notifications).
    """
    order = _Order(reader, order_id, devices)
    header: JSON = None
    services: list[JSON] = []
    if order.header_seen == "visible":
        h = order.header
        header = {
            "state": order.state["state"] if order.state_seen == "visible" else None,
            "revision": h["revision"],
            "projectId": h["projectId"],
            "externalId": h.get("externalId", []),
        }
        services = [
            {"id": i["id"], "action": i["action"], "version": i["service"]["version"]}
            for i in h.get("productOrderItem", [])
        ]
    device_rows: list[JSON] = [
        {
            "id": d["id"],
            "supplier": d["supplier"],
            "part": d["part"],
            "site": d["site"],
            "state": d["state"],
            "revision": d["revision"],
            "resourceId": d.get("resourceId"),
        }
        for d in order.device_orders
    ]
    if order.header_seen == "absent" and not device_rows and not order.hidden_devices:
        exists = order.hidden_revisions or order.revisions
        if not exists:
            raise LookupError(f"no product order {order_id!r}")
    hidden_devices: list[JSON] = list(order.hidden_devices)
    return {
        "report": "order",
        "productOrderId": order_id,
        "header": header,
        "services": services,
        "devices": device_rows,
        "hidden": {
            "header": order.header_seen == "hidden",
            "revisions": order.hidden_revisions,
            "deviceOrders": len(order.hidden_devices),
            "deviceIds": hidden_devices,
        },
        "visibleRevisions": [r["revision"] for r in order.revisions],
    }


def stock_report(
    reader: Reader,
    order_id: str,
    devices: Sequence[str] = (),
    parts: Iterable[tuple[str, str]] = (),
) -> JSONObject:
    """Stock per supplier and part for one order: reserved vs consumed vs released vs
    returned, and the unaccounted ``remainder`` (reserved - consumed - released).

    ``pending`` is the part of the remainder still held by visible device orders that are
    not shipped yet; ``leak`` is what nothing the reader sees explains (remainder - pending).
    Lines whose stock the reader may not see are counted in ``hidden``.
    """
    order = _Order(reader, order_id, devices)
    lines: list[JSON] = []
    hidden: list[JSON] = []
    for supplier, part in order.stock_lines(parts):
        seen, stock = _read(reader, f"stock/{supplier}/{part}/{order_id}")
        if seen == "hidden":
            hidden.append({"supplier": supplier, "part": part})
        if seen != "visible":
            continue
        balance = stock["balance"].get(order_id, {})
        counts = {k: int(balance.get(k, 0)) for k in _KINDS}
        remainder = counts["reserve"] - counts["consume"] - counts["release"]
        pending = sum(
            1
            for d in order.device_orders
            if (d["supplier"], d["part"]) == (supplier, part)
            and d["state"] in _UNSHIPPED
            and d.get("reserved")
        )
        lines.append(
            {
                "supplier": supplier,
                "part": part,
                "reserved": counts["reserve"],
                "consumed": counts["consume"],
                "released": counts["release"],
                "returned": counts["return"],
                "remainder": remainder,
                "pending": pending,
                "leak": remainder - pending,
                "movements": len(stock["stockMovement"]),
            }
        )
    return {"report": "stock", "productOrderId": order_id, "lines": lines, "hidden": hidden}


def asset_report(reader: Reader, asset_id: str) -> JSONObject:
    """An asset's lifecycle (each visible status or serial change) and its serial history."""
    key = f"resource/{asset_id}"
    seen, asset = _read(reader, key)
    if seen != "visible":
        raise LookupError(
            f"asset {asset_id!r} is not visible to this member"
            if seen == "hidden"
            else f"no asset {asset_id!r}"
        )
    lifecycle: list[JSON] = []
    hidden_versions = 0
    last: tuple[Any, Any] | None = None
    for version in reader.history(key):
        value = version.get("value")
        if not version.get("visible") or not isinstance(value, dict):
            hidden_versions += 1
            continue
        now = (value.get("assetLifecycleStatus"), value.get("serialNumber"))
        if now != last:
            lifecycle.append(
                {
                    "seqno": version["seqno"],
                    "txid": version["txid"],
                    "status": now[0],
                    "serialNumber": now[1],
                }
            )
            last = now
    return {
        "report": "asset",
        "id": asset_id,
        "status": asset["assetLifecycleStatus"],
        "serialNumber": asset["serialNumber"],
        "supplier": asset["supplier"],
        "part": asset["part"],
        "device": asset["device"],
        "productOrderId": asset["productOrderId"],
        "projectId": asset["projectId"],
        "supportingService": asset["supportingService"],
        "replaces": asset.get("replaces"),
        "lifecycle": lifecycle,
        "serialHistory": asset.get("serialHistory", []),
        "hiddenVersions": hidden_versions,
    }


def hints_from_events(
    events: Iterable[JSON], order_id: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """Device ids and (supplier, part) pairs of ``order_id`` named in TMF event bodies.

    A supplier cannot read the order's revisions; its notifications name its own devices.
    """
    devices: list[str] = []
    parts: list[tuple[str, str]] = []
    for body in events:
        event: Any = body.get("event") if isinstance(body, dict) else None
        if not isinstance(event, dict):
            continue
        for item in event.get("resourceOrder") or []:
            if isinstance(item, dict) and item.get("productOrderId") == order_id:
                devices.append(str(item.get("id")))
        if event.get("productOrderId") == order_id:  # jeopardy alerts name device ids
            devices += [str(d) for d in event.get("resourceOrder") or [] if isinstance(d, str)]
        plan = event.get("changePlan")
        if isinstance(plan, dict) and plan.get("productOrderId") == order_id:
            for item in plan.get("resourceItem") or []:
                devices.append(str(item["target"]))
                parts.append((str(item["supplier"]), str(item["part"])))
    return _unique(devices), sorted(set(parts))


def order_ids_from_events(events: Iterable[JSON]) -> list[str]:
    """Product order ids named in TMF event bodies (what a supplier or customer knows of)."""
    found: list[str] = []
    for body in events:
        event: Any = body.get("event") if isinstance(body, dict) else None
        if not isinstance(event, dict):
            continue
        for item in event.get("resourceOrder") or []:
            if isinstance(item, dict) and isinstance(item.get("productOrderId"), str):
                found.append(item["productOrderId"])
        for name in ("productOrder", "changePlan"):
            inner = event.get(name)
            if isinstance(inner, dict):
                ident = inner.get("id") if name == "productOrder" else inner.get("productOrderId")
                if isinstance(ident, str):
                    found.append(ident)
        if isinstance(event.get("productOrderId"), str):
            found.append(event["productOrderId"])
    return _unique(found)


def _counts(rows: Sequence[JSONObject], field: str) -> JSONObject:
    counts: dict[str, int] = {}
    for row in rows:
        value = str(row.get(field))
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def known_orders(reader: Lister, hints: Sequence[str], project: str | None) -> list[str]:
    """Order ids the reader can know: its projects' order indexes (sellers and auditors
    read them) and the ``hints`` (from its notifications), in that order."""
    ids: list[str] = []
    for entry in _listed(reader, "project/"):
        pid = str(entry["key"]).removeprefix("project/")
        if project is None or pid == project:
            ids += [
                str(e["key"]).rsplit("/", 1)[-1] for e in _listed(reader, f"projectOrder/{pid}/")
            ]
    return _unique([*ids, *hints])


def orders_report(
    reader: Lister,
    hints: Sequence[str] = (),
    *,
    project: str | None = None,
    state: str | None = None,
) -> JSONObject:
    """The orders this reader may see, one row each (id, project, state, revision), and
    how many are in each state; ``project`` and ``state`` filter the rows."""
    rows: list[JSONObject] = []
    for oid in known_orders(reader, hints, project):
        seen, status = _read(reader, f"productOrder/{oid}/state")
        header_seen, header = _read(reader, f"productOrder/{oid}")
        if seen != "visible" and header_seen != "visible":
            continue
        pid = header.get("projectId") if isinstance(header, dict) else None
        if project is not None and pid not in (project, None):
            continue
        current = (
            status.get("state", "acknowledged") if isinstance(status, dict) else "acknowledged"
        )
        revision = status.get("revision") if isinstance(status, dict) else None
        if revision is None and isinstance(header, dict):
            revision = header.get("revision")
        row: JSONObject = {
            "productOrderId": oid,
            "projectId": pid,
            "state": current,
            "revision": revision,
        }
        if state is None or current == state:
            rows.append(row)
    return {"orders": json_list(rows), "byState": _counts(rows, "state")}


def device_orders_report(
    reader: Lister, order_ids: Sequence[str], *, state: str | None = None
) -> JSONObject:
    """The device orders (TMF652 ResourceOrders) of ``order_ids`` this reader may read: a
    supplier's own, or every one for a seller; ``state`` filters them."""
    rows: list[JSONObject] = []
    for oid in _unique(order_ids):
        for entry in _listed(reader, f"resourceOrder/{oid}/"):
            value: Any = entry.get("value")
            if not isinstance(value, dict):
                continue
            if state is not None and value.get("state") != state:
                continue
            rows.append(
                {
                    "productOrderId": oid,
                    "device": value.get("id"),
                    "state": value.get("state"),
                    "supplier": value.get("supplier"),
                    "part": value.get("part"),
                    "site": value.get("site"),
                    "revision": value.get("revision"),
                    "resourceId": value.get("resourceId"),
                    "seqno": entry.get("seqno"),
                }
            )
    return {"deviceOrders": json_list(rows), "byState": _counts(rows, "state")}


def assets_report(reader: Lister, *, status: str | None = None) -> JSONObject:
    """The assets (TMF639 PhysicalResources) this reader may read, and how many are in each
    lifecycle status; ``status`` filters them."""
    rows: list[JSONObject] = []
    for entry in _listed(reader, "resource/"):
        value: Any = entry.get("value")
        if not isinstance(value, dict):
            continue
        current = value.get("assetLifecycleStatus")
        if status is not None and current != status:
            continue
        rows.append(
            {
                "id": value.get("id"),
                "status": current,
                "serialNumber": value.get("serialNumber"),
                "supplier": value.get("supplier"),
                "part": value.get("part"),
                "productOrderId": value.get("productOrderId"),
                "device": value.get("device"),
                "seqno": entry.get("seqno"),
            }
        )
    return {"assets": json_list(rows), "byStatus": _counts(rows, "status")}
