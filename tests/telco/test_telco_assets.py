"""Assets: serial binding by agreement, the serial gate, commissioning after a passed test."""

from __future__ import annotations

from pathlib import Path

import pytest
from telco_world import SITES, TelcoWorld, device, place_order, service, telco_world

from consortia import Committed, Pending
from consortia.errors import ConsortiaError
from testkit import js


def _order_with_assets(world: TelcoWorld) -> None:
    place_order(world)
    world.ok("telco", "createAsset", {"id": "AS-1", "productOrderId": "PO1", "device": "A1"})
    world.ok("telco", "createAsset", {"id": "AS-2", "productOrderId": "PO1", "device": "B1"})


def _propose(world: TelcoWorld, supplier: str, asset: str, serial: str) -> str:
    outcome = world.act(supplier, "bindSerial", {"resourceId": asset, "serialNumber": serial})
    assert isinstance(outcome, Pending)
    return outcome.proposal


def _vote(world: TelcoWorld, member: str, proposal: str, ballot: str = "approve") -> None:
    outcome = world.act(member, "voteFor", {"proposal": proposal, "ballot": ballot})
    assert isinstance(outcome, Committed)


def _status(world: TelcoWorld, member: str, proposal: str) -> str:
    return str(js(world.platform.member_view("telco-b2b", member).proposal(proposal))["status"])


def _move(world: TelcoWorld, member: str, asset: str, *statuses: str) -> None:
    for status in statuses:
        world.ok(member, "updateAssetStatus", {"id": asset, "status": status})


