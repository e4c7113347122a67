"""The seed's change example (TELCO.md): revision 1 -> 2 with a pause and autoCorrects."""

from __future__ import annotations

import json
from pathlib import Path

from telco_world import SITES, TelcoWorld, device, service, start_project, telco_world

from consortia._json import JSONObject
from testkit import js

REVISION_1: JSONObject = {
    "id": "PO1",
    "projectId": "P1",
    "externalId": [{"owner": "telco", "externalIdentifierType": "crmOrder", "id": "CRM-7"}],
    "sites": SITES,
    "services": [service(s) for s in "ABCDE"],
    "devices": [
        device("A1", "vendorA", ["A"]),
        device("D1", "vendorA", ["D"]),
        device("D2", "vendorB", ["D"], part="ont-7"),
    ],
}
REVISION_2: JSONObject = {
    "id": "PO1",
    "basedOnRevision": 1,
    "changeReason": "design redone",
    "sites": SITES,
    "services": [service("A", "v2"), service("B"), service("C", "v2"), service("D")],
    "devices": [device("C1", "vendorB", ["C"], part="ont-7"), device("D1", "vendorA", ["D"])],
    "modes": {"A1": "pause", "D2": "autoCorrect", "C1": "autoCorrect"},
}


def _deliver_d2(world: TelcoWorld) -> None:
    for state in ("inProgress", "shipped", "delivered"):
        world.ok(
            "vendorB",
            "updateDeviceOrder",
            {"productOrderId": "PO1", "device": "D2", "state": state},
        )


