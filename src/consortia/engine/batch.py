"""What one group commit writes, and the overlay later requests of the same batch read.

A :class:`Batch` gathers the outcome of several requests so that one storage transaction
commits them all. It reads the consortium as last committed through :class:`Committed` (the
:class:`~consortia.engine.consortium.ConsortiumRuntime`), seals its rows itself with the
consortium's :class:`~consortia.ledger.sealed.SealedRows` and looks up storage directly; it
never writes back. It works on its own copies of the constitution, the Merkle frontier and
the proposals; :meth:`ConsortiumRuntime.apply` takes them over only after the commit is
durable, so readers never see what a failed commit may still lose.

Each record commits to the notification queue entries stored under it (``detail
["notifications"]``, see :func:`consortia.ledger.records.notifications_digest`): an entry
belongs to the newest record staged when it was queued, or to the batch's first record when
none was yet. So a record is sealed (encrypted, hashed into its leaf) only once no more
entries can join it: when the next record is staged, or at :meth:`Batch.finish`. Entries
queued by a batch with no record (one that only opened a proposal) wait for the next one;
until then the consortium's queue head (a keyed meta row, see
:meth:`Batch.finish`) commits to them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from consortia._json import JSONObject, canonical
from consortia.engine.consortium import ConsortiumRuntime, StateVersion, Write, parent_of
from consortia.engine.invocation import Invocation
from consortia.governance.constitution import Constitution
from consortia.governance.voting import Proposal
from consortia.identity.box import Sealer
from consortia.identity.keys import SigningKey
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
    queue_head_name,
)
from consortia.ledger.sealed import SealedRows
from consortia.ledger.store import CommitBatch, NodeRow, NonceRow, SignedRootRow, Store
from consortia.sandbox.cache import StateView
from consortia.wire.notification import Notice, seal_notice

__all__ = ["Batch", "Committed"]

#: Numbers batches, so that the sandbox's read cache tells one group commit from the next.
_batches = itertools.count(1)


class Committed(Protocol):
    """The consortium as last committed, which a batch reads and never changes."""

    cid: str
    next_seqno: int
    constitution: Constitution
    frontier: MerkleFrontier
    keyring: Keyring
    #: Names this committed state for caches kept elsewhere (see changed_since).
    scope: str

    def changed_since(self, epoch: int) -> Mapping[str, StateVersion] | None:
        """What was committed since ``next_seqno`` was ``epoch`` (None: no longer known)."""
        ...

    def latest(self, key: str) -> StateVersion | None:
        """Newest committed version of ``key``."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Committed live keys directly under ``prefix``."""
        ...

    def proposal(self, pid: str) -> Proposal | None:
        """A committed proposal by id."""
        ...

    def open_proposals(self) -> list[Proposal]:
        """Every committed open proposal."""
        ...

    def notification_counter(self, member: str) -> int:
        """The id of the member's newest committed queue entry."""
        ...

    def uncommitted_notifications(self) -> list[bytes]:
        """Queue entries stored since the newest record, which no record commits to yet."""
        ...


