"""The transaction record: the bytes a leaf's digest covers (PROTOCOL.md section 6).

A record is RFC 8785 canonical JSON, so any member can re-hash the bytes it was given and
compare with the receipt. It carries the request as the member signed it, what the platform
decided (seqno, time, audience), a digest of every state version the transaction wrote, and
a fresh 32-byte salt, so a digest reveals nothing of a hidden record. State values are not in
the record: a version may be visible to fewer members than the transaction (``put`` with its
own ``visible_to``); each version's own salted digest lets whoever may see it match it here.

A record also commits to the notification queue entries stored with it
(:func:`notifications_digest` in ``detail["notifications"]``): a digest over the stored,
encrypted rows, so the signed root covers every member's queue and a member reading the
record learns nothing from it (the rows are ciphertext under fresh nonces).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from consortia._json import JSON, JSONObject, canonical, loads_strict
from consortia.errors import ConsortiaError

__all__ = [
    "EVERYONE",
    "NOTIFICATIONS_FIELD",
    "RECORD_FORMAT",
    "RECOVERY_FIELD",
    "SALT_BYTES",
    "Audience",
    "TxRecord",
    "audience_from_json",
    "audience_to_json",
    "notification_entry",
    "notifications_digest",
    "parse_record",
    "queue_head_name",
    "version_digest",
]

RECORD_FORMAT = "consortia-record/1"
SALT_BYTES = 32
#: Audience marker for "every member, now and later" (governance).
EVERYONE = "*"

#: ``None`` is everyone; otherwise the sorted member ids that may see the thing.
Audience = tuple[str, ...] | None

#: The ``detail`` field in which a record commits to the queue entries stored under it.
NOTIFICATIONS_FIELD = "notifications"
#: The ``detail`` field in which a batch's last record commits to the recovery record its
#: shares open: the SHA-256 of the record's stored bytes (public or encrypted fields only).
RECOVERY_FIELD = "recovery"
_NID = struct.Struct(">Q")
_QUEUE_DOMAIN = b"consortia-notifications/1\x00"


def audience_to_json(audience: Audience) -> JSON:
    """``"*"`` for everyone, else the sorted list of member ids."""
    return EVERYONE if audience is None else list(audience)


def audience_from_json(value: JSON) -> Audience:
    """Inverse of :func:`audience_to_json`; raises ValueError on anything else."""
    if value == EVERYONE:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    raise ValueError(f"not an audience: {value!r}")


def version_digest(key: str, value: JSON, audience: Audience, salt: bytes) -> str:
    """Salted SHA-256 of one state version, as listed in its transaction's record."""
    doc: JSONObject = {
        "key": key,
        "value": value,
        "audience": audience_to_json(audience),
        "salt": salt.hex(),
    }
    return hashlib.sha256(canonical(doc)).hexdigest()


def notification_entry(member_hash: bytes, nid: int, blob: bytes) -> bytes:
    """One stored queue entry as a record commits to it: where it is, and its stored bytes.

    Fixed width (32-byte member hash, 8-byte id, SHA-256 of the encrypted blob), so the
    sorted concatenation in :func:`notifications_digest` is unambiguous.
    """
    return member_hash + _NID.pack(nid) + hashlib.sha256(blob).digest()


def notifications_digest(entries: Iterable[bytes]) -> str:
    """The hex digest a record commits to: its queue entries, in (member, id) order."""
    return hashlib.sha256(_QUEUE_DOMAIN + b"".join(sorted(entries))).hexdigest()


def queue_head_name(cid: str) -> str:
    """Meta-table name of the commitment to a consortium's entries no record covers yet."""
    return f"queue/{cid}"


@dataclass(frozen=True, slots=True)
class TxRecord:
    """One committed transaction, as its audience reads it."""

    consortium: str
    seqno: int
    txid: str
    time: int
    action: str
    member: str
    audience: Audience
    request: str | None  # the compact JWS as signed (operator's for genesis)
    writes: tuple[str, ...]  # version digests, in write order
    salt: bytes
    detail: JSONObject  # e.g. {"proposal": id, "approved_by": [...]} for a voted request

    def to_json(self) -> JSONObject:
        """The record's JSON document."""
        return {
            "format": RECORD_FORMAT,
            "consortium": self.consortium,
            "seqno": self.seqno,
            "txid": self.txid,
            "time": self.time,
            "action": self.action,
            "member": self.member,
            "audience": audience_to_json(self.audience),
            "request": self.request,
            "writes": list(self.writes),
            "salt": self.salt.hex(),
            "detail": self.detail,
        }

    def to_bytes(self) -> bytes:
        """Canonical bytes: what is encrypted at rest, served, and hashed into the leaf."""
        return canonical(self.to_json())


def record_digest(data: bytes) -> bytes:
    """SHA-256 of record bytes (the leaf's ``digest``)."""
    return hashlib.sha256(data).digest()


def parse_record(data: bytes) -> TxRecord:
    """Parse record bytes; raises ValueError saying what is wrong."""
    try:
        doc = loads_strict(data, what="record")
    except ConsortiaError as exc:
        raise ValueError(exc.message) from None
    if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT:
        raise ValueError(f"record is not a {RECORD_FORMAT} document")
    try:
        seqno, time = doc["seqno"], doc["time"]
        writes, detail = doc["writes"], doc["detail"]
        if not isinstance(seqno, int) or not isinstance(time, int):
            raise ValueError("record seqno/time are not integers")
        if not isinstance(writes, list) or not isinstance(detail, dict):
            raise ValueError("record writes/detail are ill-typed")
        request = doc["request"]
        return TxRecord(
            consortium=str(doc["consortium"]),
            seqno=seqno,
            txid=str(doc["txid"]),
            time=time,
            action=str(doc["action"]),
            member=str(doc["member"]),
            audience=audience_from_json(doc["audience"]),
            request=None if request is None else str(request),
            writes=tuple(str(w) for w in writes),
            salt=bytes.fromhex(str(doc["salt"])),
            detail=detail,
        )
    except KeyError as exc:
        raise ValueError(f"record lacks field {exc.args[0]!r}") from None
