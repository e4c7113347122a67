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
from typing import TYPE_CHECKING

from consortia._json import JSONObject, canonical, json_list
from consortia.analytics.embedded import default_sink
from consortia.analytics.events import Alert, EventSink
from consortia.analytics.redact import ObjectRefs, derive_ref_key
from consortia.analytics.sink import BufferedSink, SinkStats
from consortia.engine.admission import PLATFORM_NOTES, Admission
from consortia.engine.alerts import AlertInbox, stage_alert
from consortia.engine.batch import Batch
from consortia.engine.consortium import (
    ConsortiumRuntime,
)
from consortia.engine.datadir import DataDir
from consortia.engine.genesis import build_constitution, founders_of, stage_genesis
from consortia.engine.groupcommit import GroupCommit
from consortia.engine.observe import AnalyticsHook
from consortia.engine.operator import OperatorGate
from consortia.engine.pipeline import ActionSandbox, Pipeline
from consortia.engine.service import ServiceIdentity
from consortia.engine.views import MemberView
from consortia.errors import (
    BadRequest,
    BadSignature,
    ConsortiaError,
    NotFound,
    StaleRequest,
    Unavailable,
    UnknownMember,
)
from consortia.governance.platform_policy import RunningPlatform
from consortia.governance.templates import DEFAULT_TEMPLATE, Template
from consortia.identity._b64 import b64url_encode
from consortia.identity.box import Sealer, seal_anonymous
from consortia.identity.jws import ParsedJWS
from consortia.identity.jwt import read_token, verify_token
from consortia.identity.keys import PublicEncryptionKey, VerifyKey
from consortia.ledger.crypto import Keyring
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.sealed import seal_info, wrap_keyring
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import ConsortiumRow, Store
from consortia.sandbox.runtime import ActionRuntime, SandboxStats
from consortia.wire import IAT_WINDOW, MEMBERSHIPS_AUDIENCE, parse_operator_request, unwrap_body
from consortia.wire.outcomes import Created, Outcome

if TYPE_CHECKING:  # psycopg is imported only by a platform that uses PostgreSQL
    from consortia.engine.sequencer import SequencerRole

__all__ = ["ActionSandbox", "Platform"]

log = logging.getLogger("consortia.engine")

Clock = Callable[[], int]
Random = Callable[[int], bytes]
#: Told the consortium id when an alert was queued for it (the server's lane wakes up).
AlertListener = Callable[[str], None]


