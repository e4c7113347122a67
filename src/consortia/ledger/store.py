"""The narrow storage interface the engine talks to, and the rows that cross it.

Storage sees only what this module names: opaque encrypted blobs, keyed hashes, sequence
numbers, txids and digests (both public by design: a digest is over a salted record). SQLite
(:mod:`consortia.ledger.sqlite`) is the embedded default; PostgreSQL will be a second
implementation of the same :class:`Store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "CommitBatch",
    "ConsortiumRow",
    "NameRow",
    "NonceRow",
    "NotificationRow",
    "ProposalRow",
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
    """A committed transaction: the encrypted record and its Merkle leaf."""

    seqno: int
    txid: str
    digest: bytes
    leaf_hash: bytes
    blob: bytes


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

    def __bool__(self) -> bool:
        return bool(
            self.consortium
            or self.txs
            or self.versions
            or self.names
            or self.nonces
            or self.notifications
            or self.proposals
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
