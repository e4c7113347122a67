"""JWE compact serialization: ``alg: ECDH-ES`` (direct key agreement), ``enc: A256GCM``.

This is the optional encrypted request of PROTOCOL.md section 1: a member wraps its JWS for
the service's X25519 key. References: RFC 7516 (JWE), RFC 7518 section 4.6 (ECDH-ES and the
Concat KDF), RFC 8037 section 3.2 (X25519 ``epk`` as an OKP JWK). One algorithm pair only;
anything else, compression and ``crit`` extensions included, is refused.
"""

from __future__ import annotations

import json
import secrets
import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

from consortia._json import JSON, loads_strict
from consortia.errors import BadRequest, BadSignature
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.keys import EncryptionKey, PublicEncryptionKey

__all__ = ["ALG", "ENC", "MAX_JWE_LENGTH", "decrypt_compact", "encrypt_compact", "is_jwe"]

#: Key management: the content key is the Concat KDF output itself (no wrapped key).
ALG: Final = "ECDH-ES"
#: Content encryption: AES-256 in GCM mode.
ENC: Final = "A256GCM"
#: Default cap on a compact JWE, checked before any decoding.
MAX_JWE_LENGTH: Final = 1_048_576
_KEY_BITS: Final = 256
_IV_BYTES: Final = 12
_TAG_BYTES: Final = 16
_PARTS: Final = 5


