"""The narrow storage interface the engine talks to, and the rows that cross it.

Storage sees only what this module names: opaque encrypted blobs, keyed hashes, sequence
numbers, txids and digests (both public by design: a digest is over a salted record). SQLite
(:mod:`consortia.ledger.sqlite`) is the embedded default; PostgreSQL
(:mod:`consortia.ledger.postgres`) is a second implementation of the same :class:`Store`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "AuditStore",
    "CommitBatch",
    "ConsortiumRow",
    "NameRow",
    "NodeRow",
    "NonceRow",
    "NotificationRow",
    "ProposalRow",
    "SignedRootRow",
    "Store",
    "TxRow",
    "VersionRow",
]


@dataclass(frozen=True, slots=True)
class ConsortiumRow:
    """A consortium: its id (routing needs it in the clear), wrapped keyring, sealed info."""

    cid: str
    keyring: bytes
    info: bytes


@dataclass(frozen=True, slots=True)
class TxRow:
    """A committed transaction: the encrypted record and its Merkle leaf.

    ``leaf_hash`` is read back from the level-0 :class:`NodeRow`; a store writes that row,
    not this field. An audit scan gives ``b""`` when the node row is missing.
    """

    seqno: int
    txid: str
    digest: bytes
    leaf_hash: bytes
    blob: bytes


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A perfect subtree of the Merkle tree: leaves ``[index * 2**level, (index+1) * 2**level)``.

    Level 0 holds the leaf hashes. Proofs and the start-up frontier read only these rows, so
    neither re-reads old leaves (see :mod:`consortia.ledger.merkle`).
    """

    level: int
    index: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class SignedRootRow:
    """The service's JWS over the tree head after a commit (PROTOCOL.md section 6).

    ``previous`` is the tree size of the batch before, and ``mac`` a keyed hash (the
    consortium's index key) over both sizes and the JWS: the roots form a chain, so a
    signed root deleted from the middle is noticed, not only the newest.
    """

    tree_size: int
    previous: int
    jws: str
    mac: bytes


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One version of one state key (the key itself is only a keyed hash here)."""

    name_hash: bytes
    seqno: int
    txid: str
    blob: bytes


@dataclass(frozen=True, slots=True)
class NameRow:
    """Directory entry of a key, so keys can be listed by parent without storing names."""

    name_hash: bytes
    parent_hash: bytes
    alive: bool
    blob: bytes


@dataclass(frozen=True, slots=True)
class NonceRow:
    """A used nonce (keyed hash of member and nonce) and the request that used it."""

    nonce_hash: bytes
    txid: str


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """One entry of one member's queue."""

    member_hash: bytes
    nid: int
    blob: bytes


@dataclass(frozen=True, slots=True)
class ProposalRow:
    """A proposal, inserted or replaced."""

    pid_hash: bytes
    is_open: bool
    blob: bytes


@dataclass(slots=True)
class CommitBatch:
    """Everything one group commit writes, in one storage transaction."""

    consortium: ConsortiumRow | None = None
    txs: list[TxRow] = field(default_factory=list)
    versions: list[VersionRow] = field(default_factory=list)
    names: list[NameRow] = field(default_factory=list)
    nonces: list[NonceRow] = field(default_factory=list)
    notifications: list[NotificationRow] = field(default_factory=list)
    proposals: list[ProposalRow] = field(default_factory=list)
    #: Every Merkle node the batch's leaves complete, the leaves themselves included.
    nodes: list[NodeRow] = field(default_factory=list)
    #: The signed tree head after this batch; None when the batch added no leaf.
    signed_root: SignedRootRow | None = None
    #: A new wrapped keyring for the consortium (a ledger-secret rotation), or None.
    keyring: bytes | None = None
    #: Platform-level values (:meth:`Store.meta_put`) set in the same transaction.
    meta: dict[str, bytes] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.consortium
            or self.txs
            or self.nodes
            or self.signed_root
            or self.keyring
            or self.versions
            or self.names
            or self.nonces
            or self.notifications
            or self.proposals
            or self.meta
        )


