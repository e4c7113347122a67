"""The base actions of PROTOCOL.md section 7, as builtin Python.

Each action has a ``check`` (its own validation against a constitution, pure, run both before
the vote gate, so a malformed proposal is refused at once, and again at execution, since the
constitution may have changed meanwhile) and a ``run`` that stages its effects on an
:class:`~consortia.engine.execution.Execution`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from consortia._json import JSON, JSONObject, json_list, loads_strict
from consortia.engine.consortium import GOV_ANALYTICS, GOV_PLATFORM, GOV_RECOVERY
from consortia.engine.execution import Execution
from consortia.errors import (
    ActionFailed,
    ConsortiaError,
    NotFound,
    PermissionDenied,
    ScopeViolation,
)
from consortia.governance.analytics_policy import AnalyticsPolicy, parse_analytics_policy
from consortia.governance.constitution import (
    BASE_ACTIONS,
    ActionDefinition,
    Constitution,
    Member,
    MemberStatus,
    Permission,
)
from consortia.governance.parse import (
    parse_action_definition,
    parse_action_name,
    parse_member,
    parse_permissions,
    require_fields,
)
from consortia.governance.platform_policy import PlatformPolicy
from consortia.governance.voting import (
    Ballot,
    Decision,
    Proposal,
    ProposalStatus,
    electorate,
    may_vote,
    tally,
)
from consortia.identity.jws import parse_compact
from consortia.identity.keys import PublicEncryptionKey, VerifyKey
from consortia.notify.messages import vote_result_body
from consortia.protocol import IAT_WINDOW, KEY_PROOF_TYP

__all__ = [
    "BUILTINS",
    "Builtin",
    "CheckContext",
    "CodeChecker",
    "close_proposal",
    "vote_result_recipients",
]


#: Compiles Starlark at amendConstitution; returns the literal ``call`` targets.
CodeChecker = Callable[[str, str], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Builtin:
    """A base action: its validation and its effect."""

    check: Callable[[Constitution, str, JSONObject, CheckContext], None]
    run: Callable[[Execution, JSONObject, CheckContext], JSON]


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What validation needs besides the constitution."""

    consortium: str
    now: int
    code_checker: CodeChecker | None


# -- helpers ----------------------------------------------------------------------------------


def _check_members_exist(constitution: Constitution, ids: list[str], what: str) -> None:
    for member in ids:
        if member not in constitution.members:
            raise ActionFailed(f"{what} names {member!r}, who is not a member")


def _check_definition_members(constitution: Constitution, definition: ActionDefinition) -> None:
    _check_members_exist(constitution, [p.member for p in definition.permissions], "permissions")
    voters = definition.voting.voters
    if not isinstance(voters, str):
        _check_members_exist(constitution, list(voters), "voting.voters")
    _check_members_exist(constitution, list(definition.voting.veto), "voting.veto")


def close_proposal(
    ex: Execution,
    proposal: Proposal,
    status: ProposalStatus,
    reason: str,
    *,
    error: str | None = None,
    seqno: int | None = None,
) -> None:
    """Close ``proposal`` and tell its requester and voters (a ``vote_result``)."""
    closed = proposal.closed(status, reason, seqno=seqno, error=error)
    ex.stage_proposal(closed)
    body = vote_result_body(
        proposal.id, proposal.action, status.value, reason, seqno=seqno, error=error
    )
    for member in vote_result_recipients(ex.constitution, proposal):
        ex.tell(member, "vote_result", body, txid=proposal.id, action=proposal.action)


def vote_result_recipients(constitution: Constitution, proposal: Proposal) -> list[str]:
    """Who learns a proposal's outcome: its requester and everyone who could vote on it."""
    recipients = {proposal.requester, *(b.member for b in proposal.ballots)}
    definition = constitution.actions.get(proposal.action)
    if definition is not None:
        recipients |= electorate(definition.voting, constitution) | set(definition.voting.veto)
    return sorted(m for m in recipients if constitution.is_active(m))


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


# -- amendConstitution ------------------------------------------------------------------------


