"""What one consortium's walk gathers as it goes, shared by the checks of its rows.

Problems tied to a seqno are gathered in :attr:`AuditState.problems`; the smallest wins.
The checks are in :mod:`~consortia.engine.audit.auditor`, :mod:`~consortia.engine.audit.rows`
and :mod:`~consortia.engine.audit.queues`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from consortia.engine.audit.results import Entry, LedgerDamaged
from consortia.engine.consortium import ConsortiumRuntime
from consortia.ledger.store import AuditStore

__all__ = ["AuditState"]


@dataclass
class AuditState:
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
