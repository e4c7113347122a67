"""The engine: the one place that orders the steps of a request (docs/architecture.md).

1 parse, 2 authenticate, 3 authorize, 4 vote gate, 5 execute, 6 commit, 7 notify. Requests
of one consortium run in one sequence; :meth:`Platform.execute_batch` runs several and
commits them in one storage transaction (group commit), answering only once it is durable.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

from consortia._json import JSONObject, canonical, json_list
from consortia.analytics.embedded import default_sink
from consortia.analytics.events import Alert, EventSink
from consortia.analytics.redact import ObjectRefs, derive_ref_key
from consortia.analytics.sink import BufferedSink, SinkStats
from consortia.engine.alerts import AlertInbox, stage_alert
from consortia.engine.batch import Batch
from consortia.engine.consortium import (
    ConsortiumRuntime,
)
from consortia.engine.datadir import DataDir
from consortia.engine.genesis import build_constitution, founders_of, stage_genesis
from consortia.engine.observe import AnalyticsHook
from consortia.engine.outcomes import Created, Outcome
from consortia.engine.pipeline import ActionSandbox, Pipeline, RequestTrace
from consortia.engine.recovery import issue_shares
from consortia.engine.request import (
    operator_nonce_name,
    parse_operator_request,
    unwrap_body,
)
from consortia.engine.service import ServiceIdentity
from consortia.engine.views import MemberView
from consortia.errors import (
    BadRequest,
    BadSignature,
    ConsortiaError,
    NotFound,
    Replay,
    StaleRequest,
    Unavailable,
    UnknownMember,
)
from consortia.governance.constitution import (
    Constitution,
)
from consortia.governance.platform_policy import PlatformPolicy, RunningPlatform, check_platform
from consortia.governance.templates import DEFAULT_TEMPLATE, Template
from consortia.identity.box import Sealer
from consortia.identity.jws import ParsedJWS
from consortia.identity.jwt import read_token, verify_token
from consortia.identity.keys import VerifyKey
from consortia.ledger.crypto import Keyring, wrap
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import ConsortiumRow, Store
from consortia.protocol import IAT_WINDOW
from consortia.sandbox.runtime import ActionRuntime

__all__ = ["ActionSandbox", "Platform"]

log = logging.getLogger("consortia.engine")

Clock = Callable[[], int]
Random = Callable[[int], bytes]
#: Told the consortium id when an alert was queued for it (the server's lane wakes up).
AlertListener = Callable[[str], None]


class _RequestFault(Exception):
    """One request of a batch failed unexpectedly; the batch is retried without it."""

    def __init__(self, index: int, error: ConsortiaError) -> None:
        super().__init__(index)
        self.index = index
        self.error = error


class _CommitFault(Exception):
    """The commit of a batch failed unexpectedly: the culprit is not known."""


def _not_a_member(kid: str, cid: str) -> UnknownMember:
    """The one answer to a reader who is no member, whether or not the consortium exists."""
    return UnknownMember(
        f"{kid[:80]!r} is not a member of consortium {cid[:80]!r} with the key that signed "
        "this token, or there is no such consortium; check the token's kid and aud, and sign "
        "it with the member's current key"
    )


def _wall_clock() -> int:
    return int(time.time())


#: What ``GET /v1/service`` says of each platform kind, in one line.
_PLATFORM_NOTES: Final = {
    "virtual": "virtual: no hardware protection of data in use; nothing is attested",
    "simulated-snp": "simulated SEV-SNP: reports signed by a test key the operator holds; "
    "they prove nothing about the hardware",
    "sev-snp": "AMD SEV-SNP: memory encrypted by the CPU; verify the attestation before use",
}


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
        analytics: EventSink | None = None,
        running: RunningPlatform | None = None,
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
        self.pipeline = Pipeline(sandbox, self.service.encryption)
        self._runtimes: dict[str, ConsortiumRuntime] = {}
        self._owned_sandbox: ActionRuntime | None = None
        #: The analytics sink (step 7); None: no events are built at all.
        self.analytics = analytics
        self._hook = (
            None
            if analytics is None
            else AnalyticsHook(analytics, ObjectRefs(derive_ref_key(node_key)), self._event_time)
        )
        self._alerts = AlertInbox()
        #: Called (from any thread) with the consortium id after :meth:`submit_alert`.
        self.alert_listener: AlertListener | None = None
        #: The TEP this engine runs in; each consortium's platform policy decides whether it
        #: is served here (:meth:`_not_accepted`).
        self.running = running or RunningPlatform()
        #: Per consortium: the platform policy last checked and the refusal it gave (None:
        #: accepted), so the check runs once per voted policy, not per request.
        self._verdicts: dict[str, tuple[PlatformPolicy | None, str | None]] = {}

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
        analytics: bool | EventSink = True,
        running: RunningPlatform | None = None,
    ) -> Platform:
        """A platform on ``data_dir`` (created if needed): SQLite file and a 0600 node key.

        Without a ``sandbox``, the platform starts (and owns) the default Starlark runtime:
        process isolation, so a runaway action costs an executor restart, never the platform.
        With ``analytics`` true (the default) it also owns the analytics sink: events go to
        ``analytics.duckdb`` in ``data_dir`` through a bounded buffer, and the misuse detector
        watches them and submits its alerts back here (docs/analytics.md). ``False`` turns
        analytics off; a sink of your own is used instead, and closed with the platform.
        """
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        files = DataDir(data_dir)
        ledger = files.ledger
        if ledger.exists() and not files.node_key.exists():
            # A fresh node key could never open the existing keyrings; say what to do.
            raise Unavailable(
                f"{ledger} exists but {data_dir / 'node.key'} does not: this is a copy of a "
                "ledger without its node key; open it with the members' recovery shares "
                "(consortia.engine.recovery.RecoverySession), or restore node.key"
            )
        node_key = load_or_create_node_key(files.node_key)
        store = SQLiteStore(ledger)
        owned = ActionRuntime() if sandbox is None else None
        sink: EventSink | None
        if isinstance(analytics, bool):
            sink = default_sink(files.analytics) if analytics else None
        else:
            sink = analytics
        platform = cls(
            store,
            node_key=node_key,
            operator_keys=operator_keys,
            templates=templates,
            sandbox=sandbox or owned,
            clock=clock,
            analytics=sink,
            running=running,
        )
        platform._owned_sandbox = owned
        if isinstance(sink, BufferedSink):
            sink.set_alert_handler(platform.submit_alert)
        return platform

    def close(self) -> None:
        """Close storage, and stop the sandbox and the analytics sink this platform uses."""
        if self.analytics is not None:
            self.analytics.close()
        if self._owned_sandbox is not None:
            self._owned_sandbox.close()
            self._owned_sandbox = None
        self.store.close()

    # -- service ----------------------------------------------------------------------------

    def service_info(self) -> JSONObject:
        """``GET /v1/service``: keys, platform kind, templates (the server adds the
        attestation evidence, which binds its TLS certificate too)."""
        info = self.service.public_info()
        info.update(
            {
                "platform": self.running.kind,
                "attestation": None,
                "note": _PLATFORM_NOTES[self.running.kind],
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

    def _not_accepted(self, cid: str, constitution: Constitution) -> str | None:
        """Why this TEP may not serve ``cid`` under ``constitution``; None when it may.

        The consortium's platform policy (``setPlatformPolicy``) decides; the verdict is
        kept per consortium until the policy object changes.
        """
        policy = constitution.platform_policy
        if policy is None:
            return None
        cached = self._verdicts.get(cid)
        if cached is not None and cached[0] is policy:
            return cached[1]
        reason = check_platform(policy, self.running)
        refusal = (
            None
            if reason is None
            else (
                f"this TEP is not accepted by consortium {cid!r}: {reason}; send this to a "
                "TEP the consortium's platform policy accepts, or have the members vote a new "
                "policy (setPlatformPolicy) on one"
            )
        )
        self._verdicts[cid] = (policy, refusal)
        return refusal

    def _require_accepted(self, cid: str, constitution: Constitution) -> None:
        """Raise ``unavailable`` unless the consortium's platform policy accepts this TEP."""
        refusal = self._not_accepted(cid, constitution)
        if refusal is not None:
            raise Unavailable(refusal)

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

    def verify_operator_token(self, token: str, *, audience: str) -> None:
        """Check a bearer JWT signed by an operator key (``kid`` and ``iss`` "operator")
        for ``audience`` (e.g. ``metrics``); raises ``bad_signature`` or the claim's error."""
        parsed = read_token(token)
        if parsed.kid != "operator":
            raise BadSignature("this endpoint takes a bearer token signed by an operator key")
        for key in self.operator_keys:
            try:
                verify_token(parsed, key, audience=audience, now=self.clock())
            except BadSignature:
                continue
            return
        raise BadSignature("the token is not signed by an operator key this platform trusts")

    def _operator_nonce(self, nonce: str, txid: str) -> str:
        """The meta entry of an operator nonce; ``replay`` if another request used it.

        Operator nonces are platform-wide: each consortium's own nonces are keyed by its
        ledger secret, which a consortium being created does not have yet.
        """
        name = operator_nonce_name(self.service.operator_nonce_key(), nonce)
        # A store written before the marks were keyed by the service key has them under the
        # node key; until a recovery replaces it, those still count.
        used_by = self.store.meta_get(name) or self.store.meta_get(
            operator_nonce_name(self._node_key, nonce)
        )
        if used_by is not None and used_by != txid.encode():
            raise Replay(
                f"operator nonce already used by creation request {used_by.decode()}; sign "
                "each creation request with a fresh nonce"
            )
        return name

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
        nonce_name = self._operator_nonce(request.nonce, txid)
        template = self.templates.get(request.template)
        if template is None:
            raise BadRequest(
                f"unknown template {request.template!r}; this platform offers "
                f"{', '.join(sorted(self.templates))}"
            )
        founders = founders_of(request)
        constitution = build_constitution(template, founders)
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
        batch = Batch.of(runtime)
        batch.rows.consortium = row
        seqno = stage_genesis(batch, request, template, founders, constitution, now=now)
        # Before the commit: a crash in between burns the nonce for this very request only.
        self.store.meta_put(nonce_name, txid.encode())
        self._commit(runtime, batch, now, reissue=True)
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

        Each answer is an outcome or the error that refused that request; when storage
        refuses the commit, every request that would have changed something answers
        ``unavailable`` and may be retried with the same nonce.

        One request cannot fail the others: an unexpected failure while one request is
        processed (a bug, or input no check foresaw) answers that request ``unavailable``
        and the batch is run again without it. An unexpected failure while the batch
        commits cannot be traced to one request, so the batch is then committed one
        request at a time, and only the request that fails alone is refused.
        """
        runtime = self.runtime(cid)
        if self._alerts.waiting(cid):
            self.apply_alerts(cid)
        failed: dict[int, ConsortiaError] = {}
        while True:
            try:
                return self._attempt(runtime, bodies, failed)
            except _RequestFault as fault:
                failed[fault.index] = fault.error
            except _CommitFault:
                if len(bodies) - len(failed) <= 1:
                    return self._attempt(runtime, bodies, failed, commit_fault_fails=True)
                return self._one_at_a_time(runtime, bodies, failed)

    def _one_at_a_time(
        self,
        runtime: ConsortiumRuntime,
        bodies: Sequence[str | bytes],
        failed: Mapping[int, ConsortiaError],
    ) -> list[Outcome | ConsortiaError]:
        """Commit each request in a batch of its own (after a commit fault), in order."""
        answers: list[Outcome | ConsortiaError] = []
        for index, body in enumerate(bodies):
            earlier = failed.get(index)
            if earlier is not None:
                answers.append(earlier)
                continue
            alone: dict[int, ConsortiaError] = {}
            try:
                (answer,) = self._attempt(runtime, [body], alone, commit_fault_fails=True)
            except _RequestFault as fault:
                answer = fault.error
            answers.append(answer)
        return answers

    def _attempt(
        self,
        runtime: ConsortiumRuntime,
        bodies: Sequence[str | bytes],
        failed: Mapping[int, ConsortiaError],
        *,
        commit_fault_fails: bool = False,
    ) -> list[Outcome | ConsortiaError]:
        """One try at a batch, skipping the requests in ``failed`` (answered as given).

        Raises :class:`_RequestFault` naming the request that failed unexpectedly, or
        :class:`_CommitFault` when the commit did (unless ``commit_fault_fails``: then every
        request that would have changed something answers ``unavailable``). Nothing reaches
        the runtime before the commit is durable, so a try that raised leaves no trace.
        """
        hook = self._hook
        batch = Batch.of(runtime)
        now = self.clock()
        answers: list[Outcome | ConsortiaError] = []
        traces: list[RequestTrace] = []
        for index, body in enumerate(bodies):
            trace = None
            if hook is not None:
                trace = RequestTrace(time.perf_counter())
                traces.append(trace)
            earlier = failed.get(index)
            if earlier is not None:
                answers.append(earlier)
                continue
            # Checked before each request: one that sets a policy rejecting this TEP
            # commits, and the requests after it (in this batch too) are refused.
            refusal = self._not_accepted(runtime.cid, batch.constitution)
            if refusal is not None:
                answers.append(Unavailable(refusal, txid=self._txid_of(body)))
                continue
            try:
                answers.append(self.pipeline.process(batch, body, now, trace))
            except ConsortiaError as exc:
                answers.append(exc)
            except Exception as exc:  # noqa: BLE001 - fails this request only
                raise _RequestFault(index, self._internal_error(runtime.cid, body, exc)) from None
        try:
            committed = self._commit(runtime, batch, now)
        except Unavailable as exc:
            # Storage refused: nothing reached the runtime, the batch is simply dropped.
            answers = [
                Unavailable(exc.message, txid=a.txid) if not isinstance(a, ConsortiaError) else a
                for a in answers
            ]
            committed = False
        except Exception as exc:  # isolated by the caller
            log.error(
                "group commit of %s failed unexpectedly (%s); %s",
                runtime.cid,
                type(exc).__name__,
                "refusing its requests" if commit_fault_fails else "committing one at a time",
            )
            log.debug("group commit failure", exc_info=True)
            if not commit_fault_fails:
                raise _CommitFault from None
            answers = [
                a
                if isinstance(a, ConsortiaError)
                else Unavailable(
                    "the platform could not commit this request; retry with the same request",
                    txid=a.txid,
                )
                for a in answers
            ]
            committed = False
        if hook is not None:
            decided = [p for p in batch.proposals.values() if not p.is_open] if committed else []
            hook.executed(runtime, traces, answers, decided)
        return answers

    def _internal_error(self, cid: str, body: str | bytes, exc: Exception) -> ConsortiaError:
        """The answer to a request that failed unexpectedly; logs its type, never its text
        or traceback at the default level (either could carry request data)."""
        log.error(
            "a request to %s failed unexpectedly (%s); it alone is refused, the rest of its "
            "batch goes on",
            cid,
            type(exc).__name__,
        )
        log.debug("request failure", exc_info=exc)
        txid: str | None
        try:
            txid = unwrap_body(body, self.service.encryption).txid
        except Exception:  # noqa: BLE001 - the txid is a courtesy; the refusal stands
            txid = None
        return Unavailable(
            "the platform could not process this request (an internal error); it changed "
            "nothing. Retrying the same request will likely fail the same way: report it "
            "to the operator",
            txid=txid,
        )

    def _txid_of(self, body: str | bytes) -> str | None:
        """The request's txid, if its body parses (a courtesy in a refusal)."""
        try:
            return unwrap_body(body, self.service.encryption).txid
        except Exception:  # noqa: BLE001 - the txid is a courtesy; the refusal stands
            return None

    def _commit(
        self, runtime: ConsortiumRuntime, batch: Batch, now: int, *, reissue: bool = False
    ) -> bool:
        """Step 6, the one commit sequence (a batch, or a genesis with ``reissue``): rotate
        the keyring if the batch asks, (re-)issue the recovery shares, commit ``batch``
        durably, then apply it; False if it holds nothing.

        Raises ``unavailable`` when storage refuses; the runtime is then unchanged.
        """
        cid = runtime.cid
        if batch.rekey:
            batch.new_keyring = runtime.keyring.rotated(random=self.random)
            batch.rows.keyring = wrap(
                self._node_key,
                batch.new_keyring.to_bytes(),
                b"keyring|" + cid.encode(),
                random=self.random,
            )
        issue_shares(batch, self.service, force=batch.rekey or reissue)
        rows = batch.finish(now=now)
        if not rows:
            return False
        self.store.commit(cid, rows)
        runtime.apply(batch)
        return True

    # -- analytics: events out, alerts back in ----------------------------------------------

    def _event_time(self) -> float:
        """Event time: the wall clock to the microsecond, or the injected clock (tests)."""
        return time.time() if self.clock is _wall_clock else float(self.clock())

    def prepare_analytics(self, timeout: float = 15.0) -> bool:
        """Load the misuse detector's model now, not at the first event; False on timeout.

        A server calls it before it takes requests: the import holds the GIL for over a
        second, which would otherwise land on its first requests. Blocks up to ``timeout``
        seconds (the sink's thread does the work; a slow load only delays the detector).
        """
        if not isinstance(self.analytics, BufferedSink):
            return True
        return self.analytics.prepare().wait(timeout)

    def analytics_stats(self) -> SinkStats | None:
        """The sink's counters (emitted, written, dropped, ...) if it keeps any."""
        stats = getattr(self.analytics, "stats", None)
        return stats() if callable(stats) else None

    @property
    def alerts_dropped(self) -> int:
        """Alerts dropped: queue full, malformed, or for a consortium that does not exist."""
        return self._alerts.dropped

    def submit_alert(self, alert: Alert) -> None:
        """Queue a suspected misuse for its consortium's sequence (thread-safe, never blocks).

        The next group commit of that consortium (or :meth:`apply_alerts`) commits it as a
        ``misuseAlert`` service transaction (:mod:`consortia.engine.alerts`).
        """
        if self._alerts.put(alert):
            listener = self.alert_listener
            if listener is not None:
                listener(alert.consortium)

    def apply_alerts(self, cid: str) -> int:
        """Commit the alerts queued for ``cid`` (in its sequence: hold its lock); how many."""
        pending = self._alerts.take(cid)
        if not pending:
            return 0
        try:
            runtime = self.runtime(cid)
        except NotFound:
            self._alerts.drop(len(pending))
            return 0
        if self._not_accepted(cid, runtime.constitution) is not None:
            # This TEP may not write to the consortium; the detector's alerts are dropped.
            self._alerts.drop(len(pending))
            log.warning("misuse alerts for %s dropped: its platform policy rejects this TEP", cid)
            return 0
        batch = Batch.of(runtime)
        now = self.clock()
        staged = 0
        for alert in pending:
            try:
                stage_alert(batch, alert, now=now, salt=self.random(16))
                staged += 1
            except ConsortiaError as exc:
                self._alerts.drop(1)
                log.warning("misuse alert for %s dropped: %s", cid, exc.code)
        try:
            self._commit(runtime, batch, now)
        except Unavailable:
            self._alerts.put_back(cid, pending)
            return 0
        return staged

    # -- reads (PROTOCOL.md section 4) ------------------------------------------------------

    def member_view(self, cid: str, member: str) -> MemberView:
        """Reads as ``member`` (already authenticated by the caller, e.g. in-process)."""
        runtime = self.runtime(cid)
        runtime.constitution.active_member(member)
        self._require_accepted(cid, runtime.constitution)
        return MemberView(runtime, member, hook=self._hook)

    def reader(self, cid: str, bearer_token: str) -> MemberView:
        """Reads as the member whose bearer JWT this is (PROTOCOL.md section 4).

        A caller who is not a member learns nothing of the consortium, not even whether it
        exists: an unknown consortium, an unknown member and a token whose signature does
        not verify with the named member's key (a guessed member id) get the same
        ``unknown_member`` answer, and an ill-formed token is ``bad_signature`` in either.
        """
        started = time.perf_counter()
        try:
            parsed = read_token(bearer_token)
        except BadRequest as exc:
            raise BadSignature(f"the bearer token is not a valid JWT: {exc.message}") from None
        try:
            runtime = self.runtime(cid)
        except NotFound:
            raise _not_a_member(parsed.kid, cid) from None
        try:
            member = runtime.constitution.member(parsed.kid)
            verify_token(parsed, member.signing_key, audience=cid, now=self.clock())
            if not member.active:
                runtime.constitution.active_member(parsed.kid)  # raises member_suspended
        except ConsortiaError as exc:
            if self._hook is not None:
                # A forged or stale token is what a bad-signature burst on reads looks like.
                self._hook.read(cid, "token", parsed.kid, started=started, code=exc.code)
            if exc.code in ("unknown_member", "bad_signature"):
                raise _not_a_member(parsed.kid, cid) from None
            raise
        # Only after authentication: a caller who is no member learns nothing of the policy.
        self._require_accepted(cid, runtime.constitution)
        return MemberView(runtime, member.id, hook=self._hook)

    def newest_notification_ids(self, cid: str, members: Iterable[str]) -> dict[str, int]:
        """The id of each member's newest queued notification (0 when none): what a push
        channel compares with what it has sent, to know whose queue grew."""
        runtime = self.runtime(cid)
        return {m: runtime.notification_counter(m) for m in members}

    def inactive_members(self, cid: str, members: Iterable[str]) -> list[str]:
        """Those of ``members`` who are no longer active (removed or suspended): a push
        channel ends their streams at once instead of at their token's expiry."""
        constitution = self.runtime(cid).constitution
        return [m for m in members if not constitution.is_active(m)]

    def require(self, cid: str) -> None:
        """Raise ``not_found`` unless the consortium exists."""
        if self.store.consortium(cid) is None:
            raise NotFound(f"no consortium {cid!r} on this platform")