def _amend_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    definition = parse_action_definition(params, what="params")
    replace_self = params.get("replace_self", False)
    if not isinstance(replace_self, bool):
        raise ActionFailed("params.replace_self must be true or false")
    if definition.name == "amendConstitution" and not replace_self:
        raise ScopeViolation(
            "amendConstitution may replace itself only with params.replace_self set to true"
        )
    if definition.name in BASE_ACTIONS:
        current = c.action(definition.name)
        if definition.language != "builtin":
            raise ActionFailed(
                f"{definition.name!r} is a base action and stays builtin; amend it with "
                "language 'builtin' to change its permissions or voting"
            )
        if definition.scope != current.scope:
            raise ActionFailed(f"base action {definition.name!r} must stay {current.scope}")
    elif definition.language == "builtin":
        raise ActionFailed("only base actions are builtin; new actions are written in starlark")
    if definition.scope == "internal" and (definition.voting.needs_vote or definition.permissions):
        raise ActionFailed(
            "an internal action is only called by action code: give it no permissions and "
            "the no-vote schema (voters 'any', majority 1, no veto)"
        )
    _check_definition_members(c, definition)
    if definition.code is not None and ctx.code_checker is not None:
        for target in ctx.code_checker(definition.name, definition.code):
            called = c.actions.get(target)
            if target == definition.name and definition.scope == "internal":
                continue
            if called is not None and called.scope == "public":
                raise ScopeViolation(
                    f"the code calls public action {target!r}; code may call internal actions only"
                )


def _amend_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    definition = parse_action_definition(params, what="params")
    ex.stage_action(definition)
    # Open proposals on an action whose definition changed are dropped, as CCF does: the
    # ballots were cast on rules that no longer hold.
    for proposal in ex.open_proposals():
        if proposal.action == definition.name:
            close_proposal(
                ex,
                proposal,
                ProposalStatus.DROPPED,
                f"action {definition.name!r} was amended while the proposal was open",
            )
    code_hash = (
        None if definition.code is None else hashlib.sha256(definition.code.encode()).hexdigest()
    )
    return {"action": definition.name, "code_hash": code_hash}


# -- updatePermissions ------------------------------------------------------------------------


def _permissions_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    require_fields(params, what="params", required=("action", "permissions"))
    name = parse_action_name(params["action"], what="params.action")
    if name == "updatePermissions":
        raise ScopeViolation(
            "updatePermissions cannot change its own permissions; use amendConstitution"
        )
    definition = c.actions.get(name)
    if definition is None:
        raise ActionFailed(f"params.action {name!r} is not in the constitution")
    if definition.scope == "internal":
        raise ActionFailed(f"{name!r} is internal: it has no execute permissions to update")
    permissions = parse_permissions(params["permissions"], what="params.permissions")
    _check_members_exist(c, [p.member for p in permissions], "params.permissions")


def _permissions_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    name = str(params["action"])
    permissions = parse_permissions(params["permissions"], what="params.permissions")
    ex.stage_action(replace(ex.constitution.action(name), permissions=permissions))
    return {"action": name, "permissions": [p.to_json() for p in permissions]}


# -- refreshTrustKeys -------------------------------------------------------------------------


def _parse_new_keys(
    c: Constitution, caller: str, params: JSONObject, ctx: CheckContext
) -> tuple[VerifyKey, PublicEncryptionKey]:
    require_fields(params, what="params", required=("signing_key", "encryption_key", "proof"))
    try:
        signing = VerifyKey.from_jwk(params["signing_key"], what="params.signing_key")
        encryption = PublicEncryptionKey.from_jwk(
            params["encryption_key"], what="params.encryption_key"
        )
    except ConsortiaError as exc:
        raise ActionFailed(exc.message) from None
    proof = params["proof"]
    if not isinstance(proof, str):
        raise ActionFailed("params.proof must be a compact JWS signed by the new signing key")
    try:
        parsed = parse_compact(proof)
        if parsed.typ != KEY_PROOF_TYP:
            # Another message the new key signed (an action, a token) is not a proof.
            raise ActionFailed(f"its JWS typ must be {KEY_PROOF_TYP!r}, got {parsed.typ!r}")
        payload = parsed.verify(signing)
        claims = require_fields(
            loads_strict(payload, what="proof payload"),
            what="proof payload",
            required=("member", "consortium", "iat"),
        )
    except ConsortiaError as exc:
        raise ActionFailed(f"proof of possession of the new key failed: {exc.message}") from None
    if claims["member"] != caller or claims["consortium"] != ctx.consortium:
        raise ActionFailed(
            f"proof names member {claims['member']!r} of {claims['consortium']!r}; expected "
            f"{caller!r} of {ctx.consortium!r}"
        )
    iat = claims["iat"]
    if isinstance(iat, bool) or not isinstance(iat, int) or abs(iat - ctx.now) > IAT_WINDOW:
        raise ActionFailed(f"proof iat must be within {IAT_WINDOW} s of now ({ctx.now})")
    member = c.member(caller)
    if signing == member.signing_key:
        raise ActionFailed("the new signing key is the current one; generate a fresh key")
    for other in c.members.values():
        if other.id != caller and other.signing_key == signing:
            raise ActionFailed("that signing key belongs to another member")
    return signing, encryption


