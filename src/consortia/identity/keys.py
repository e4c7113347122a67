"""Member keys: Ed25519 for signing, X25519 for encryption, as JWKs (RFC 8037).

PyNaCl (libsodium) does the Ed25519 work because it is about twice as fast as `cryptography`
for verification, which the engine does on every request. Keys are checked when they are
read, not when they are first used: a small-order or non-canonical point is refused at
registration, so it can never make a later signature check or key exchange misbehave.
"""

from __future__ import annotations

import functools
import hmac
import re
from dataclasses import dataclass
from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
import nacl.utils
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from consortia._json import JSON
from consortia.errors import BadRequest, BadSignature
from consortia.identity._b64 import b64url_encode
from consortia.identity._okp import KEY_BYTES, okp_jwk, parse_private_okp, parse_public_okp

__all__ = [
    "ROLE_PREFIX",
    "EncryptionKey",
    "MemberKeys",
    "PublicEncryptionKey",
    "SigningKey",
    "VerifyKey",
    "validate_audience_entry",
    "validate_member_id",
    "validate_role",
]

_MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: A role name: a letter, then up to 31 letters, digits, ``_`` or ``-`` (``auditor``).
_ROLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
#: An audience entry ``role:NAME`` names every holder of role NAME when it is read; member
#: ids cannot hold a colon, so the two spellings never collide.
ROLE_PREFIX: Final = "role:"
# p = 2**255 - 19: an X25519 u-coordinate at or above it (or with the top bit set) is a second
# spelling of a smaller one, which would give one key two identities.
_CURVE25519_P: Final = 2**255 - 19
# Any scalar works for the small-order test: X25519 clamps it to a multiple of the cofactor 8,
# which sends exactly the small-order points to zero.
_PROBE_SCALAR: Final = bytes(range(1, 33))


# Checking a point costs about as much as verifying a signature. Keys are parsed again and
# again (from stored member records, per request), so each distinct key is checked once.
@functools.lru_cache(maxsize=16_384)
def _is_valid_ed25519_point(raw: bytes) -> bool:
    # Refuses non-canonical encodings and small-order points, which no honest key generator
    # produces and which weaken what a signature proves.
    return bool(nacl.bindings.crypto_core_ed25519_is_valid_point(raw))


@functools.lru_cache(maxsize=16_384)
def _is_usable_x25519_point(raw: bytes) -> bool:
    if int.from_bytes(raw, "little") >= _CURVE25519_P:
        return False
    try:
        nacl.bindings.crypto_scalarmult(_PROBE_SCALAR, raw)
    except nacl.exceptions.RuntimeError:
        # libsodium refuses an all-zero result: every key exchange with this key would too.
        return False
    return True


def validate_role(value: object, *, what: str) -> str:
    """Return ``value`` if it is a role name: a letter, then up to 31 of ``A-Za-z0-9_-``."""
    if not isinstance(value, str) or _ROLE_NAME.fullmatch(value) is None:
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise BadRequest(
            f"{what} {shown} is not a role name: expected a letter, then up to 31 letters, "
            "digits, '_' or '-' (e.g. 'supplier')"
        )
    return value


def validate_audience_entry(value: object, *, what: str) -> str:
    """Return ``value`` if it names a member (its id) or a role's holders (``role:NAME``)."""
    if isinstance(value, str) and value.startswith(ROLE_PREFIX):
        validate_role(value[len(ROLE_PREFIX) :], what=what)
        return value
    return validate_member_id(value, what=what)


