"""Base64url without padding (RFC 7515 section 2), decoded strictly.

Every binary value on the wire is base64url without padding. Decoding is strict so that one
byte string has exactly one text form: a signature or key that could be spelled two ways
would give two txids for one request, or let a tampered token slip past a string compare.
"""

from __future__ import annotations

import base64
import binascii
import re

from consortia.errors import BadRequest

__all__ = ["b64url_decode", "b64url_encode"]

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Base64url text of ``data`` without ``=`` padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, what: str) -> bytes:
    """Decode unpadded base64url, refusing padding, stray characters and non-canonical text.

    Raises :class:`BadRequest` naming ``what``.
    """
    if not isinstance(text, str):
        raise BadRequest(f"{what} must be a base64url string, got {type(text).__name__}")
    if _ALPHABET.fullmatch(text) is None:
        if "=" in text:
            raise BadRequest(f"{what} must be base64url without '=' padding")
        raise BadRequest(f"{what} contains characters outside the base64url alphabet")
    if len(text) % 4 == 1:
        raise BadRequest(f"{what} has an impossible base64url length ({len(text)} characters)")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadRequest(f"{what} is not valid base64url") from None
    # The last character may carry unused low bits; if any is set, another text decodes to
    # the same bytes. Re-encoding and comparing refuses every such alias.
    if b64url_encode(data) != text:
        raise BadRequest(f"{what} is not canonical base64url (unused trailing bits are set)")
    return data