def _refresh_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    _parse_new_keys(c, caller, params, ctx)


def _refresh_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    caller = ex.caller()
    signing, encryption = _parse_new_keys(ex.constitution, caller, params, ctx)
    member: Member = replace(
        ex.constitution.member(caller), signing_key=signing, encryption_key=encryption
    )
    ex.stage_member(member)
    body: JSONObject = {
        "member": caller,
        "signing_key": dict(signing.to_jwk()),
        "encryption_key": dict(encryption.to_jwk()),
    }
    for other in ex.constitution.active_ids():
        ex.tell(other, "key_rotated", body)
    return {"member": caller, "signing_key": dict(signing.to_jwk())}


# -- rotateLedgerSecret -----------------------------------------------------------------------


def _rekey_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    require_fields(params, what="params", required=())


def _rekey_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    # The engine rotates at the commit of this batch; records of later batches use the new
    # secret, older ones stay readable under theirs, and recovery shares are re-issued.
    ex.rekey = True
    return {"ledger_secret": "rotated from the next commit on"}


# -- setRecoveryThreshold ---------------------------------------------------------------------


def _threshold(c: Constitution, params: JSONObject) -> int | None:
    require_fields(params, what="params", required=("threshold",))
    threshold = params["threshold"]
    if threshold is None:
        return None
    active = len(c.active_ids())
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ActionFailed("params.threshold must be a positive integer, or null for a majority")
    if threshold > active:
        raise ActionFailed(
            f"params.threshold {threshold} exceeds the {active} active members who hold shares"
        )
    return threshold


def _threshold_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    _threshold(c, params)


def _threshold_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    threshold = _threshold(ex.constitution, params)
    ex.constitution = replace(ex.constitution, recovery_threshold=threshold)
    ex.put_everyone(GOV_RECOVERY, {"threshold": threshold})
    holders = len(ex.constitution.active_ids())
    return {"threshold": threshold, "effective": ex.constitution.recovery_threshold_for(holders)}


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


# -- setAnalyticsPolicy -----------------------------------------------------------------------


def _analytics_policy(c: Constitution, params: JSONObject) -> AnalyticsPolicy:
    policy = parse_analytics_policy(params, what="params")
    for action in policy.grants:
        if action not in c.actions:
            raise ActionFailed(f"params.grants names {action!r}, which is not an action")
    roles = {r for r in (c.role_of(m) for m in c.members) if r is not None}
    named = list(policy.insights_full)
    if policy.alert_to != "all":
        named += policy.alert_to
    for entry in named:
        if entry not in c.members and entry not in roles:
            raise ActionFailed(
                f"params names {entry!r}, which is neither a member id nor a role "
                f"(info.role) of a member; roles here: {', '.join(sorted(roles)) or 'none'}"
            )
    return policy


def _analytics_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    _analytics_policy(c, params)


def _analytics_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    policy = _analytics_policy(ex.constitution, params)
    ex.constitution = replace(ex.constitution, analytics=policy)
    ex.put_everyone(GOV_ANALYTICS, policy.to_json())
    return {"analytics": policy.to_json()}


# -- setPlatformPolicy ------------------------------------------------------------------------
#
# The whole policy is replaced. A policy that rejects the TEP it is proposed or executed on is
# accepted on purpose: that is how an upgrade is voted (list the new build's measurement, then
# drop the old one). From its commit on, a TEP the policy rejects refuses to serve the
# consortium (Platform.execute_batch, Platform.reader); the commit itself stands.


