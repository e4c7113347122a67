"""Scenario: membership and governance under votes (PROTOCOL.md sections 7 and 8)."""

from __future__ import annotations

from conftest import World

from consortia import Committed, Pending
from consortia._json import JSONObject
from testkit import js


def veto_schema(world: World) -> None:
    """Make addMember a 2-of-3 vote with 'installer' as veto member (itself voted in)."""
    params: JSONObject = {
        "name": "addMember",
        "scope": "public",
        "language": "builtin",
        "permissions": [{"member": m, "execute": True} for m in ("telco", "vendor", "installer")],
        "voting": {
            "voters": ["telco", "vendor", "installer"],
            "majority": 2,
            "veto": ["installer"],
        },
    }
    pending = world.act("telco", "amendConstitution", params)
    assert isinstance(pending, Pending)
    done = world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    assert isinstance(done, Committed)
    view = world.platform.member_view("acme", "installer")
    add = next(a for a in js(view.constitution())["actions"] if a["name"] == "addMember")
    assert add["voting"] == {
        "voters": ["telco", "vendor", "installer"],
        "majority": 2,
        "veto": ["installer"],
    }


def test_add_member_approved_under_two_of_three_with_veto(world: World) -> None:
    veto_schema(world)
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info(), txref="crm-42")
    assert isinstance(pending, Pending)
    assert "vote_request" in world.kinds("vendor") and "vote_request" in world.kinds("installer")
    # The txref is the requester's own correlation id: voters see the proposal without it.
    assert js(world.platform.member_view("acme", "telco").proposals())[0]["txref"] == "crm-42"
    for voter in ("vendor", "installer"):
        view = world.platform.member_view("acme", voter)
        assert js(view.proposals())[0]["txref"] is None
        assert js(view.proposal(pending.proposal))["txref"] is None
    # Not a member yet: the customer cannot act.
    world.refused(
        "unknown_member", world.sign("customer", "voteFor", {"proposal": "x", "ballot": "approve"})
    )
    done = world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    assert isinstance(done, Committed)
    members = js(world.platform.member_view("acme", "telco").constitution())["members"]
    assert "customer" in [m["id"] for m in members]
    # The requester is told the result of its own request, with its txref.
    results = [b for k, b in world.notes("telco") if k == "result"]
    assert {"member": "customer", "status": "active"} in results
    # The new member may run refreshTrustKeys and voteFor (template's new_member_actions).
    cons = js(world.platform.member_view("acme", "customer").constitution())
    vote = next(a for a in js(cons)["actions"] if a["name"] == "voteFor")
    assert {"member": "customer", "execute": True} in vote["permissions"]
    # A decided proposal is final: the veto member's late reject is refused, nothing changes.
    world.refused(
        "action_failed",
        world.sign("installer", "voteFor", {"proposal": pending.proposal, "ballot": "reject"}),
    )


def test_add_member_vetoed(world: World) -> None:
    veto_schema(world)
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info(), txref="crm-43")
    assert isinstance(pending, Pending)
    veto = world.act("installer", "voteFor", {"proposal": pending.proposal, "ballot": "reject"})
    assert isinstance(veto, Committed)
    members = js(world.platform.member_view("acme", "telco").constitution())["members"]
    assert "customer" not in [m["id"] for m in members]
    results = [b for k, b in world.notes("telco") if k == "vote_result"]
    assert results and js(results[-1])["outcome"] == "rejected"
    assert "vetoed by installer" in str(results[-1])
    # Retrying the very same request answers with the final outcome, and changes nothing.
    body_retry = world.platform.member_view("acme", "telco").proposal(pending.proposal)
    assert body_retry["status"] == "rejected"
    # A later approval cannot revive it.
    world.refused(
        "action_failed",
        world.sign("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"}),
    )


