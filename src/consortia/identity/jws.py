"""JWS compact serialization with ``alg: EdDSA`` only (RFC 7515, RFC 8037).

Every signed request is one of these. Parsing is separate from verification so the engine
can read ``kid`` to find the member's key, but :class:`ParsedJWS` carries no trust until
:meth:`ParsedJWS.verify` returns. The parser accepts one algorithm and no extensions:
``alg: none``, HMAC algorithms and ``crit`` are refused by name, not by accident.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Final

from consortia._json import JSON, loads_strict
from consortia.errors import BadRequest
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.keys import SigningKey, VerifyKey

__all__ = [
    "ALG",
    "MAX_JWS_LENGTH",
    "ParsedJWS",
    "parse_compact",
    "sign_compact",
    "txid_of",
]

#: The one JWS algorithm of the protocol (PROTOCOL.md section 1).
ALG: Final = "EdDSA"
#: Default cap on a compact JWS, checked before any decoding.
MAX_JWS_LENGTH: Final = 1_048_576
_SIGNATURE_BYTES: Final = 64


def _to_ascii(text: str, what: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise BadRequest(f"{what} contains a non-ASCII character at position {exc.start}") from None


def sign_compact(payload: bytes, key: SigningKey, *, kid: str, typ: str | None = None) -> str:
    """Sign ``payload`` as a compact JWS with header ``{"alg":"EdDSA","kid":...,"typ":...}``."""
    if not isinstance(kid, str) or not kid:
        raise BadRequest("a JWS kid must be a non-empty string")
    header: dict[str, str] = {"alg": ALG, "kid": kid}
    if typ is not None:
        header["typ"] = typ
    encoded_header = b64url_encode(json.dumps(header, separators=(",", ":")).encode("ascii"))
    signing_input = f"{encoded_header}.{b64url_encode(payload)}"
    signature = key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def txid_of(compact: str) -> str:
    """Lowercase hex SHA-256 of the compact JWS's ASCII bytes (PROTOCOL.md section 2)."""
    return hashlib.sha256(_to_ascii(compact, "JWS")).hexdigest()


@dataclass(frozen=True)
class ParsedJWS:
    """A structurally valid compact JWS whose signature has not been checked yet."""

    header: dict[str, JSON]
    payload: bytes
    signing_input: bytes
    signature: bytes
    compact: str

    @property
    def kid(self) -> str:
        """The header ``kid``: the member id of the claimed signer (not yet proven)."""
        kid = self.header.get("kid")
        if not isinstance(kid, str):
            raise BadRequest("JWS header 'kid' must be a string")
        return kid

    @property
    def typ(self) -> str | None:
        """The header ``typ``, if any."""
        typ = self.header.get("typ")
        if typ is not None and not isinstance(typ, str):
            raise BadRequest("JWS header 'typ' must be a string")
        return typ

    @property
    def txid(self) -> str:
        """The transaction id of this JWS (see :func:`txid_of`)."""
        return txid_of(self.compact)

    def verify(self, key: VerifyKey) -> bytes:
        """Return the payload if the signature verifies with ``key``; else raise BadSignature."""
        key.verify(self.signature, self.signing_input)
        return self.payload


def _check_header(header: JSON) -> dict[str, JSON]:
    if not isinstance(header, dict):
        raise BadRequest("JWS header must be a JSON object")
    alg = header.get("alg")
    if alg != ALG:
        # Names the refusal so "alg":"none" or HS256 never reads like a key problem.
        raise BadRequest(f"JWS header 'alg' must be {ALG!r}, got {alg!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise BadRequest("JWS header must carry 'kid' (the member id) as a non-empty string")
    typ = header.get("typ")
    if typ is not None and not isinstance(typ, str):
        raise BadRequest("JWS header 'typ' must be a string")
    if "crit" in header:
        # RFC 7515 section 4.1.11: a recipient must refuse extensions it does not understand,
        # and this parser understands none.
        raise BadRequest(f"JWS header 'crit' {header['crit']!r} names unsupported extensions")
    if "b64" in header and header["b64"] is not True:
        raise BadRequest("JWS header 'b64' must not be false: unencoded payloads are refused")
    return header


def parse_compact(token: str | bytes, *, max_length: int = MAX_JWS_LENGTH) -> ParsedJWS:
    """Split and decode a compact JWS strictly; the signature is checked by ``verify``.

    Raises :class:`BadRequest` saying what was wrong.
    """
    if not isinstance(token, (str, bytes)):
        raise BadRequest(f"a JWS must be text, got {type(token).__name__}")
    if len(token) > max_length:
        raise BadRequest(f"JWS is {len(token)} characters long; the limit is {max_length}")
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"JWS contains a non-ASCII byte at position {exc.start}") from None
    _to_ascii(token, "JWS")
    parts = token.split(".")
    if len(parts) != 3:
        raise BadRequest(
            f"a compact JWS has 3 dot-separated parts, this has {len(parts)}"
            + (" (is it a JWE?)" if len(parts) == 5 else "")
        )
    encoded_header, encoded_payload, encoded_signature = parts
    header_bytes = b64url_decode(encoded_header, what="JWS header")
    header = _check_header(loads_strict(header_bytes, what="JWS header"))
    payload = b64url_decode(encoded_payload, what="JWS payload")
    signature = b64url_decode(encoded_signature, what="JWS signature")
    if len(signature) != _SIGNATURE_BYTES:
        raise BadRequest(
            f"JWS signature must be {_SIGNATURE_BYTES} bytes (Ed25519), got {len(signature)}"
        )
    return ParsedJWS(
        header=header,
        payload=payload,
        signing_input=f"{encoded_header}.{encoded_payload}".encode("ascii"),
        signature=signature,
        compact=token,
    )
