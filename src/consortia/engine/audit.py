"""``consortia ledger verify``: walk every consortium of a store and check it end to end.

For each consortium, with the node key and nothing else: the keyring and info open; every
record decrypts (its AEAD binds it to its consortium and seqno), matches its digest, names
its own seqno, txid and consortium, and its request hashes to its txid; the Merkle tree
rebuilt from the records equals every stored node and every signed root, each signed by the
service key; and every other row (state versions, key names, nonces, notifications,
proposals) decrypts and agrees with the records. Each record commits to the notification
queue entries stored under it, so an entry deleted (the newest of a queue too), added,
altered or moved is reported at the record that committed to it. So a flipped byte, a
truncated file, or a row deleted, added or moved in storage is reported, with the first bad
seqno where the damage belongs to one.

Verification raises :class:`LedgerDamaged`; it never returns a bool.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from consortia._json import JSONObject, loads_strict
from consortia.engine.alerts import ALERT_ACTION, SERVICE_MEMBER
from consortia.engine.consortium import ConsortiumRuntime, parent_of
from consortia.engine.recovery import BACKUP_META, ServiceBackup
from consortia.engine.request import operator_nonce_name
from consortia.engine.service import ServiceIdentity
from consortia.errors import ConsortiaError
from consortia.identity.box import Sealer
from consortia.identity.jws import parse_compact, txid_of
from consortia.ledger.crypto import LedgerCorrupted
from consortia.ledger.merkle import MerkleFrontier, leaf_hash, leaf_input, perfect_subtree_count
from consortia.ledger.receipts import SignedRoot, verify_signed_root
from consortia.ledger.records import (
    NOTIFICATIONS_FIELD,
    RECOVERY_FIELD,
    TxRecord,
    notification_entry,
    notifications_digest,
    parse_record,
    queue_head_name,
    version_digest,
)
from consortia.ledger.recovery import RecoveryRecord, record_name
from consortia.ledger.store import AuditStore, SignedRootRow, TxRow

__all__ = [
    "ENTRY_KINDS",
    "ConsortiumAudit",
    "Entry",
    "LedgerDamaged",
    "entry_kind",
    "verify_ledger",
]

#: Every kind of ledger entry, and what caused it. Only ``genesis``, ``request`` and
#: ``ballot`` entries are the answer to a request of their own; a ``voted`` entry commits in
#: the same batch as the ballot that decided it, an ``alert`` comes from the TEP itself.
ENTRY_KINDS: Final = {
    "genesis": "the operator's consortium creation",
    "request": "a member's request, committed at once (its answer carries the seqno)",
    "ballot": "a member's voteFor request (its answer carries the seqno)",
    "voted": "a proposal executed once approved, beside the ballot that decided it",
    "alert": "the misuse detector's alert (and suspension, if the policy says so)",
}


def entry_kind(record: TxRecord) -> str:
    """The kind (a key of :data:`ENTRY_KINDS`) of one decrypted ledger record."""
    if record.action == "createConsortium" and record.member == "operator":
        return "genesis"
    if record.action == ALERT_ACTION and record.member == SERVICE_MEMBER:
        return "alert"
    if isinstance(record.detail.get("proposal"), str):
        return "voted"
    return "ballot" if record.action == "voteFor" else "request"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry as ``ledger verify --entries`` lists it: no action, no values."""

    consortium: str
    seqno: int
    txid: str
    kind: str


class LedgerDamaged(LedgerCorrupted):
    """The ledger failed verification; ``seqno`` is the first bad one, where there is one."""

    def __init__(self, message: str, *, consortium: str | None, seqno: int | None) -> None:
        where = "" if consortium is None else f"consortium {consortium!r}: "
        if seqno is not None:
            where += f"first bad seqno {seqno}: "
        super().__init__(where + message)
        self.consortium = consortium
        self.seqno = seqno


@dataclass(frozen=True, slots=True)
class ConsortiumAudit:
    """What was checked in one consortium that verified."""

    consortium: str
    tree_size: int
    root: str
    signed_roots: int
    versions: int
    notifications: int
    proposals: int
    #: Entries per kind (:data:`ENTRY_KINDS`); they add up to ``tree_size``.
    kinds: dict[str, int] = field(default_factory=dict)
    #: Notifications stored before records committed to queues (an older build): checked
    #: for gaps and authenticity, but the deletion of a queue's newest is not noticeable.
    notifications_before_commitments: int = 0
    #: Notifications queued after the newest record (by proposals opened since), which the
    #: next record will commit to; the queue head commits to them meanwhile.
    notifications_awaiting_record: int = 0
    #: The epoch of the recovery record members' shares open (None: none is stored), and
    #: whether the ledger commits to it (False for a record an older build issued).
    recovery_epoch: int | None = None
    recovery_committed: bool = False


