"""What every message shares: the constants of the wire, the body's envelope, nonces, iat.

A request body is a compact JWS, or a compact JWE (ECDH-ES, A256GCM, to the service's
X25519 key) wrapping one (PROTOCOL.md section 2). :func:`unwrap_body` is the server's first
step on any body; the member side picks a :func:`new_nonce` for each request.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

from consortia.errors import BadRequest
from consortia.identity.jwe import decrypt_compact, is_jwe
from consortia.identity.jws import ParsedJWS, parse_compact
from consortia.identity.keys import EncryptionKey

__all__ = [
    "ACTION_TYP",
    "CREATE_TYP",
    "IAT_WINDOW",
    "JOSE_MEDIA_TYPE",
    "KEY_PROOF_TYP",
    "MAX_BODY_BYTES",
    "check_iat",
    "check_nonce",
    "new_nonce",
    "unwrap_body",
]

#: ``typ`` of an executeAction JWS.
ACTION_TYP: Final = "consortia-action"
#: ``typ`` of the operator's consortium-creation request.
CREATE_TYP: Final = "consortia-create"
#: ``typ`` of a new key's proof of possession (refreshTrustKeys).
KEY_PROOF_TYP: Final = "consortia-key-proof"
#: Media type of a body that is a compact JWS or JWE.
JOSE_MEDIA_TYPE: Final = "application/jose"
#: Seconds a request's (or a key proof's) ``iat`` may differ from the server's clock.
IAT_WINDOW: Final = 300
#: Largest request body accepted (JWS or JWE), before any parsing.
MAX_BODY_BYTES: Final = 1_048_576

_NONCE = re.compile(r"^[\x21-\x7e]{16,64}$")


def new_nonce() -> str:
    """A fresh 32-character nonce."""
    return secrets.token_hex(16)


def check_nonce(value: object) -> str:
    """A request's nonce: 16-64 printable ASCII characters."""
    if not isinstance(value, str) or not _NONCE.match(value):
        raise BadRequest("nonce must be a string of 16-64 printable ASCII characters")
    return value


def check_iat(value: object) -> int:
    """A request's ``iat``: an integer NumericDate (the window is the server's check)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("iat must be an integer NumericDate (seconds since the epoch)")
    return value


def unwrap_body(body: str | bytes, service_key: EncryptionKey) -> ParsedJWS:
    """The JWS of a body that is a JWS, or a JWE wrapping one (signature not yet checked)."""
    if isinstance(body, bytes):
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            body = body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise BadRequest("request body must be a compact JWS or JWE (ASCII)") from None
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"request body is {len(body)} characters; the limit is {MAX_BODY_BYTES}")
    if is_jwe(body):
        inner = decrypt_compact(body, service_key, max_length=MAX_BODY_BYTES)
        return parse_compact(inner, max_length=MAX_BODY_BYTES)
    return parse_compact(body, max_length=MAX_BODY_BYTES)
