"""The member SDK: a consortium member's side of PROTOCOL.md, over HTTPS.

Depends on the wire protocol only (:mod:`consortia.identity`, :mod:`consortia.wire`,
the error codes), never on the server's internals; import-linter holds it to that.
"""

from consortia.client._transport import PinMismatch, ServiceUnreachable, normalize_fingerprint
from consortia.client.member import MemberClient, Notification, Submitted, create_consortium

__all__ = [
    "MemberClient",
    "Notification",
    "PinMismatch",
    "ServiceUnreachable",
    "Submitted",
    "create_consortium",
    "normalize_fingerprint",
]
