"""Member reports (order status, asset lifecycle, stock), each from that member's reads only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from telco_world import CID, SITES, TelcoWorld, device, service, start_project, telco_world

from consortia import Committed, Pending
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
from testkit import js

ORDER = {
    "id": "PO1",
    "projectId": "P1",
    "sites": SITES,
    "services": [service("A"), service("B")],
    "devices": [
        device("A1", "vendorA", ["A"]),
        device("A2", "vendorA", ["A"]),
        device("B1", "vendorB", ["B"], part="ont-7"),
    ],
}
ALL_DEVICES = ("A1", "A2", "B1")


def _view(world: TelcoWorld, member: str) -> Any:
    return world.platform.member_view(CID, member)


def _placed(world: TelcoWorld) -> None:
    start_project(world)
    world.ok("telco", "placeOrder", ORDER)
    for state in ("inProgress", "shipped"):
        world.ok(
            "vendorB",
            "updateDeviceOrder",
            {"productOrderId": "PO1", "device": "B1", "state": state},
        )


def test_order_status_is_whole_for_the_seller_and_partial_for_others(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _placed(world)
        seller = js(order_report(_view(world, "telco"), "PO1"))
        assert seller["header"]["state"] == "inProgress"
        assert [s["id"] for s in seller["services"]] == ["A", "B"]
        assert {d["id"]: d["state"] for d in seller["devices"]} == {
            "A1": "acknowledged",
            "A2": "acknowledged",
            "B1": "shipped",
        }
        assert seller["hidden"] == {
            "header": False,
            "revisions": 0,
            "deviceOrders": 0,
            "deviceIds": [],
        }

        # The customer: order and service status, nothing of devices or suppliers.
        customer = js(order_report(_view(world, "acme"), "PO1", devices=ALL_DEVICES))
        assert customer["header"]["state"] == "inProgress"
        assert [s["id"] for s in customer["services"]] == ["A", "B"]
        assert customer["devices"] == []
        assert customer["hidden"]["revisions"] == 1
        assert customer["hidden"]["deviceOrders"] == 3

        # A supplier learns its device ids from its notifications; it cannot read the
        # header, and any other supplier's device it knows of is counted as hidden.
        events = world.events("vendorA")
        devices, parts = hints_from_events(events, "PO1")
        assert parts == []  # no change plan yet: parts come from the device orders
        assert devices == ["A1", "A2"]
        supplier = js(order_report(_view(world, "vendorA"), "PO1", devices=[*devices, "B1"]))
        assert supplier["header"] is None
        assert supplier["services"] == []
        assert [d["id"] for d in supplier["devices"]] == ["A1", "A2"]
        assert {d["supplier"] for d in supplier["devices"]} == {"vendorA"}
        assert supplier["hidden"]["header"] is True
        assert supplier["hidden"]["deviceIds"] == ["B1"]
        with pytest.raises(LookupError):
            order_report(_view(world, "telco"), "NOPE")


def test_stock_lines_per_supplier_and_who_sees_them(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _placed(world)
        seller = js(stock_report(_view(world, "telco"), "PO1"))
        lines = {(s["supplier"], s["part"]): s for s in seller["lines"]}
        assert set(lines) == {("vendorA", "cpe-100"), ("vendorB", "ont-7")}
        a = lines[("vendorA", "cpe-100")]
        assert (a["reserved"], a["consumed"], a["remainder"], a["pending"], a["leak"]) == (
            2,
            0,
            2,
            2,
            0,
        )
        b = lines[("vendorB", "ont-7")]
        assert (b["reserved"], b["consumed"], b["remainder"], b["leak"]) == (1, 1, 0, 0)

        # A supplier sees its own line only, even when it names the other's devices.
        mine = js(stock_report(_view(world, "vendorB"), "PO1", devices=ALL_DEVICES))
        assert [(s["supplier"], s["part"]) for s in mine["lines"]] == [("vendorB", "ont-7")]
        hinted = js(stock_report(_view(world, "vendorB"), "PO1", parts=[("vendorA", "cpe-100")]))
        assert hinted["hidden"] == [{"supplier": "vendorA", "part": "cpe-100"}]
        assert [s["supplier"] for s in hinted["lines"]] == []

        # The customer sees no supplier internals at all.
        customer = js(stock_report(_view(world, "acme"), "PO1", devices=ALL_DEVICES))
        assert customer["lines"] == []
        assert customer["hidden"] == []


def test_a_deliberate_leak_shows_as_the_remainder(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        start_project(world)
        world.ok(
            "telco",
            "placeOrder",
            {**ORDER, "devices": [device("A1", "vendorA", ["A"])]},
        )
        move = {"supplier": "vendorA", "part": "cpe-100", "productOrderId": "PO1"}
        world.ok("telco", "reserveStock", {**move, "quantity": 4})  # reserved 5 in all
        for state in ("inProgress", "shipped"):  # shipping A1 consumes 1
            world.ok(
                "vendorA",
                "updateDeviceOrder",
                {"productOrderId": "PO1", "device": "A1", "state": state},
            )
        world.ok("vendorA", "consumeStock", {**move, "quantity": 2})  # consumed 3 in all
        for member in ("telco", "vendorA", "audit"):
            (line,) = js(stock_report(_view(world, member), "PO1", devices=["A1"]))["lines"]
            got = [line[k] for k in ("reserved", "consumed", "released", "returned")]
            assert got == [5, 3, 0, 0]
            assert (line["remainder"], line["pending"], line["leak"]) == (2, 0, 2)


def test_asset_lifecycle_with_serial_history(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _placed(world)
        world.ok("telco", "createAsset", {"id": "AS-1", "productOrderId": "PO1", "device": "A1"})
        world.ok("vendorA", "updateAssetStatus", {"id": "AS-1", "status": "shipped"})
        outcome = world.act("vendorA", "bindSerial", {"resourceId": "AS-1", "serialNumber": "SN-1"})
        assert isinstance(outcome, Pending)
        vote = {"proposal": outcome.proposal, "ballot": "approve"}
        assert isinstance(world.act("telco", "voteFor", vote), Committed)
        world.ok("vendorA", "updateAssetStatus", {"id": "AS-1", "status": "delivered"})
        world.ok("fitter", "updateAssetStatus", {"id": "AS-1", "status": "installed"})

        for member in ("telco", "acme", "fitter", "vendorA"):
            report = js(asset_report(_view(world, member), "AS-1"))
            assert report["status"] == "installed"
            assert report["serialNumber"] == "SN-1"
            steps = [(s["status"], s["serialNumber"]) for s in report["lifecycle"]]
            assert steps == [
                ("ordered", None),
                ("shipped", None),
                ("shipped", "SN-1"),
                ("delivered", "SN-1"),
                ("installed", "SN-1"),
            ]
            assert [h["action"] for h in report["serialHistory"]] == ["bind"]
            assert report["hiddenVersions"] == 0
        with pytest.raises(LookupError, match="not visible"):
            asset_report(_view(world, "vendorB"), "AS-1")
        with pytest.raises(LookupError, match="no asset"):
            asset_report(_view(world, "telco"), "AS-9")


def _events(world: TelcoWorld, member: str) -> list[Any]:
    return [b for k, b in world.notes(member) if k == "notice"]


def test_listing_reports_show_each_member_its_own_share(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _placed(world)
        world.ok("telco", "createAsset", {"id": "AS-1", "productOrderId": "PO1", "device": "B1"})
        # The seller finds the order through its project; every device order; by state.
        seller: Any = orders_report(_view(world, "telco"))
        assert [o["productOrderId"] for o in seller["orders"]] == ["PO1"]
        assert seller["orders"][0]["projectId"] == "P1"
        ids = known_orders(_view(world, "telco"), [], None)
        devices: Any = device_orders_report(_view(world, "telco"), ids)
        assert sorted(d["device"] for d in devices["deviceOrders"]) == list(ALL_DEVICES)
        assert devices["byState"] == {"acknowledged": 2, "shipped": 1}
        # A supplier knows the order from its notifications and lists only its own devices.
        hints = order_ids_from_events(_events(world, "vendorB"))
        assert hints == ["PO1"]
        own: Any = device_orders_report(_view(world, "vendorB"), hints)
        assert [(d["device"], d["state"]) for d in own["deviceOrders"]] == [("B1", "shipped")]
        shipped: Any = device_orders_report(_view(world, "telco"), ids, state="shipped")
        assert [d["device"] for d in shipped["deviceOrders"]] == ["B1"]
        # The customer's order list carries no device; its assets show no more than its share.
        customer: Any = orders_report(
            _view(world, "acme"), order_ids_from_events(_events(world, "acme"))
        )
        assert all("supplier" not in o for o in customer["orders"])
        assets: Any = assets_report(_view(world, "vendorB"))
        status = world.read("vendorB", "resource/AS-1")["assetLifecycleStatus"]
        assert [(a["id"], a["status"]) for a in assets["assets"]] == [("AS-1", status)]
        assert assets["byStatus"] == {status: 1}
        assert js(assets_report(_view(world, "vendorA")))["assets"] == []
        assert js(assets_report(_view(world, "telco"), status="shipped"))["assets"] == []