def _derive_cek(
    shared: bytes, apu: bytes, apv: bytes, *, algorithm: str = ENC, key_bits: int = _KEY_BITS
) -> bytes:
    """RFC 7518 section 4.6.2: Concat KDF (NIST SP 800-56A) with SHA-256.

    For direct ECDH-ES the AlgorithmID is the ``enc`` value; each field is prefixed with its
    32-bit big-endian length and SuppPubInfo is the key length in bits. ``algorithm`` and
    ``key_bits`` vary only so the RFC 7518 appendix C vector (A128GCM) can be checked.
    """
    algorithm_id = algorithm.encode("ascii")
    other_info = b"".join(
        (
            struct.pack(">I", len(algorithm_id)),
            algorithm_id,
            struct.pack(">I", len(apu)),
            apu,
            struct.pack(">I", len(apv)),
            apv,
            struct.pack(">I", key_bits),
        )
    )
    kdf = ConcatKDFHash(algorithm=SHA256(), length=key_bits // 8, otherinfo=other_info)
    return kdf.derive(shared)


def is_jwe(token: str | bytes) -> bool:
    """True when ``token`` has the 5 dot-separated parts of a compact JWE (a JWS has 3)."""
    if isinstance(token, bytes):
        return token.count(b".") == _PARTS - 1
    return token.count(".") == _PARTS - 1


def _encrypt(
    plaintext: bytes,
    recipient: PublicEncryptionKey,
    *,
    ephemeral: EncryptionKey,
    iv: bytes,
    kid: str | None,
    cty: str | None,
) -> str:
    """Encrypt with a given ephemeral key and IV. Reusing either breaks the scheme: tests only."""
    header: dict[str, JSON] = {"alg": ALG, "enc": ENC}
    if kid is not None:
        header["kid"] = kid
    if cty is not None:
        header["cty"] = cty
    epk: dict[str, JSON] = dict(ephemeral.public_jwk())
    header["epk"] = epk
    cek = _derive_cek(ephemeral.exchange(recipient), b"", b"")
    encoded_header = b64url_encode(json.dumps(header, separators=(",", ":")).encode("ascii"))
    # The AAD is the ASCII of the encoded protected header (RFC 7516 section 5.1 step 14).
    sealed = AESGCM(cek).encrypt(iv, plaintext, encoded_header.encode("ascii"))
    ciphertext, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    return ".".join(
        (encoded_header, "", b64url_encode(iv), b64url_encode(ciphertext), b64url_encode(tag))
    )


def encrypt_compact(
    plaintext: bytes,
    recipient: PublicEncryptionKey,
    *,
    kid: str | None = None,
    cty: str | None = None,
) -> str:
    """Encrypt ``plaintext`` to ``recipient`` as a compact JWE (ECDH-ES, A256GCM).

    A fresh ephemeral X25519 key and a random 96-bit IV are drawn for every call.
    """
    return _encrypt(
        plaintext,
        recipient,
        ephemeral=EncryptionKey.generate(),
        iv=secrets.token_bytes(_IV_BYTES),
        kid=kid,
        cty=cty,
    )


def _optional_b64(header: dict[str, JSON], name: str) -> bytes:
    value = header.get(name)
    if value is None:
        return b""
    if not isinstance(value, str):
        raise BadRequest(f"JWE header {name!r} must be a base64url string")
    return b64url_decode(value, what=f"JWE header {name!r}")


def _check_header(header: JSON) -> dict[str, JSON]:
    if not isinstance(header, dict):
        raise BadRequest("JWE protected header must be a JSON object")
    if header.get("alg") != ALG:
        raise BadRequest(f"JWE header 'alg' must be {ALG!r}, got {header.get('alg')!r}")
    if header.get("enc") != ENC:
        raise BadRequest(f"JWE header 'enc' must be {ENC!r}, got {header.get('enc')!r}")
    if "zip" in header:
        # Compressing before encrypting leaks length information; it is never needed here.
        raise BadRequest("JWE header 'zip' is not supported; send the plaintext uncompressed")
    if "crit" in header:
        raise BadRequest(f"JWE header 'crit' {header['crit']!r} names unsupported extensions")
    for name in ("kid", "cty", "typ"):
        if name in header and not isinstance(header[name], str):
            raise BadRequest(f"JWE header {name!r} must be a string")
    if "epk" not in header:
        raise BadRequest("JWE header has no 'epk' (the sender's ephemeral X25519 key)")
    return header


def decrypt_compact(
    token: str, recipient: EncryptionKey, *, max_length: int = MAX_JWE_LENGTH
) -> bytes:
    """Decrypt a compact JWE (ECDH-ES, A256GCM) addressed to ``recipient``.

    Raises :class:`BadRequest` for a malformed token and :class:`BadSignature` when it does
    not decrypt (wrong key, or tampered).
    """
    if not isinstance(token, str):
        raise BadRequest(f"a JWE must be text, got {type(token).__name__}")
    if len(token) > max_length:
        raise BadRequest(f"JWE is {len(token)} characters long; the limit is {max_length}")
    if not token.isascii():
        raise BadRequest("JWE contains non-ASCII characters")
    parts = token.split(".")
    if len(parts) != _PARTS:
        raise BadRequest(f"a compact JWE has {_PARTS} dot-separated parts, this has {len(parts)}")
    encoded_header, encrypted_key, encoded_iv, encoded_ciphertext, encoded_tag = parts
    header = _check_header(
        loads_strict(b64url_decode(encoded_header, what="JWE header"), what="JWE header")
    )
    if encrypted_key:
        raise BadRequest("JWE encrypted key must be empty for ECDH-ES direct key agreement")
    epk = PublicEncryptionKey.from_jwk(header["epk"], what="JWE header 'epk'")
    apu = _optional_b64(header, "apu")
    apv = _optional_b64(header, "apv")
    iv = b64url_decode(encoded_iv, what="JWE initialization vector")
    if len(iv) != _IV_BYTES:
        raise BadRequest(f"JWE initialization vector must be {_IV_BYTES} bytes, got {len(iv)}")
    ciphertext = b64url_decode(encoded_ciphertext, what="JWE ciphertext")
    tag = b64url_decode(encoded_tag, what="JWE authentication tag")
    if len(tag) != _TAG_BYTES:
        raise BadRequest(f"JWE authentication tag must be {_TAG_BYTES} bytes, got {len(tag)}")
    # exchange() refuses an all-zero shared secret (a small-order epk).
    cek = _derive_cek(recipient.exchange(epk), apu, apv)
    try:
        return AESGCM(cek).decrypt(iv, ciphertext + tag, encoded_header.encode("ascii"))
    except InvalidTag:
        raise BadSignature("JWE does not decrypt with this key (wrong key or tampered)") from None