def _not_a_member(kid: str, cid: str) -> UnknownMember:
    """The one answer to a reader who is no member, whether or not the consortium exists."""
    return UnknownMember(
        f"{kid[:80]!r} is not a member of consortium {cid[:80]!r} with the key that signed "
        "this token, or there is no such consortium; check the token's kid and aud, and sign "
        "it with the member's current key"
    )


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
        analytics: EventSink | None = None,
        running: RunningPlatform | None = None,
        sequencer: SequencerRole | None = None,
    ) -> None:
        self.store = store
        #: On a cluster node: the leases it holds (it serves only those consortia).
        self._sequencer = sequencer
        self._node_key = node_key
        self.templates = dict(templates or {DEFAULT_TEMPLATE.name: DEFAULT_TEMPLATE})
        self.sandbox = sandbox
        self.clock = clock
        self.random = random
        self.service = service or ServiceIdentity.load_or_create(store, node_key)
        #: Checks creation requests and operator tokens against the operator keys.
        self.operators = OperatorGate(
            operator_keys, store=store, service=self.service, node_key=node_key, clock=clock
        )
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
        #: is served here.
        self.admission = Admission(running or RunningPlatform())
        #: Step 6 and the fault isolation around it.
        self._group = GroupCommit(
            pipeline=self.pipeline,
            admission=self.admission,
            node_key=node_key,
            encryption_key=self.service.encryption,
            clock=clock,
            random=random,
            hook=self._hook,
        )

    @property
    def running(self) -> RunningPlatform:
        """The TEP this engine runs in."""
        return self.admission.running

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
        store: str | None = None,
        node: str | None = None,
        lease_s: float | None = None,
    ) -> Platform:
        """A platform on ``data_dir`` (created if needed): SQLite file and a 0600 node key.

        With ``store``, a PostgreSQL connection string (``postgresql://…``, several hosts
        allowed), the ledger lives in that database instead of ``ledger.sqlite``; the node
        key, the analytics store and the TLS files stay in ``data_dir``. With ``node`` too
        (this node's id in a cluster of nodes sharing that database and the node key), the
        platform serves a consortium only while it holds its sequencer lease
        (:mod:`consortia.engine.sequencer`; leases last ``lease_s`` seconds, 10 unless
        given).

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
        opened: Store
        sequencer: SequencerRole | None = None
        if store is None:
            if node is not None:
                raise ValueError(
                    "a cluster node (node=ID) keeps its ledger in PostgreSQL: give store"
                )
            held = ledger.exists()
            opened = SQLiteStore(ledger)
        else:
            from consortia.ledger.postgres import PostgresStore  # psycopg only when asked

            postgres = PostgresStore(store, node=node)
            if node is not None:
                from consortia.engine.sequencer import DEFAULT_LEASE_S, SequencerRole

                sequencer = SequencerRole(postgres, ttl_s=lease_s or DEFAULT_LEASE_S)
            opened = postgres
            held = bool(opened.consortia())
        if held and not files.node_key.exists():
            # A fresh node key could never open the existing keyrings; say what to do.
            opened.close()
            raise Unavailable(
                f"the ledger ({opened.path}) holds consortia but {data_dir / 'node.key'} does "
                "not exist: this is a ledger without its node key; open it with the members' "
                "recovery shares (consortia.engine.recovery.RecoverySession), or restore node.key"
            )
        node_key = load_or_create_node_key(files.node_key)
        owned = ActionRuntime() if sandbox is None else None
        sink: EventSink | None
        if isinstance(analytics, bool):
            sink = default_sink(files.analytics) if analytics else None
        else:
            sink = analytics
        platform = cls(
            opened,
            node_key=node_key,
            operator_keys=operator_keys,
            templates=templates,
            sandbox=sandbox or owned,
            clock=clock,
            analytics=sink,
            running=running,
            sequencer=sequencer,
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

    @property
    def node(self) -> str | None:
        """This node's id in a cluster (None: a platform of its own)."""
        return None if self._sequencer is None else self._sequencer.node

    def heartbeat(self) -> float | None:
        """On a cluster node: say it is alive, so consortia are spread onto it too; the
        seconds until the next heartbeat is due (None elsewhere)."""
        if self._sequencer is None:
            return None
        self._sequencer.heartbeat()
        return self._sequencer.ttl_s / 2

    def advertise(self, url: str) -> None:
        """On a cluster node: the URL written into the leases it takes, where the other
        nodes forward requests for the consortia it sequences (no-op elsewhere)."""
        if self._sequencer is not None:
            self._sequencer.store.node_url = url

    def seal_for_joining(self, recipient: PublicEncryptionKey, files: Mapping[str, str]) -> bytes:
        """A node joining this cluster: the node key and ``files`` (the TLS certificate and
        key) as one JSON object sealed to ``recipient`` (``crypto_box_seal``), so that only
        the holder of its private half reads them (``consortia node join``)."""
        bundle: JSONObject = {"node_key": b64url_encode(self._node_key)}
        bundle.update(files)
        return seal_anonymous(recipient, canonical(bundle))

    # -- service ----------------------------------------------------------------------------

    def service_info(self) -> JSONObject:
        """``GET /v1/service``: keys, platform kind, templates (the server adds the
        attestation evidence, which binds its TLS certificate too)."""
        info = self.service.public_info()
        info.update(
            {
                "platform": self.running.kind,
                "attestation": None,
                "note": PLATFORM_NOTES[self.running.kind],
                "version": "1",
                "templates": json_list(sorted(self.templates)),
            }
        )
        return info

    def consortia(self) -> list[str]:
        """Ids of the consortia on this platform."""
        return self.store.consortia()

    def runtime(self, cid: str) -> ConsortiumRuntime:
        """The live state of one consortium (``not_found`` if there is none); on a cluster
        node, ``unavailable`` unless this node is its sequencer."""
        if self._sequencer is not None:
            if cid not in self._runtimes and self.store.consortium(cid) is None:
                raise NotFound(f"no consortium {cid!r} on this platform")
            if self._sequencer.hold(cid):
                # A new epoch: another node may have committed since; read it again.
                self._runtimes.pop(cid, None)
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

    def _create(self, jws: ParsedJWS, txid: str) -> Created:
        request = parse_operator_request(jws)
        self.operators.verify(jws)
        cid = request.consortium
        if self.store.consortium(cid) is not None:
            genesis = self.store.tx_by_seqno(cid, 0)
            if genesis is not None and genesis.txid == txid:
                return Created(cid, txid, 0)
            raise BadRequest(f"consortium {cid!r} already exists; choose another id")
        now = self.clock()
        if abs(now - request.iat) > IAT_WINDOW:
            raise StaleRequest(f"iat {request.iat} is more than {IAT_WINDOW} s from now ({now})")
        nonce_name = self.operators.nonce_name(request.nonce, txid)
        template = self.templates.get(request.template)
        if template is None:
            raise BadRequest(
                f"unknown template {request.template!r}; this platform offers "
                f"{', '.join(sorted(self.templates))}"
            )
        founders = founders_of(request)
        constitution = build_constitution(template, founders)
        if self._sequencer is not None:
            # The genesis commit, like any, is the sequencer's: the node that creates the
            # consortium takes it, and hands it over later if another node should have it.
            self._sequencer.hold(cid, spread=False)
        keyring = Keyring.generate(random=self.random)
        info: JSONObject = {"name": request.name, "template": template.name, "created_at": now}
        row = ConsortiumRow(
            cid,
            wrap_keyring(self._node_key, cid, keyring, random=self.random),
            seal_info(keyring, cid, info, random=self.random),
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
        self._group.commit(runtime, batch, now, reissue=True)
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
        return self._group.run(runtime, bodies)

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

    def sandbox_stats(self) -> SandboxStats | None:
        """The action sandbox's counters (runs, round trips, restarts) if it keeps any."""
        stats = getattr(self.sandbox, "stats", None)
        found = stats() if callable(stats) else None
        return found if isinstance(found, SandboxStats) else None

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
        if self.admission.refusal(cid, runtime.constitution) is not None:
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
            self._group.commit(runtime, batch, now)
        except Unavailable:
            self._alerts.put_back(cid, pending)
            return 0
        return staged

    # -- reads (PROTOCOL.md section 4) ------------------------------------------------------

    def memberships(self, bearer_token: str) -> list[JSONObject]:
        """The consortia in which the token's ``kid`` is an active member whose current key
        signed it, for a token with audience ``consortia`` (``GET /v1/consortia``).

        A token that verifies nowhere gets an empty list, the same answer whether the id is
        unknown, the key is wrong or the consortia do not exist: nothing is learnt of other
        members. An ill-formed token is ``bad_signature``.
        """
        self.token_claims(bearer_token)
        found: list[JSONObject] = []
        for cid in self.consortia():
            entry = self.membership(cid, bearer_token)
            if entry is not None:
                found.append(entry)
        return found

    @staticmethod
    def token_claims(bearer_token: str) -> ParsedJWS:
        """The parsed bearer token; ``bad_signature`` when it is no JWT at all."""
        try:
            return read_token(bearer_token)
        except BadRequest as exc:
            raise BadSignature(f"the bearer token is not a valid JWT: {exc.message}") from None

    def membership(self, cid: str, bearer_token: str) -> JSONObject | None:
        """:meth:`memberships` for one consortium: its entry, or None. A server calls it on
        that consortium's own lane, like every other read of it."""
        parsed = self.token_claims(bearer_token)
        runtime = self.runtime(cid)
        member = runtime.constitution.members.get(parsed.kid)
        if member is None or not member.active:
            return None
        try:
            verify_token(
                parsed, member.signing_key, audience=MEMBERSHIPS_AUDIENCE, now=self.clock()
            )
        except ConsortiaError:
            return None
        return {
            "consortium": cid,
            "name": runtime.info.get("name"),
            "template": runtime.info.get("template"),
            "member": member.id,
            "roles": list(member.roles),
        }

    def member_view(self, cid: str, member: str) -> MemberView:
        """Reads as ``member`` (already authenticated by the caller, e.g. in-process)."""
        runtime = self.runtime(cid)
        runtime.constitution.active_member(member)
        self.admission.require(cid, runtime.constitution)
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
        self.admission.require(cid, runtime.constitution)
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