def _platform_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    PlatformPolicy.from_params(params)


def _platform_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    policy = PlatformPolicy.from_params(params)
    ex.constitution = replace(ex.constitution, platform_policy=policy)
    ex.put_everyone(GOV_PLATFORM, policy.to_json())
    return {"platform_policy": policy.to_json()}


# -- voteFor / approveAction ------------------------------------------------------------------


def _ballot(params: JSONObject) -> tuple[str, bool]:
    require_fields(params, what="params", required=("proposal", "ballot"))
    pid, ballot = params["proposal"], params["ballot"]
    if not isinstance(pid, str):
        raise ActionFailed("params.proposal must be a proposal id")
    if ballot not in ("approve", "reject"):
        raise ActionFailed(f"params.ballot must be 'approve' or 'reject', got {ballot!r}")
    return pid, ballot == "approve"


def _vote_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    _ballot(params)


def _vote_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    pid, approve = _ballot(params)
    caller = ex.caller()
    proposal = ex.proposal(pid)
    if proposal is None or not proposal.visible_to_member(caller):
        raise NotFound(f"no proposal {pid!r} that member {caller!r} may see")
    if not proposal.is_open:
        raise ActionFailed(
            f"proposal {pid!r} is already {proposal.status.value}: a decided proposal is final"
        )
    definition = ex.constitution.action(proposal.action)
    if not may_vote(definition.voting, ex.constitution, caller):
        raise PermissionDenied(f"member {caller!r} is not a voter on proposal {pid!r}")
    if proposal.voted(caller) or (caller == proposal.requester and approve):
        raise ActionFailed(f"member {caller!r} has already voted on proposal {pid!r}")
    ex.stage_proposal(proposal.with_ballot(Ballot(caller, approve, ex.txid())))
    outcome = ex.call_builtin("approveAction", {"proposal": pid})
    return {"proposal": pid, "ballot": "approve" if approve else "reject", "tally": outcome}


def _approve_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    require_fields(params, what="params", required=("proposal",))


def _approve_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    pid = params.get("proposal")
    proposal = ex.proposal(pid) if isinstance(pid, str) else None
    if proposal is None:
        raise NotFound(f"no proposal {pid!r}")
    if not proposal.is_open:
        return {"status": proposal.status.value, "reason": proposal.reason}
    definition = ex.constitution.action(proposal.action)
    result = tally(definition.voting, ex.constitution, proposal.requester, proposal.ballots)
    if result.decision is Decision.REJECTED:
        close_proposal(ex, proposal, ProposalStatus.REJECTED, result.reason)
    elif result.decision is Decision.APPROVED:
        ex.resume(proposal.id)
    return {
        "status": result.decision.value,
        "reason": result.reason,
        "approvals": json_list(sorted(result.approvals)),
        "rejections": json_list(sorted(result.rejections)),
        "needed": result.needed,
    }


# -- sendNotifications ------------------------------------------------------------------------


def _send_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    require_fields(params, what="params", required=("members", "body"))


def _send_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    members = params["members"]
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise ActionFailed("params.members must be a list of member ids")
    ex.notify([str(m) for m in members], params["body"])
    return {"notified": len(set(members))}


BUILTINS: dict[str, Builtin] = {
    "addMember": Builtin(_add_member_check, _add_member_run),
    "removeMember": Builtin(_remove_member_check, _remove_member_run),
    "amendConstitution": Builtin(_amend_check, _amend_run),
    "updatePermissions": Builtin(_permissions_check, _permissions_run),
    "refreshTrustKeys": Builtin(_refresh_check, _refresh_run),
    "voteFor": Builtin(_vote_check, _vote_run),
    "approveAction": Builtin(_approve_check, _approve_run),
    "sendNotifications": Builtin(_send_check, _send_run),
    "setRecoveryThreshold": Builtin(_threshold_check, _threshold_run),
    "rotateLedgerSecret": Builtin(_rekey_check, _rekey_run),
    "setAnalyticsPolicy": Builtin(_analytics_check, _analytics_run),
    "reinstateMember": Builtin(_reinstate_check, _reinstate_run),
    "setPlatformPolicy": Builtin(_platform_check, _platform_run),
}
