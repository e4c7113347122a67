"""Boxed messages (PROTOCOL.md section 1): libsodium ``crypto_box`` from the service to a member.

Text form: base64url(24-byte nonce || ciphertext), where the ciphertext carries a 16-byte
Poly1305 tag. Because ``crypto_box`` authenticates the sender's key too, a member who opens
a box with the service's public key knows the platform wrote it.

Anonymous sealed boxes (``crypto_box_seal``) are here as well, for messages whose sender
need not be proven.
"""

from __future__ import annotations

from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.public

from consortia.errors import BadRequest, BadSignature
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.keys import EncryptionKey, PublicEncryptionKey

__all__ = [
    "MAX_CACHED_BOXES",
    "NONCE_BYTES",
    "Sealer",
    "open_anonymous",
    "open_box",
    "seal_anonymous",
]

#: Length of the random nonce that opens every boxed message.
NONCE_BYTES: Final = nacl.bindings.crypto_box_NONCEBYTES
# The Poly1305 tag (crypto_box_MACBYTES, which PyNaCl does not export).
_TAG_BYTES: Final = 16
_SEAL_OVERHEAD: Final = nacl.bindings.crypto_box_SEALBYTES
#: Precomputed boxes kept per Sealer before the cache is dropped and rebuilt.
MAX_CACHED_BOXES: Final = 10_000


class Sealer:
    """Seals messages from the service's X25519 key to members' keys.

    A precomputed :class:`nacl.public.Box` (the X25519 exchange, ~40 µs) is cached per
    recipient; the cache is simply cleared when full, which is cheap and bounds memory.
    """

    __slots__ = ("_boxes", "_service_key")

    def __init__(self, service_key: EncryptionKey) -> None:
        self._service_key = service_key
        self._boxes: dict[bytes, nacl.public.Box] = {}

    @property
    def public_key(self) -> PublicEncryptionKey:
        """The service's public key: what a member passes as ``sender`` to :func:`open_box`."""
        return self._service_key.public_key

    def _box_for(self, recipient: PublicEncryptionKey) -> nacl.public.Box:
        box = self._boxes.get(recipient.raw)
        if box is None:
            if len(self._boxes) >= MAX_CACHED_BOXES:
                self._boxes.clear()
            box = nacl.public.Box(self._service_key._nacl, recipient._key)
            self._boxes[recipient.raw] = box
        return box

    def seal(
        self, recipient: PublicEncryptionKey, plaintext: bytes, *, nonce: bytes | None = None
    ) -> str:
        """Box ``plaintext`` to ``recipient``; return base64url(nonce || ciphertext).

        ``nonce`` is for test vectors only: reusing one with the same pair of keys breaks
        confidentiality, so leave it None (a fresh random nonce) everywhere else.
        """
        if nonce is not None and len(nonce) != NONCE_BYTES:
            raise BadRequest(f"a box nonce is {NONCE_BYTES} bytes, got {len(nonce)}")
        sealed = self._box_for(recipient).encrypt(plaintext, nonce)
        return b64url_encode(bytes(sealed))


def open_box(sealed: str, recipient: EncryptionKey, sender: PublicEncryptionKey) -> bytes:
    """Open a boxed message with the recipient's private key and the sender's public key.

    Raises :class:`BadRequest` if it is not a boxed message and :class:`BadSignature` if it
    does not authenticate (wrong keys or tampered).
    """
    data = b64url_decode(sealed, what="boxed message")
    if len(data) < NONCE_BYTES + _TAG_BYTES:
        raise BadRequest(
            f"boxed message is {len(data)} bytes; at least {NONCE_BYTES + _TAG_BYTES} expected"
        )
    box = nacl.public.Box(recipient._nacl, sender._key)
    try:
        return box.decrypt(data[NONCE_BYTES:], data[:NONCE_BYTES])
    except nacl.exceptions.CryptoError:
        raise BadSignature("box does not open with this key pair") from None


def seal_anonymous(recipient: PublicEncryptionKey, plaintext: bytes) -> bytes:
    """``crypto_box_seal``: encrypt to ``recipient`` from a throwaway key (sender unproven)."""
    return nacl.public.SealedBox(recipient._key).encrypt(plaintext)


def open_anonymous(data: bytes, recipient: EncryptionKey) -> bytes:
    """Open a ``crypto_box_seal`` message; raise :class:`BadSignature` if it does not open."""
    if len(data) < _SEAL_OVERHEAD:
        raise BadRequest(f"sealed box is {len(data)} bytes; at least {_SEAL_OVERHEAD} expected")
    try:
        return nacl.public.SealedBox(recipient._nacl).decrypt(data)
    except nacl.exceptions.CryptoError:
        raise BadSignature("sealed box does not open with this key") from None