def test_serial_is_bound_by_supplier_and_seller_and_then_fixed(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _order_with_assets(world)
        asset = world.read("acme", "resource/AS-1")
        assert (asset["assetLifecycleStatus"], asset["serialNumber"]) == ("ordered", None)

        # The supplier proposes; nothing is bound until the seller endorses.
        proposal = _propose(world, "vendorA", "AS-1", "SN-0001")
        assert world.read("telco", "resource/AS-1")["serialNumber"] is None
        # Another supplier is no voter and does not even see the proposal.
        with pytest.raises(ConsortiaError):
            world.platform.member_view("telco-b2b", "vendorB").proposal(proposal)
        with pytest.raises(ConsortiaError):
            world.act("vendorB", "voteFor", {"proposal": proposal, "ballot": "approve"})
        _vote(world, "telco", proposal)
        assert _status(world, "vendorA", proposal) == "approved"
        bound = world.read("fitter", "resource/AS-1")
        assert bound["serialNumber"] == "SN-0001"
        assert [h["proposedBy"] for h in bound["serialHistory"]] == ["vendorA"]
        heard = world.events("fitter", "ResourceSerialBindEvent")
        assert heard[-1]["event"]["resource"]["serialNumber"] == "SN-0001"

        # A second binding, even endorsed, fails in the code: the serial is fixed.
        second = _propose(world, "vendorA", "AS-1", "SN-0002")
        _vote(world, "telco", second)
        assert _status(world, "telco", second) == "failed"
        assert world.read("telco", "resource/AS-1")["serialNumber"] == "SN-0001"
        # The same serial cannot go to another asset of the supplier, nor may a supplier
        # bind a serial to someone else's asset; the seller cannot bind on its own.
        stolen = _propose(world, "vendorB", "AS-1", "SN-9")
        _vote(world, "telco", stolen)
        assert _status(world, "telco", stolen) == "failed"
        world.refused(
            "telco",
            "bindSerial",
            {"resourceId": "AS-2", "serialNumber": "X"},
            code="permission_denied",
        )
        # The seller may also refuse an endorsement.
        refused = _propose(world, "vendorB", "AS-2", "SN-B")
        _vote(world, "telco", refused, "reject")
        assert _status(world, "vendorB", refused) == "rejected"
        assert world.read("telco", "resource/AS-2")["serialNumber"] is None


def test_no_progress_past_delivered_without_a_serial(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _order_with_assets(world)
        _move(world, "vendorB", "AS-2", "shipped", "delivered")
        message = world.refused(
            "fitter", "updateAssetStatus", {"id": "AS-2", "status": "installed"}
        )
        assert "no serial number" in message
        assert "cannot pass delivered (requested installed)" in message
        world.refused("telco", "updateAssetStatus", {"id": "AS-2", "status": "installed"})
        assert world.read("telco", "resource/AS-2")["assetLifecycleStatus"] == "delivered"
        proposal = _propose(world, "vendorB", "AS-2", "SN-B1")
        _vote(world, "telco", proposal)
        _move(world, "fitter", "AS-2", "installed")


def test_commissioned_only_after_a_passed_activation_test(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _order_with_assets(world)
        _vote(world, "telco", _propose(world, "vendorA", "AS-1", "SN-A1"))
        _move(world, "vendorA", "AS-1", "shipped", "delivered")
        _move(world, "fitter", "AS-1", "installed")
        commission = {"id": "AS-1", "status": "commissioned"}
        message = world.refused("fitter", "updateAssetStatus", commission)
        assert "needs a passed activation test on a supporting service (A)" in message
        world.ok(
            "fitter",
            "recordActivationTest",
            {"productOrderId": "PO1", "serviceId": "A", "result": "failed"},
        )
        world.refused("fitter", "updateAssetStatus", commission)
        # A pass on a service the asset does not support does not count.
        world.ok(
            "fitter",
            "recordActivationTest",
            {"productOrderId": "PO1", "serviceId": "B", "result": "passed"},
        )
        world.refused("fitter", "updateAssetStatus", commission)
        test = world.ok(
            "fitter",
            "recordActivationTest",
            {"productOrderId": "PO1", "serviceId": "A", "result": "passed"},
        )
        assert test["relatedService"] == {"id": "A", "version": 1}
        _move(world, "fitter", "AS-1", "commissioned", "inService")
        seen = [
            e["event"]["resource"]["assetLifecycleStatus"]
            for e in world.events("acme", "ResourceStateChangeEvent")
        ]
        assert seen == ["shipped", "delivered", "installed", "commissioned", "inService"]
        # Decommissioning releases the serial for another asset; the history stays.
        _move(world, "telco", "AS-1", "pendingRemoval", "decommissioned")
        history = world.read("telco", "resource/AS-1")["serialHistory"]
        assert [h["action"] for h in history] == ["bind", "release"]
        assert world.read("telco", "serialIndex/vendorA/SN-A1") is None


def test_an_asset_follows_its_device_order_where_the_rules_allow(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _order_with_assets(world)
        for state in ("inProgress", "shipped"):
            world.ok(
                "vendorA",
                "updateDeviceOrder",
                {"productOrderId": "PO1", "device": "A1", "state": state},
            )
        assert world.read("acme", "resource/AS-1")["assetLifecycleStatus"] == "shipped"
        told = world.events("fitter", "ResourceStateChangeEvent")
        assert told[-1]["event"]["resource"] == {
            "id": "AS-1",
            "assetLifecycleStatus": "shipped",
            "previousStatus": "ordered",
        }
        # The other supplier's asset did not move, and its supplier heard nothing of AS-1.
        assert world.read("telco", "resource/AS-2")["assetLifecycleStatus"] == "ordered"
        assert "AS-1" not in str(world.events("vendorB"))
        # An asset already moved by hand past the device order is left where it is.
        _move(world, "vendorA", "AS-1", "delivered")
        world.ok(
            "vendorA",
            "updateDeviceOrder",
            {"productOrderId": "PO1", "device": "A1", "state": "delivered"},
        )
        assert world.read("acme", "resource/AS-1")["assetLifecycleStatus"] == "delivered"


def test_the_serial_gate_holds_an_asset_back_while_its_device_ships(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        world.ok(
            "telco",
            "createProject",
            {
                "id": "P1",
                "serialRequiredAfter": "ordered",
                "relatedParty": [{"role": "supplier", "partyId": "vendorA"}],
            },
        )
        world.ok(
            "telco",
            "placeOrder",
            {
                "id": "PO1",
                "projectId": "P1",
                "sites": SITES,
                "services": [service("A")],
                "devices": [device("A1", "vendorA", ["A"])],
            },
        )
        world.ok("telco", "createAsset", {"id": "AS-1", "productOrderId": "PO1", "device": "A1"})
        for state in ("inProgress", "shipped"):
            world.ok(
                "vendorA",
                "updateDeviceOrder",
                {"productOrderId": "PO1", "device": "A1", "state": state},
            )
        # The device order shipped; the asset has no serial, so it stays ordered.
        assert world.read("vendorA", "resourceOrder/PO1/A1")["state"] == "shipped"
        assert world.read("telco", "resource/AS-1")["assetLifecycleStatus"] == "ordered"