def verify_ledger(
    store: AuditStore, node_key: bytes, *, on_entry: Callable[[Entry], None] | None = None
) -> list[ConsortiumAudit]:
    """Check every consortium in ``store``; raise :class:`LedgerDamaged` at the first damage.

    ``on_entry`` hears each entry, in seqno order, as it is walked (its record decrypted
    and matched its row; a later check may still fail the walk).
    """
    with store.snapshot():
        try:
            store.check_integrity()
            cids = store.consortia()
            strays = sorted(store.cids_in_use() - set(cids))
            # A store that never got past its first start holds no consortium and may hold no
            # service keys yet: nothing to check. Any consortium needs them for its roots.
            if not cids and not strays:
                return []
            service = ServiceIdentity.load(store, node_key)
        except ConsortiaError as exc:
            raise LedgerDamaged(exc.message, consortium=None, seqno=None) from None
        if strays:
            raise LedgerDamaged(
                f"storage holds rows of unknown consortia {strays}: rows were moved or added",
                consortium=None,
                seqno=None,
            )
        _check_meta(store, set(cids), service)
        return [
            _Auditor(
                store,
                _open(store, node_key, service, cid),
                node_key,
                service.operator_nonce_key(),
                on_entry=on_entry,
            ).run()
            for cid in cids
        ]


#: The platform-level values a build writes; group 1 is a consortium id where there is one.
_META_NAMES: Final = re.compile(
    r"service-keys|recovery-service-backup|operator-nonce/[0-9a-f]{64}"
    r"|recovery/(.+?)(?:/[0-9]+)?|queue/(.+)"
)


def _check_meta(store: AuditStore, cids: set[str], service: ServiceIdentity) -> None:
    """Every platform-level value is one a build writes, for a consortium the store holds;
    the operator's service-key backup (if any) parses and names these service keys. The
    consortium-level ones (recovery records, queue heads) are checked with their ledgers."""

    def fail(message: str) -> LedgerDamaged:
        return LedgerDamaged(message, consortium=None, seqno=None)

    for name in store.meta_names():
        found = _META_NAMES.fullmatch(name)
        cid = None if found is None else (found.group(1) or found.group(2))
        if found is None or (cid is not None and cid not in cids):
            raise fail(
                f"storage holds a platform value {name!r} that no consortium or build of the "
                "platform wrote: a row was renamed or added"
            )
    backup = store.meta_get(BACKUP_META)
    if backup is not None:
        try:
            sealed = ServiceBackup.from_bytes(backup)
        except ConsortiaError as exc:
            raise fail(f"the operator's service-key backup is damaged: {exc.message}") from None
        if sealed.service_key != service.signing.verify_key:
            raise fail(
                "the operator's service-key backup holds other service keys than this "
                "platform's: a recovery from it would sign with keys members do not pin"
            )


def _open(
    store: AuditStore, node_key: bytes, service: ServiceIdentity, cid: str
) -> ConsortiumRuntime:
    try:
        return ConsortiumRuntime.open(
            store,
            cid,
            node_key=node_key,
            sealer=Sealer(service.encryption),
            service_key=service.signing,
            restore=False,
        )
    except ConsortiaError as exc:
        raise LedgerDamaged(exc.message, consortium=cid, seqno=None) from None


