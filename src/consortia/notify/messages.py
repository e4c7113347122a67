"""Notifications (the seed's getNotification): kinds, and the wire form of one queue entry.

Each member has a durable, ordered queue per consortium (PROTOCOL.md section 5). An entry is
``{"id","kind","txid","txref","action","sealed"}``; ``sealed`` is a crypto_box from the
service's X25519 key to the member's, so only that member opens it, and opening it proves
the TEP wrote it. The engine stores entries (encrypted again at rest) in the same commit as
the transaction that caused them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consortia._json import JSON, JSONObject, canonical
from consortia.identity.box import Sealer
from consortia.identity.keys import PublicEncryptionKey

__all__ = ["KINDS", "Notice", "seal_notice", "vote_result_body"]

#: Every notification kind of PROTOCOL.md section 5.
KINDS: Final = frozenset(
    {"result", "notice", "vote_request", "vote_result", "key_rotated", "misuse_alert"}
)


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification for one member, before it gets its queue id and is sealed."""

    member: str
    kind: str
    txid: str
    txref: str | None
    action: str
    body: JSON

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown notification kind {self.kind!r}")


def vote_result_body(
    proposal: str,
    action: str,
    outcome: str,
    reason: str,
    *,
    seqno: int | None = None,
    error: str | None = None,
    message: str | None = None,
) -> JSONObject:
    """The body of a ``vote_result`` (PROTOCOL.md section 5): the one builder of it.

    ``outcome`` is ``approved``, ``rejected`` or ``failed``; ``seqno`` is the approved
    request's commit, ``error`` and ``message`` why an approved request then failed.
    """
    body: JSONObject = {"proposal": proposal, "action": action, "outcome": outcome}
    body["reason"] = reason
    if seqno is not None:
        body["seqno"] = seqno
    if error is not None:
        body["error"] = error
    if message is not None:
        body["message"] = message
    return body


def seal_notice(
    sealer: Sealer, recipient: PublicEncryptionKey, notice: Notice, nid: int
) -> JSONObject:
    """The queue entry of ``notice`` with id ``nid``, its body boxed to ``recipient``."""
    return {
        "id": nid,
        "kind": notice.kind,
        "txid": notice.txid,
        "txref": notice.txref,
        "action": notice.action,
        "sealed": sealer.seal(recipient, canonical(notice.body)),
    }
