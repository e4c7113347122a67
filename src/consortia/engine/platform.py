"""The engine: the one place that orders the steps of a request (ARCHITECTURE.md).

1 parse, 2 authenticate, 3 authorize, 4 vote gate, 5 execute, 6 commit, 7 notify. Requests
of one consortium run in one sequence; :meth:`Platform.execute_batch` runs several and
commits them in one storage transaction (group commit), answering only once it is durable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from consortia._json import JSON, JSONObject, canonical, json_list
from consortia.engine.builtins import (
    BUILTINS,
    IAT_WINDOW,
    CheckContext,
    CodeChecker,
    vote_result_recipients,
)
from consortia.engine.consortium import (
    GOV_ACTIONS,
    GOV_MEMBERS,
    GOV_SETTINGS,
    Batch,
    ConsortiumRuntime,
    Write,
)
from consortia.engine.execution import Execution
from consortia.engine.outcomes import Committed, Created, Outcome, Pending
from consortia.engine.recovery import issue_shares
from consortia.engine.request import (
    ActionRequest,
    parse_action_request,
    parse_operator_request,
    unwrap_body,
)
from consortia.engine.service import ServiceIdentity
from consortia.engine.views import MemberView
from consortia.errors import (
    ActionFailed,
    BadRequest,
    BadSignature,
    ConsortiaError,
    NotFound,
    Replay,
    StaleRequest,
    Unavailable,
    UnknownAction,
    VoteRejected,
    error_for_code,
)
from consortia.governance.constitution import (
    GOVERNANCE_ACTIONS,
    ActionDefinition,
    Constitution,
    Member,
)
from consortia.governance.parse import parse_member
from consortia.governance.templates import DEFAULT_TEMPLATE, Template
from consortia.governance.voting import (
    Decision,
    Proposal,
    ProposalStatus,
    electorate,
    tally,
)
from consortia.identity.box import Sealer
from consortia.identity.jws import ParsedJWS
from consortia.identity.jwt import read_token, verify_token
from consortia.identity.keys import VerifyKey
from consortia.ledger.crypto import Keyring, wrap
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.records import Audience
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import ConsortiumRow, Store
from consortia.notify.messages import Notice
from consortia.sandbox.budget import Budget
from consortia.sandbox.runtime import ActionRuntime

__all__ = ["ActionSandbox", "Platform"]

Clock = Callable[[], int]
Random = Callable[[int], bytes]


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
    ) -> JSON:
        """Run ``main(params)`` of ``code`` against ``host`` within ``budget``."""
        ...


def _wall_clock() -> int:
    return int(time.time())


class Platform:
    """A Trusted Execution Platform hosting any number of isolated consortia."""

    def __init__(
        self,
        store: Store,
        *,
        node_key: bytes,
        operator_keys: Sequence[VerifyKey] = (),
        templates: Mapping[str, Template] | None = None,
        sandbox: ActionSandbox | None = None,
        clock: Clock = _wall_clock,
        random: Random = os.urandom,
        service: ServiceIdentity | None = None,
    ) -> None:
        self.store = store
        self._node_key = node_key
        self.operator_keys = tuple(operator_keys)
        self.templates = dict(templates or {DEFAULT_TEMPLATE.name: DEFAULT_TEMPLATE})
        self.sandbox = sandbox
        self.clock = clock
        self.random = random
        self.service = service or ServiceIdentity.load_or_create(store, node_key)
        self.sealer = Sealer(self.service.encryption)
        self._runtimes: dict[str, ConsortiumRuntime] = {}
        self._owned_sandbox: ActionRuntime | None = None

    def __repr__(self) -> str:
        return f"Platform(store={type(self.store).__name__}, consortia={len(self._runtimes)})"

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        operator_keys: Sequence[VerifyKey] = (),
        templates: Mapping[str, Template] | None = None,
        sandbox: ActionSandbox | None = None,
        clock: Clock = _wall_clock,
    ) -> Platform:
        """A platform on ``data_dir`` (created if needed): SQLite file and a 0600 node key.

        Without a ``sandbox``, the platform starts (and owns) the default Starlark runtime:
        process isolation, so a runaway action costs an executor restart, never the platform.
        """
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        ledger = data_dir / "ledger.sqlite"
        if ledger.exists() and not (data_dir / "node.key").exists():
            # A fresh node key could never open the existing keyrings; say what to do.
            raise Unavailable(
                f"{ledger} exists but {data_dir / 'node.key'} does not: this is a copy of a "
                "ledger without its node key; open it with the members' recovery shares "
                "(consortia.engine.recovery.RecoverySession), or restore node.key"
            )
        node_key = load_or_create_node_key(data_dir / "node.key")
        store = SQLiteStore(ledger)
        owned = ActionRuntime() if sandbox is None else None
        platform = cls(
            store,
            node_key=node_key,
            operator_keys=operator_keys,
            templates=templates,
            sandbox=sandbox or owned,
            clock=clock,
        )
        platform._owned_sandbox = owned
        return platform

    def close(self) -> None:
        """Close storage, and stop the sandbox if this platform started it."""
        if self._owned_sandbox is not None:
            self._owned_sandbox.close()
            self._owned_sandbox = None
        self.store.close()

    # -- service ----------------------------------------------------------------------------

    def service_info(self) -> JSONObject:
        """``GET /v1/service``: keys, platform kind, templates."""
        info = self.service.public_info()
        info.update(
            {
                "platform": "virtual",
                "attestation": None,
                "note": "virtual: no hardware protection of data in use",
                "version": "1",
                "templates": json_list(sorted(self.templates)),
            }
        )
        return info

    def consortia(self) -> list[str]:
        """Ids of the consortia on this platform."""
        return self.store.consortia()

    def runtime(self, cid: str) -> ConsortiumRuntime:
        """The live state of one consortium (``not_found`` if there is none)."""
        runtime = self._runtimes.get(cid)
        if runtime is None:
            runtime = ConsortiumRuntime.open(
                self.store,
                cid,
                node_key=self._node_key,
                sealer=self.sealer,
                service_key=self.service.signing,
                random=self.random,
            )
            self._runtimes[cid] = runtime
        return runtime

    # -- consortium creation (PROTOCOL.md section 8) ----------------------------------------

    def create_consortium(self, body: str | bytes) -> Created:
        """Create a consortium from an operator-signed request."""
        jws = unwrap_body(body, self.service.encryption)
        txid = jws.txid
        try:
            return self._create(jws, txid)
        except ConsortiaError as exc:
            raise exc.with_txid(txid) from None

    def _verify_operator(self, jws: ParsedJWS) -> None:
        for key in self.operator_keys:
            try:
                jws.verify(key)
            except BadSignature:
                continue
            return
        raise BadSignature("the request is not signed by an operator key this platform trusts")

    def _create(self, jws: ParsedJWS, txid: str) -> Created:
        request = parse_operator_request(jws)
        self._verify_operator(jws)
        cid = request.consortium
        if self.store.consortium(cid) is not None:
            genesis = self.store.tx_by_seqno(cid, 0)
            if genesis is not None and genesis.txid == txid:
                return Created(cid, txid, 0)
            raise BadRequest(f"consortium {cid!r} already exists; choose another id")
        now = self.clock()
        if abs(now - request.iat) > IAT_WINDOW:
            raise StaleRequest(f"iat {request.iat} is more than {IAT_WINDOW} s from now ({now})")
        template = self.templates.get(request.template)
        if template is None:
            raise BadRequest(
                f"unknown template {request.template!r}; this platform offers "
                f"{', '.join(sorted(self.templates))}"
            )
        founders: list[Member] = []
        for index, raw in enumerate(request.members):
            member = parse_member(raw, what=f"members[{index}]", error=BadRequest)
            if member.id == "operator":
                raise BadRequest("'operator' is reserved and cannot be a member id")
            if any(f.id == member.id for f in founders):
                raise BadRequest(f"members lists {member.id!r} twice")
            if any(f.signing_key == member.signing_key for f in founders):
                raise BadRequest(f"members[{index}] reuses another founder's signing key")
            founders.append(member)
        try:
            constitution = template.build(founders)
        except ValueError as exc:  # a template's own rule, e.g. "telco needs a seller"
            raise BadRequest(f"template {template.name!r} refused the founders: {exc}") from None

        keyring = Keyring.generate(random=self.random)
        info: JSONObject = {"name": request.name, "template": template.name, "created_at": now}
        row = ConsortiumRow(
            cid,
            wrap(
                self._node_key, keyring.to_bytes(), b"keyring|" + cid.encode(), random=self.random
            ),
            keyring.encrypt(canonical(info), b"info|" + cid.encode(), random=self.random),
        )
        runtime = ConsortiumRuntime(
            cid=cid,
            store=self.store,
            keyring=keyring,
            sealer=self.sealer,
            service_key=self.service.signing,
            info=info,
            random=self.random,
        )
        runtime.constitution = constitution
        batch = Batch(runtime)
        batch.rows.consortium = row
        settings: JSONObject = {
            "name": request.name,
            "template": template.name,
            "new_member_actions": list(constitution.new_member_actions),
        }
        writes = [Write(GOV_SETTINGS, settings, None)]
        writes += [Write(GOV_MEMBERS + m.id, m.to_json(), None) for m in founders]
        writes += [
            Write(GOV_ACTIONS + name, constitution.actions[name].to_json(), None)
            for name in sorted(constitution.actions)
        ]
        seqno = batch.add_tx(
            txid=txid,
            time=now,
            action="createConsortium",
            member="operator",
            audience=None,
            request=jws.compact,
            writes=writes,
            detail={"template": template.name},
            nonce=("operator", request.nonce),
        )
        welcome: JSONObject = {
            "event": "consortium_created",
            "consortium": cid,
            "name": request.name,
            "template": template.name,
            "members": [m.id for m in founders],
        }
        batch.notify(
            [Notice(m.id, "notice", txid, None, "createConsortium", welcome) for m in founders]
        )
        issued = issue_shares(batch, self.service, force=True)
        if issued is not None:
            issued.store_record()
        self.store.commit(cid, batch.finish(now=now))
        batch.applied()
        if issued is not None:
            issued.committed()
        self._runtimes[cid] = runtime
        return Created(cid, txid, seqno)

    # -- executeAction (PROTOCOL.md section 2) ----------------------------------------------

    def execute(self, cid: str, body: str | bytes) -> Outcome:
        """Run one signed request; raises the refusal as a :class:`ConsortiaError`."""
        (answer,) = self.execute_batch(cid, [body])
        if isinstance(answer, ConsortiaError):
            raise answer
        return answer

    def execute_batch(
        self, cid: str, bodies: Sequence[str | bytes]
    ) -> list[Outcome | ConsortiaError]:
        """Run requests in order and commit them together (group commit).

        Each answer is an outcome or the error that refused that request; when the commit
        itself fails, every request that would have changed something answers
        ``unavailable`` and may be retried with the same nonce.
        """
        runtime = self.runtime(cid)
        batch = Batch(runtime)
        now = self.clock()
        answers: list[Outcome | ConsortiaError] = []
        for body in bodies:
            try:
                answers.append(self._process(runtime, batch, body, now))
            except ConsortiaError as exc:
                answers.append(exc)
        issued = issue_shares(batch, self.service)
        rows = batch.finish(now=now)
        if not rows:
            return answers
        try:
            if issued is not None:
                issued.store_record()
            self.store.commit(cid, rows)
        except Unavailable as exc:
            # Nothing reached the runtime: the batch is simply dropped.
            return [
                Unavailable(exc.message, txid=a.txid) if not isinstance(a, ConsortiaError) else a
                for a in answers
            ]
        batch.applied()
        if issued is not None:
            issued.committed()
        return answers

    def _process(
        self, runtime: ConsortiumRuntime, batch: Batch, body: str | bytes, now: int
    ) -> Outcome:
        jws = unwrap_body(body, self.service.encryption)
        txid = jws.txid
        try:
            request = parse_action_request(jws, runtime.cid)
            prior = self._prior_answer(runtime, batch, txid)
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
            used_by = batch.nonce_txid(request.member, request.nonce)
            if used_by is not None:
                raise Replay(
                    f"nonce already used by transaction {used_by}; sign each request with a "
                    "fresh nonce"
                )
            definition = constitution.authorize(request.member, request.action, now)
            self._check(definition, constitution, request.member, request.params, runtime.cid, now)
            if definition.voting.needs_vote:
                return self._propose(runtime, batch, request, definition, now)
            return self._run(
                runtime,
                batch,
                txid=txid,
                caller=request.member,
                action=request.action,
                params=request.params,
                visible_to=request.visible_to,
                txref=request.txref,
                request=jws.compact,
                now=now,
                nonce=(request.member, request.nonce),
                detail={},
            )
        except ConsortiaError as exc:
            raise exc.with_txid(txid) from None

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
        """A builtin's own validation, before the vote gate (so bad proposals fail early)."""
        builtin = BUILTINS.get(definition.name) if definition.language == "builtin" else None
        if builtin is not None:
            builtin.check(constitution, caller, params, self._check_context(cid, now))

    def _prior_answer(self, runtime: ConsortiumRuntime, batch: Batch, txid: str) -> Outcome | None:
        """The original answer to a request whose very JWS was already accepted."""
        seqno = batch.committed.get(txid)
        if seqno is None:
            row = runtime.store.tx_by_txid(runtime.cid, txid)
            seqno = None if row is None else row.seqno
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
        runtime: ConsortiumRuntime,
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
            return self._run(
                runtime,
                batch,
                txid=request.txid,
                caller=request.member,
                action=request.action,
                params=request.params,
                visible_to=request.visible_to,
                txref=request.txref,
                request=request.jws.compact,
                now=now,
                nonce=(request.member, request.nonce),
                detail={"approved": first.reason},
            )
        voters = sorted(
            (electorate(schema, constitution) | set(schema.veto)) & set(constitution.active_ids())
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

    def _audience(
        self,
        batch: Batch,
        action: str,
        caller: str,
        visible_to: tuple[str, ...],
        params: JSONObject,
    ) -> Audience:
        if action in GOVERNANCE_ACTIONS:
            return None
        if action == "voteFor":
            pid = params.get("proposal")
            proposal = batch.proposal(pid) if isinstance(pid, str) else None
            if proposal is not None:
                return proposal.audience
        return tuple(sorted({caller, *visible_to}))

    def _run(
        self,
        runtime: ConsortiumRuntime,
        batch: Batch,
        *,
        txid: str,
        caller: str,
        action: str,
        params: JSONObject,
        visible_to: tuple[str, ...],
        txref: str | None,
        request: str,
        now: int,
        nonce: tuple[str, str] | None,
        detail: JSONObject,
    ) -> Committed:
        """Execute and stage one transaction; nothing is staged if it fails."""
        for member in visible_to:
            if not batch.constitution.is_active(member):
                raise BadRequest(f"visible_to names {member!r}, which is not an active member")
        definition = batch.constitution.action(action)
        execution = Execution(
            batch=batch,
            constitution=batch.constitution,
            caller_id=caller,
            tx_id=txid,
            time=now,
            request_visible_to=visible_to,
            audience=self._audience(batch, action, caller, visible_to, params),
            action=action,
            txref=txref,
            builtin_runner=self._run_builtin,
            privileged=definition.language == "builtin",
        )
        result = self._invoke(definition, execution, params)
        # Success: move the staged effects into the batch.
        batch.constitution = execution.constitution
        for proposal in execution.proposals.values():
            batch.put_proposal(proposal)
        seqno = batch.add_tx(
            txid=txid,
            time=now,
            action=action,
            member=caller,
            audience=execution.audience,
            request=request,
            writes=list(execution.writes.values()),
            detail=detail,
            nonce=nonce,
        )
        execution.tell(caller, "result", result)
        batch.notify(execution.notices)
        for pid in execution.resumes:
            self._resume(runtime, batch, pid, now)
        return Committed(txid, seqno)

    def _invoke(
        self, definition: ActionDefinition, execution: Execution, params: JSONObject
    ) -> JSON:
        if definition.language == "builtin":
            return self._run_builtin(execution, definition.name, params)
        if definition.code is None:
            raise ActionFailed(f"action {definition.name!r} has no code")
        if self.sandbox is None:
            raise ActionFailed(
                f"action {definition.name!r} is written in {definition.language}, and this "
                "platform runs no action sandbox; its code is stored but cannot execute"
            )
        budget = None if definition.budget is None else Budget(**definition.budget)
        return self.sandbox.execute(definition.name, definition.code, params, execution, budget)

    def _run_builtin(self, execution: Execution, action: str, params: JSONObject) -> JSON:
        builtin = BUILTINS.get(action)
        if builtin is None:
            raise UnknownAction(f"no builtin action {action!r}")
        context = self._check_context(execution.batch.runtime.cid, execution.time)
        builtin.check(execution.constitution, execution.caller(), params, context)
        return builtin.run(execution, params, context)

    # -- resuming an approved proposal ------------------------------------------------------

    def _resume(self, runtime: ConsortiumRuntime, batch: Batch, pid: str, now: int) -> None:
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
                definition, constitution, proposal.requester, proposal.params, runtime.cid, now
            )
            self._run(
                runtime,
                batch,
                txid=proposal.id,
                caller=proposal.requester,
                action=proposal.action,
                params=proposal.params,
                visible_to=proposal.visible_to,
                txref=proposal.txref,
                request=proposal.request,
                now=now,
                nonce=None,
                detail={"proposal": proposal.id, "ballots": [b.txid for b in proposal.ballots]},
            )
            outcome: JSONObject = {"outcome": "approved", "seqno": seqno}
        except ConsortiaError as exc:
            batch.put_proposal(proposal.closed(ProposalStatus.FAILED, exc.message, error=exc.code))
            outcome = {"outcome": "failed", "error": exc.code, "message": exc.message}
        body: JSONObject = {"proposal": pid, "action": proposal.action, "reason": reason, **outcome}
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

    # -- reads (PROTOCOL.md section 4) ------------------------------------------------------

    def member_view(self, cid: str, member: str) -> MemberView:
        """Reads as ``member`` (already authenticated by the caller, e.g. in-process)."""
        runtime = self.runtime(cid)
        runtime.constitution.active_member(member)
        return MemberView(runtime, member)

    def reader(self, cid: str, bearer_token: str) -> MemberView:
        """Reads as the member whose bearer JWT this is (PROTOCOL.md section 4)."""
        runtime = self.runtime(cid)
        parsed = read_token(bearer_token)
        member = runtime.constitution.active_member(parsed.kid)
        verify_token(parsed, member.signing_key, audience=cid, now=self.clock())
        return MemberView(runtime, member.id)

    def require(self, cid: str) -> None:
        """Raise ``not_found`` unless the consortium exists."""
        if self.store.consortium(cid) is None:
            raise NotFound(f"no consortium {cid!r} on this platform")
