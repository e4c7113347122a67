"""What leaves the TEP for analytics: one redacted Event per request, one Alert per misuse.

These two records and the EventSink protocol are the fixed interface between the engine
(which emits), the sink (which carries events out without ever slowing a commit), the
insights (which read what was written) and the misuse detector (which watches the stream).
An Event carries no parameter or state values unless the constitution's analytics policy
grants a named field for that action; objects are named only by a keyed hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from consortia._json import JSON

__all__ = ["Alert", "Event", "EventSink"]


@dataclass(frozen=True, slots=True)
class Event:
    """One request as it may leave the TEP: no parameters or values unless granted."""

    time: float  # unix seconds (float) when the request was answered / read
    consortium: str
    kind: str  # "execute" | "read"
    action: str | None  # action name; for reads the read kind ("object", "history",
    #   "transaction", "constitution", "notifications", "receipt")
    member: str | None  # the signer/reader id; for bad_signature the *claimed* kid
    outcome: str  # "committed" | "pending" | "refused" | "failed" | "ok" | "hidden" (reads)
    code: str | None  # wire error code (errors.py) when refused/failed, else None
    latency_ms: float
    object_type: str | None  # first segment of the object key ("order" for "order/O1")
    object_ref: str | None  # keyed hash (hex, 16 chars) of the full object key, so
    #   distinct objects can be counted without naming them
    txid: str | None
    fields: Mapping[str, JSON]  # only the parameter fields the policy grants for this action


@dataclass(frozen=True, slots=True)
class Alert:
    """A suspected misuse, as the detector reports it."""

    time: float
    consortium: str
    member: str
    rule: str  # e.g. "bad_signature_burst", "replay_flood", "probing",
    #   "scraping", "anomaly"
    score: float  # 0..1, how sure
    evidence: Mapping[str, JSON]  # counts per window that triggered it; no values


class EventSink(Protocol):
    """Where events go; the engine calls it on the commit path, so it must be cheap."""

    def emit(self, event: Event) -> None:
        """Hand over one event; never blocks, never raises."""
        ...

    def close(self) -> None:
        """Flush what can be flushed and release the backend."""
        ...


#: Rules whose alert names a member that signed the requests behind it. The others name an
#: identity someone else used: ``bad_signature_burst`` the id an unauthenticated sender
#: *claimed*, ``replay_flood`` the author of requests someone captured and resent. Those
#: members are the likely victims; suspending them on such an alert would hand any stranger
#: a way to suspend any member, so only these rules may suspend (engine/alerts.py).
ATTRIBUTED_RULES = frozenset({"probing", "scraping", "anomaly"})
