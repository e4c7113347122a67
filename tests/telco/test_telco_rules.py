"""Illegal transitions, cancellation with recovery, stock balance, the template's rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from telco_world import place_order, telco_world

from consortia import MemberKeys
from consortia._json import JSONObject
from consortia.errors import BadRequest
from consortia.governance.constitution import Member
from consortia.governance.parse import parse_member
from consortia.telco import TELCO_TEMPLATE, telco_constitution


def _step(member: str, dev: str, state: str) -> tuple[str, str, JSONObject]:
    return member, "updateDeviceOrder", {"productOrderId": "PO1", "device": dev, "state": state}


def test_illegal_transitions_name_the_states_and_change_nothing(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        place_order(world)
        member, action, params = _step("vendorA", "A1", "delivered")
        message = world.refused(member, action, params)
        assert message == (
            "device order A1 is acknowledged; delivered is not allowed from "
            "there (allowed: inProgress)"
        )
        world.ok("telco", "createAsset", {"id": "AS-1", "productOrderId": "PO1", "device": "A1"})
        message = world.refused("telco", "updateAssetStatus", {"id": "AS-1", "status": "installed"})
        assert message == (
            "asset AS-1 is ordered; installed is not allowed from there "
            "(allowed: shipped, cancelled)"
        )
        # A supplier cannot move another supplier's device order, nor learn it exists.
        member, action, params = _step("vendorB", "A1", "inProgress")
        assert "no device order A1" in world.refused(member, action, params)
        # Roles: the supplier may not install; the customer may not touch assets.
        message = world.refused(
            "vendorA", "updateAssetStatus", {"id": "AS-1", "status": "cancelled"}
        )
        assert "cancelled is the seller's" in message
        world.refused(
            "acme",
            "updateAssetStatus",
            {"id": "AS-1", "status": "shipped"},
            code="permission_denied",
        )
        assert world.read("telco", "resourceOrder/PO1/A1")["state"] == "acknowledged"


def test_cancel_before_shipping_cancels_and_after_delivery_recovers(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        place_order(world)
        for state in ("inProgress", "shipped", "delivered"):
            member, action, params = _step("vendorA", "A1", state)
            world.ok(member, action, params)
        result = world.ok("telco", "cancelOrder", {"id": "PO1", "changeReason": "budget"})
        assert result["resourceOrder"] == {"A1": "recoveryInProgress", "B1": "cancelled"}
        assert world.read("acme", "productOrder/PO1/state")["state"] == "pendingCancellation"
        assert world.read("vendorA", "stock/vendorA/cpe-100/PO1")["balance"]["PO1"] == {
            "reserve": 1,
            "consume": 1,
            "release": 0,
            "return": 1,
        }
        assert world.read("vendorB", "stock/vendorB/cpe-100/PO1")["balance"]["PO1"] == {
            "reserve": 1,
            "consume": 0,
            "release": 1,
            "return": 0,
        }
        # No second cancellation, no revision of a cancelled order.
        assert "pendingCancellation" in world.refused("telco", "cancelOrder", {"id": "PO1"})
        member, action, params = _step("vendorA", "A1", "recovered")
        world.ok(member, action, params)
        assert world.read("acme", "productOrder/PO1/state")["state"] == "cancelled"
        told = [
            e["event"]["productOrder"]["state"]
            for e in world.events("acme", "ProductOrderStateChangeEvent")
        ]
        assert told == ["acknowledged", "inProgress", "pendingCancellation", "cancelled"]


def test_stock_movements_stay_balanced_and_per_supplier(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        place_order(world)
        ref = {"supplier": "vendorA", "part": "cpe-100", "productOrderId": "PO1"}
        world.ok("vendorA", "reserveStock", {**ref, "quantity": 2})
        world.ok("vendorA", "releaseStock", {**ref, "quantity": 3})
        message = world.refused("vendorA", "releaseStock", {**ref, "quantity": 1})
        assert "would exceed the reservation (reserved 3, consumed 0, released 3)" in message
        assert "more than was consumed" in world.refused(
            "telco", "returnStock", {**ref, "quantity": 1}
        )
        assert "may not move the stock of vendorA" in world.refused(
            "vendorB", "reserveStock", {**ref, "quantity": 1}
        )
        world.refused("acme", "reserveStock", {**ref, "quantity": 1}, code="permission_denied")
        assert world.read("vendorB", "stock/vendorA/cpe-100/PO1") is None


def _member(keys: MemberKeys, role: str | None) -> Member:
    roles: JSONObject = {} if role is None else {"roles": [role]}
    return parse_member({**keys.public_info(), **roles}, what="m", error=BadRequest)


def test_template_needs_roles_and_gives_the_seller_a_veto() -> None:
    seller, supplier = MemberKeys.generate("t"), MemberKeys.generate("s")
    with pytest.raises(ValueError, match=r"needs a role of the pack"):
        telco_constitution([_member(seller, "seller"), _member(supplier, None)])
    with pytest.raises(ValueError, match="role 'seller'"):
        telco_constitution([_member(supplier, "supplier")])
    built = TELCO_TEMPLATE.build([_member(seller, "seller"), _member(supplier, "supplier")])
    for name in ("addMember", "removeMember", "amendConstitution", "updatePermissions"):
        voting = built.actions[name].voting
        assert (voting.voters, voting.majority, voting.veto) == ("all", 2, ("role:seller",))
    bind = built.actions["bindSerial"]
    assert (bind.voting.voters, bind.voting.majority) == (("role:seller",), 1)
    # Every domain permission names a role, so members added later are covered.
    assert [p.role for p in bind.permissions] == ["supplier"]
    assert [p.role for p in built.actions["placeOrder"].permissions] == ["seller"]
    built.check_permission(built.actions["placeOrder"], "t", 0)


def test_device_status_is_answered_to_those_who_may_know(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        place_order(world)
        world.ok("telco", "createAsset", {"id": "AS-1", "productOrderId": "PO1", "device": "A1"})
        ask = {"productOrderId": "PO1", "device": "A1"}
        full = world.ok("vendorA", "getDeviceStatus", ask)
        assert full == {
            "id": "A1",
            "productOrderId": "PO1",
            "state": "acknowledged",
            "revision": 1,
            "supplier": "vendorA",
            "part": "cpe-100",
            "resource": {"id": "AS-1", "assetLifecycleStatus": "ordered"},
        }
        customer = world.ok("acme", "getDeviceStatus", ask)
        assert "supplier" not in customer
        assert "part" not in customer
        assert customer["state"] == "acknowledged"
        assert "that vendorB may see" in world.refused("vendorB", "getDeviceStatus", ask)
