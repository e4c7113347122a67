"""``consortia ledger verify``: walk every consortium of a store and check it end to end.

For each consortium, with the node key and nothing else: the keyring and info open; every
record decrypts (its AEAD binds it to its consortium and seqno), matches its digest, names
its own seqno, txid and consortium, and its request hashes to its txid; the Merkle tree
rebuilt from the records equals every stored node and every signed root, each signed by the
service key; and every other row (state versions, key names, nonces, notifications,
proposals) decrypts and agrees with the records. So a flipped byte, a truncated file, or a
row deleted, added or moved in storage is reported, with the first bad seqno where the
damage belongs to one.

Verification raises :class:`LedgerDamaged`; it never returns a bool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from consortia._json import loads_strict
from consortia.engine.alerts import ALERT_ACTION, SERVICE_MEMBER
from consortia.engine.consortium import ConsortiumRuntime, parent_of
from consortia.engine.service import ServiceIdentity
from consortia.errors import ConsortiaError
from consortia.identity.box import Sealer
from consortia.identity.jws import parse_compact, txid_of
from consortia.ledger.crypto import LedgerCorrupted
from consortia.ledger.merkle import MerkleFrontier, leaf_hash, leaf_input, perfect_subtree_count
from consortia.ledger.receipts import SignedRoot, verify_signed_root
from consortia.ledger.records import TxRecord, parse_record, version_digest
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
        return [
            _Auditor(store, _open(store, node_key, service, cid), on_entry=on_entry).run()
            for cid in cids
        ]


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
            notifications = self._notifications()
            # Finally what a restart does: constitution, open proposals, frontier.
            runtime.reload()
        except LedgerDamaged:
            raise
        except ConsortiaError as exc:
            raise self.fail(exc.message) from None
        kinds = {kind: self.kinds[kind] for kind in ENTRY_KINDS}
        return ConsortiumAudit(
            self.cid, size, root, roots, versions, notifications, proposals, kinds
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
        self.committed[record.txid] = record.seqno
        kind = entry_kind(record)
        self.kinds[kind] += 1
        if self.on_entry is not None:
            self.on_entry(Entry(self.cid, record.seqno, record.txid, kind))
        proposal = record.detail.get("proposal")
        if isinstance(proposal, str):
            self.approved[proposal] = record.seqno
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
            if row.parent_hash != self.runtime.keyring.name_hash("dir", parent_of(key)):
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

    def _notifications(self) -> int:
        count = 0
        last: dict[bytes, int] = {}
        for row in self.store.scan_notifications(self.cid):
            data = self.runtime.notification_data(row)
            if data.get("id") != row.nid or row.nid != last.get(row.member_hash, 0) + 1:
                raise self.fail(f"a notification queue has a gap or a moved entry at id {row.nid}")
            last[row.member_hash] = row.nid
            count += 1
        return count
