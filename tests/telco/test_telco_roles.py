"""Roles in the Telco pack: a consortium grows by vote, and newcomers act and read by role.

Each test tries to get past a rule: a newcomer without the role, a member whose role was
taken away, a role entry that names no one yet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from telco_world import TelcoWorld, place_order, telco_world

from consortia import Committed, Pending
from consortia._json import JSONObject
from consortia.cli import main
from consortia.errors import BadRequest, NotFound
from consortia.governance.parse import parse_member
from testkit import js

#: Founders whose approvals, with the seller's own, make the 4 of 6 governance needs.
APPROVERS = ("vendorA", "vendorB", "fitter")


def _governed(world: TelcoWorld, action: str, params: JSONObject) -> None:
    """The seller proposes a governance action and three other founders approve it."""
    pending = world.act("telco", action, params)
    assert isinstance(pending, Pending)
    outcome = None
    for voter in APPROVERS:
        outcome = world.act(voter, "voteFor", {"proposal": pending.txid, "ballot": "approve"})
    assert isinstance(outcome, Committed)
    proposal = world.platform.member_view(world.cid, "telco").proposal(pending.txid)
    assert proposal["status"] == "approved", proposal


def _add(world: TelcoWorld, member: str, roles: list[str]) -> None:
    keys = world.add_keys(member)
    _governed(world, "addMember", {**keys.public_info(), "roles": list(roles)})


def _second_project(world: TelcoWorld, supplier: str) -> None:
    world.ok(
        "telco",
        "createProject",
        {"id": "P2", "name": "second", "relatedParty": [{"role": "supplier", "partyId": supplier}]},
    )
    world.ok(
        "telco",
        "placeOrder",
        {
            "id": "PO2",
            "projectId": "P2",
            "sites": [{"id": "HQ"}],
            "services": [{"id": "A", "site": "HQ", "spec": {"design": "v1"}}],
            "devices": [
                {
                    "id": "C1",
                    "part": "cpe-100",
                    "supplier": supplier,
                    "site": "HQ",
                    "services": ["A"],
                }
            ],
        },
    )


def test_a_supplier_added_by_vote_acts_at_once_by_its_role(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _add(world, "vendorC", ["supplier"])
        constitution = js(world.platform.member_view(world.cid, "vendorC").constitution())
        entry = next(m for m in constitution["members"] if m["id"] == "vendorC")
        assert entry["roles"] == ["supplier"]
        update = next(a for a in constitution["actions"] if a["name"] == "updateDeviceOrder")
        assert update["permissions"] == [{"role": "supplier", "execute": True}]
        _second_project(world, "vendorC")
        # No updatePermissions vote: the role's entry covers the newcomer.
        step = {"productOrderId": "PO2", "device": "C1", "state": "inProgress"}
        assert isinstance(world.act("vendorC", "updateDeviceOrder", step), Committed)
        assert world.read("vendorC", "resourceOrder/PO2/C1")["state"] == "inProgress"
        # A newcomer in another role gets nothing a supplier may do.
        _add(world, "acme2", ["customer"])
        world.refused("acme2", "updateDeviceOrder", step, code="permission_denied")


def test_an_auditor_who_joins_later_reads_what_was_addressed_to_auditors(
    tmp_path: Path,
) -> None:
    with telco_world(tmp_path) as world:
        place_order(world)
        key = "productOrder/PO1/revision/1"
        assert world.read("audit", key) is not None
        # Before it holds the role, the newcomer reads nothing of the order.
        _add(world, "audit2", [])
        assert world.read("audit2", key) is None
        _governed(world, "setMemberRoles", {"id": "audit2", "roles": ["auditor"]})
        assert world.read("audit2", key) is not None
        # Later writes reach it too, and the auditors' notifications name it.
        step = {"productOrderId": "PO1", "device": "A1", "state": "inProgress"}
        assert isinstance(world.act("vendorA", "updateDeviceOrder", step), Committed)
        assert world.read("audit2", "resourceOrder/PO1/A1")["state"] == "inProgress"
        assert any(
            e["eventType"] == "ResourceOrderStateChangeEvent" for e in world.events("audit2")
        )
        # Suppliers and customers still cannot read past their share.
        assert world.read("vendorB", "resourceOrder/PO1/A1") is None
        assert world.read("acme", key) is None


def test_taking_a_role_away_takes_its_reads_and_permissions_with_it(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        place_order(world)
        key = "productOrder/PO1/revision/1"
        _add(world, "audit2", ["auditor"])
        assert world.read("audit2", key) is not None
        _governed(world, "setMemberRoles", {"id": "audit2", "roles": []})
        assert world.read("audit2", key) is None
        # The founding auditor reads by its role too: remove it and the reads go.
        _governed(world, "setMemberRoles", {"id": "vendorB", "roles": []})
        step = {"productOrderId": "PO1", "device": "B1", "state": "inProgress"}
        world.refused("vendorB", "updateDeviceOrder", step, code="permission_denied")


def test_set_member_roles_is_governance_and_checks_its_params(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        # Proposed by a supplier, it needs the vote like any governance action.
        pending = world.act("vendorA", "setMemberRoles", {"id": "vendorA", "roles": ["seller"]})
        assert isinstance(pending, Pending)
        reject = {"proposal": pending.txid, "ballot": "reject"}
        assert isinstance(world.act("telco", "voteFor", reject), Committed)  # the seller's veto
        assert world.platform.runtime(world.cid).constitution.roles_of("vendorA") == ("supplier",)
        for params, wrong in (
            ({"id": "nobody", "roles": []}, "is not a member"),
            ({"id": "vendorA", "roles": ["bad role"]}, "is not a role name"),
            ({"id": "vendorA", "roles": "supplier"}, "must be a list"),
            ({"id": "vendorA"}, "roles"),
        ):
            assert wrong in world.refused("telco", "setMemberRoles", params)


def test_keygen_writes_the_public_part_with_roles_that_a_founding_entry_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vendorZ.key.json"
    assert main(["keygen", "--member", "vendorZ", "--role", "supplier", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    pub = tmp_path / "vendorZ.pub.json"
    assert f"wrote {pub}" in printed and "roles supplier" in printed
    assert out.stat().st_mode & 0o077 == 0  # the private key file stays the member's own
    public = json.loads(pub.read_text())
    assert public["id"] == "vendorZ" and public["roles"] == ["supplier"]
    assert "d" not in public["signing_key"] and "d" not in public["encryption_key"]
    # The public file is a founder's entry as it stands.
    member = parse_member(public, what="founder", error=BadRequest)
    assert member.roles == ("supplier",)
    # Refusals change nothing: a bad role, an existing public file without --force.
    assert main(["keygen", "--member", "w", "--role", "no role", "--out", str(tmp_path / "w")]) == 1
    assert "is not a role name" in capsys.readouterr().err
    assert not (tmp_path / "w").exists() and not (tmp_path / "w.pub.json").exists()
    before = pub.read_text()
    assert main(["keygen", "--member", "vendorZ", "--out", str(out), "--force"]) == 0
    assert json.loads(pub.read_text())["roles"] == [] and pub.read_text() != before


def test_a_request_addressed_to_a_role_is_read_by_its_holders_only(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        place_order(world)
        step = {"productOrderId": "PO1", "device": "A1", "state": "inProgress"}
        done = world.act("vendorA", "updateDeviceOrder", step, visible_to=["role:customer"])
        assert isinstance(done, Committed)

        def sees(member: str) -> bool:
            try:
                world.platform.member_view(world.cid, member).transaction(done.txid)
            except NotFound:
                return False
            return True

        assert sees("vendorA") and sees("acme")
        assert not sees("fitter") and not sees("vendorB")
        _add(world, "acme2", ["customer"])
        assert sees("acme2")
        # A role entry must be well formed; a role no one holds yet is fine.
        bad = world.expect_refusal(
            "bad_request",
            lambda: world.act("vendorA", "updateDeviceOrder", step, visible_to=["role:"]),
        )
        assert "visible_to[0]" in bad.message and "not a role name" in bad.message
        ask = {"productOrderId": "PO1", "device": "A1"}
        later = world.act("vendorA", "getDeviceStatus", ask, visible_to=["role:regulator"])
        assert isinstance(later, Committed)


def test_a_member_added_later_proposes_governance_by_its_role(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        _add(world, "telco2", ["seller"])
        newcomer = world.add_keys("vendorD").public_info()
        pending = world.act("telco2", "addMember", js({**newcomer, "roles": ["supplier"]}))
        assert isinstance(pending, Pending)  # a newcomer proposes; the vote decides
        # The new seller also holds the sellers' veto over the founders' proposals.
        other = world.add_keys("vendorE").public_info()
        founders = world.act("telco", "addMember", js({**other, "roles": ["supplier"]}))
        assert isinstance(founders, Pending)
        veto = {"proposal": founders.txid, "ballot": "reject"}
        assert isinstance(world.act("telco2", "voteFor", veto), Committed)
        proposal = js(world.platform.member_view(world.cid, "telco").proposal(founders.txid))
        assert proposal["status"] == "rejected" and "vetoed by telco2" in proposal["reason"]
