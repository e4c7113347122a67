"""Proposals and the tally (the seed's ``voteFor`` / ``approveAction``).

Rules, decided once and documented in docs/governance.md:

* The electorate is the active members (``"any"``/``"all"``) or the listed ones that are still
  active. A veto member may always cast a ballot; its approval counts only if it is also in
  the electorate.
* The requester's own request is its approval when it is in the electorate.
* A proposal is *approved* when ``majority`` approvals are in and no active veto member
  rejected; *rejected* as soon as an active veto member rejects, or when the approvals in hand
  plus the outstanding electorate can no longer reach ``majority``.
* The tally is a function of the *set* of ballots: order never matters. A decided proposal is
  final (the engine refuses later ballots), so "a veto after approval" cannot happen.
* Ballots of members no longer active do not count: removing a member re-tallies every *open*
  proposal, which may reject it (it can never approve an open one, since approvals only
  shrink). Decided proposals are never re-tallied: a veto stays a veto even if the vetoing
  member leaves later.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from consortia._json import JSONObject
from consortia.governance.constitution import Constitution, VotingSchema

__all__ = [
    "Ballot",
    "Decision",
    "Proposal",
    "ProposalStatus",
    "Tally",
    "electorate",
    "may_vote",
    "tally",
    "vetoers",
]


class Decision(StrEnum):
    """What a tally says about a proposal."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"


class ProposalStatus(StrEnum):
    """A proposal's life: open until decided, then final."""

    OPEN = "open"
    APPROVED = "approved"  # approved and its request committed
    FAILED = "failed"  # approved, but the request then failed (nothing changed)
    REJECTED = "rejected"
    DROPPED = "dropped"  # the action was amended, or the requester removed, while open


@dataclass(frozen=True, slots=True)
class Ballot:
    """One member's vote, cast by a committed ``voteFor`` transaction."""

    member: str
    approve: bool
    txid: str

    def to_json(self) -> JSONObject:
        """The ballot as proposals are shown."""
        return {
            "member": self.member,
            "ballot": "approve" if self.approve else "reject",
            "txid": self.txid,
        }


@dataclass(frozen=True, slots=True)
class Tally:
    """The counted state of a proposal, with the reason for a decision."""

    decision: Decision
    approvals: frozenset[str]
    rejections: frozenset[str]
    needed: int
    reason: str


def electorate(schema: VotingSchema, constitution: Constitution) -> frozenset[str]:
    """Active members whose approval counts toward ``schema.majority`` (``role:NAME``
    entries stand for the role's holders at the time of the tally)."""
    if isinstance(schema.voters, str):
        return frozenset(constitution.active_ids())
    return frozenset(m for m in constitution.expand(schema.voters) if constitution.is_active(m))


def vetoers(schema: VotingSchema, constitution: Constitution) -> frozenset[str]:
    """Active members holding a veto under ``schema`` (ids, or holders of a listed role)."""
    return frozenset(m for m in constitution.expand(schema.veto) if constitution.is_active(m))


def may_vote(schema: VotingSchema, constitution: Constitution, member: str) -> bool:
    """Whether ``member`` may cast a ballot on a proposal under ``schema``."""
    if not constitution.is_active(member):
        return False
    return member in electorate(schema, constitution) or member in vetoers(schema, constitution)


def tally(
    schema: VotingSchema,
    constitution: Constitution,
    requester: str,
    ballots: Iterable[Ballot],
) -> Tally:
    """Count ``ballots`` (in any order) against ``schema`` and the current membership."""
    voters = electorate(schema, constitution)
    approvals = {b.member for b in ballots if b.approve and b.member in voters}
    rejections = {b.member for b in ballots if not b.approve and constitution.is_active(b.member)}
    if requester in voters and requester not in rejections:
        approvals.add(requester)
    approvals -= rejections
    veto = vetoers(schema, constitution)
    vetoes = sorted(m for m in rejections if m in veto)
    frozen_a, frozen_r = frozenset(approvals), frozenset(rejections)
    if vetoes:
        return Tally(
            Decision.REJECTED, frozen_a, frozen_r, schema.majority, f"vetoed by {vetoes[0]}"
        )
    if len(approvals) >= schema.majority:
        return Tally(
            Decision.APPROVED,
            frozen_a,
            frozen_r,
            schema.majority,
            f"{len(approvals)} of {schema.majority} approvals needed are in",
        )
    outstanding = voters - approvals - rejections
    if len(approvals) + len(outstanding) < schema.majority:
        return Tally(
            Decision.REJECTED,
            frozen_a,
            frozen_r,
            schema.majority,
            f"approval can no longer be reached: {len(approvals)} approvals and "
            f"{len(outstanding)} outstanding voters, {schema.majority} needed",
        )
    return Tally(
        Decision.OPEN,
        frozen_a,
        frozen_r,
        schema.majority,
        f"{len(approvals)} of {schema.majority} approvals, {len(outstanding)} outstanding",
    )


@dataclass(frozen=True, slots=True)
class Proposal:
    """A request waiting for votes. Its id is the request's txid."""

    id: str
    action: str
    requester: str
    request: str  # the requester's compact JWS, kept to resume it verbatim
    params: JSONObject
    visible_to: tuple[str, ...]
    txref: str | None
    audience: tuple[str, ...] | None  # None: every member (a governance action)
    created_at: int
    ballots: tuple[Ballot, ...] = ()
    status: ProposalStatus = ProposalStatus.OPEN
    reason: str = ""
    seqno: int | None = None  # the committed request's seqno once approved
    error: str | None = None  # wire code when the approved request then failed

    @property
    def is_open(self) -> bool:
        """Whether ballots may still be cast."""
        return self.status is ProposalStatus.OPEN

    def voted(self, member: str) -> bool:
        """Whether ``member`` already cast a ballot."""
        return any(b.member == member for b in self.ballots)

    def with_ballot(self, ballot: Ballot) -> Proposal:
        """A copy with ``ballot`` added."""
        return replace(self, ballots=(*self.ballots, ballot))

    def closed(
        self,
        status: ProposalStatus,
        reason: str,
        *,
        seqno: int | None = None,
        error: str | None = None,
    ) -> Proposal:
        """A copy with its final ``status``."""
        return replace(self, status=status, reason=reason, seqno=seqno, error=error)

    def visible_to_member(self, member: str, constitution: Constitution | None = None) -> bool:
        """Whether ``member`` may see this proposal: by id, or (given the constitution) by a
        role it holds now."""
        if constitution is None:
            return self.audience is None or member in self.audience
        return constitution.sees(self.audience, member)

    def to_json(self) -> JSONObject:
        """The proposal as ``GET …/proposals`` shows it."""
        return {
            "proposal": self.id,
            "action": self.action,
            "requester": self.requester,
            "params": copy.deepcopy(self.params),
            "visible_to": list(self.visible_to),
            "txref": self.txref,
            "created_at": self.created_at,
            "ballots": [b.to_json() for b in self.ballots],
            "status": self.status.value,
            "reason": self.reason,
            "seqno": self.seqno,
            "error": self.error,
        }

    def shown_to(self, member: str) -> JSONObject:
        """The proposal as ``member`` reads it: the requester's ``txref`` is its own private
        correlation id, so any other reader sees ``null`` (as in notices to others)."""
        doc = self.to_json()
        if member != self.requester:
            doc["txref"] = None
        return doc

    def to_stored(self) -> JSONObject:
        """Everything needed to resume the request, for storage (encrypted)."""
        doc = self.to_json()
        doc["request"] = self.request
        doc["audience"] = "*" if self.audience is None else list(self.audience)
        return doc
