"""One consortium's walk: state versions, then the ledger proper, then the other rows.

Each record decrypts, matches its digest and row, and is matched with the state versions
it wrote; the Merkle tree rebuilt from the records equals every stored node and every
signed root. :meth:`Auditor.run` then checks the other rows
(:mod:`~consortia.engine.audit.rows`, :mod:`~consortia.engine.audit.queues`) and reloads the
consortium as a restart would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from consortia.engine.audit.queues import QueueChecks
from consortia.engine.audit.results import (
    ENTRY_KINDS,
    ConsortiumAudit,
    Entry,
    LedgerDamaged,
    entry_kind,
)
from consortia.engine.audit.rows import RowChecks
from consortia.errors import ConsortiaError
from consortia.identity.jws import txid_of
from consortia.ledger.crypto import LedgerCorrupted
from consortia.ledger.merkle import MerkleFrontier, leaf_hash, leaf_input, perfect_subtree_count
from consortia.ledger.receipts import SignedRoot, verify_signed_root
from consortia.ledger.records import (
    NOTIFICATIONS_FIELD,
    RECOVERY_FIELD,
    TxRecord,
    parse_record,
    version_digest,
)
from consortia.ledger.store import SignedRootRow, TxRow

__all__ = ["Auditor"]


class Auditor(RowChecks, QueueChecks):
    """One consortium's walk (see the module docstring)."""

    def run(self) -> ConsortiumAudit:
        runtime = self.runtime
        try:
            versions = self._versions()
            try:
                size, root, roots = self._walk()
            except LedgerDamaged as exc:
                # A version problem at an earlier seqno is the first bad one.
                if self.problems and (exc.seqno is None or min(self.problems)[0] < exc.seqno):
                    seqno, message = min(self.problems)
                    raise self.fail(message, seqno) from None
                raise
            if self.problems:
                seqno, message = min(self.problems)
                raise self.fail(message, seqno)
            self._names()
            proposals = self._proposals()
            self._nonces()
            notifications, before, awaiting = self._notifications(size)
            epoch, committed = self._recovery(size)
            # Finally what a restart does: constitution, open proposals, frontier.
            runtime.reload()
        except LedgerDamaged:
            raise
        except ConsortiaError as exc:
            raise self.fail(exc.message) from None
        kinds = {kind: self.kinds[kind] for kind in ENTRY_KINDS}
        return ConsortiumAudit(
            self.cid,
            size,
            root,
            roots,
            versions,
            notifications,
            proposals,
            kinds,
            before,
            awaiting,
            epoch,
            committed,
        )

    # -- state versions first, so each record can be matched with what it wrote ------------

    def _versions(self) -> int:
        count = 0
        for row in self.store.scan_versions(self.cid):
            count += 1
            try:
                version = self.runtime.version_from_row(row)
            except ConsortiaError as exc:
                self.problems.append((row.seqno, exc.message))
                continue
            if self.runtime.name_hash(version.key) != row.name_hash:
                self.problems.append((row.seqno, "a state version is filed under another key"))
                continue
            digest = version_digest(version.key, version.value, version.audience, version.salt)
            self.writes.setdefault(row.seqno, Counter())[digest] += 1
            self.version_txids.setdefault(row.seqno, set()).add(row.txid)
            newest = self.latest.get(row.name_hash)
            if newest is None or newest[0] < row.seqno:
                self.latest[row.name_hash] = (row.seqno, version.deleted, version.key)
        return count

    # -- the ledger proper: records, leaves, nodes, signed roots ----------------------------

    def _walk(self) -> tuple[int, str, int]:
        size = self.store.tree_size(self.cid)
        frontier = MerkleFrontier()
        roots = self.store.scan_signed_roots(self.cid)
        pending = next(roots, None)
        checked = 0
        self.previous_root = 0
        for row in self._rows(size):
            seqno = row.seqno
            try:
                record = self._record(row)
                self._check_writes(record)
            except ConsortiaError as exc:
                self.problems.append((seqno, exc.message))
                return size, frontier.root().hex(), checked
            leaf = leaf_hash(leaf_input(seqno, bytes.fromhex(row.txid), row.digest))
            if row.leaf_hash != leaf:
                self.problems.append((seqno, "its stored leaf hash is missing or wrong"))
                return size, frontier.root().hex(), checked
            for level, index, value in frontier.append(leaf)[1:]:
                if self.store.merkle_node(self.cid, level, index) != value:
                    self.problems.append(
                        (seqno, f"stored Merkle node (level {level}, index {index}) is wrong")
                    )
                    return size, frontier.root().hex(), checked
            while pending is not None and pending.tree_size <= frontier.size:
                self._check_root(pending, frontier, seqno)
                checked += 1
                pending = next(roots, None)
        if pending is not None:
            raise self.fail(
                f"a signed root covers {pending.tree_size} transactions; the ledger has {size}",
                size,
            )
        last = self.store.latest_signed_root(self.cid)
        covered = 0 if last is None else last.tree_size
        if covered != size:
            raise self.fail(
                f"no signed root covers the ledger's last {size - covered} leaves", covered
            )
        stored = self.store.merkle_node_count(self.cid)
        if stored != perfect_subtree_count(size):
            raise self.fail(
                f"storage holds {stored} Merkle nodes; a tree of {size} leaves has "
                f"{perfect_subtree_count(size)}",
                size if stored > perfect_subtree_count(size) else None,
            )
        for seqno in sorted(self.writes):
            self.problems.append((seqno, "state versions belong to no record at this seqno"))
        return size, frontier.root().hex(), checked

    def _rows(self, size: int) -> Iterator[TxRow]:
        expected = 0
        for row in self.store.scan_txs(self.cid):
            if row.seqno != expected:
                raise self.fail(
                    f"its transaction row is missing (the next stored is {row.seqno})", expected
                )
            expected += 1
            yield row
        if expected != size:
            raise self.fail(f"the ledger ends at seqno {expected - 1}, not {size - 1}", expected)

    def _record(self, row: TxRow) -> TxRecord:
        data = self.runtime.record_bytes(row)  # decrypts (AAD: consortium, seqno) and checks digest
        try:
            record = parse_record(data)
        except ValueError as exc:
            raise LedgerCorrupted(f"record is unreadable: {exc}") from None
        if (record.consortium, record.seqno, record.txid) != (self.cid, row.seqno, row.txid):
            raise LedgerCorrupted(
                f"record names consortium {record.consortium!r}, seqno {record.seqno}, txid "
                f"{record.txid}; its row says {self.cid!r}, {row.seqno}, {row.txid}"
            )
        if record.request is not None:
            if txid_of(record.request) != record.txid:
                raise LedgerCorrupted("the record's request does not hash to its txid")
            self._expect_nonce(record.request, record.txid, record.member)
            if record.seqno == 0:
                self._expect_operator_nonce(record.request, record.txid)
        self.committed[record.txid] = record.seqno
        kind = entry_kind(record)
        self.kinds[kind] += 1
        if self.on_entry is not None:
            self.on_entry(Entry(self.cid, record.seqno, record.txid, kind))
        proposal = record.detail.get("proposal")
        if isinstance(proposal, str):
            self.approved[proposal] = record.seqno
        recovery = record.detail.get(RECOVERY_FIELD)
        if recovery is not None:
            self.recovery = (record.seqno, str(recovery))
        queued = record.detail.get(NOTIFICATIONS_FIELD)
        if queued is not None:
            self.queue_digests[record.seqno] = str(queued)
        return record

    def _check_writes(self, record: TxRecord) -> None:
        found = self.writes.pop(record.seqno, Counter())
        txids = self.version_txids.pop(record.seqno, set())
        if found != Counter(record.writes):
            raise LedgerCorrupted(
                f"the record lists {len(record.writes)} state versions; storage holds "
                f"{found.total()} that match {sum((found & Counter(record.writes)).values())}"
            )
        if txids - {record.txid}:
            raise LedgerCorrupted("a state version of this seqno names another txid")

    def _check_root(self, row: SignedRootRow, frontier: MerkleFrontier, seqno: int) -> None:
        if row.tree_size != frontier.size:
            raise self.fail(f"a signed root is filed at tree size {row.tree_size}", seqno)
        if self.runtime.signed_root_mac(row.tree_size, row.previous, row.jws) != row.mac:
            raise self.fail(f"the signed root row at tree size {row.tree_size} was altered", seqno)
        if row.previous != self.previous_root:
            raise self.fail(
                f"the signed root at tree size {row.tree_size} follows one at "
                f"{row.previous}; storage has none between {self.previous_root} and it",
                seqno,
            )
        self.previous_root = row.tree_size
        try:
            signed: SignedRoot = verify_signed_root(row.jws, self.runtime.service_key.verify_key)
        except ConsortiaError as exc:
            message = f"signed root at tree size {row.tree_size}: {exc.message}"
            raise self.fail(message, seqno) from None
        if (signed.consortium, signed.tree_size) != (self.cid, row.tree_size):
            raise self.fail(
                f"signed root filed at tree size {row.tree_size} is for consortium "
                f"{signed.consortium!r} at tree size {signed.tree_size}",
                seqno,
            )
        if signed.root != frontier.root():
            raise self.fail(
                f"signed root at tree size {row.tree_size} is {signed.root.hex()}; the tree "
                f"rebuilt from the records has {frontier.root().hex()}",
                seqno,
            )
