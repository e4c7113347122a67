"""The operator's service-key backup: the service keys sealed to a key of the operator's.

The platform-wide service keys are in no consortium's recovery record (k members of one
consortium must not get a key that works on the others); while the TEP still has its node
key, ``consortia recovery backup`` seals them to the operator (:func:`backup_service_keys`),
and a recovery opens that backup with the operator's private key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from consortia._json import JSONObject, canonical, loads_strict
from consortia.engine.datadir import DataDir
from consortia.engine.service import ServiceIdentity
from consortia.errors import BadRequest, BadSignature, NotFound
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.box import open_anonymous, seal_anonymous
from consortia.identity.keys import EncryptionKey, PublicEncryptionKey, VerifyKey
from consortia.ledger.crypto import LedgerCorrupted
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.sqlite import SQLiteStore

__all__ = ["BACKUP_META", "ServiceBackup", "backup_service_keys"]

#: Meta-table name of the operator's sealed service-key backup. Outside ``recovery/…``,
#: where a consortium id could collide with it.
BACKUP_META: Final = "recovery-service-backup"
_BACKUP_FORMAT: Final = "consortia-service-backup/1"


@dataclass(frozen=True)
class ServiceBackup:
    """The service keys sealed (``crypto_box_seal``) to the operator's X25519 key.

    The public fields say which key opens it and which service keys it claims to hold;
    they are checked when it is opened, never trusted before.
    """

    recipient: PublicEncryptionKey
    service_key: VerifyKey
    encryption_key: PublicEncryptionKey
    sealed: bytes

    def __repr__(self) -> str:
        return f"ServiceBackup(recipient={self.recipient.to_jwk()['x']!r}, <sealed>)"

    def to_bytes(self) -> bytes:
        """Stored form: canonical JSON, every field public or sealed."""
        doc: JSONObject = {
            "format": _BACKUP_FORMAT,
            "recipient": dict(self.recipient.to_jwk()),
            "service_key": dict(self.service_key.to_jwk()),
            "encryption_key": dict(self.encryption_key.to_jwk()),
            "sealed": b64url_encode(self.sealed),
        }
        return canonical(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> ServiceBackup:
        """Parse :meth:`to_bytes` output; ``bad_request`` saying what is wrong."""
        doc = loads_strict(data, what="service-key backup")
        if not isinstance(doc, dict) or doc.get("format") != _BACKUP_FORMAT:
            raise BadRequest(
                f"not a service-key backup (format {_BACKUP_FORMAT!r}, as "
                "`consortia recovery backup` writes it)"
            )
        try:
            return cls(
                PublicEncryptionKey.from_jwk(doc["recipient"], what="backup recipient"),
                VerifyKey.from_jwk(doc["service_key"], what="backup service_key"),
                PublicEncryptionKey.from_jwk(doc["encryption_key"], what="backup encryption_key"),
                b64url_decode(str(doc["sealed"]), what="backup sealed"),
            )
        except KeyError as exc:
            raise BadRequest(f"the service-key backup lacks {exc}") from None

    @classmethod
    def seal(cls, service: ServiceIdentity, recipient: PublicEncryptionKey) -> ServiceBackup:
        """Seal ``service`` to ``recipient`` (only its private key opens the result)."""
        return cls(
            recipient,
            service.signing.verify_key,
            service.encryption.public_key,
            seal_anonymous(recipient, service.to_bytes()),
        )

    def open(self, key: EncryptionKey) -> ServiceIdentity:
        """The service keys, with the operator's private key; refused with any other."""
        if key.public_key != self.recipient:
            raise BadSignature(
                "the service-key backup is sealed to another key (X25519 x="
                f"{self.recipient.to_jwk()['x']}); give the key file whose encryption key "
                "`consortia recovery backup --to` was given"
            )
        try:
            service = ServiceIdentity.from_bytes(open_anonymous(self.sealed, key))
        except LedgerCorrupted as exc:
            raise BadRequest(f"the service-key backup is damaged: {exc}") from None
        if (
            service.signing.verify_key != self.service_key
            or service.encryption.public_key != self.encryption_key
        ):
            raise BadRequest("the service-key backup's public keys do not match its content")
        return service


def backup_service_keys(data_dir: Path, recipient: PublicEncryptionKey) -> ServiceBackup:
    """Operator, on the TEP's host: seal the service keys to ``recipient`` into the storage.

    Needs ``data_dir``'s node key; safe while the platform runs (it reads the wrapped service
    keys and writes one meta row). The sealed copy travels with every later storage copy;
    only ``recipient``'s private key opens it, and a recovery needs it (module docstring).
    """
    database = DataDir(data_dir).ledger
    if not database.exists():
        raise NotFound(f"no ledger at {database}: point --data at the platform's folder")
    node_key = load_node_key(DataDir(data_dir).node_key)
    store = SQLiteStore(database)
    try:
        backup = ServiceBackup.seal(ServiceIdentity.load(store, node_key), recipient)
        store.meta_put(BACKUP_META, backup.to_bytes())
    finally:
        store.close()
    return backup
