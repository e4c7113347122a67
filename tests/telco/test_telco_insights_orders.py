"""Order cycle times and the stock leak, replayed from granted fields of Telco events."""

from __future__ import annotations

from consortia._json import JSON, JSONObject
from consortia.errors import BadRequest
from consortia.governance.parse import parse_member
from consortia.identity.keys import MemberKeys
from consortia.telco.insights import (
    TELCO_GRANTS,
    OrderFlow,
    StockLine,
    TelcoEvent,
    replay_orders,
)
from consortia.telco.template import telco_constitution


def _dev(ident: str, supplier: str) -> JSONObject:
    return {"id": ident, "supplier": supplier, "part": "ont", "site": "S1", "services": []}


def _place(t: float, oid: str, *devices: JSONObject) -> TelcoEvent:
    return TelcoEvent(t, "placeOrder", "telco", {"id": oid, "devices": list(devices)})


def _move(t: float, oid: str, device: str, state: str, supplier: str = "vA") -> TelcoEvent:
    fields: dict[str, JSON] = {"productOrderId": oid, "device": device, "state": state}
    return TelcoEvent(t, "updateDeviceOrder", supplier, fields)


def _stock(t: float, action: str, supplier: str, quantity: JSON) -> TelcoEvent:
    fields: dict[str, JSON] = {
        "supplier": supplier,
        "part": "ont",
        "quantity": quantity,
        "productOrderId": "O1",
    }
    return TelcoEvent(t, action, supplier, fields)


def _line(flow: OrderFlow, supplier: str) -> StockLine:
    return next(s for s in flow.stock if s.supplier == supplier)


def _deliver(t: float, oid: str, device: str, supplier: str) -> list[TelcoEvent]:
    states = ("inProgress", "shipped", "delivered", "completed")
    return [_move(t + i, oid, device, s, supplier) for i, s in enumerate(states)]


def test_an_order_completes_when_every_device_is_completed() -> None:
    events = [
        _place(100, "O1", _dev("D1", "vA"), _dev("D2", "vB")),
        *_deliver(200, "O1", "D1", "vA"),
        *_deliver(500, "O1", "D2", "vB"),
    ]
    flow = replay_orders(events[::-1])  # the replay sorts by time itself
    (order,) = flow.orders
    assert (order.state, order.placed_by, order.closed, order.cycle_s) == (
        "completed",
        "telco",
        503,
        403,
    )
    for supplier in ("vA", "vB"):
        line = _line(flow, supplier)
        assert (line.reserved, line.consumed, line.pending, line.leak) == (1, 1, 0, 0)
    assert flow.skipped == 0


def test_an_open_order_holds_its_reservation_as_pending_not_leak() -> None:
    flow = replay_orders([_place(0, "O1", _dev("D1", "vA")), _move(5, "O1", "D1", "inProgress")])
    (order,) = flow.orders
    assert (order.state, order.closed, order.cycle_s) == ("open", None, None)
    line = _line(flow, "vA")
    assert (line.reserved, line.pending, line.leak) == (1, 1, 0)


def test_cancelling_before_shipping_releases_and_closes_at_once() -> None:
    flow = replay_orders(
        [
            _place(0, "O1", _dev("D1", "vA")),
            TelcoEvent(60, "cancelOrder", "telco", {"id": "O1"}),
        ]
    )
    (order,) = flow.orders
    assert (order.state, order.cycle_s) == ("cancelled", 60)
    line = _line(flow, "vA")
    assert (line.reserved, line.released, line.pending, line.leak) == (1, 1, 0, 0)


def test_cancelling_after_shipping_waits_for_the_recovery() -> None:
    events = [
        _place(0, "O1", _dev("D1", "vA")),
        _move(10, "O1", "D1", "inProgress"),
        _move(20, "O1", "D1", "shipped"),
        TelcoEvent(30, "cancelOrder", "telco", {"id": "O1"}),
    ]
    flow = replay_orders(events)
    assert flow.orders[0].state == "open"  # pendingCancellation: the device is on its way back
    flow = replay_orders([*events, _move(90, "O1", "D1", "recovered")])
    (order,) = flow.orders
    assert (order.state, order.cycle_s) == ("cancelled", 90)
    line = _line(flow, "vA")
    assert (line.reserved, line.consumed, line.returned, line.leak) == (1, 1, 1, 0)


def test_a_reservation_nothing_uses_is_a_leak() -> None:
    flow = replay_orders(
        [
            _stock(0, "reserveStock", "vB", 3),
            _stock(1, "consumeStock", "vB", 1),
            _stock(2, "releaseStock", "vB", 1),
            _stock(3, "returnStock", "vB", 1),
        ]
    )
    line = _line(flow, "vB")
    assert (line.reserved, line.consumed, line.released, line.returned) == (3, 1, 1, 1)
    assert line.leak == 1


def test_revisions_order_and_withdraw_devices_and_pause_until_resumed() -> None:
    place = _place(0, "O1", _dev("D1", "vA"), _dev("D2", "vB"))
    # autoCorrect: D2 goes (released), D3 comes (reserved).
    auto = TelcoEvent(
        10, "reviseOrder", "telco", {"id": "O1", "devices": [_dev("D1", "vA"), _dev("D3", "vB")]}
    )
    flow = replay_orders([place, auto])
    line = _line(flow, "vB")
    assert (line.reserved, line.released, line.pending, line.leak) == (2, 1, 1, 0)
    # pause: D2's removal and D4's addition wait for resumeChangePlan.
    paused = TelcoEvent(
        10,
        "reviseOrder",
        "telco",
        {
            "id": "O1",
            "devices": [_dev("D1", "vA"), _dev("D4", "vA")],
            "modes": {"D2": "pause", "D4": "pause"},
        },
    )
    flow = replay_orders([place, paused])
    assert (_line(flow, "vB").pending, _line(flow, "vB").released) == (1, 0)
    assert _line(flow, "vA").reserved == 1  # D4 not reserved while held
    resume = TelcoEvent(20, "resumeChangePlan", "telco", {"productOrderId": "O1"})
    flow = replay_orders([place, paused, resume])
    assert (_line(flow, "vB").released, _line(flow, "vB").leak) == (1, 0)
    assert (_line(flow, "vA").reserved, _line(flow, "vA").pending) == (2, 2)


def test_events_without_the_granted_fields_are_skipped_not_guessed() -> None:
    flow = replay_orders(
        [
            TelcoEvent(0, "placeOrder", "telco", {"id": "O1"}),  # devices not granted
            _move(1, "O9", "D1", "shipped"),  # an order placed before the events began
            _stock(2, "reserveStock", "vA", "3"),  # a quantity that is not a number
            _stock(3, "reserveStock", "vA", True),
            TelcoEvent(4, "createProject", "telco", {}),  # not an order action: ignored
        ]
    )
    assert (flow.orders, flow.stock, flow.skipped) == ([], [], 4)


def test_the_telco_template_grants_exactly_what_the_replay_needs() -> None:
    founders = [
        parse_member(
            {**MemberKeys.generate(m).public_info(), "info": {"role": r}},
            what="m",
            error=BadRequest,
        )
        for m, r in (("telco", "seller"), ("vA", "supplier"), ("audit", "auditor"))
    ]
    policy = telco_constitution(founders).analytics
    assert dict(policy.grants) == dict(TELCO_GRANTS)
    granted = {f for fields in policy.grants.values() for f in fields}
    assert not granted & {"serialNumber", "price", "spec", "services", "sites"}
    assert policy.sees_full("telco", "seller") and policy.sees_full("audit", "auditor")
    assert not policy.sees_full("vA", "supplier")
