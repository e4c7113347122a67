"""Order cycle times and stock leak per supplier, replayed from the Telco pack's events.

The pack's insights plug (:data:`TELCO_INSIGHTS`). Importing the pack registers nothing:
the places that wire a platform (the server's insights route, the ``consortia insights``
command) call :func:`register_telco_insights`, and :meth:`TelcoInsights.section` gives the
Telco section of an :class:`~consortia.analytics.insights.Insights`.

Analytics never reads the ledger: the plug sees only the committed
events of the Telco actions and the parameter fields the template's analytics policy grants
them (:data:`~consortia.telco.template.ANALYTICS_GRANTS`: ids and quantities; never prices
or serials). From those it replays what the actions do to device orders and stock,
mirroring ``telco/actions/common.star``:

- ``placeOrder`` orders each device (state ``acknowledged``) and reserves one unit of its
  part at its supplier;
- ``reviseOrder`` orders added devices and withdraws removed ones (``autoCorrect``), or
  holds them (``pause``) until ``resumeChangePlan`` carries the change out;
- ``updateDeviceOrder`` moves a device; ``shipped`` consumes its reservation;
- ``cancelOrder`` withdraws every device: not shipped -> cancelled (reservation released),
  shipped -> ``recoveryInProgress`` (a stock ``return``);
- ``reserveStock``/``consumeStock``/``releaseStock``/``returnStock`` move stock directly.

An order closes when every live device is ``completed`` (state ``completed``), or when it
was cancelled and no device is still being recovered (state ``cancelled``); its cycle time
runs from the ``placeOrder`` event to that moment. The stock ``leak`` of a supplier is what
was reserved and neither consumed, released nor still held by an unshipped device order:
the same definition as the ``consortia report stock`` report, over all orders.

The replay is pure: events in, figures out. An event missing a granted field it needs is
skipped (counted in ``skipped``), never guessed at, so a narrower policy gives fewer
figures, not wrong ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from consortia._json import JSON
from consortia.analytics.insights import DomainEvent, Insights, Viewer, register_domain
from consortia.telco.template import ANALYTICS_GRANTS

__all__ = [
    "TELCO_GRANTS",
    "TELCO_INSIGHTS",
    "TELCO_ORDER_ACTIONS",
    "OrderCycle",
    "OrderFlow",
    "OrderInsights",
    "StockLine",
    "TelcoEvent",
    "TelcoInsights",
    "register_telco_insights",
    "replay_orders",
]

#: The parameter fields each Telco action must grant for these insights: the template's
#: analytics policy, one source (ids, states, modes and quantities only).
TELCO_GRANTS: Mapping[str, tuple[str, ...]] = ANALYTICS_GRANTS
TELCO_ORDER_ACTIONS = tuple(TELCO_GRANTS)

#: A committed Telco action as the replay sees it: when, what, who, granted fields.
TelcoEvent = DomainEvent

_NOT_SHIPPED = ("acknowledged", "inProgress", "held")
_SHIPPED = ("shipped", "delivered", "completed")
_ENDED = ("cancelled", "recovered")
_STOCK_KIND = {
    "reserveStock": "reserved",
    "consumeStock": "consumed",
    "releaseStock": "released",
    "returnStock": "returned",
}


@dataclass(frozen=True, slots=True)
class OrderCycle:
    """One product order: who placed it, when, and when (and how) it closed."""

    order: str
    placed_by: str | None
    placed: float
    closed: float | None  # None while the order is open
    state: str  # "completed" | "cancelled" | "open"

    @property
    def cycle_s(self) -> float | None:
        """Seconds from placing to closing; None while open."""
        return None if self.closed is None else self.closed - self.placed


@dataclass(slots=True)
class StockLine:
    """Units of one supplier's stock across every order (all parts together)."""

    supplier: str
    reserved: int = 0
    consumed: int = 0
    released: int = 0
    returned: int = 0
    pending: int = 0  # reserved and still held by device orders not shipped yet

    @property
    def leak(self) -> int:
        """Reserved units nothing explains: not consumed, released or still pending."""
        return self.reserved - self.consumed - self.released - self.pending


