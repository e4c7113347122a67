"""Disaster recovery: issuing members' recovery shares, and recovering without the node key.

Issuing (:func:`issue_shares`): when a consortium is created, and in every commit batch that
changes its active members, their keys or the threshold (``addMember``, ``removeMember``,
``refreshTrustKeys``, ``setRecoveryThreshold``), a fresh 32-byte recovery key wraps the
keyring; the key is split k-of-n over the active members (k voted with
``setRecoveryThreshold``, by default ⌊n/2⌋+1) and each share, sealed to the member's X25519
key, rides in a ``notice`` notification (``{"event": "recovery_share", ...}``) of the same
commit. The wrapped keyring and the holder digests go to the meta table as the epoch's
:class:`~consortia.ledger.recovery.RecoveryRecord` *in* that commit's storage transaction
(with the pointer to it and the previous epoch's withdrawal), so a delivered share always
has its record and a crash leaves either the old epoch or the new one.

The platform-wide service keys (they sign every consortium's roots and box every member's
notifications) are in no consortium's record: k members of one consortium must not get a
key that works on the others. They are recovered only through the operator: while the TEP
still has its node key, the operator seals them to a key of its own
(:func:`backup_service_keys`, ``consortia recovery backup``), and a recovery opens that
backup with the operator's private key (:meth:`RecoverySession.restore_service`), checked
against the newest signed root of every consortium: first as stored, then at finish against
the row's MAC, which only the unwrapped keyring authenticates.

Recovering (:class:`RecoverySession`): on a copy of the data directory with no node key,
members submit their shares signed; each must come from a holder the record names. With
k shares per consortium and the service keys restored, :meth:`RecoverySession.finish`
unwraps every keyring, checks the submitters against the recovered constitution, writes a
new node key and re-wraps the keyrings and the (same) service keys under it. With k-1 it
refuses and writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from consortia._json import JSONObject, canonical, loads_strict
from consortia.engine.batch import Batch
from consortia.engine.consortium import ConsortiumRuntime
from consortia.engine.datadir import DataDir
from consortia.engine.service import ServiceIdentity
from consortia.errors import BadRequest, BadSignature, ConsortiaError, NotFound, Replay
from consortia.governance.constitution import Constitution, Member
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.box import Sealer, open_anonymous, seal_anonymous
from consortia.identity.keys import EncryptionKey, PublicEncryptionKey, VerifyKey
from consortia.ledger.crypto import KEY_BYTES, Keyring, LedgerCorrupted, unwrap, wrap
from consortia.ledger.nodekey import load_node_key, load_or_create_node_key
from consortia.ledger.receipts import verify_signed_root
from consortia.ledger.records import RECOVERY_FIELD
from consortia.ledger.recovery import (
    HolderClaim,
    RecoveryRecord,
    Share,
    ShareSubmission,
    combine_key,
    holder_digest,
    holds,
    parse_holder_proof,
    parse_submission,
    record_name,
    seal_share,
    split_key,
    wrap_aad,
)
from consortia.ledger.sqlite import SQLiteStore
from consortia.notify.messages import Notice

__all__ = [
    "BACKUP_META",
    "ConsortiumProgress",
    "RecoveryProgress",
    "RecoverySession",
    "ServiceBackup",
    "backup_service_keys",
    "issue_shares",
    "recover",
]

#: Meta-table name of the operator's sealed service-key backup. Outside ``recovery/…``,
#: where a consortium id could collide with it.
BACKUP_META: Final = "recovery-service-backup"
_BACKUP_FORMAT: Final = "consortia-service-backup/1"
#: Most k-subsets of the submitted shares tried to get past a wrong one (see _open).
_MAX_SUBSETS: Final = 2000

_Roster = tuple[int | None, tuple[tuple[str, bytes, bytes], ...]]


def _roster(constitution: Constitution) -> _Roster:
    """Threshold, active members and their keys: a change in this re-issues the shares."""
    return constitution.recovery_threshold, tuple(
        (m.id, m.signing_key.raw, m.encryption_key.raw)
        for m in (constitution.members[i] for i in constitution.active_ids())
    )


def issue_shares(
    batch: Batch, service: ServiceIdentity | None = None, *, force: bool = False
) -> RecoveryRecord | None:
    """Issue new shares in ``batch`` if its active members or their keys changed (or ``force``).

    Stages one ``notice`` per active member (the batch's last seqno is the epoch) and, in the
    batch's own transaction, the record, the pointer to it and the withdrawal of the previous
    one; the last record commits to the new one (``detail["recovery"]``). Returns the record
    staged, or None. ``service`` is accepted for the callers' sake and deliberately not used: the
    record wraps this consortium's keyring only (see the module docstring).
    """
    del service  # never wrapped for recovery: it would open every consortium's roots
    committed = batch.base
    last = batch.last_tx
    if last is None:
        return None
    if not force and (
        batch.constitution is committed.constitution
        or _roster(batch.constitution) == _roster(committed.constitution)
    ):
        return None
    constitution = batch.constitution
    members: list[Member] = [constitution.members[i] for i in constitution.active_ids()]
    if not members:
        return None
    (epoch, last_txid), cid = last, batch.cid
    threshold = constitution.recovery_threshold_for(len(members))
    key = batch.random(KEY_BYTES)
    shares = split_key(key, threshold, len(members))
    record = RecoveryRecord(
        cid=cid,
        epoch=epoch,
        threshold=threshold,
        holders={
            x: holder_digest(cid, epoch, x, m.id, m.signing_key)
            for (x, _), m in zip(shares, members, strict=True)
        },
        keyring=wrap(
            key,
            (batch.new_keyring or committed.keyring).to_bytes(),
            wrap_aad(cid, epoch, "keyring"),
        ),
    )
    # The ledger commits to the record, so `ledger verify` finds it deleted or altered.
    batch.note_in_last_record(RECOVERY_FIELD, hashlib.sha256(record.to_bytes()).hexdigest())
    notices = []
    for (x, value), member in zip(shares, members, strict=True):
        share = Share(cid, epoch, x, threshold, value)
        body: JSONObject = {
            "event": "recovery_share",
            "consortium": cid,
            "epoch": epoch,
            "x": x,
            "threshold": threshold,
            "holders": len(members),
            "sealed": seal_share(member.encryption_key, share),
        }
        notices.append(Notice(member.id, "notice", last_txid, None, "recovery", body))
    batch.notify(notices)
    # One transaction with the shares: the record, the pointer, the previous one withdrawn.
    pointer = batch.store.meta_get(record_name(cid))
    batch.rows.meta[record_name(cid, epoch)] = record.to_bytes()
    batch.rows.meta[record_name(cid)] = str(epoch).encode()
    previous = pointer.decode("ascii", errors="replace") if pointer else ""
    if previous.isdigit() and int(previous) != epoch:
        batch.rows.meta[record_name(cid, int(previous))] = b""
    return record


# -- the operator's service-key backup ------------------------------------------------------


@dataclass(frozen=True)
class ServiceBackup:
    """The service keys sealed (``crypto_box_seal``) to the operator's X25519 key.

    The public fields say which key opens it and which service keys it claims to hold;
    they are checked when it is opened, never trusted before.
    """

    recipient: PublicEncryptionKey
    service_key: VerifyKey
    encryption_key: PublicEncryptionKey
    sealed: bytes

    def __repr__(self) -> str:
        return f"ServiceBackup(recipient={self.recipient.to_jwk()['x']!r}, <sealed>)"

    def to_bytes(self) -> bytes:
        """Stored form: canonical JSON, every field public or sealed."""
        doc: JSONObject = {
            "format": _BACKUP_FORMAT,
            "recipient": dict(self.recipient.to_jwk()),
            "service_key": dict(self.service_key.to_jwk()),
            "encryption_key": dict(self.encryption_key.to_jwk()),
            "sealed": b64url_encode(self.sealed),
        }
        return canonical(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> ServiceBackup:
        """Parse :meth:`to_bytes` output; ``bad_request`` saying what is wrong."""
        doc = loads_strict(data, what="service-key backup")
        if not isinstance(doc, dict) or doc.get("format") != _BACKUP_FORMAT:
            raise BadRequest(
                f"not a service-key backup (format {_BACKUP_FORMAT!r}, as "
                "`consortia recovery backup` writes it)"
            )
        try:
            return cls(
                PublicEncryptionKey.from_jwk(doc["recipient"], what="backup recipient"),
                VerifyKey.from_jwk(doc["service_key"], what="backup service_key"),
                PublicEncryptionKey.from_jwk(doc["encryption_key"], what="backup encryption_key"),
                b64url_decode(str(doc["sealed"]), what="backup sealed"),
            )
        except KeyError as exc:
            raise BadRequest(f"the service-key backup lacks {exc}") from None

    @classmethod
    def seal(cls, service: ServiceIdentity, recipient: PublicEncryptionKey) -> ServiceBackup:
        """Seal ``service`` to ``recipient`` (only its private key opens the result)."""
        return cls(
            recipient,
            service.signing.verify_key,
            service.encryption.public_key,
            seal_anonymous(recipient, service.to_bytes()),
        )

    def open(self, key: EncryptionKey) -> ServiceIdentity:
        """The service keys, with the operator's private key; refused with any other."""
        if key.public_key != self.recipient:
            raise BadSignature(
                "the service-key backup is sealed to another key (X25519 x="
                f"{self.recipient.to_jwk()['x']}); give the key file whose encryption key "
                "`consortia recovery backup --to` was given"
            )
        try:
            service = ServiceIdentity.from_bytes(open_anonymous(self.sealed, key))
        except LedgerCorrupted as exc:
            raise BadRequest(f"the service-key backup is damaged: {exc}") from None
        if (
            service.signing.verify_key != self.service_key
            or service.encryption.public_key != self.encryption_key
        ):
            raise BadRequest("the service-key backup's public keys do not match its content")
        return service


def backup_service_keys(data_dir: Path, recipient: PublicEncryptionKey) -> ServiceBackup:
    """Operator, on the TEP's host: seal the service keys to ``recipient`` into the storage.

    Needs ``data_dir``'s node key; safe while the platform runs (it reads the wrapped service
    keys and writes one meta row). The sealed copy travels with every later storage copy;
    only ``recipient``'s private key opens it, and a recovery needs it (module docstring).
    """
    database = DataDir(data_dir).ledger
    if not database.exists():
        raise NotFound(f"no ledger at {database}: point --data at the platform's folder")
    node_key = load_node_key(DataDir(data_dir).node_key)
    store = SQLiteStore(database)
    try:
        backup = ServiceBackup.seal(ServiceIdentity.load(store, node_key), recipient)
        store.meta_put(BACKUP_META, backup.to_bytes())
    finally:
        store.close()
    return backup


# -- recovering -----------------------------------------------------------------------------


@dataclass
class _Pending:
    """The shares received for one consortium, by epoch then x-coordinate."""

    current: RecoveryRecord | None = None
    records: dict[int, RecoveryRecord] = field(default_factory=dict)
    shares: dict[int, dict[int, ShareSubmission]] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True)