def test_retry_of_same_request_returns_original_answer(world: World) -> None:
    customer = world.add_keys("customer")
    body = world.sign("telco", "addMember", customer.public_info(), nonce="n" * 20)
    first = world.platform.execute("acme", body)
    assert isinstance(first, Pending)
    before = world.fingerprint()
    assert world.platform.execute("acme", body) == first
    assert world.fingerprint() == before
    world.act("vendor", "voteFor", {"proposal": first.proposal, "ballot": "approve"})
    again = world.platform.execute("acme", body)
    assert isinstance(again, Committed) and again.txid == first.txid
    # Every answer names its action for the edge (metrics), and never on the wire.
    assert first.action == again.action == "addMember"
    assert "action" not in again.to_wire() and "action" not in first.to_wire()


def test_remove_member_while_proposal_open_rejects_unreachable(world: World) -> None:
    customer = world.add_keys("customer")
    # default template: voters all, majority 2 of 3. Vendor rejects: 1 approval, 1 outstanding.
    pending = world.act("telco", "addMember", customer.public_info())
    assert isinstance(pending, Pending)
    world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "reject"})
    assert (
        world.platform.member_view("acme", "telco").proposal(pending.proposal)["status"] == "open"
    )
    removal = world.act("telco", "removeMember", {"id": "installer"})
    assert isinstance(removal, Pending)
    world.act("vendor", "voteFor", {"proposal": removal.proposal, "ballot": "approve"})
    # With installer gone, addMember can no longer reach 2 approvals: rejected and told.
    status = world.platform.member_view("acme", "telco").proposal(pending.proposal)
    assert status["status"] == "rejected"
    assert "can no longer be reached" in str(status["reason"])
    world.refused(
        "member_suspended",
        world.sign("installer", "voteFor", {"proposal": pending.proposal, "ballot": "approve"}),
    )


def test_amending_an_action_drops_its_open_proposals(world: World) -> None:
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info())
    assert isinstance(pending, Pending)
    amend: JSONObject = {
        "name": "addMember",
        "scope": "public",
        "language": "builtin",
        "permissions": [{"member": "telco", "execute": True}],
        "voting": {"voters": "all", "majority": 3},
    }
    proposal = world.act("vendor", "amendConstitution", amend)
    assert isinstance(proposal, Pending)
    world.act("installer", "voteFor", {"proposal": proposal.proposal, "ballot": "approve"})
    dropped = world.platform.member_view("acme", "vendor").proposal(pending.proposal)
    assert dropped["status"] == "dropped"
    told = [b for k, b in world.notes("telco") if k == "vote_result"]
    assert any(b["outcome"] == "dropped" for b in js(told))
    world.refused(
        "action_failed",
        world.sign("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"}),
    )


def test_amend_constitution_replacing_itself_needs_the_flag(world: World) -> None:
    params: JSONObject = {
        "name": "amendConstitution",
        "scope": "public",
        "language": "builtin",
        "permissions": [{"member": "telco", "execute": True}],
        "voting": {"voters": "all", "majority": 2},
    }
    world.refused("scope_violation", world.sign("telco", "amendConstitution", params))
    flagged = dict(params, replace_self=True)
    assert isinstance(world.act("telco", "amendConstitution", flagged), Pending)


def test_update_permissions_never_on_itself(world: World) -> None:
    params: JSONObject = {"action": "updatePermissions", "permissions": []}
    world.refused("scope_violation", world.sign("telco", "updatePermissions", params))


def test_internal_action_called_directly_is_not_public(world: World) -> None:
    world.refused("not_public", world.sign("telco", "approveAction", {"proposal": "p"}))
    world.refused(
        "not_public", world.sign("telco", "sendNotifications", {"members": [], "body": 1})
    )


def test_unknown_action(world: World) -> None:
    world.refused("unknown_action", world.sign("telco", "mintCoins", {}))


def test_malformed_proposal_refused_before_the_vote(world: World) -> None:
    error = world.refused("action_failed", world.sign("telco", "addMember", {"id": "x"}))
    assert "signing_key" in error.message
