"""The receiving half of a recovery: members' signed shares and the operator's service keys.

:class:`ShareIntake` opens a copy of the storage that has no node key, answers which record
each consortium's shares must open, accepts a share only from a holder that record names,
restores the service keys from the operator's backup, and reports progress.
:class:`~consortia.engine.recovery.session.RecoverySession` adds the finish.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from consortia.engine.datadir import DataDir
from consortia.engine.recovery.backup import BACKUP_META, ServiceBackup
from consortia.engine.recovery.progress import ConsortiumProgress, RecoveryProgress
from consortia.engine.service import ServiceIdentity
from consortia.errors import BadRequest, BadSignature, NotFound, Replay
from consortia.identity.keys import EncryptionKey, VerifyKey
from consortia.ledger.receipts import verify_signed_root
from consortia.ledger.recovery import (
    HolderClaim,
    RecoveryRecord,
    Share,
    ShareSubmission,
    holds,
    parse_holder_proof,
    parse_submission,
    record_name,
)
from consortia.ledger.sqlite import SQLiteStore

__all__ = ["ShareIntake"]


@dataclass
class _Pending:
    """The shares received for one consortium, by epoch then x-coordinate."""

    current: RecoveryRecord | None = None
    records: dict[int, RecoveryRecord] = field(default_factory=dict)
    shares: dict[int, dict[int, ShareSubmission]] = field(default_factory=dict)
    problem: str | None = None


class ShareIntake:
    """The shares and service keys a recovery has received (see the module docstring).

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
