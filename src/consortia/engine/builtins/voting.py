"""Ballots and outcomes: voteFor, approveAction, and closing a proposal.

``voteFor`` records a member's ballot and re-tallies through ``approveAction``, which either
rejects the proposal, resumes it (it executes in the same batch, under its original txid) or
leaves it open. :func:`close_proposal` and :func:`vote_result_recipients` are shared by every
builtin that ends a proposal (a removed requester, an amended action).
"""

from __future__ import annotations

from consortia._json import JSON, JSONObject, json_list, require_fields
from consortia.engine.builtins.spec import Builtin, CheckContext
from consortia.engine.execution import Execution
from consortia.errors import ActionFailed, NotFound, PermissionDenied
from consortia.governance.constitution import Constitution
from consortia.governance.voting import (
    Ballot,
    Decision,
    Proposal,
    ProposalStatus,
    electorate,
    may_vote,
    tally,
    vetoers,
)
from consortia.wire.notification import vote_result_body

__all__ = ["APPROVE_ACTION", "VOTE_FOR", "close_proposal", "vote_result_recipients"]


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
        schema = definition.voting
        recipients |= electorate(schema, constitution) | vetoers(schema, constitution)
    return sorted(m for m in recipients if constitution.is_active(m))


# -- voteFor ----------------------------------------------------------------------------------


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
    if proposal is None or not proposal.visible_to_member(caller, ex.constitution):
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


# -- approveAction ----------------------------------------------------------------------------


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


VOTE_FOR = Builtin(_vote_check, _vote_run)
APPROVE_ACTION = Builtin(_approve_check, _approve_run)
