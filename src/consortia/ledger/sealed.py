"""Encryption at rest: one consortium's rows in and out of storage.

Every value a consortium stores is AES-256-GCM under its :class:`~consortia.ledger.crypto.
Keyring`, with associated data that names the table, the consortium and the row, so a
ciphertext moved to another row, table or consortium fails to open; every name (state key,
member, nonce, proposal, directory) reaches storage only as a keyed hash. This module is the
one place those layouts are written down::

    version       "version"      | cid | name_hash | seqno (8 bytes, big-endian)
    key name      "name"         | cid | name_hash
    record        "tx"           | cid | seqno
    proposal      "proposal"     | cid | pid_hash
    notification  "notification" | cid | member_hash | nid
    info          "info|" cid                            (under the keyring)
    keyring       "keyring|" cid                         (under the node key)

(The service keys are wrapped under the node key too, with their own associated data, by
:mod:`consortia.engine.service`: they belong to the platform, not to one consortium.)

:class:`SealedRows` turns plain values (a :class:`Write`, a :class:`~consortia.ledger.records.
TxRecord`, a proposal's or a notification's stored JSON) into the rows of
:mod:`consortia.ledger.store` and back. Pure: randomness is a parameter.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from consortia._json import JSON, JSONObject, canonical, loads_strict
from consortia.errors import ConsortiaError
from consortia.ledger.crypto import Keyring, LedgerCorrupted, unwrap, wrap
from consortia.ledger.merkle import leaf_hash, leaf_input
from consortia.ledger.records import (
    SALT_BYTES,
    Audience,
    TxRecord,
    audience_from_json,
    audience_to_json,
    parse_record,
    record_digest,
    version_digest,
)
from consortia.ledger.store import NameRow, NotificationRow, ProposalRow, TxRow, VersionRow

__all__ = [
    "SealedRows",
    "StateVersion",
    "Write",
    "open_info",
    "parent_of",
    "seal_info",
    "unwrap_keyring",
    "wrap_keyring",
]

_SEQ: Final = struct.Struct(">Q")
#: In a stored queue entry (never served): the seqno of the record that commits to it.
_COMMITTED_IN: Final = "committed_in"

Random = Callable[[int], bytes]


def wrap_keyring(
    node_key: bytes, cid: str, keyring: Keyring, *, random: Random = os.urandom
) -> bytes:
    """A consortium's keyring as stored: wrapped under the node key, bound to ``cid``."""
    return wrap(node_key, keyring.to_bytes(), b"keyring|" + cid.encode(), random=random)


def unwrap_keyring(node_key: bytes, cid: str, blob: bytes) -> Keyring:
    """Open a stored keyring (``ledger_corrupted`` if the node key or ``cid`` is wrong)."""
    return Keyring.from_bytes(
        unwrap(node_key, blob, b"keyring|" + cid.encode(), what=f"keyring of {cid}")
    )


def seal_info(
    keyring: Keyring, cid: str, info: JSONObject, *, random: Random = os.urandom
) -> bytes:
    """A consortium's info document (its name, template) as stored, under its keyring."""
    return keyring.encrypt(canonical(info), b"info|" + cid.encode(), random=random)


def open_info(keyring: Keyring, cid: str, blob: bytes) -> JSONObject:
    """Open a stored info document; ``ledger_corrupted`` if it does not open or parse."""
    info = loads_strict(keyring.decrypt(blob, b"info|" + cid.encode(), what=f"info of {cid}"))
    if not isinstance(info, dict):
        raise LedgerCorrupted(f"info of {cid} is not an object")
    return info


def parent_of(key: str) -> str:
    """The directory of a key: everything up to and including its last ``/``."""
    cut = key.rfind("/")
    return "" if cut < 0 else key[: cut + 1]


@dataclass(frozen=True, slots=True)
class Write:
    """One staged state write of an execution."""

    key: str
    value: JSON
    audience: Audience
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class StateVersion:
    """One decrypted state version."""

    key: str
    value: JSON
    audience: Audience
    deleted: bool
    seqno: int
    txid: str
    salt: bytes

    def visible_to(self, member: str) -> bool:
        """Whether the audience names ``member`` by id (``role:NAME`` entries are resolved
        against the constitution by the engine, which reads through ``Constitution.sees``)."""
        return self.audience is None or member in self.audience