def test_the_change_example_plans_and_applies_per_device(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        start_project(world)
        placed = world.ok("telco", "placeOrder", REVISION_1)
        assert placed["productOrder"]["state"] == "acknowledged"
        _deliver_d2(world)
        plan = world.ok("telco", "reviseOrder", REVISION_2)["changePlan"]

        services = {i["target"]: (i["action"], i["version"]) for i in plan["serviceItem"]}
        assert services == {
            "A": ("modify", 2),
            "B": ("noChange", 1),
            "C": ("modify", 2),
            "D": ("noChange", 1),
            "E": ("delete", 1),
        }
        devices = {i["target"]: (i["action"], i["mode"], i["state"]) for i in plan["resourceItem"]}
        assert devices == {
            "A1": ("delete", "pause", "held"),
            "D2": ("delete", "autoCorrect", "recoveryInProgress"),
            "D1": ("noChange", "autoCorrect", "completed"),
            "C1": ("add", "autoCorrect", "completed"),
        }
        assert plan["state"] == "inProgress"  # A1 waits on the pause

        # Device orders: A1 held, D2 in recovery, C1 new, D1 carried to revision 2.
        states = {
            d: world.read("telco", f"resourceOrder/PO1/{d}")["state"]
            for d in ("A1", "D1", "D2", "C1")
        }
        assert states == {
            "A1": "held",
            "D1": "acknowledged",
            "D2": "recoveryInProgress",
            "C1": "acknowledged",
        }
        assert world.read("telco", "productOrder/PO1/revision/2")["services"][0] == {
            "id": "A",
            "site": "HQ",
            "spec": {"design": "v2"},
            "version": 2,
            "supersedes": 1,
        }

        # Stock: A1's reservation is kept (pause); D2 was consumed at shipping and returned
        # by the recovery; C1 got a new reservation.
        stock_a = world.read("vendorA", "stock/vendorA/cpe-100/PO1")
        assert stock_a["balance"]["PO1"] == {"reserve": 2, "consume": 0, "release": 0, "return": 0}
        stock_b = world.read("vendorB", "stock/vendorB/ont-7/PO1")
        assert stock_b["balance"]["PO1"] == {"reserve": 2, "consume": 1, "release": 0, "return": 1}
        kinds = [(m["type"], m.get("device"), m["revision"]) for m in stock_b["stockMovement"]]
        assert kinds == [
            ("reserve", "D2", 1),
            ("consume", "D2", 1),
            ("reserve", "C1", 2),
            ("return", "D2", 2),
        ]


def test_each_member_reads_and_hears_only_its_part(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        start_project(world)
        world.ok("telco", "placeOrder", REVISION_1)
        _deliver_d2(world)
        world.ok("telco", "reviseOrder", REVISION_2)

        own = {"vendorA": ("A1", "D1"), "vendorB": ("D2", "C1")}
        for vendor, devices in own.items():
            other = "vendorB" if vendor == "vendorA" else "vendorA"
            for d in ("A1", "D1", "D2", "C1"):
                seen = world.read(vendor, f"resourceOrder/PO1/{d}")
                assert (seen is not None) == (d in devices), (vendor, d)
            portion = world.read(vendor, f"changePlan/PO1/2/{vendor}")
            assert sorted(i["target"] for i in portion["resourceItem"]) == sorted(devices)
            assert world.read(vendor, f"changePlan/PO1/2/{other}") is None
            assert world.read(vendor, "changePlan/PO1/2") is None
            assert world.read(vendor, "productOrder/PO1/revision/2") is None
            assert world.read(vendor, "productOrder/PO1/revision/1") is None
            # Nothing it was told names another supplier's devices.
            heard = json.dumps(world.events(vendor))
            for d in own[other]:
                assert f'"{d}"' not in heard, (vendor, d)

        # Only vendorA is in jeopardy (A1 paused), and only about A1.
        alerts = world.events("vendorA", "ProductOrderJeopardyAlertEvent")
        assert [a["event"]["resourceOrder"] for a in alerts] == [["A1"]]
        assert alerts[0]["event"]["jeopardyType"] == "replanning"
        assert world.events("vendorB", "ProductOrderJeopardyAlertEvent") == []
        plans = world.events("vendorB", "ChangePlanStateChangeEvent")
        assert [
            sorted(i["target"] for i in p["event"]["changePlan"]["resourceItem"]) for p in plans
        ] == [["C1", "D2"]]

        # The customer sees the order and its services, never devices, plans or stock.
        status = world.read("acme", "productOrder/PO1/state")
        assert (status["revision"], status["state"]) == (2, "held")
        header = world.read("acme", "productOrder/PO1")
        assert [i["id"] for i in header["productOrderItem"]] == list("ABCDE")
        for key in (
            "productOrder/PO1/revision/2",
            "changePlan/PO1/2",
            "resourceOrder/PO1/D1",
            "stock/vendorA/cpe-100/PO1",
        ):
            assert world.read("acme", key) is None, key
        told = world.events("acme", "ProductOrderStateChangeEvent")
        assert told[-1]["event"]["productOrder"] == {"id": "PO1", "state": "held", "revision": 2}
        assert "vendor" not in json.dumps(world.events("acme"))
        # The auditor sees what the seller sees; the installer sees no device orders.
        for key in ("changePlan/PO1/2", "productOrder/PO1/revision/2", "stock/vendorB/ont-7/PO1"):
            assert world.read("audit", key) is not None, key
        assert world.read("fitter", "resourceOrder/PO1/D1") is None


def test_revisions_of_one_order_are_serialized(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        start_project(world)
        world.ok("telco", "placeOrder", REVISION_1)
        world.ok("telco", "reviseOrder", {**REVISION_2, "modes": {}})
        message = world.refused("telco", "reviseOrder", REVISION_2)
        assert "at revision 2" in message
        assert "based on 1" in message
        assert js(world.read("telco", "productOrder/PO1"))["revision"] == 2


def test_a_paused_plan_is_resumed_before_the_next_revision(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        start_project(world)
        world.ok("telco", "placeOrder", REVISION_1)
        _deliver_d2(world)
        world.ok("telco", "reviseOrder", REVISION_2)
        revision_3 = {**REVISION_2, "basedOnRevision": 2, "modes": {"X1": "pause"}}
        revision_3["devices"] = [*js(REVISION_2["devices"]), device("X1", "vendorA", ["B"])]
        assert "resume its held devices" in world.refused("telco", "reviseOrder", revision_3)

        plan = world.ok("telco", "resumeChangePlan", {"productOrderId": "PO1"})
        assert plan["state"] == "completed"
        assert [i["state"] for i in plan["resourceItem"] if i["target"] == "A1"] == ["cancelled"]
        balance = world.read("vendorA", "stock/vendorA/cpe-100/PO1")["balance"]["PO1"]
        assert (balance["reserve"], balance["release"]) == (2, 1)
        portion = world.events("vendorA", "ChangePlanStateChangeEvent")[-1]["event"]
        assert portion["changePlan"]["state"] == "completed"
        assert world.read("acme", "productOrder/PO1/state")["state"] == "inProgress"  # D2 recovery

        # A paused addition is ordered, with its reservation, only when resumed.
        world.ok("telco", "reviseOrder", revision_3)
        assert world.read("vendorA", "resourceOrder/PO1/X1")["state"] == "held"
        assert world.read("vendorA", "stock/vendorA/cpe-100/PO1")["balance"]["PO1"]["reserve"] == 2
        world.ok("telco", "resumeChangePlan", {"productOrderId": "PO1", "devices": ["X1"]})
        assert world.read("vendorA", "resourceOrder/PO1/X1")["state"] == "acknowledged"
        assert world.read("vendorA", "stock/vendorA/cpe-100/PO1")["balance"]["PO1"]["reserve"] == 3
        message = world.refused("telco", "resumeChangePlan", {"productOrderId": "PO1"})
        assert "no change plan in progress at revision 3" in message
