"""Steps 1 to 5 of one request: parse, authenticate, authorize, vote gate, execute.

:class:`Pipeline` turns one signed body into an outcome staged in a :class:`Batch` (or a
refusal that stages nothing); :class:`~consortia.engine.platform.Platform` owns the batch,
commits it (step 6) and so decides when answers may leave. Approved proposals resume here
too, under their original txid, in the same batch as the deciding ballot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from consortia._json import JSON, JSONObject
from consortia.engine.batch import Batch
from consortia.engine.builtins import (
    BUILTINS,
    CheckContext,
    CodeChecker,
    vote_result_recipients,
)
from consortia.engine.execution import Execution
from consortia.engine.invocation import Invocation
from consortia.errors import (
    ActionFailed,
    BadRequest,
    ConsortiaError,
    Replay,
    StaleRequest,
    UnknownAction,
    VoteRejected,
    error_for_code,
)
from consortia.governance.constitution import (
    GOVERNANCE_ACTIONS,
    ActionDefinition,
    Constitution,
)
from consortia.governance.params_schema import validate_params
from consortia.governance.voting import (
    Decision,
    Proposal,
    ProposalStatus,
    electorate,
    tally,
    vetoers,
)
from consortia.identity.jws import ParsedJWS
from consortia.identity.keys import ROLE_PREFIX, EncryptionKey
from consortia.ledger.records import Audience
from consortia.sandbox.budget import Budget
from consortia.sandbox.cache import StateView
from consortia.wire import IAT_WINDOW, ActionRequest, parse_action_request, unwrap_body
from consortia.wire.notification import Notice, vote_result_body
from consortia.wire.outcomes import Committed, Outcome, Pending

__all__ = ["ActionSandbox", "Pipeline", "RequestTrace"]


@dataclass(slots=True)
class RequestTrace:
    """What the analytics hook learns of one request as the pipeline parses and runs it.

    Filled only while an analytics sink is set; untrusted until the outcome says the request
    authenticated (``kid`` is the *claimed* signer).
    """

    started: float
    kid: str | None = None
    txid: str | None = None
    action: str | None = None
    params: JSONObject | None = None
    #: The first non-governance state key the request's own transaction wrote.
    key: str | None = None


class ActionSandbox(Protocol):
    """What the engine needs of the Starlark runtime (:mod:`consortia.sandbox`)."""

    def literal_calls(self, name: str, code: str) -> tuple[str, ...]:
        """Compile ``code`` (raising ``action_failed`` with line numbers); its literal calls."""
        ...

    def execute(
        self,
        name: str,
        code: str,
        params: JSONObject,
        host: Execution,
        budget: Budget | None = None,
        view: StateView | None = None,
    ) -> JSON:
        """Run ``main(params)`` of ``code`` against ``host`` within ``budget``; ``view`` tells
        a sandbox that caches reads what changed since its last run."""
        ...


class Pipeline:
    """Runs requests of any consortium into a batch over its committed state (not thread-safe)."""

    def __init__(self, sandbox: ActionSandbox | None, encryption_key: EncryptionKey) -> None:
        self.sandbox = sandbox
        self.encryption_key = encryption_key

    def process(
        self,
        batch: Batch,
        body: str | bytes,
        now: int,
        trace: RequestTrace | None = None,
    ) -> Outcome:
        """Run one request into ``batch``; its answer, or its refusal raised.

        ``trace`` (analytics on) learns what the request claimed and did as it goes, so a
        refused request is described too.
        """
        jws = unwrap_body(body, self.encryption_key)
        txid = jws.txid
        if trace is not None:
            trace.txid = txid
            kid = jws.header.get("kid")
            trace.kid = kid if isinstance(kid, str) else None
        try:
            request = parse_action_request(jws, batch.cid)
            if trace is not None:
                trace.action, trace.params = request.action, request.params
            outcome = self._decide(batch, jws, request, now)
        except ConsortiaError as exc:
            raise exc.with_txid(txid) from None
        if trace is not None and isinstance(outcome, Committed) and outcome.txid == txid:
            trace.key = outcome.key
        # The action name travels with the answer, so the edge need not decode the body again.
        return dataclasses.replace(outcome, action=request.action)

    def _decide(
        self,
        batch: Batch,
        jws: ParsedJWS,
        request: ActionRequest,
        now: int,
    ) -> Outcome:
        """Replay, signature, clock, nonce, permission, then the vote gate or the run."""
        txid = jws.txid
        used_by = batch.nonce_txid(request.member, request.nonce)
        # Every accepted request stored its nonce under its own txid (a proposal too), so
        # only a request whose nonce this very txid holds can have an earlier answer: a
        # fresh request costs one storage lookup here instead of three.
        if used_by == txid:
            prior = self._prior_answer(batch, txid)
            if prior is not None:
                return prior
        constitution = batch.constitution
        member = constitution.active_member(request.member)
        jws.verify(member.signing_key)
        if abs(now - request.iat) > IAT_WINDOW:
            raise StaleRequest(
                f"iat {request.iat} is {now - request.iat:+d} s from the server's clock "
                f"({now}); the window is ±{IAT_WINDOW} s: check the client's clock"
            )
        if used_by is not None:
            raise Replay(
                f"nonce already used by transaction {used_by}; sign each request with a fresh nonce"
            )
        definition = constitution.authorize(request.member, request.action, now)
        self._check(definition, constitution, request.member, request.params, batch.cid, now)
        if definition.voting.needs_vote:
            return self._propose(batch, request, definition, now)
        return self._run_request(batch, request, now, detail={})

    def _check_context(self, cid: str, now: int) -> CheckContext:
        checker: CodeChecker | None = None
        if self.sandbox is not None:
            checker = self.sandbox.literal_calls
        return CheckContext(consortium=cid, now=now, code_checker=checker)

    def _check(
        self,
        definition: ActionDefinition,
        constitution: Constitution,
        caller: str,
        params: JSONObject,
        cid: str,
        now: int,
    ) -> None:
        """The params' own validation, before the vote gate (so bad proposals fail early): a
        builtin's check, or the action's voted ``params_schema`` (``bad_request`` naming each
        wrong path; nothing has run)."""
        builtin = BUILTINS.get(definition.name) if definition.language == "builtin" else None
        if builtin is not None:
            builtin.check(constitution, caller, params, self._check_context(cid, now))
        elif definition.params_schema is not None:
            validate_params(definition.params_schema, params, action=definition.name)

    def _prior_answer(self, batch: Batch, txid: str) -> Outcome | None:
        """The original answer to a request whose very JWS was already accepted."""
        seqno = batch.committed_seqno(txid)
        if seqno is not None:
            return Committed(txid, seqno)
        proposal = batch.proposal(txid)
        if proposal is None:
            return None
        if proposal.status is ProposalStatus.OPEN:
            return Pending(txid, proposal.id)
        if proposal.status is ProposalStatus.APPROVED and proposal.seqno is not None:
            return Committed(txid, proposal.seqno)
        if proposal.status is ProposalStatus.FAILED and proposal.error is not None:
            raise error_for_code(proposal.error, proposal.reason)
        raise VoteRejected(f"proposal {proposal.id} was {proposal.status.value}: {proposal.reason}")

    # -- step 4: the vote gate --------------------------------------------------------------

    def _propose(
        self,
        batch: Batch,
        request: ActionRequest,
        definition: ActionDefinition,
        now: int,
    ) -> Outcome:
        constitution = batch.constitution
        schema = definition.voting
        first = tally(schema, constitution, request.member, ())
        if first.decision is Decision.REJECTED:
            raise VoteRejected(f"the proposal could never pass: {first.reason}")
        if first.decision is Decision.APPROVED:
            # The requester's own approval already decides it: nothing to wait for.
            return self._run_request(batch, request, now, detail={"approved": first.reason})
        voters = sorted(
            (electorate(schema, constitution) | vetoers(schema, constitution))
            & set(constitution.active_ids())
        )
        audience: tuple[str, ...] | None = None
        if request.action not in GOVERNANCE_ACTIONS:
            audience = tuple(sorted({request.member, *request.visible_to, *voters}))
        proposal = Proposal(
            id=request.txid,
            action=request.action,
            requester=request.member,
            request=request.jws.compact,
            params=request.params,
            visible_to=request.visible_to,
            txref=request.txref,
            audience=audience,
            created_at=now,
        )
        batch.put_proposal(proposal)
        batch.add_nonce(request.member, request.nonce, txid=request.txid)
        body: JSONObject = {
            "proposal": proposal.id,
            "action": request.action,
            "requester": request.member,
            "params": request.params,
            "visible_to": list(request.visible_to),
            "voting": schema.to_json(),
            "tally": first.reason,
        }
        batch.notify(
            [
                Notice(v, "vote_request", request.txid, None, request.action, body)
                for v in voters
                if v != request.member
            ]
        )
        return Pending(request.txid, proposal.id)

    # -- step 5: execution ------------------------------------------------------------------

    def _audience(self, batch: Batch, run: Invocation) -> Audience:
        if run.action in GOVERNANCE_ACTIONS:
            return None
        if run.action == "voteFor":
            pid = run.params.get("proposal")
            proposal = batch.proposal(pid) if isinstance(pid, str) else None
            if proposal is not None:
                return proposal.audience
        return tuple(sorted({run.member, *run.visible_to}))

    def _run_request(
        self,
        batch: Batch,
        request: ActionRequest,
        now: int,
        *,
        detail: JSONObject,
    ) -> Committed:
        """Execute and stage a request as its member signed it (no vote, or decided at once)."""
        return self._run(batch, Invocation.from_request(request, now=now, detail=detail))

    def _run(self, batch: Batch, run: Invocation) -> Committed:
        """Execute and stage one transaction; nothing is staged if it fails."""
        for member in run.visible_to:
            # A role may be named before anyone holds it: its holders read it when they do.
            if not member.startswith(ROLE_PREFIX) and not batch.constitution.is_active(member):
                raise BadRequest(f"visible_to names {member!r}, which is not an active member")
        definition = batch.constitution.action(run.action)
        execution = Execution(
            batch=batch,
            constitution=batch.constitution,
            invocation=run,
            audience=self._audience(batch, run),
            builtin_runner=self._run_builtin,
            privileged=definition.language == "builtin",
        )
        result = self._invoke(definition, execution, run.params)
        key = next((k for k in execution.writes if not k.startswith("gov/")), None)
        # Success: move the staged effects into the batch.
        batch.constitution = execution.constitution
        for proposal in execution.proposals.values():
            batch.put_proposal(proposal)
        seqno = batch.add_tx(
            run, audience=execution.audience, writes=list(execution.writes.values())
        )
        execution.tell(run.member, "result", result)
        batch.notify(execution.notices)
        batch.rekey = batch.rekey or execution.rekey
        for pid in execution.resumes:
            self._resume(batch, pid, run.time)
        return Committed(run.txid, seqno, key=key)

    def _invoke(
        self, definition: ActionDefinition, execution: Execution, params: JSONObject
    ) -> JSON:
        if definition.language == "builtin":
            # A request (or an approved proposal) was checked once, before the vote gate
            # (_check); only builtins that action code calls are checked on the way in.
            builtin = BUILTINS.get(definition.name)
            if builtin is None:
                raise UnknownAction(f"no builtin action {definition.name!r}")
            context = self._check_context(execution.batch.cid, execution.now())
            return builtin.run(execution, params, context)
        if definition.code is None:
            raise ActionFailed(f"action {definition.name!r} has no code")
        if self.sandbox is None:
            raise ActionFailed(
                f"action {definition.name!r} is written in {definition.language}, and this "
                "platform runs no action sandbox; its code is stored but cannot execute"
            )
        budget = None if definition.budget is None else Budget(**definition.budget)
        view = execution.batch.state_view()
        return self.sandbox.execute(
            definition.name, definition.code, params, execution, budget, view
        )

    def _run_builtin(self, execution: Execution, action: str, params: JSONObject) -> JSON:
        """A builtin called by action code: checked, then run."""
        builtin = BUILTINS.get(action)
        if builtin is None:
            raise UnknownAction(f"no builtin action {action!r}")
        context = self._check_context(execution.batch.cid, execution.now())
        builtin.check(execution.constitution, execution.caller(), params, context)
        return builtin.run(execution, params, context)

    # -- resuming an approved proposal ------------------------------------------------------

    def _resume(self, batch: Batch, pid: str, now: int) -> None:
        proposal = batch.proposal(pid)
        if proposal is None or not proposal.is_open:
            return
        seqno = batch.next_seqno
        reason = "approved by vote"
        batch.put_proposal(proposal.closed(ProposalStatus.APPROVED, reason, seqno=seqno))
        try:
            constitution = batch.constitution
            definition = constitution.action(proposal.action)
            constitution.active_member(proposal.requester)
            constitution.check_permission(definition, proposal.requester, now)
            self._check(
                definition, constitution, proposal.requester, proposal.params, batch.cid, now
            )
            self._run(batch, Invocation.from_proposal(proposal, now=now))
            body = vote_result_body(pid, proposal.action, "approved", reason, seqno=seqno)
        except ConsortiaError as exc:
            batch.put_proposal(proposal.closed(ProposalStatus.FAILED, exc.message, error=exc.code))
            body = vote_result_body(
                pid, proposal.action, "failed", reason, error=exc.code, message=exc.message
            )
        batch.notify(
            [
                Notice(
                    member,
                    "vote_result",
                    pid,
                    proposal.txref if member == proposal.requester else None,
                    proposal.action,
                    body,
                )
                for member in vote_result_recipients(batch.constitution, proposal)
            ]
        )
