"""What the platform answers a request (PROTOCOL.md sections 2 and 8); the edge renders
:meth:`to_wire`."""

from __future__ import annotations

from dataclasses import dataclass, field

from consortia._json import JSONObject

__all__ = ["Committed", "Created", "Outcome", "Pending"]


@dataclass(frozen=True, slots=True)
class Committed:
    """Executed and durably committed."""

    txid: str
    seqno: int
    #: The action the request named (for the edge's metrics; not part of the answer).
    action: str | None = field(default=None, compare=False)
    #: The first non-governance state key the transaction wrote (for the analytics hook,
    #: in process only; never on the wire, never logged).
    key: str | None = field(default=None, compare=False, repr=False)

    def to_wire(self) -> JSONObject:
        """The 200 body."""
        return {"status": "committed", "txid": self.txid, "seqno": self.seqno}


@dataclass(frozen=True, slots=True)
class Pending:
    """Waiting for votes; the proposal is durable."""

    txid: str
    proposal: str
    #: The action the request named (for the edge's metrics; not part of the answer).
    action: str | None = field(default=None, compare=False)

    def to_wire(self) -> JSONObject:
        """The 202 body."""
        return {"status": "pending", "txid": self.txid, "proposal": self.proposal}


@dataclass(frozen=True, slots=True)
class Created:
    """A consortium was created (its genesis transaction committed)."""

    consortium: str
    txid: str
    seqno: int

    def to_wire(self) -> JSONObject:
        """The 201 body."""
        return {"consortium": self.consortium, "txid": self.txid, "seqno": self.seqno}


Outcome = Committed | Pending