class _Recovered:
    keyring: Keyring


@dataclass(frozen=True)
class ConsortiumProgress:
    """How far one consortium is: shares received for its best epoch, and k."""

    consortium: str
    received: int
    threshold: int
    #: Why k shares did not open it (a wrong share, a submitter no longer active), if so.
    problem: str | None = None

    @property
    def ready(self) -> bool:
        """k shares are in (whether they open the record is known at finish)."""
        return self.threshold > 0 and self.received >= self.threshold

    def to_json(self) -> JSONObject:
        """``{"consortium", "received", "threshold"}`` (+ ``"problem"``); no secrets."""
        doc: JSONObject = {
            "consortium": self.consortium,
            "received": self.received,
            "threshold": self.threshold,
        }
        if self.problem is not None:
            doc["problem"] = self.problem
        return doc


@dataclass(frozen=True)
class RecoveryProgress:
    """Where a recovery stands, for members (``GET /v1/recovery``)."""

    consortia: tuple[ConsortiumProgress, ...]
    complete: bool
    #: The service key the platform will come back with (from the operator's backup).
    service_key: VerifyKey | None

    def of(self, cid: str) -> ConsortiumProgress:
        """One consortium's progress; ``not_found`` if the storage holds no such consortium."""
        for item in self.consortia:
            if item.consortium == cid:
                return item
        raise NotFound(f"no consortium {cid[:80]!r} in the storage being recovered")

    def to_json(self, consortium: str | None = None) -> JSONObject:
        """Counts for all, and named progress for ``consortium`` (give it only to a holder)."""
        doc: JSONObject = {
            "complete": self.complete,
            "consortia": len(self.consortia),
            "ready": sum(1 for c in self.consortia if c.ready),
            "service_key": None if self.service_key is None else dict(self.service_key.to_jwk()),
        }
        if consortium is not None:
            doc["consortium"] = self.of(consortium).to_json()
        return doc