@dataclass
class Batch:
    """What one group commit will write, and the overlay later requests in it read."""

    #: The consortium as last committed (reads only).
    base: Committed
    #: Storage, for the lookups the committed view does not cache (nonces, old records).
    store: Store
    #: Every row layout of encryption at rest (keyed hashes, AAD, row encryption).
    sealed: SealedRows
    #: Seals notification bodies to each member's key.
    sealer: Sealer
    #: Signs the batch's new Merkle root.
    service_key: SigningKey
    random: Callable[[int], bytes]
    rows: CommitBatch = field(default_factory=CommitBatch)
    overlay: dict[str, StateVersion] = field(default_factory=dict)
    #: Size of each overlay version as stored (its encrypted row), for the runtime's cache.
    stored_bytes: dict[str, int] = field(default_factory=dict)
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
    queued: list[bytes] = field(default_factory=list, repr=False)
    #: The overlay's keys in the order first written (what the sandbox must not cache).
    _volatile: list[str] = field(default_factory=list, repr=False)
    _token: int = field(default_factory=lambda: next(_batches), repr=False)

    def __post_init__(self) -> None:
        self.next_seqno = self.base.next_seqno
        self.constitution = self.base.constitution
        self.frontier = self.base.frontier.copy()

    @classmethod
    def of(cls, runtime: ConsortiumRuntime) -> Batch:
        """An empty batch over ``runtime``'s committed state, sealing with its keys."""
        return cls(
            base=runtime,
            store=runtime.store,
            sealed=runtime.sealed,
            sealer=runtime.sealer,
            service_key=runtime.service_key,
            random=runtime.random,
        )

    @property
    def cid(self) -> str:
        """The consortium's id."""
        return self.base.cid

    def latest(self, key: str) -> StateVersion | None:
        """Newest version of ``key`` including this batch's earlier writes."""
        staged = self.overlay.get(key)
        if staged is not None:
            return staged
        if key in self._reads:
            return self._reads[key]
        found = self._reads[key] = self.base.latest(key)
        return found

    def list_keys(self, prefix: str) -> list[str]:
        """Live keys under ``prefix`` including this batch's earlier writes."""
        committed = self._lists.get(prefix)
        if committed is None:
            committed = self._lists[prefix] = self.base.list_keys(prefix)
        names = set(committed)
        for key, alive in self.listed.get(prefix, {}).items():
            if alive:
                names.add(key)
            else:
                names.discard(key)
        return sorted(names)

    def state_view(self) -> StateView:
        """What the sandbox's read cache needs to know about the state this batch reads."""
        base = self.base
        return StateView(
            base.scope, base.next_seqno, base.changed_since, self._token, self._volatile
        )

    def add_tx(self, run: Invocation, *, audience: Audience, writes: list[Write]) -> int:
        """Stage one committed transaction (and mark its nonce used); returns its seqno."""
        seqno = self.next_seqno
        digests = []
        for write in writes:
            salt = self.random(SALT_BYTES)
            version, name, digest = self.sealed.seal_version(write, seqno, run.txid, salt=salt)
            self.rows.versions.append(version)
            self.rows.names.append(name)
            digests.append(digest)
            if write.key not in self.overlay:
                self._volatile.append(write.key)
            self.overlay[write.key] = StateVersion(
                write.key, write.value, write.audience, write.deleted, seqno, run.txid, salt
            )
            self.stored_bytes[write.key] = len(version.blob)
            self.listed.setdefault(parent_of(write.key), {})[write.key] = not write.deleted
        record = TxRecord(
            consortium=self.cid,
            seqno=seqno,
            txid=run.txid,
            time=run.time,
            action=run.action,
            member=run.member,
            audience=audience,
            request=run.request,
            writes=tuple(digests),
            salt=self.random(SALT_BYTES),
            detail=run.detail,
        )
        if self._open is not None:
            self._seal(self._open)
        self._open = record
        if run.nonce is not None:
            self.add_nonce(run.member, run.nonce, txid=run.txid)
        self.committed[run.txid] = seqno
        self.next_seqno = seqno + 1
        return seqno

    def committed_seqno(self, txid: str) -> int | None:
        """The seqno of transaction ``txid`` if it committed, in this batch or before."""
        seqno = self.committed.get(txid)
        if seqno is None:
            row = self.store.tx_by_txid(self.cid, txid)
            seqno = None if row is None else row.seqno
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
        entries, self.queued = self.queued, []
        if record.seqno == self.base.next_seqno:
            # The batch's first record: also what batches without a record queued before.
            entries = self.base.uncommitted_notifications() + entries
        detail: JSONObject = {**record.detail, NOTIFICATIONS_FIELD: notifications_digest(entries)}
        row = self.sealed.seal_record(replace(record, detail=detail))
        self.rows.txs.append(row)
        self.rows.nodes.extend(NodeRow(*node) for node in self.frontier.append(row.leaf_hash))

    def add_nonce(self, member: str, nonce: str, *, txid: str) -> None:
        """Stage a used nonce."""
        nonce_hash = self.sealed.nonce_hash(member, nonce)
        self.nonces[nonce_hash] = txid
        self.rows.nonces.append(NonceRow(nonce_hash, txid))

    def nonce_txid(self, member: str, nonce: str) -> str | None:
        """The txid that used this nonce, in this batch or in storage."""
        nonce_hash = self.sealed.nonce_hash(member, nonce)
        found = self.nonces.get(nonce_hash)
        return found if found is not None else self.store.nonce(self.cid, nonce_hash)

    def put_proposal(self, proposal: Proposal) -> None:
        """Stage a new or changed proposal."""
        self.proposals[proposal.id] = proposal

    def proposal(self, pid: str) -> Proposal | None:
        """A proposal as this batch sees it."""
        staged = self.proposals.get(pid)
        return staged if staged is not None else self.base.proposal(pid)

    def open_proposals(self) -> list[Proposal]:
        """Every open proposal as this batch sees it (in no particular order)."""
        found = {p.id: p for p in self.base.open_proposals()}
        found.update(self.proposals)
        return [p for p in found.values() if p.is_open]

    def notify(self, notices: list[Notice]) -> None:
        """Stage notifications, numbering each member's queue in order.

        Each is sealed to its member's current key; a notice to an unknown member is
        dropped. The record that will commit to the entry (its seqno is stored with it, for
        ``ledger verify``, and never served) is the one open now.
        """
        for notice in notices:
            member = self.constitution.members.get(notice.member)
            if member is None:
                continue
            current = self.counters.get(notice.member)
            if current is None:
                current = self.base.notification_counter(notice.member)
            nid = current + 1
            data = seal_notice(self.sealer, member.encryption_key, notice, nid)
            row = self.sealed.seal_notification(
                notice.member, nid, data, committed_in=self.committed_in
            )
            self.counters[notice.member] = nid
            self.rows.notifications.append(row)
            self.queued.append(notification_entry(row.member_hash, row.nid, row.blob))

    def finish(self, *, now: int) -> CommitBatch:
        """The rows to commit: the last record, proposals, and the new root signed by the
        service at ``now``. Nothing may be staged after it."""
        if self._open is not None:
            self._seal(self._open)
        for proposal in self.proposals.values():
            self.rows.proposals.append(
                self.sealed.seal_proposal(
                    proposal.id, is_open=proposal.is_open, stored=proposal.to_stored()
                )
            )
        if self.rows.txs:
            size = self.frontier.size
            jws = sign_root(
                self.service_key,
                consortium=self.cid,
                tree_size=size,
                root=self.frontier.root(),
                iat=now,
            )
            previous = self.base.frontier.size
            mac = self.sealed.signed_root_mac(size, previous, jws)
            self.rows.signed_root = SignedRootRow(size, previous, jws, mac)
        elif self.queued:
            # No record commits to these entries yet: the queue head does, until one does.
            name, value = self._queue_head(self.base.uncommitted_notifications() + self.queued)
            self.rows.meta[name] = value
        return self.rows

    def _queue_head(self, entries: list[bytes]) -> tuple[str, bytes]:
        """The meta row that commits to ``entries``, queued since the newest record.

        A batch with no record (one that only opened proposals) writes it, so a queue entry
        no record covers yet (a ballot's ``vote_request``) cannot be deleted unnoticed
        either. Its value is public but keyed: the record it waits for, how many entries,
        their digest, and a keyed hash over the three.
        """
        doc: JSONObject = {
            "seqno": self.base.next_seqno,
            "entries": len(entries),
            "digest": notifications_digest(entries),
        }
        doc["mac"] = self.sealed.queue_head_mac(doc)
        return queue_head_name(self.cid), canonical(doc)
