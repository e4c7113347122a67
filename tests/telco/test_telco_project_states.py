"""CustomerProject lifecycle: draft -> active <-> onHold -> closing -> closed, cancelled."""

from __future__ import annotations

from pathlib import Path

from telco_world import ROLES, SITES, device, service, telco_world

from consortia._json import JSONObject


def _order(oid: str) -> JSONObject:
    return {
        "id": oid,
        "projectId": "P1",
        "sites": SITES,
        "services": [service("A")],
        "devices": [device("A1", "vendorA", ["A"])],
    }


def test_a_project_moves_through_its_lifecycle_and_gates_orders(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        parties = [{"role": r, "partyId": m} for m, r in ROLES.items() if m != "telco"]
        world.ok("telco", "createProject", {"id": "P1", "state": "draft", "relatedParty": parties})
        assert "draft" in world.refused("telco", "placeOrder", _order("PO1"))
        world.ok("telco", "updateProjectState", {"id": "P1", "state": "active"})
        world.ok("telco", "placeOrder", _order("PO1"))
        world.ok("telco", "updateProjectState", {"id": "P1", "state": "onHold", "reason": "budget"})
        assert "onHold" in world.refused("telco", "placeOrder", _order("PO2"))
        revise = {
            "id": "PO1",
            "basedOnRevision": 1,
            "sites": SITES,
            "services": [service("A")],
            "devices": [],
        }
        assert "revisions need it active or closing" in world.refused(
            "telco", "reviseOrder", revise
        )
        message = world.refused("telco", "updateProjectState", {"id": "P1", "state": "closed"})
        assert message == (
            "customer project P1 is onHold; closed is not allowed from there "
            "(allowed: active, cancelled)"
        )
        world.ok("telco", "updateProjectState", {"id": "P1", "state": "active"})
        world.ok("telco", "updateProjectState", {"id": "P1", "state": "closing"})
        assert "PO1 (acknowledged)" in world.refused(
            "telco", "updateProjectState", {"id": "P1", "state": "closed"}
        )
        world.ok("telco", "cancelOrder", {"id": "PO1"})
        closed = world.ok("telco", "updateProjectState", {"id": "P1", "state": "closed"})
        assert [n["to"] for n in closed["note"]] == [
            "active",
            "onHold",
            "active",
            "closing",
            "closed",
        ]
        # Every party heard each change; a supplier can read the project, not the order index.
        told = world.events("vendorB", "CustomerProjectStateChangeEvent")
        assert [e["event"]["customerProject"]["state"] for e in told] == [
            "active",
            "onHold",
            "active",
            "closing",
            "closed",
        ]
        assert world.read("vendorB", "project/P1")["state"] == "closed"
        assert world.read("vendorB", "projectOrder/P1/PO1") is None
        assert "closed" in world.refused(
            "telco", "updateProjectState", {"id": "P1", "state": "active"}
        )
        world.refused(
            "vendorA",
            "updateProjectState",
            {"id": "P1", "state": "active"},
            code="permission_denied",
        )
