"""Membership: addMember, removeMember, reinstateMember and setMemberRoles.

Member ids are never reused, so a removed member stays in the constitution with status
``removed``; a suspended member is either reinstated or removed. Removing a member re-tallies
every open proposal, since that member's ballots no longer count.
"""

from __future__ import annotations

from dataclasses import replace

from consortia._json import JSON, JSONObject, require_fields
from consortia.engine.builtins.spec import Builtin, CheckContext
from consortia.engine.builtins.voting import close_proposal
from consortia.engine.execution import Execution
from consortia.errors import ActionFailed
from consortia.governance.constitution import Constitution, MemberStatus, Permission
from consortia.governance.parse import parse_member, parse_roles
from consortia.governance.voting import Decision, ProposalStatus, tally

__all__ = ["ADD_MEMBER", "REINSTATE_MEMBER", "REMOVE_MEMBER", "SET_MEMBER_ROLES"]


# -- addMember --------------------------------------------------------------------------------


def _add_member_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    member = parse_member(params, what="params")
    if "status" in params:
        raise ActionFailed("params.status cannot be set: a new member starts active")
    if member.id in c.members:
        raise ActionFailed(
            f"member id {member.id!r} is already used (status {c.members[member.id].status.value})"
            "; ids are never reused, so history stays unambiguous"
        )
    for other in c.members.values():
        if other.signing_key == member.signing_key:
            raise ActionFailed(f"that signing key already belongs to member {other.id!r}")


def _add_member_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    member = parse_member(params, what="params")
    ex.stage_member(member)
    for name in ex.constitution.new_member_actions:
        definition = ex.constitution.actions.get(name)
        if definition is not None:
            entries = [p for p in definition.permissions if p.member != member.id]
            entries.append(Permission(member.id, True))
            ex.stage_action(replace(definition, permissions=tuple(entries)))
    return {"member": member.id, "status": "active"}


# -- removeMember -----------------------------------------------------------------------------


def _remove_member_check(
    c: Constitution, caller: str, params: JSONObject, ctx: CheckContext
) -> None:
    require_fields(params, what="params", required=("id",))
    target = params["id"]
    if not isinstance(target, str) or target not in c.members:
        raise ActionFailed(f"params.id {target!r} is not a member")
    if c.members[target].status is MemberStatus.REMOVED:
        # A suspended member may still be removed: that is one way to decide a suspension.
        raise ActionFailed(f"member {target!r} is already removed")
    if c.active_ids() == [target]:
        raise ActionFailed(f"member {target!r} is the last active member; it cannot be removed")


def _remove_member_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    target = str(params["id"])
    ex.stage_member(replace(ex.constitution.member(target), status=MemberStatus.REMOVED))
    # Re-tally every open proposal: ballots of a removed member no longer count.
    for proposal in ex.open_proposals():
        if proposal.requester == target:
            close_proposal(
                ex, proposal, ProposalStatus.DROPPED, f"its requester {target!r} was removed"
            )
            continue
        definition = ex.constitution.actions.get(proposal.action)
        if definition is None:
            continue
        result = tally(definition.voting, ex.constitution, proposal.requester, proposal.ballots)
        if result.decision is Decision.REJECTED:
            close_proposal(ex, proposal, ProposalStatus.REJECTED, result.reason)
    return {"member": target, "status": "removed"}


# -- reinstateMember -------------------------------------------------------------------------


def _reinstate_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    require_fields(params, what="params", required=("id",))
    target = params["id"]
    if not isinstance(target, str) or target not in c.members:
        raise ActionFailed(f"params.id {target!r} is not a member")
    status = c.members[target].status
    if status is not MemberStatus.SUSPENDED:
        raise ActionFailed(
            f"member {target!r} is {status.value}; only a suspended member can be reinstated "
            "(a removed member's id is never reused)"
        )


def _reinstate_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    target = str(params["id"])
    ex.stage_member(replace(ex.constitution.member(target), status=MemberStatus.ACTIVE))
    return {"member": target, "status": "active"}


ADD_MEMBER = Builtin(_add_member_check, _add_member_run)
REMOVE_MEMBER = Builtin(_remove_member_check, _remove_member_run)
REINSTATE_MEMBER = Builtin(_reinstate_check, _reinstate_run)


# -- setMemberRoles --------------------------------------------------------------------------


def _roles_params(c: Constitution, params: JSONObject) -> tuple[str, tuple[str, ...]]:
    require_fields(params, what="params", required=("id", "roles"))
    target = params["id"]
    if not isinstance(target, str) or target not in c.members:
        raise ActionFailed(f"params.id {target!r} is not a member")
    if c.members[target].status is MemberStatus.REMOVED:
        raise ActionFailed(f"member {target!r} is removed; a removed member holds no roles")
    return target, parse_roles(params["roles"], what="params.roles")


def _set_roles_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    _roles_params(c, params)


def _set_roles_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    # The whole list is replaced: what the member may do by role, and which role:NAME
    # audiences it reads, follow from the next request and read on.
    target, roles = _roles_params(ex.constitution, params)
    before = ex.constitution.member(target).roles
    ex.stage_member(replace(ex.constitution.member(target), roles=roles))
    return {"member": target, "roles": list(roles), "before": list(before)}


SET_MEMBER_ROLES = Builtin(_set_roles_check, _set_roles_run)
