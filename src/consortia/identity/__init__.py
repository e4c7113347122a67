"""Identity: member keys, signed and encrypted messages, bearer tokens (PROTOCOL.md 1, 2, 4, 5).

The bottom layer of the platform. Everything here is pure (time is a parameter) except
:mod:`consortia.identity.keyfile`, which reads and writes key files.
"""

from __future__ import annotations

from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.box import Sealer, open_anonymous, open_box, seal_anonymous
from consortia.identity.jwe import decrypt_compact, encrypt_compact, is_jwe
from consortia.identity.jws import ParsedJWS, parse_compact, sign_compact, txid_of
from consortia.identity.jwt import issue_token, read_token, verify_token
from consortia.identity.keyfile import (
    load_member_keys,
    load_public_jwk,
    save_member_keys,
    save_public_jwk,
)
from consortia.identity.keys import (
    EncryptionKey,
    MemberKeys,
    PublicEncryptionKey,
    SigningKey,
    VerifyKey,
    validate_member_id,
)

__all__ = [
    "EncryptionKey",
    "MemberKeys",
    "ParsedJWS",
    "PublicEncryptionKey",
    "Sealer",
    "SigningKey",
    "VerifyKey",
    "b64url_decode",
    "b64url_encode",
    "decrypt_compact",
    "encrypt_compact",
    "is_jwe",
    "issue_token",
    "load_member_keys",
    "load_public_jwk",
    "open_anonymous",
    "open_box",
    "parse_compact",
    "read_token",
    "save_member_keys",
    "save_public_jwk",
    "seal_anonymous",
    "sign_compact",
    "txid_of",
    "validate_member_id",
    "verify_token",
]
