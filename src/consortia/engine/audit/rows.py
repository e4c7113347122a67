"""The consortium's rows besides the ledger proper: nonces, directory, proposals, recovery.

Each agrees with the records walked: every request's nonce is marked used by it, every key
with versions has its directory entry, every approved proposal is stored, and the stored
recovery record is the one the ledger committed to.
"""

from __future__ import annotations

import hashlib

from consortia._json import loads_strict
from consortia.engine.audit.state import AuditState
from consortia.engine.consortium import parent_of
from consortia.engine.operator import operator_nonce_name
from consortia.errors import ConsortiaError
from consortia.identity.jws import parse_compact
from consortia.ledger.crypto import LedgerCorrupted
from consortia.ledger.recovery import RecoveryRecord, record_name

__all__ = ["RowChecks"]


class RowChecks(AuditState):
    """The checks of a consortium's other rows, against what its walk gathered."""

    # -- the rest of the consortium's rows ---------------------------------------------------

    def _expect_operator_nonce(self, request: str, txid: str) -> None:
        """The creation's operator nonce is still marked used, by this creation: otherwise a
        replay of the operator's request would not be refused."""
        payload = loads_strict(parse_compact(request).payload, what="stored request")
        nonce = payload.get("nonce") if isinstance(payload, dict) else None
        marks = {
            self.store.meta_get(operator_nonce_name(key, str(nonce)))
            for key in (self.nonce_key, self.node_key)  # the node key: older stores
        }
        if txid.encode() not in marks:
            raise LedgerCorrupted(
                "the platform no longer marks the creation request's operator nonce used "
                "(its meta entry was deleted or altered): a replay of it would not be refused"
            )

    def _expect_nonce(self, request: str, txid: str, member: str) -> None:
        payload = loads_strict(parse_compact(request).payload, what="stored request")
        if not isinstance(payload, dict) or not isinstance(payload.get("nonce"), str):
            raise LedgerCorrupted("a stored request has no nonce")
        who = payload.get("member", member)
        nonce_hash = self.runtime.nonce_hash(str(who), str(payload["nonce"]))
        if self.nonces.setdefault(nonce_hash, txid) != txid:
            raise LedgerCorrupted("two stored requests share one nonce")

    def _names(self) -> None:
        seen = set()
        for row in self.store.scan_names(self.cid):
            key = self.runtime.name_from_row(row)
            newest = self.latest.get(row.name_hash)
            if newest is None or newest[2] != key or self.runtime.name_hash(key) != row.name_hash:
                raise self.fail(f"directory entry {key!r} matches no stored state version")
            if row.parent_hash != self.runtime.sealed.dir_hash(parent_of(key)):
                raise self.fail(f"directory entry {key!r} is filed under another directory")
            if row.alive == newest[1]:
                raise self.fail(f"directory entry {key!r} disagrees with its newest version")
            seen.add(row.name_hash)
        for name_hash, (seqno, _, key) in self.latest.items():
            if name_hash not in seen:
                raise self.fail(f"key {key!r} has versions but no directory entry", seqno)

    def _proposals(self) -> int:
        count = 0
        for row in self.store.scan_proposals(self.cid):
            proposal = self.runtime.proposal_from_row(row)
            if self.runtime.proposal_hash(proposal.id) != row.pid_hash:
                raise self.fail(f"proposal {proposal.id} is filed under another id")
            if row.is_open != proposal.is_open:
                raise self.fail(f"proposal {proposal.id} is filed with the wrong status")
            self._expect_nonce(proposal.request, proposal.id, proposal.requester)
            seqno = self.approved.pop(proposal.id, None)
            if seqno is not None and proposal.seqno != seqno:
                raise self.fail(f"proposal {proposal.id} names seqno {proposal.seqno}", seqno)
            count += 1
        for pid, seqno in sorted(self.approved.items(), key=lambda item: item[1]):
            raise self.fail(f"the approved proposal {pid} is missing from storage", seqno)
        return count

    def _nonces(self) -> None:
        stored = {row.nonce_hash: row.txid for row in self.store.scan_nonces(self.cid)}
        for nonce_hash, txid in self.nonces.items():
            if stored.pop(nonce_hash, None) != txid:
                raise self.fail(
                    f"the nonce of request {txid} is missing or names another request",
                    self.committed.get(txid),
                )
        if stored:
            raise self.fail(f"{len(stored)} stored nonces belong to no stored request")

    def _recovery(self, size: int) -> tuple[int | None, bool]:
        """The stored recovery record against the ledger record that committed to it: the
        pointer names that epoch and the record's bytes hash to what the ledger says, so a
        record deleted or altered in storage is found now, not on the day members need it.

        Returns the epoch, and whether the ledger commits to the record (a record issued by
        an older build is only parsed: no record of the ledger names it).
        """
        pointer = self.store.meta_get(record_name(self.cid))
        epoch: int | None = None
        if pointer is not None:
            text = pointer.decode("ascii", errors="replace")
            if not text.isdigit() or int(text) >= size:
                raise self.fail(f"the recovery pointer names no epoch of the ledger: {text!r}")
            epoch = int(text)
        if self.recovery is None:
            if epoch is not None:
                self._recovery_record(epoch)
            return epoch, False
        issued, digest = self.recovery
        if epoch != issued:
            raise self.fail(
                f"the ledger issued recovery shares at epoch {issued} but the recovery pointer "
                f"names {'none' if epoch is None else f'epoch {epoch}'}: members' shares would "
                "open nothing (the pointer was changed or deleted)",
                issued,
            )
        stored = self._recovery_record(issued)
        if hashlib.sha256(stored).hexdigest() != digest:
            raise self.fail(
                f"the recovery record of epoch {issued} is not the one the ledger committed to: "
                "it was altered, and members' shares would not open it",
                issued,
            )
        return issued, True

    def _recovery_record(self, epoch: int) -> bytes:
        stored = self.store.meta_get(record_name(self.cid, epoch))
        if not stored:
            raise self.fail(f"the recovery record of epoch {epoch} is missing", epoch)
        try:
            record = RecoveryRecord.from_bytes(stored)
        except ConsortiaError as exc:
            raise self.fail(f"the recovery record of epoch {epoch}: {exc.message}", epoch) from None
        if (record.cid, record.epoch) != (self.cid, epoch):
            raise self.fail(
                f"the recovery record filed at epoch {epoch} is for consortium "
                f"{record.cid!r} at epoch {record.epoch}",
                epoch,
            )
        return stored