@dataclass
class _Auditor:
    """One consortium's walk. Problems tied to a seqno are gathered; the smallest wins."""

    store: AuditStore
    runtime: ConsortiumRuntime
    node_key: bytes
    nonce_key: bytes
    on_entry: Callable[[Entry], None] | None = None
    kinds: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)
    # seqno -> version digests found in storage, to match against each record's writes
    writes: dict[int, Counter[str]] = field(default_factory=dict)
    version_txids: dict[int, set[str]] = field(default_factory=dict)
    # name hash -> (seqno, deleted, key) of the newest version
    latest: dict[bytes, tuple[int, bool, str]] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    nonces: dict[bytes, str] = field(default_factory=dict)
    # proposal id -> seqno of the record that executed it after approval
    approved: dict[str, int] = field(default_factory=dict)
    # seqno -> the digest of queue entries its record commits to (records that carry one)
    queue_digests: dict[int, str] = field(default_factory=dict)
    # the newest record that committed to a recovery record: (its seqno = epoch, digest)
    recovery: tuple[int, str] | None = None
    previous_root: int = 0

    @property
    def cid(self) -> str:
        return self.runtime.cid

    def fail(self, message: str, seqno: int | None = None) -> LedgerDamaged:
        return LedgerDamaged(message, consortium=self.cid, seqno=seqno)

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

    def _queue_head(self, entries: list[bytes], size: int) -> str | None:
        """What is wrong with the queue head, which commits to ``entries`` (those no record
        covers yet), or None. A head that waits for an older record is stale and ignored."""
        stored = self.store.meta_get(queue_head_name(self.cid))
        head: JSONObject | None = None
        if stored is not None:
            try:
                doc = loads_strict(stored, what="queue head")
            except ConsortiaError:
                return "the queue head is not JSON: it was altered"
            if not isinstance(doc, dict) or self.runtime.queue_head_mac(doc) != doc.get("mac"):
                return "the queue head was altered"
            if doc.get("seqno") == size:
                head = doc  # otherwise stale: a record since commits to what it covered
        if head is None:
            if entries:
                return (
                    f"{len(entries)} notification queue entries wait for the next record and "
                    "no queue head commits to them: the head was deleted"
                )
            return None
        if head.get("entries") != len(entries) or head.get("digest") != notifications_digest(
            entries
        ):
            return (
                f"the queue head commits to {head.get('entries')} notification queue entries "
                f"awaiting the next record, not the {len(entries)} stored: an entry was "
                "deleted, added, altered or moved"
            )
        return None

    def _notifications(self, size: int) -> tuple[int, int, int]:
        """Every queue entry against the record that commits to it; returns the number of
        entries, of those stored before records committed to queues, and of those awaiting
        the next record.

        A problem tied to a record (its entries are not those stored) names its seqno; one
        only a queue shows (a gap, an entry that does not decrypt) is told beside it, since
        the record that lost or gained the entry is the better pointer to the damage.
        """
        count = before = awaiting = 0
        last: dict[bytes, int] = {}
        # seqno of the committing record -> the entries stored under it
        under: dict[int, list[bytes]] = {}
        loose: list[str] = []
        for row in self.store.scan_notifications(self.cid):
            count += 1
            if row.nid != last.get(row.member_hash, 0) + 1:
                loose.append(f"a notification queue has a gap or a moved entry at id {row.nid}")
            last[row.member_hash] = row.nid
            try:
                data, committed_in = self.runtime.notification_entry(row)
            except ConsortiaError as exc:
                loose.append(exc.message)
                continue
            if data.get("id") != row.nid:
                loose.append(f"a notification queue has a gap or a moved entry at id {row.nid}")
            if committed_in is None:
                before += 1
                continue
            entry = notification_entry(row.member_hash, row.nid, row.blob)
            under.setdefault(committed_in, []).append(entry)
        bad: list[tuple[int, str]] = []
        for seqno, committed in self.queue_digests.items():
            entries = under.pop(seqno, [])
            if notifications_digest(entries) != committed:
                bad.append(
                    (
                        seqno,
                        f"its record commits to notification queue entries that are not the "
                        f"{len(entries)} stored under it: an entry was deleted, added, altered "
                        "or moved",
                    )
                )
        problem = self._queue_head(under.get(size, []), size)
        if problem is not None:
            loose.append(problem)
        for seqno, entries in under.items():
            if seqno == size:
                awaiting += len(entries)
            elif seqno < size:
                bad.append(
                    (
                        seqno,
                        f"{len(entries)} notification queue entries name this record, which "
                        "commits to none",
                    )
                )
            else:
                loose.append(
                    f"{len(entries)} notification queue entries name seqno {seqno}, past "
                    f"the ledger's {size} entries"
                )
        if bad:
            seqno, message = min(bad)
            if loose:
                message += f" ({loose[0]})"
            raise self.fail(message, seqno)
        if loose:
            raise self.fail(loose[0])
        return count, before, awaiting
