"""What ``consortia ledger verify`` reports: entry kinds, per-consortium results, damage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from consortia.engine.alerts import ALERT_ACTION, SERVICE_MEMBER
from consortia.ledger.crypto import LedgerCorrupted
from consortia.ledger.records import TxRecord

__all__ = ["ENTRY_KINDS", "ConsortiumAudit", "Entry", "LedgerDamaged", "entry_kind"]

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