class SealedRows:
    """One consortium's codec between plain values and encrypted, keyed-hashed rows.

    ``keyring`` may be replaced (a committed ``rotateLedgerSecret``): rows written after
    that use the new secret, and older rows still open under the keyring's older secrets.
    """

    def __init__(self, cid: str, keyring: Keyring, *, random: Random = os.urandom) -> None:
        self.cid = cid
        self.keyring = keyring
        self.random = random
        self._cid = cid.encode()

    def _aad(self, table: bytes, *parts: bytes) -> bytes:
        return b"|".join((table, self._cid, *parts))

    # -- keyed hashes -----------------------------------------------------------------------

    def name_hash(self, key: str) -> bytes:
        """Keyed hash of a state key (storage never sees the key)."""
        return self.keyring.name_hash("key", key)

    def dir_hash(self, prefix: str) -> bytes:
        """Keyed hash of a directory (a key's :func:`parent_of`)."""
        return self.keyring.name_hash("dir", prefix)

    def member_hash(self, member: str) -> bytes:
        """Keyed hash of a member id (for its queue)."""
        return self.keyring.name_hash("member", member)

    def nonce_hash(self, member: str, nonce: str) -> bytes:
        """Keyed hash of a member's nonce."""
        return self.keyring.name_hash("nonce", member + "\x00" + nonce)

    def proposal_hash(self, pid: str) -> bytes:
        """Keyed hash of a proposal id."""
        return self.keyring.name_hash("proposal", pid)

    def signed_root_mac(self, tree_size: int, previous: int, jws: str) -> bytes:
        """The keyed hash that chains a stored signed root to the one before it."""
        return self.keyring.name_hash("signed-root", f"{tree_size}|{previous}|{jws}")

    def queue_head_mac(self, doc: JSONObject) -> str:
        """The keyed hash in a queue head over its other fields."""
        fields = f"{doc.get('seqno')}|{doc.get('entries')}|{doc.get('digest')}"
        return self.keyring.name_hash("queue-head", fields).hex()

    # -- state versions and key names -------------------------------------------------------

    def seal_version(
        self, write: Write, seqno: int, txid: str, *, salt: bytes | None = None
    ) -> tuple[VersionRow, NameRow, str]:
        """Encrypted rows for one write, and its digest for the record (``salt``: the
        version's, drawn here unless the caller drew it)."""
        if salt is None:
            salt = self.random(SALT_BYTES)
        name_hash = self.name_hash(write.key)
        doc: JSONObject = {
            "key": write.key,
            "value": write.value,
            "audience": audience_to_json(write.audience),
            "deleted": write.deleted,
            "salt": salt.hex(),
        }
        blob = self.keyring.encrypt(
            canonical(doc),
            self._aad(b"version", name_hash, _SEQ.pack(seqno)),
            random=self.random,
        )
        name_blob = self.keyring.encrypt(
            write.key.encode("utf-8"), self._aad(b"name", name_hash), random=self.random
        )
        digest = version_digest(write.key, write.value, write.audience, salt)
        return (
            VersionRow(name_hash, seqno, txid, blob),
            NameRow(name_hash, self.dir_hash(parent_of(write.key)), not write.deleted, name_blob),
            digest,
        )

    def open_version(self, row: VersionRow) -> StateVersion:
        """Decrypt and parse one stored state version."""
        what = f"state version at seqno {row.seqno}"
        plain = self.keyring.decrypt(
            row.blob, self._aad(b"version", row.name_hash, _SEQ.pack(row.seqno)), what=what
        )
        try:
            doc = loads_strict(plain, what=what)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            return StateVersion(
                key=str(doc["key"]),
                value=doc["value"],
                audience=audience_from_json(doc["audience"]),
                deleted=bool(doc["deleted"]),
                seqno=row.seqno,
                txid=row.txid,
                salt=bytes.fromhex(str(doc["salt"])),
            )
        except (ConsortiaError, KeyError, ValueError) as exc:
            raise LedgerCorrupted(f"{what} is unreadable: {exc}") from None

    def open_name(self, row: NameRow) -> str:
        """Decrypt the key name of a directory entry."""
        plain = self.keyring.decrypt(row.blob, self._aad(b"name", row.name_hash), what="key name")
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise LedgerCorrupted("a stored key name is not UTF-8") from None

    # -- records ----------------------------------------------------------------------------

    def seal_record(self, record: TxRecord) -> TxRow:
        """The encrypted row and Merkle leaf of a record."""
        data = record.to_bytes()
        digest = record_digest(data)
        leaf = leaf_hash(leaf_input(record.seqno, bytes.fromhex(record.txid), digest))
        blob = self.keyring.encrypt(
            data, self._aad(b"tx", _SEQ.pack(record.seqno)), random=self.random
        )
        return TxRow(record.seqno, record.txid, digest, leaf, blob)

    def open_record_bytes(self, row: TxRow) -> bytes:
        """The record bytes of a transaction, checked against its digest."""
        data = self.keyring.decrypt(
            row.blob, self._aad(b"tx", _SEQ.pack(row.seqno)), what=f"record {row.seqno}"
        )
        if record_digest(data) != row.digest:
            raise LedgerCorrupted(f"record {row.seqno} does not match its digest")
        return data

    def open_record(self, row: TxRow) -> TxRecord:
        """Decrypt and parse a transaction's record, checking its digest."""
        data = self.open_record_bytes(row)
        try:
            return parse_record(data)
        except ValueError as exc:
            raise LedgerCorrupted(f"record {row.seqno} is unreadable: {exc}") from None

    # -- proposals and notifications --------------------------------------------------------

    def seal_proposal(self, pid: str, *, is_open: bool, stored: JSONObject) -> ProposalRow:
        """The encrypted row of a proposal (``stored``: its stored JSON form)."""
        pid_hash = self.proposal_hash(pid)
        blob = self.keyring.encrypt(
            canonical(stored), self._aad(b"proposal", pid_hash), random=self.random
        )
        return ProposalRow(pid_hash, is_open, blob)

    def open_proposal(self, pid_hash: bytes, blob: bytes) -> JSON:
        """A stored proposal's JSON (the caller parses it)."""
        plain = self.keyring.decrypt(blob, self._aad(b"proposal", pid_hash), what="proposal")
        try:
            return loads_strict(plain, what="proposal")
        except ConsortiaError as exc:
            raise LedgerCorrupted(f"stored proposal is unreadable: {exc.message}") from None

    def seal_notification(
        self, member: str, nid: int, data: JSONObject, *, committed_in: int
    ) -> NotificationRow:
        """The encrypted queue row of a sealed notice (``data``: its wire form).

        ``committed_in`` is the seqno of the record that will commit to the row; it is
        stored with the entry (for ``ledger verify``) and never served.
        """
        member_hash = self.member_hash(member)
        blob = self.keyring.encrypt(
            canonical({**data, _COMMITTED_IN: committed_in}),
            self._aad(b"notification", member_hash, _SEQ.pack(nid)),
            random=self.random,
        )
        return NotificationRow(member_hash, nid, blob)

    def open_notification(self, row: NotificationRow) -> tuple[JSONObject, int | None]:
        """Decrypt one queue entry: its wire form, and the seqno of the record that commits
        to it (None for an entry stored before records committed to queues)."""
        plain = self.keyring.decrypt(
            row.blob,
            self._aad(b"notification", row.member_hash, _SEQ.pack(row.nid)),
            what=f"notification {row.nid}",
        )
        doc = loads_strict(plain, what="notification")
        if not isinstance(doc, dict):
            raise LedgerCorrupted(f"notification {row.nid} is not an object")
        committed_in = doc.pop(_COMMITTED_IN, None)
        if committed_in is not None and not isinstance(committed_in, int):
            raise LedgerCorrupted(f"notification {row.nid} names no seqno for its record")
        return doc, committed_in
