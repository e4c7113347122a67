"""Notifications (PROTOCOL.md section 5, the seed's getNotification), both sides.

Each member has a durable, ordered queue per consortium (PROTOCOL.md section 5). An entry is
``{"id","kind","txid","txref","action","sealed"}``; ``sealed`` is a crypto_box from the
service's X25519 key to the member's, so only that member opens it, and opening it proves
the TEP wrote it. The engine stores entries (encrypted again at rest) in the same commit as
the transaction that caused them (:func:`seal_notice`); a member opens one with
:func:`open_notification`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consortia._json import JSON, JSONObject, canonical, loads_strict
from consortia.errors import BadRequest
from consortia.identity.box import Sealer, open_box
from consortia.identity.keys import MemberKeys, PublicEncryptionKey

__all__ = ["KINDS", "Notice", "open_notification", "seal_notice", "vote_result_body"]

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


def open_notification(data: JSONObject, keys: MemberKeys, service_key: PublicEncryptionKey) -> JSON:
    """Open a notification's ``sealed`` body (PROTOCOL.md section 5) with the member's key."""
    sealed = data.get("sealed")
    if not isinstance(sealed, str):
        raise BadRequest("notification has no sealed body")
    return loads_strict(open_box(sealed, keys.encryption, service_key), what="notification body")
