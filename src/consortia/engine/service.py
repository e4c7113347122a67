"""The service identity: the TEP's own Ed25519 signing key and X25519 encryption key.

The signing key signs Merkle roots and receipts; the encryption key boxes notifications and
opens JWE-wrapped requests. Both are stored only wrapped under the node key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from consortia._json import JSONObject, canonical, loads_strict
from consortia.errors import ConsortiaError
from consortia.identity.keys import EncryptionKey, SigningKey
from consortia.ledger.crypto import LedgerCorrupted, unwrap, wrap
from consortia.ledger.store import Store

__all__ = ["ServiceIdentity"]

_META = "service-keys"
_AAD = b"service-keys"


@dataclass(frozen=True)
class ServiceIdentity:
    """The platform's key pairs."""

    signing: SigningKey
    encryption: EncryptionKey

    def __repr__(self) -> str:
        return "ServiceIdentity(<keys hidden>)"

    def operator_nonce_key(self) -> bytes:
        """The key of the platform-wide operator-nonce marks: derived from the service signing
        key (an Ed25519 signature is deterministic), so it survives a recovery, which brings
        the same service keys back under a new node key."""
        return hashlib.sha256(self.signing.sign(b"consortia-operator-nonce-key/1")).digest()

    @classmethod
    def generate(cls) -> ServiceIdentity:
        """Fresh keys (for a new platform)."""
        return cls(SigningKey.generate(), EncryptionKey.generate())

    @classmethod
    def load_or_create(cls, store: Store, node_key: bytes) -> ServiceIdentity:
        """The stored service keys, or new ones stored (wrapped) on first start."""
        if store.meta_get(_META) is None:
            identity = cls.generate()
            identity.save(store, node_key)
            return identity
        return cls.load(store, node_key)

    def to_bytes(self) -> bytes:
        """The private keys, serialized: wrap them before they are stored."""
        doc: JSONObject = {
            "signing": dict(self.signing.to_jwk()),
            "encryption": dict(self.encryption.to_jwk()),
        }
        return canonical(doc)

    def save(self, store: Store, node_key: bytes) -> None:
        """Store the keys wrapped under ``node_key`` (replacing any stored ones)."""
        store.meta_put(_META, wrap(node_key, self.to_bytes(), _AAD, random=os.urandom))

    @classmethod
    def load(cls, store: Store, node_key: bytes) -> ServiceIdentity:
        """The stored service keys; raises ``LedgerCorrupted`` if they are absent or damaged."""
        blob = store.meta_get(_META)
        if blob is None:
            raise LedgerCorrupted("the store holds no service keys: it was never started")
        return cls.from_bytes(unwrap(node_key, blob, _AAD, what="service keys"))

    @classmethod
    def from_bytes(cls, plain: bytes) -> ServiceIdentity:
        """Parse :meth:`to_bytes` output; raises ``LedgerCorrupted`` if it is damaged."""
        try:
            doc_in = loads_strict(plain, what="service keys")
            if not isinstance(doc_in, dict):
                raise LedgerCorrupted("service keys are not an object")
            return cls(
                SigningKey.from_jwk(doc_in["signing"]),
                EncryptionKey.from_jwk(doc_in["encryption"]),
            )
        except (ConsortiaError, KeyError) as exc:
            raise LedgerCorrupted(f"stored service keys are unreadable: {exc}") from None

    def public_info(self) -> JSONObject:
        """The keys as ``GET /v1/service`` publishes them."""
        return {
            "service_key": dict(self.signing.public_jwk()),
            "encryption_key": dict(self.encryption.public_jwk()),
        }
