"""What one group commit writes, and the overlay later requests of the same batch read.

A :class:`Batch` gathers the outcome of several requests so that one storage transaction
commits them all. It works on its own copies of the constitution, the Merkle frontier and
the proposals; :meth:`Batch.applied` moves them into the runtime only after the commit is
durable, so readers never see what a failed commit may still lose.

Each record commits to the notification queue entries stored under it (``detail
["notifications"]``, see :func:`consortia.ledger.records.notifications_digest`): an entry
belongs to the newest record staged when it was queued, or to the batch's first record when
none was yet. So a record is sealed (encrypted, hashed into its leaf) only once no more
entries can join it: when the next record is staged, or at :meth:`Batch.finish`. Entries
queued by a batch with no record (one that only opened a proposal) wait for the next one;
until then the consortium's queue head (a keyed meta row, see
:meth:`ConsortiumRuntime.queue_head`) commits to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from consortia._json import JSONObject
from consortia.engine.consortium import (
    ConsortiumRuntime,
    StateVersion,
    Write,
    parent_of,
)
from consortia.governance.constitution import Constitution
from consortia.governance.voting import Proposal
from consortia.ledger.crypto import Keyring
from consortia.ledger.merkle import MerkleFrontier
from consortia.ledger.receipts import sign_root
from consortia.ledger.records import (
    NOTIFICATIONS_FIELD,
    SALT_BYTES,
    Audience,
    TxRecord,
    notification_entry,
    notifications_digest,
)
from consortia.ledger.store import CommitBatch, NodeRow, NonceRow, SignedRootRow
from consortia.notify.messages import Notice

__all__ = ["Batch"]


@dataclass
class Batch:
    """What one group commit will write, and the overlay later requests in it read."""

    runtime: ConsortiumRuntime
    rows: CommitBatch = field(default_factory=CommitBatch)
    overlay: dict[str, StateVersion] = field(default_factory=dict)
    listed: dict[str, dict[str, bool]] = field(default_factory=dict)
    nonces: dict[bytes, str] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    proposals: dict[str, Proposal] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    next_seqno: int = 0
    #: A committed rotateLedgerSecret asked for a new ledger secret at this commit.
    rekey: bool = False
    #: The rotated keyring this batch stores (wrapped) and then hands to the runtime.
    new_keyring: Keyring | None = None
    #: The constitution as this batch has changed it; the runtime's stays the committed one.
    constitution: Constitution = field(init=False)
    #: The Merkle frontier with this batch's leaves; the runtime's stays the committed one.
    frontier: MerkleFrontier = field(init=False)
    #: Committed state read during this batch. It cannot change before the batch commits,
    #: and requests of one batch often read the same objects (a Telco order's project), each
    #: read otherwise costing a storage lookup, a decryption and a JSON parse.
    _reads: dict[str, StateVersion | None] = field(default_factory=dict, repr=False)
    _lists: dict[str, list[str]] = field(default_factory=dict, repr=False)
    #: The newest staged record, not sealed yet: queue entries still join it.
    _open: TxRecord | None = field(default=None, repr=False)
    #: Entries (:func:`notification_entry`) queued for the record :attr:`committed_in` names.
    _queued: list[bytes] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.next_seqno = self.runtime.next_seqno
        self.constitution = self.runtime.constitution
        self.frontier = self.runtime.frontier.copy()

    def latest(self, key: str) -> StateVersion | None:
        """Newest version of ``key`` including this batch's earlier writes."""
        staged = self.overlay.get(key)
        if staged is not None:
            return staged
        if key in self._reads:
            return self._reads[key]
        found = self._reads[key] = self.runtime.latest(key)
        return found

    def list_keys(self, prefix: str) -> list[str]:
        """Live keys under ``prefix`` including this batch's earlier writes."""
        committed = self._lists.get(prefix)
        if committed is None:
            committed = self._lists[prefix] = self.runtime.list_keys(prefix)
        names = set(committed)
        for key, alive in self.listed.get(prefix, {}).items():
            if alive:
                names.add(key)
            else:
                names.discard(key)
        return sorted(names)

    def add_tx(
        self,
        *,
        txid: str,
        time: int,
        action: str,
        member: str,
        audience: Audience,
        request: str | None,
        writes: list[Write],
        detail: JSONObject,
        nonce: tuple[str, str] | None,
    ) -> int:
        """Stage one committed transaction; returns its seqno."""
        runtime = self.runtime
        seqno = self.next_seqno
        digests = []
        for write in writes:
            version, name, digest = runtime.version_rows(write, seqno, txid)
            self.rows.versions.append(version)
            self.rows.names.append(name)
            digests.append(digest)
            self.overlay[write.key] = StateVersion(
                write.key, write.value, write.audience, write.deleted, seqno, txid, b""
            )
            self.listed.setdefault(parent_of(write.key), {})[write.key] = not write.deleted
        record = TxRecord(
            consortium=runtime.cid,
            seqno=seqno,
            txid=txid,
            time=time,
            action=action,
            member=member,
            audience=audience,
            request=request,
            writes=tuple(digests),
            salt=runtime.random(SALT_BYTES),
            detail=detail,
        )
        if self._open is not None:
            self._seal(self._open)
        self._open = record
        if nonce is not None:
            self.add_nonce(*nonce, txid=txid)
        self.committed[txid] = seqno
        self.next_seqno = seqno + 1
        return seqno

    @property
    def committed_in(self) -> int:
        """The seqno of the record that commits to a queue entry staged now."""
        return self.next_seqno if self._open is None else self._open.seqno

    @property
    def last_tx(self) -> tuple[int, str] | None:
        """Seqno and txid of the batch's newest transaction, if it has one."""
        if self._open is not None:
            return self._open.seqno, self._open.txid
        if self.rows.txs:
            return self.rows.txs[-1].seqno, self.rows.txs[-1].txid
        return None

    def note_in_last_record(self, name: str, value: str) -> None:
        """Add ``detail[name]`` to the batch's newest record, which is not sealed yet."""
        if self._open is None:
            raise ValueError("the batch has no open record to note in")
        self._open = replace(self._open, detail={**self._open.detail, name: value})

    def _seal(self, record: TxRecord) -> None:
        """Commit the open record to its queue entries, then encrypt it and add its leaf."""
        self._open = None
        entries, self._queued = self._queued, []
        if record.seqno == self.runtime.next_seqno:
            # The batch's first record: also what batches without a record queued before.
            entries = self.runtime.uncommitted_notifications() + entries
        detail: JSONObject = {**record.detail, NOTIFICATIONS_FIELD: notifications_digest(entries)}
        row = self.runtime.tx_row(replace(record, detail=detail))
        self.rows.txs.append(row)
        self.rows.nodes.extend(NodeRow(*node) for node in self.frontier.append(row.leaf_hash))

    def add_nonce(self, member: str, nonce: str, *, txid: str) -> None:
        """Stage a used nonce."""
        nonce_hash = self.runtime.nonce_hash(member, nonce)
        self.nonces[nonce_hash] = txid
        self.rows.nonces.append(NonceRow(nonce_hash, txid))

    def nonce_txid(self, member: str, nonce: str) -> str | None:
        """The txid that used this nonce, in this batch or in storage."""
        nonce_hash = self.runtime.nonce_hash(member, nonce)
        found = self.nonces.get(nonce_hash)
        return (
            found if found is not None else self.runtime.store.nonce(self.runtime.cid, nonce_hash)
        )

    def put_proposal(self, proposal: Proposal) -> None:
        """Stage a new or changed proposal."""
        self.proposals[proposal.id] = proposal

    def proposal(self, pid: str) -> Proposal | None:
        """A proposal as this batch sees it."""
        staged = self.proposals.get(pid)
        return staged if staged is not None else self.runtime.proposal(pid)

    def notify(self, notices: list[Notice]) -> None:
        """Stage notifications, numbering each member's queue in order."""
        runtime = self.runtime
        for notice in notices:
            current = self.counters.get(notice.member)
            if current is None:
                current = runtime.notification_counter(notice.member)
            row = runtime.notification_row(
                notice, current + 1, self.constitution, committed_in=self.committed_in
            )
            if row is not None:
                self.counters[notice.member] = current + 1
                self.rows.notifications.append(row)
                self._queued.append(notification_entry(row.member_hash, row.nid, row.blob))

    def finish(self, *, now: int) -> CommitBatch:
        """The rows to commit: the last record, proposals, and the new root signed by the
        service at ``now``. Nothing may be staged after it."""
        if self._open is not None:
            self._seal(self._open)
        for proposal in self.proposals.values():
            self.rows.proposals.append(self.runtime.proposal_row(proposal))
        if self.rows.txs:
            size = self.frontier.size
            jws = sign_root(
                self.runtime.service_key,
                consortium=self.runtime.cid,
                tree_size=size,
                root=self.frontier.root(),
                iat=now,
            )
            previous = self.runtime.frontier.size
            mac = self.runtime.signed_root_mac(size, previous, jws)
            self.rows.signed_root = SignedRootRow(size, previous, jws, mac)
        elif self._queued:
            # No record commits to these entries yet: the queue head does, until one does.
            name, value = self.runtime.queue_head(
                self.runtime.uncommitted_notifications() + self._queued
            )
            self.rows.meta[name] = value
        return self.rows

    def applied(self) -> None:
        """After a durable commit: move the batch's effects into the runtime."""
        runtime = self.runtime
        runtime.forget_latest(self.overlay)
        runtime.next_seqno = self.next_seqno
        runtime.frontier = self.frontier
        runtime.constitution = self.constitution
        if self.new_keyring is not None:
            runtime.keyring = self.new_keyring
        runtime.note_counters(self.counters)
        runtime.note_notifications(self._queued, committed=bool(self.rows.txs))
        for proposal in self.proposals.values():
            if proposal.is_open:
                runtime.proposals[proposal.id] = proposal
            else:
                runtime.proposals.pop(proposal.id, None)
