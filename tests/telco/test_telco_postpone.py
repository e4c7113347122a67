"""postponeOrder: a dueDate supplement that moves the date and nothing else."""

from __future__ import annotations

from pathlib import Path

from telco_world import SITES, device, service, start_project, telco_world

from consortia._json import JSONObject

ORDER: JSONObject = {
    "id": "PO7",
    "projectId": "P1",
    "requestedCompletionDate": "2027-03-01",
    "sites": SITES,
    "services": [service("A"), service("B")],
    "devices": [device("A1", "vendorA", ["A"]), device("B1", "vendorB", ["B"], part="ont-7")],
}


def test_postponement_is_a_revision_that_moves_only_the_dates(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        start_project(world)
        world.ok("telco", "placeOrder", ORDER)
        for state in ("inProgress", "shipped"):
            world.ok(
                "vendorB",
                "updateDeviceOrder",
                {"productOrderId": "PO7", "device": "B1", "state": state},
            )
        before_b = world.events("vendorB")
        answer = world.ok(
            "telco",
            "postponeOrder",
            {
                "id": "PO7",
                "basedOnRevision": 1,
                "requestedCompletionDate": "2027-04-15",
                "changeReason": "site not ready",
            },
        )
        assert answer["postponed"] == {"vendorA": ["A1"]}
        order = world.read("acme", "productOrder/PO7")
        assert (order["revision"], order["requestedCompletionDate"]) == (2, "2027-04-15")
        revision = world.read("telco", "productOrder/PO7/revision/2")
        assert revision["supplementType"] == "dueDate"
        assert revision["basedOnRevision"] == 1
        assert [d["id"] for d in revision["devices"]] == ["A1", "B1"]
        # The unshipped device is re-dated; the shipped one keeps its date.
        assert world.read("vendorA", "resourceOrder/PO7/A1")["requestedDeliveryDate"] == (
            "2027-04-15"
        )
        assert world.read("vendorB", "resourceOrder/PO7/B1")["requestedDeliveryDate"] == (
            "2027-03-01"
        )
        # vendorA hears of its own device; vendorB hears nothing new; the customer sees the date.
        moved = world.events("vendorA", "ResourceOrderAttributeValueChangeEvent")
        assert moved[-1]["event"]["resourceOrder"] == [
            {"id": "A1", "productOrderId": "PO7", "requestedDeliveryDate": "2027-04-15"}
        ]
        assert world.events("vendorB") == before_b
        told = world.events("acme", "ProductOrderAttributeValueChangeEvent")
        assert told[-1]["event"]["productOrder"]["requestedCompletionDate"] == "2027-04-15"
        assert "devices" not in str(told[-1])
        # A revision still builds on the postponement.
        world.ok(
            "telco",
            "reviseOrder",
            {
                "id": "PO7",
                "basedOnRevision": 2,
                "sites": SITES,
                "services": [service("A"), service("B")],
                "devices": [
                    device("A1", "vendorA", ["A"]),
                    device("B1", "vendorB", ["B"], "ont-7"),
                ],
            },
        )


def test_a_postponement_must_be_later_current_and_by_the_seller(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        start_project(world)
        world.ok("telco", "placeOrder", ORDER)
        base: JSONObject = {"id": "PO7", "basedOnRevision": 1}
        earlier = world.refused(
            "telco", "postponeOrder", {**base, "requestedCompletionDate": "2027-02-01"}
        )
        assert "due 2027-03-01" in earlier and "later date" in earlier
        bad = world.refused("telco", "postponeOrder", {**base, "requestedCompletionDate": "soon"})
        assert "YYYY-MM-DD" in bad
        month = world.refused(
            "telco", "postponeOrder", {**base, "requestedCompletionDate": "2027-13-01"}
        )
        assert "month 13" in month
        stale = world.refused(
            "telco",
            "postponeOrder",
            {"id": "PO7", "basedOnRevision": 0, "requestedCompletionDate": "2027-05-01"},
        )
        assert "revision 1" in stale
        world.refused(
            "vendorA",
            "postponeOrder",
            {**base, "requestedCompletionDate": "2027-05-01"},
            code="permission_denied",
        )
        world.ok("telco", "cancelOrder", {"id": "PO7"})
        closed = world.refused(
            "telco", "postponeOrder", {**base, "requestedCompletionDate": "2027-05-01"}
        )
        assert "cancelled" in closed