class RecoverySession:
    """Recovery of a data directory that has lost its node key (see the module docstring).

    Thread-safe: the HTTP service calls it from worker threads.
    """

    def __init__(self, data_dir: Path) -> None:
        if DataDir(data_dir).node_key.exists():
            raise BadRequest(
                f"{data_dir} still has a node key: recovery opens a copy of the storage "
                "without one; open it with Platform.open instead"
            )
        database = DataDir(data_dir).ledger
        if not database.exists():
            raise NotFound(f"no ledger at {database}")
        self.data_dir = data_dir
        self.store = SQLiteStore(database)
        self.complete = False
        self._lock = threading.RLock()
        self._service: ServiceIdentity | None = None
        self._pending: dict[str, _Pending] = {cid: _Pending() for cid in self.store.consortia()}
        for cid, pending in self._pending.items():
            pending.current = self._current_record(cid)

    def __repr__(self) -> str:
        return f"RecoverySession({self.data_dir}, consortia={len(self._pending)})"

    def close(self) -> None:
        """Close the storage (a finished session is closed already)."""
        self.store.close()

    def _current_record(self, cid: str) -> RecoveryRecord | None:
        """The record the pointer names, so progress shows k before any share arrives."""
        pointer = self.store.meta_get(record_name(cid))
        text = pointer.decode("ascii", errors="replace") if pointer else ""
        if not text.isdigit():
            return None  # created before recovery shares existed, and never re-issued
        blob = self.store.meta_get(record_name(cid, int(text)))
        if not blob:
            return None
        record = RecoveryRecord.from_bytes(blob)
        self._pending[cid].records[record.epoch] = record
        return record

    def _record(self, cid: str, epoch: int) -> RecoveryRecord | None:
        """The stored record of ``cid``'s ``epoch``; None if withdrawn, unknown or absent."""
        pending = self._pending.get(cid)
        if pending is None:
            return None
        found = pending.records.get(epoch)
        if found is None:
            blob = self.store.meta_get(record_name(cid, epoch))
            if not blob:
                return None
            found = pending.records[epoch] = RecoveryRecord.from_bytes(blob)
        return found

    def _holder_record(self, claim: HolderClaim) -> RecoveryRecord:
        """The record naming ``claim``'s member as a holder, or one refusal for every miss.

        One code and message whether the consortium exists, the epoch was replaced or
        never issued, or the signer holds no share: an outsider learns nothing of which
        consortia this storage holds (as the platform's reads, docs/protocol-notes.md).
        """
        record = self._record(claim.cid, claim.epoch)
        if record is None or not holds(record, claim):
            raise BadSignature(
                f"{claim.member!r} holds no current recovery share {claim.x} of "
                f"{claim.cid[:80]!r} (epoch {claim.epoch}) here: submit the newest share you "
                "were sent (older ones stop working when shares are re-issued), with the key "
                "it was sealed to"
            )
        return record

    # -- the service keys, through the operator ----------------------------------------------

    def restore_service(self, key: EncryptionKey, backup: bytes | None = None) -> VerifyKey:
        """Open the operator's service-key backup (the stored one, or ``backup``'s bytes).

        It must open with ``key`` and its signing key must have signed the newest root of
        every consortium in the storage, so a backup of another platform is refused at once.
        The stored rows are not authenticated yet; :meth:`finish` checks them again with the
        keyrings (see ``_check_service_key``). Returns the service signing key.
        """
        blob = self.store.meta_get(BACKUP_META) if backup is None else backup
        if not blob:
            raise BadRequest(
                "this storage holds no service-key backup: the service keys are in no "
                "consortium's recovery record (k members of one consortium must not get them), "
                "so the operator seals them with `consortia recovery backup` while the TEP "
                "still has its node key; give that backup file with --backup if it was kept apart"
            )
        service = ServiceBackup.from_bytes(blob).open(key)
        for cid in self._pending:
            row = self.store.latest_signed_root(cid)
            if row is None:
                raise BadRequest(f"{cid!r} has no signed root to check the service-key backup by")
            try:
                verify_signed_root(row.jws, service.signing.verify_key)
            except BadSignature:
                raise BadSignature(
                    f"the service-key backup is not this platform's: the newest signed root of "
                    f"{cid!r} is not signed by its key; use the backup made on this platform"
                ) from None
        with self._lock:
            self._service = service
        return service.signing.verify_key

    # -- shares ---------------------------------------------------------------------------

    def submit(self, body: str) -> Share:
        """Accept one member's signed share; refused unless the record names that holder.

        Refused, changing nothing: a body that is not a signed submission (``bad_request``),
        one whose signer the current record does not name as the holder (``bad_signature``,
        one message for a stranger, a replaced or unknown epoch and an unknown consortium),
        a share already received (``replay``), and every share once the recovery is complete.
        """
        submission = parse_submission(body)
        share = submission.share
        with self._lock:
            if self.complete:
                raise BadRequest("this platform has already recovered; no more shares are needed")
            record = self._holder_record(HolderClaim.of(submission))
            pending = self._pending[share.cid]
            received = pending.shares.get(share.epoch, {})
            if share.x in received:
                raise Replay(
                    f"the recovery share of {submission.member!r} for {share.cid!r} (epoch "
                    f"{share.epoch}) was already received; it counts once "
                    f"({len(received)} of {record.threshold})"
                )
            pending.shares.setdefault(share.epoch, {})[share.x] = submission
            pending.problem = None  # a new share may get past a wrong one
        return share

    def _progress_of(self, cid: str, pending: _Pending) -> ConsortiumProgress:
        best = (0, pending.current.threshold if pending.current is not None else 0)
        for epoch, shares in pending.shares.items():
            best = max(best, (len(shares), pending.records[epoch].threshold))
        return ConsortiumProgress(cid, best[0], best[1], pending.problem)

    def holder_progress(self, token: str, *, now: int | None = None) -> ConsortiumProgress:
        """The progress of the consortium a holder proof (``sign_holder_proof``) names.

        Refused (``bad_signature``, one message) unless a current record names its signer.
        """
        claim = parse_holder_proof(token, now=int(time.time()) if now is None else now)
        with self._lock:
            self._holder_record(claim)
            return self._progress_of(claim.cid, self._pending[claim.cid])

    def progress(self) -> RecoveryProgress:
        """Per consortium: shares received for its best epoch and k; complete or not."""
        with self._lock:
            items = tuple(self._progress_of(c, p) for c, p in sorted(self._pending.items()))
            key = None if self._service is None else self._service.signing.verify_key
            return RecoveryProgress(items, self.complete, key)

    def status(self) -> dict[str, tuple[int, int]]:
        """Per consortium: (shares received for its best epoch, shares needed)."""
        return {c.consortium: (c.received, c.threshold) for c in self.progress().consortia}

    @property
    def ready(self) -> bool:
        """Every consortium has k shares and the service keys are restored: finish may go."""
        progress = self.progress()
        return (
            self._service is not None
            and bool(progress.consortia)
            and all(c.ready for c in progress.consortia)
        )

    # -- finishing ------------------------------------------------------------------------

    def _open_keyring(self, cid: str, record: RecoveryRecord, key: bytes) -> Keyring | None:
        try:
            plain = unwrap(key, record.keyring, record.aad("keyring"), what=f"keyring of {cid}")
        except LedgerCorrupted:
            return None  # not the recovery key: a wrong share is among these
        return Keyring.from_bytes(plain)

    def _runtime(self, cid: str, keyring: Keyring, service: ServiceIdentity) -> ConsortiumRuntime:
        row = self.store.consortium(cid)
        if row is None:
            raise NotFound(f"no consortium {cid!r} in this storage")
        info = loads_strict(keyring.decrypt(row.info, b"info|" + cid.encode(), what="info"))
        if not isinstance(info, dict):
            raise LedgerCorrupted(f"info of {cid} is not an object")
        runtime = ConsortiumRuntime(
            cid=cid,
            store=self.store,
            keyring=keyring,
            sealer=Sealer(service.encryption),
            service_key=service.signing,
            info=info,
        )
        runtime.reload()
        return runtime

    def _check_service_key(self, runtime: ConsortiumRuntime, service: ServiceIdentity) -> None:
        """The restored signing key signed this consortium's newest root, as authenticated.

        :meth:`restore_service` checked the plain root rows already; only now, with the
        keyring, is the row's MAC checkable, so rows and a backup swapped together by
        someone who can write the storage (keys of their own, sealed to the operator's
        public key) are refused here, before anything is written.
        """
        cid = runtime.cid
        row = self.store.latest_signed_root(cid)
        if row is None or not hmac.compare_digest(
            runtime.signed_root_mac(row.tree_size, row.previous, row.jws), row.mac
        ):
            raise BadSignature(
                f"the newest signed root of {cid!r} in this storage is not the platform's own "
                "(its MAC does not check): the storage was altered; recover from another copy"
            )
        try:
            verify_signed_root(row.jws, service.signing.verify_key)
        except BadSignature:
            raise BadSignature(
                f"the service keys restored are not the ones that signed {cid!r}'s roots: "
                "the service-key backup or the storage was altered; recover from another copy"
            ) from None

    def _open(self, cid: str, service: ServiceIdentity) -> _Recovered:
        """Unwrap ``cid``'s keyring from k of its shares, whose submitters are still active.

        Shamir shares carry no check of their own, so a holder's wrong share (a damaged
        file, or sabotage) shows only as a key that does not unwrap; with more than k shares
        in, k-subsets are tried (at most _MAX_SUBSETS) until one unwraps and all its
        submitters are active members with the key that signed.
        """
        pending = self._pending[cid]
        failure: ConsortiaError | None = None
        for epoch, shares in sorted(pending.shares.items(), reverse=True):
            record = pending.records[epoch]
            if len(shares) < record.threshold:
                continue
            runtime: ConsortiumRuntime | None = None
            subsets = itertools.combinations(sorted(shares), record.threshold)
            for xs in itertools.islice(subsets, _MAX_SUBSETS):
                chosen = [shares[x] for x in xs]
                key = combine_key([(s.share.x, s.share.value) for s in chosen], record.threshold)
                keyring = self._open_keyring(cid, record, key)
                if keyring is None:
                    failure = failure or BadRequest(
                        f"the {len(shares)} shares submitted for {cid!r} do not open its "
                        "recovery record: one is not the share its member was sent; the "
                        "members should check their share files (more shares can get past it)"
                    )
                    continue
                if runtime is None:
                    runtime = self._runtime(cid, keyring, service)
                    self._check_service_key(runtime, service)
                members = runtime.constitution.members
                stale = sorted(
                    s.member
                    for s in chosen
                    if (m := members.get(s.member)) is None
                    or not m.active
                    or m.signing_key != s.signing_key
                )
                if not stale:
                    return _Recovered(keyring)
                failure = BadSignature(
                    f"{', '.join(map(repr, stale))} of {cid!r} are no longer active members with "
                    "the key that signed their share; shares of active members are needed"
                )
        if failure is not None:
            raise failure
        have, need = self.status()[cid]
        raise BadRequest(
            f"cannot recover {cid!r}: {have} recovery share(s) submitted, "
            f"{need or 'a majority of the members'} needed"
            + ("" if need else " (it has no recovery record: its shares were never issued)")
        )

    def finish(self) -> None:
        """Recover every consortium, then write a new node key and re-wrap under it.

        Raises (and writes nothing) unless the service keys are restored and every
        consortium has enough valid shares. Crash-safe: the new key gets its name
        ``node.key`` only after every keyring and the service keys are re-wrapped under it,
        so an interrupted finish leaves a copy that a new session recovers again.
        """
        with self._lock:
            if self.complete:
                return
            if not self._pending:
                raise BadRequest("this storage holds no consortium: there is nothing to recover")
            service = self._service
            if service is None:
                raise BadRequest(
                    "the service keys are not restored: they are recovered only through the "
                    "operator (RecoverySession.restore_service with the key that "
                    "`consortia recovery backup` sealed them to)"
                )
            recovered: dict[str, _Recovered] = {}
            for cid, pending in sorted(self._pending.items()):
                try:
                    recovered[cid] = self._open(cid, service)
                    pending.problem = None
                except ConsortiaError as exc:
                    if self._progress_of(cid, pending).ready:
                        pending.problem = exc.message  # k shares in, and still no key
                    raise
            staged = self.data_dir / "node.key.recovering"
            node_key = load_or_create_node_key(staged)
            for cid, found in recovered.items():
                self.store.rewrap_keyring(
                    cid, wrap(node_key, found.keyring.to_bytes(), b"keyring|" + cid.encode())
                )
            service.save(self.store, node_key)
            os.replace(staged, DataDir(self.data_dir).node_key)
            dir_fd = os.open(self.data_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self.complete = True
            self.close()


def recover(
    data_dir: Path,
    submissions: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    backup_key: EncryptionKey,
) -> None:
    """Recover ``data_dir`` (a copy without a node key) from members' signed shares.

    ``submissions`` is a list of signed shares (or lists of them by consortium);
    ``backup_key`` opens the operator's service-key backup. Afterwards
    :meth:`consortia.engine.Platform.open` opens the directory with its new node key.
    """
    bodies = (
        [b for group in submissions.values() for b in group]
        if isinstance(submissions, Mapping)
        else list(submissions)
    )
    session = RecoverySession(data_dir)
    try:
        session.restore_service(backup_key)
        for body in bodies:
            session.submit(body)
        session.finish()
    finally:
        session.close()