@dataclass(frozen=True, slots=True)
class OrderFlow:
    """What the replay found: one cycle per order, one stock line per supplier."""

    orders: list[OrderCycle]
    stock: list[StockLine]
    skipped: int  # events whose granted fields were missing or malformed


@dataclass(slots=True)
class _Device:
    supplier: str
    state: str = "acknowledged"
    reserved: bool = True
    pending: str | None = None  # "add" | "remove" while a paused change plan holds it


@dataclass(slots=True)
class _Order:
    placed_by: str | None
    placed: float
    devices: dict[str, _Device] = field(default_factory=dict)
    cancelling: bool = False
    closed: float | None = None
    state: str = "open"


class _Skip(Exception):
    """A granted field is missing or has the wrong type: skip the event."""


def _str(fields: Mapping[str, JSON], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise _Skip(name)
    return value


def _devices(fields: Mapping[str, JSON]) -> list[tuple[str, str]]:
    """(id, supplier) of each device in a placeOrder/reviseOrder ``devices`` field."""
    value = fields.get("devices")
    if not isinstance(value, list):
        raise _Skip("devices")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise _Skip("devices")
        out.append((_str(item, "id"), _str(item, "supplier")))
    return out


class _Replay:
    def __init__(self) -> None:
        self.orders: dict[str, _Order] = {}
        self.stock: dict[str, StockLine] = {}
        self.skipped = 0

    def line(self, supplier: str) -> StockLine:
        return self.stock.setdefault(supplier, StockLine(supplier))

    def apply(self, ev: TelcoEvent) -> None:
        handler = _HANDLERS.get(ev.action)
        if handler is None:
            return
        try:
            handler(self, ev)
        except _Skip:
            self.skipped += 1

    # -- device and stock moves, as common.star does them ---------------------------------

    def order_device(self, order: _Order, dev: str, supplier: str) -> None:
        order.devices[dev] = _Device(supplier)
        self.line(supplier).reserved += 1

    def withdraw(self, device: _Device) -> None:
        if device.state in _NOT_SHIPPED:
            if device.reserved:
                self.line(device.supplier).released += 1
            device.state = "cancelled"
        elif device.state in _SHIPPED:
            self.line(device.supplier).returned += 1
            device.state = "recoveryInProgress"
        device.pending = None

    def settle(self, order: _Order, time: float) -> None:
        """Close the order when its devices say it is over (derive_order_state)."""
        if order.closed is not None:
            return
        states = [d.state for d in order.devices.values()]
        if order.cancelling:
            if "recoveryInProgress" not in states:
                order.closed, order.state = time, "cancelled"
            return
        live = [s for s in states if s not in _ENDED]
        if live and all(s == "completed" for s in live):
            order.closed, order.state = time, "completed"

    def known(self, fields: Mapping[str, JSON], name: str) -> _Order:
        order = self.orders.get(_str(fields, name))
        if order is None:
            raise _Skip(name)  # placed before the events began, or not granted
        return order

    # -- one handler per action ------------------------------------------------------------

    def place(self, ev: TelcoEvent) -> None:
        oid = _str(ev.fields, "id")
        devices = _devices(ev.fields)
        if oid in self.orders:
            raise _Skip("id")  # the action refuses a second placeOrder; so do we
        order = self.orders[oid] = _Order(ev.member, ev.time)
        for dev, supplier in devices:
            self.order_device(order, dev, supplier)

    def revise(self, ev: TelcoEvent) -> None:
        order = self.known(ev.fields, "id")
        wanted = dict(_devices(ev.fields))
        raw_modes = ev.fields.get("modes")
        modes = raw_modes if isinstance(raw_modes, dict) else {}
        live = {k: d for k, d in order.devices.items() if d.state not in _ENDED}
        for dev, device in live.items():
            if dev in wanted:
                continue
            if modes.get(dev) == "pause":
                device.state, device.pending = "held", "remove"
            else:
                self.withdraw(device)
        for dev, supplier in wanted.items():
            if dev in live:
                continue
            if modes.get(dev) == "pause":
                order.devices[dev] = _Device(supplier, "held", False, "add")
            else:
                self.order_device(order, dev, supplier)
        self.settle(order, ev.time)

    def resume(self, ev: TelcoEvent) -> None:
        order = self.known(ev.fields, "productOrderId")
        named = ev.fields.get("devices")
        held = [k for k, d in order.devices.items() if d.pending is not None]
        targets = [str(d) for d in named] if isinstance(named, list) else held
        for dev in targets:
            device = order.devices.get(dev)
            if device is None or device.pending is None:
                continue
            if device.pending == "remove":
                device.state = "acknowledged"
                self.withdraw(device)
            else:
                device.state, device.reserved, device.pending = "acknowledged", True, None
                self.line(device.supplier).reserved += 1
        self.settle(order, ev.time)

    def cancel(self, ev: TelcoEvent) -> None:
        order = self.known(ev.fields, "id")
        for device in order.devices.values():
            if device.state not in (*_ENDED, "recoveryInProgress"):
                self.withdraw(device)
        order.cancelling = True
        self.settle(order, ev.time)

    def update(self, ev: TelcoEvent) -> None:
        order = self.known(ev.fields, "productOrderId")
        device = order.devices.get(_str(ev.fields, "device"))
        if device is None:
            raise _Skip("device")
        state = _str(ev.fields, "state")
        if state == "shipped" and device.state in _NOT_SHIPPED:
            self.line(device.supplier).consumed += 1
        device.state = state
        self.settle(order, ev.time)

    def move(self, ev: TelcoEvent) -> None:
        supplier = _str(ev.fields, "supplier")
        quantity = ev.fields.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise _Skip("quantity")
        line = self.line(supplier)
        kind = _STOCK_KIND[ev.action]
        setattr(line, kind, getattr(line, kind) + quantity)


_HANDLERS: dict[str, Callable[[_Replay, TelcoEvent], None]] = {
    "placeOrder": _Replay.place,
    "reviseOrder": _Replay.revise,
    "resumeChangePlan": _Replay.resume,
    "cancelOrder": _Replay.cancel,
    "updateDeviceOrder": _Replay.update,
    **dict.fromkeys(_STOCK_KIND, _Replay.move),
}


def replay_orders(events: Iterable[TelcoEvent]) -> OrderFlow:
    """Replay committed Telco events (oldest first) into order cycles and stock lines."""
    replay = _Replay()
    for ev in sorted(events, key=lambda e: e.time):
        replay.apply(ev)
    for order in replay.orders.values():
        for device in order.devices.values():
            if device.reserved and device.state in _NOT_SHIPPED:
                replay.line(device.supplier).pending += 1
    cycles = [
        OrderCycle(oid, o.placed_by, o.placed, o.closed, o.state)
        for oid, o in replay.orders.items()
    ]
    stock = sorted(replay.stock.values(), key=lambda s: s.supplier)
    return OrderFlow(cycles, stock, replay.skipped)


# -- the insights plug ----------------------------------------------------------------------

_FIGURES = ("reserved", "consumed", "released", "returned", "pending")


@dataclass(frozen=True, slots=True)
class OrderInsights:
    """The Telco section of the insights: orders and stock, as one viewer may see them."""

    orders: list[OrderCycle]  # every order if viewer.full, else those the viewer placed
    orders_all: list[OrderCycle]  # every order, for consortium-wide aggregates only
    stock: list[StockLine]  # every supplier if viewer.full, else the viewer's own line
    stock_total: StockLine  # summed over every supplier
    skipped_order_events: int

    @classmethod
    def of(cls, ins: Insights) -> OrderInsights | None:
        """The Telco section of ``ins``; None when the plug was not registered.

        :meth:`TelcoInsights.section` is the same, for callers that need the section.
        """
        section = ins.domains.get(TELCO_INSIGHTS.name)
        return section if isinstance(section, cls) else None

    def to_json(self) -> dict[str, Any]:
        """The section's keys of the insights document, with ``leak`` and ``cycle_s``."""
        doc = asdict(self)
        for row, line in zip(doc["stock"], self.stock, strict=True):
            row["leak"] = line.leak
        doc["stock_total"]["leak"] = self.stock_total.leak
        for key, items in (("orders", self.orders), ("orders_all", self.orders_all)):
            for row, order in zip(doc[key], items, strict=True):
                row["cycle_s"] = order.cycle_s
        return doc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _order(row: Mapping[str, Any]) -> OrderCycle:
    placed_by = row["placed_by"]
    return OrderCycle(
        str(row["order"]),
        None if placed_by is None else str(placed_by),
        float(row["placed"]),
        _opt_float(row["closed"]),
        str(row["state"]),
    )


def _stock_line(row: Mapping[str, Any]) -> StockLine:
    return StockLine(str(row["supplier"]), *(int(row[name]) for name in _FIGURES))


@dataclass(frozen=True, slots=True)
class TelcoInsights:
    """The Telco pack's :class:`~consortia.analytics.insights.DomainInsights` plug."""

    name: str = "telco"
    actions: tuple[str, ...] = TELCO_ORDER_ACTIONS

    def compute(self, events: Sequence[DomainEvent], viewer: Viewer) -> OrderInsights:
        """Replay the events; keep the orders and stock lines ``viewer`` may see by name."""
        flow = replay_orders(events)
        total = StockLine("(all suppliers)")
        for line in flow.stock:
            for name in _FIGURES:
                setattr(total, name, getattr(total, name) + getattr(line, name))
        # Every order counts in the consortium-wide figures, but who placed one the viewer
        # may not see is blanked: the document leaves the TEP.
        orders_all = [
            o if viewer.sees(o.placed_by) else replace(o, placed_by=None) for o in flow.orders
        ]
        return OrderInsights(
            orders=[o for o in flow.orders if viewer.sees(o.placed_by)],
            orders_all=orders_all,
            stock=[s for s in flow.stock if viewer.sees(s.supplier)],
            stock_total=total,
            skipped_order_events=flow.skipped,
        )

    def section(self, ins: Insights) -> OrderInsights:
        """This plug's section of ``ins``; KeyError when the plug was not registered."""
        section = ins.domain(self.name)
        if not isinstance(section, OrderInsights):
            raise TypeError(f"the {self.name!r} section of these insights is not the Telco pack's")
        return section

    def from_json(self, doc: Mapping[str, Any]) -> OrderInsights:
        """The section read back from an insights document; ``leak``/``cycle_s`` recomputed."""
        return OrderInsights(
            orders=[_order(o) for o in doc["orders"]],
            orders_all=[_order(o) for o in doc["orders_all"]],
            stock=[_stock_line(s) for s in doc["stock"]],
            stock_total=_stock_line(doc["stock_total"]),
            skipped_order_events=int(doc["skipped_order_events"]),
        )


#: The Telco pack's insights plug; :func:`register_telco_insights` adds it to analytics.
TELCO_INSIGHTS = TelcoInsights()


def register_telco_insights() -> TelcoInsights:
    """Add the Telco plug to every insights computed or read from now on; return it.

    The one place the pack registers with analytics, called where a platform is wired (the
    server's insights route, the ``consortia insights`` command). Calling it again is
    harmless: a plug of the same name is replaced.
    """
    register_domain(TELCO_INSIGHTS)
    return TELCO_INSIGHTS
