"""The member SDK: a consortium member's side of the wire protocol (docs/protocol.md).

Depends on the wire protocol only (:mod:`consortia.identity`, :mod:`consortia.wire`,
the error codes), never on the server's internals; import-linter holds it to that.
"""

from consortia.client._transport import (
    PinMismatch,
    ServiceUnreachable,
    UntrustedCertificate,
    error_from_response,
    normalize_fingerprint,
    tls_verify,
)
from consortia.client.member import MemberClient, Notification, Submitted, create_consortium

__all__ = [
    "MemberClient",
    "Notification",
    "PinMismatch",
    "ServiceUnreachable",
    "Submitted",
    "UntrustedCertificate",
    "create_consortium",
    "error_from_response",
    "normalize_fingerprint",
    "tls_verify",
]