def validate_member_id(value: object, *, what: str) -> str:
    """Return ``value`` if it is a member id: 1-64 of ``[A-Za-z0-9._-]``, alphanumeric first.

    ``"operator"`` passes here; reserving it is the engine's business.
    """
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string member id, got {type(value).__name__}")
    if _MEMBER_ID.fullmatch(value) is None:
        raise BadRequest(
            f"{what} {value[:80]!r} is not a valid member id: expected 1-64 characters of "
            "A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    return value


class VerifyKey:
    """An Ed25519 public key; :meth:`verify` raises, it never returns a bool to forget."""

    __slots__ = ("_key",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise BadRequest(f"an Ed25519 public key is {KEY_BYTES} bytes, got {len(raw)}")
        if not _is_valid_ed25519_point(bytes(raw)):
            raise BadRequest("not a valid Ed25519 public key (bad or small-order point)")
        self._key = nacl.signing.VerifyKey(raw)

    @classmethod
    def from_jwk(cls, jwk: object, *, what: str = "signing key") -> VerifyKey:
        """Read a public Ed25519 JWK; raises :class:`BadRequest` saying what was wrong."""
        return cls(parse_public_okp(jwk, crv="Ed25519", what=what))

    @property
    def raw(self) -> bytes:
        """The 32-byte public key."""
        return bytes(self._key)

    def to_jwk(self) -> dict[str, str]:
        """The public JWK ``{"kty":"OKP","crv":"Ed25519","x":...}``."""
        return okp_jwk("Ed25519", self.raw)

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check ``signature`` over ``message``; raise :class:`BadSignature` if it fails."""
        try:
            self._key.verify(message, signature)
        except nacl.exceptions.CryptoError:
            raise BadSignature("the Ed25519 signature does not verify with this key") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyKey):
            return NotImplemented
        return self.raw == other.raw

    def __hash__(self) -> int:
        return hash((VerifyKey, self.raw))

    def __repr__(self) -> str:
        return f"VerifyKey(x={b64url_encode(self.raw)!r})"


class SigningKey:
    """An Ed25519 private key (the 32-byte seed of RFC 8032); its repr shows only the public key."""

    __slots__ = ("_key", "_verify_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != KEY_BYTES:
            raise BadRequest(f"an Ed25519 seed is {KEY_BYTES} bytes, got {len(seed)}")
        self._key = nacl.signing.SigningKey(seed)
        self._verify_key = VerifyKey(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh random key."""
        return cls(nacl.utils.random(KEY_BYTES))

    @classmethod
    def from_jwk(cls, jwk: object, *, what: str = "private signing key") -> SigningKey:
        """Read a private Ed25519 JWK (``d`` and ``x``); ``x`` must be the public key of ``d``."""
        x, d = parse_private_okp(jwk, crv="Ed25519", what=what)
        key = cls(d)
        if not hmac.compare_digest(key.verify_key.raw, x):
            raise BadRequest(f"{what}: 'x' is not the public key of 'd'; the JWK is corrupt")
        return key

    @property
    def verify_key(self) -> VerifyKey:
        """The matching public key."""
        return self._verify_key

    def to_jwk(self) -> dict[str, str]:
        """The private JWK, ``d`` included: write it only to a 0600 key file."""
        return okp_jwk("Ed25519", self._verify_key.raw, bytes(self._key))

    def public_jwk(self) -> dict[str, str]:
        """The public JWK of :attr:`verify_key`."""
        return self._verify_key.to_jwk()

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message).signature

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return hmac.compare_digest(bytes(self._key), bytes(other._key))

    def __hash__(self) -> int:
        return hash((SigningKey, self._verify_key.raw))

    def __repr__(self) -> str:
        return f"SigningKey(public_x={b64url_encode(self._verify_key.raw)!r})"


class PublicEncryptionKey:
    """An X25519 public key: what notifications are boxed to and JWEs encrypted for."""

    __slots__ = ("_key",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise BadRequest(f"an X25519 public key is {KEY_BYTES} bytes, got {len(raw)}")
        if not _is_usable_x25519_point(bytes(raw)):
            raise BadRequest(
                "not a usable X25519 public key (non-canonical u-coordinate or small-order point)"
            )
        self._key = nacl.public.PublicKey(raw)

    @classmethod
    def from_jwk(cls, jwk: object, *, what: str = "encryption key") -> PublicEncryptionKey:
        """Read a public X25519 JWK; raises :class:`BadRequest` saying what was wrong."""
        return cls(parse_public_okp(jwk, crv="X25519", what=what))

    @property
    def raw(self) -> bytes:
        """The 32-byte public key."""
        return bytes(self._key)

    def to_jwk(self) -> dict[str, str]:
        """The public JWK ``{"kty":"OKP","crv":"X25519","x":...}``."""
        return okp_jwk("X25519", self.raw)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicEncryptionKey):
            return NotImplemented
        return self.raw == other.raw

    def __hash__(self) -> int:
        return hash((PublicEncryptionKey, self.raw))

    def __repr__(self) -> str:
        return f"PublicEncryptionKey(x={b64url_encode(self.raw)!r})"


class EncryptionKey:
    """An X25519 private key; its repr shows only the public key."""

    __slots__ = ("_nacl", "_public")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise BadRequest(f"an X25519 private key is {KEY_BYTES} bytes, got {len(secret)}")
        # Package-internal: box.py builds nacl.public.Box from _nacl and the public key's _key.
        self._nacl = nacl.public.PrivateKey(secret)
        self._public = PublicEncryptionKey(bytes(self._nacl.public_key))

    @classmethod
    def generate(cls) -> EncryptionKey:
        """A fresh random key."""
        return cls(nacl.utils.random(KEY_BYTES))

    @classmethod
    def from_jwk(cls, jwk: object, *, what: str = "private encryption key") -> EncryptionKey:
        """Read a private X25519 JWK (``d`` and ``x``); ``x`` must be the public key of ``d``."""
        x, d = parse_private_okp(jwk, crv="X25519", what=what)
        key = cls(d)
        if not hmac.compare_digest(key.public_key.raw, x):
            raise BadRequest(f"{what}: 'x' is not the public key of 'd'; the JWK is corrupt")
        return key

    @property
    def public_key(self) -> PublicEncryptionKey:
        """The matching public key."""
        return self._public

    def to_jwk(self) -> dict[str, str]:
        """The private JWK, ``d`` included: write it only to a 0600 key file."""
        return okp_jwk("X25519", self._public.raw, bytes(self._nacl))

    def public_jwk(self) -> dict[str, str]:
        """The public JWK of :attr:`public_key`."""
        return self._public.to_jwk()

    def exchange(self, peer: PublicEncryptionKey) -> bytes:
        """The raw X25519 shared secret with ``peer`` (RFC 7748).

        A primitive: never use it as a key directly, derive one with a KDF (see jwe.py).
        Raises :class:`BadRequest` if the result is all zero (a small-order peer key).
        """
        private = X25519PrivateKey.from_private_bytes(bytes(self._nacl))
        try:
            return private.exchange(X25519PublicKey.from_public_bytes(peer.raw))
        except ValueError:
            raise BadRequest("X25519 shared secret is all zero (small-order peer key)") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncryptionKey):
            return NotImplemented
        return hmac.compare_digest(bytes(self._nacl), bytes(other._nacl))

    def __hash__(self) -> int:
        return hash((EncryptionKey, self._public.raw))

    def __repr__(self) -> str:
        return f"EncryptionKey(public_x={b64url_encode(self._public.raw)!r})"


@dataclass(frozen=True)
class MemberKeys:
    """Everything a member holds privately: its id, signing key and encryption key."""

    member_id: str
    signing: SigningKey
    encryption: EncryptionKey

    def __post_init__(self) -> None:
        validate_member_id(self.member_id, what="member id")

    @classmethod
    def generate(cls, member_id: str) -> MemberKeys:
        """Fresh random keys for ``member_id``."""
        return cls(member_id, SigningKey.generate(), EncryptionKey.generate())

    def public_info(self) -> dict[str, JSON]:
        """``{"id", "signing_key", "encryption_key"}`` with public JWKs, as registered."""
        signing: dict[str, JSON] = dict(self.signing.public_jwk())
        encryption: dict[str, JSON] = dict(self.encryption.public_jwk())
        return {"id": self.member_id, "signing_key": signing, "encryption_key": encryption}
