"""One transaction to run, as a single value from the parsed request to its stored record.

An :class:`Invocation` says who asked for what, as they signed it: the pipeline builds one
from a member's request (:meth:`Invocation.from_request`) or from an approved proposal
(:meth:`Invocation.from_proposal`), genesis and misuse alerts build theirs directly, the
execution reads its identity from it, and :meth:`consortia.engine.batch.Batch.add_tx` turns
it into the :class:`~consortia.ledger.records.TxRecord`. Nothing repacks its fields on
the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consortia._json import JSONObject
from consortia.governance.voting import Proposal
from consortia.wire import ActionRequest

__all__ = ["Invocation"]


@dataclass(frozen=True, slots=True)
class Invocation:
    """Who runs which action with which parameters, at which time, signed how."""

    txid: str
    #: The requesting member (``operator`` for genesis, the service for an alert).
    member: str
    action: str
    params: JSONObject
    #: The request's ``visible_to``, sorted.
    visible_to: tuple[str, ...]
    #: The requester's own correlation id; only the requester is ever told it.
    txref: str | None
    #: The compact JWS as signed, stored in the record (None: the service's own transaction).
    request: str | None
    #: The transaction time (the server's clock when the batch ran).
    time: int
    #: The nonce to mark used under :attr:`txid`, or None (a resumed proposal's request
    #: stored its nonce when it was proposed; the service signs nothing).
    nonce: str | None
    #: What the record adds about how the transaction came to be (the vote, the template).
    detail: JSONObject = field(default_factory=dict)

    @classmethod
    def from_request(cls, request: ActionRequest, *, now: int, detail: JSONObject) -> Invocation:
        """A member's request run as it signed it (no vote needed, or decided at once)."""
        return cls(
            txid=request.txid,
            member=request.member,
            action=request.action,
            params=request.params,
            visible_to=request.visible_to,
            txref=request.txref,
            request=request.jws.compact,
            time=now,
            nonce=request.nonce,
            detail=detail,
        )

    @classmethod
    def from_proposal(cls, proposal: Proposal, *, now: int) -> Invocation:
        """An approved proposal's request, resumed under its original txid."""
        return cls(
            txid=proposal.id,
            member=proposal.requester,
            action=proposal.action,
            params=proposal.params,
            visible_to=proposal.visible_to,
            txref=proposal.txref,
            request=proposal.request,
            time=now,
            nonce=None,
            detail={"proposal": proposal.id, "ballots": [b.txid for b in proposal.ballots]},
        )