class Store(Protocol):
    """Durable storage of one platform. Every method may raise ``Unavailable``."""

    def meta_get(self, name: str) -> bytes | None:
        """A platform-level value (e.g. the wrapped service keys)."""
        ...

    def meta_put(self, name: str, value: bytes) -> None:
        """Set a platform-level value durably."""
        ...

    def consortium(self, cid: str) -> ConsortiumRow | None:
        """The consortium row, if it exists."""
        ...

    def consortia(self) -> list[str]:
        """Ids of every consortium, sorted."""
        ...

    def commit(self, cid: str, batch: CommitBatch) -> None:
        """Write ``batch`` in one transaction; durable when this returns."""
        ...

    def tree_size(self, cid: str) -> int:
        """Number of committed transactions (the next seqno)."""
        ...

    def tx_by_txid(self, cid: str, txid: str) -> TxRow | None:
        """The committed transaction with this txid."""
        ...

    def tx_by_seqno(self, cid: str, seqno: int) -> TxRow | None:
        """The committed transaction at this seqno."""
        ...

    def merkle_node(self, cid: str, level: int, index: int) -> bytes | None:
        """The hash of one perfect subtree (see :class:`NodeRow`), if stored."""
        ...

    def latest_signed_root(self, cid: str) -> SignedRootRow | None:
        """The signed tree head of the largest tree (None before the first commit)."""
        ...

    def latest_version(self, cid: str, name_hash: bytes) -> VersionRow | None:
        """The newest version of a key, whoever may see it."""
        ...

    def versions(self, cid: str, name_hash: bytes) -> list[VersionRow]:
        """Every version of a key, oldest first."""
        ...

    def children(self, cid: str, parent_hash: bytes) -> list[NameRow]:
        """Live keys directly under a parent."""
        ...

    def nonce(self, cid: str, nonce_hash: bytes) -> str | None:
        """The txid that used this nonce, if any."""
        ...

    def notifications(
        self, cid: str, member_hash: bytes, after: int, limit: int
    ) -> list[NotificationRow]:
        """A member's queue entries with id > ``after``, oldest first."""
        ...

    def last_notification_id(self, cid: str, member_hash: bytes) -> int:
        """The id of a member's newest queue entry (0 when empty)."""
        ...

    def proposal(self, cid: str, pid_hash: bytes) -> ProposalRow | None:
        """A proposal by the keyed hash of its id."""
        ...

    def open_proposals(self, cid: str) -> list[ProposalRow]:
        """Every open proposal."""
        ...

    def close(self) -> None:
        """Release the storage."""
        ...


class AuditStore(Store, Protocol):
    """A store that can also be walked whole, for ``consortia ledger verify``.

    Scans yield rows in primary-key order and may read in pages; they are for offline
    checking, not for the request path.
    """

    def snapshot(self) -> AbstractContextManager[None]:
        """A context in which every read sees one committed state (for a live store)."""
        ...

    def check_integrity(self) -> None:
        """Raise ``Unavailable`` saying what is wrong if the storage structure is damaged."""
        ...

    def cids_in_use(self) -> set[str]:
        """Every consortium id that any stored row is filed under."""
        ...

    def merkle_node_count(self, cid: str) -> int:
        """How many Merkle node rows the consortium has."""
        ...

    def meta_names(self) -> list[str]:
        """The name of every platform-level value, sorted."""
        ...

    def scan_txs(self, cid: str) -> Iterator[TxRow]:
        """Every transaction row, by seqno."""
        ...

    def scan_signed_roots(self, cid: str) -> Iterator[SignedRootRow]:
        """Every signed root, by tree size."""
        ...

    def scan_versions(self, cid: str) -> Iterator[VersionRow]:
        """Every state version of every key."""
        ...

    def scan_names(self, cid: str) -> Iterator[NameRow]:
        """Every directory entry, live or not."""
        ...

    def scan_nonces(self, cid: str) -> Iterator[NonceRow]:
        """Every used nonce."""
        ...

    def scan_notifications(self, cid: str) -> Iterator[NotificationRow]:
        """Every queue entry of every member, by member hash then id."""
        ...

    def scan_proposals(self, cid: str) -> Iterator[ProposalRow]:
        """Every proposal, open or decided."""
        ...
