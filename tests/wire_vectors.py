"""The wire vectors of tests/vectors/ (requests.json and notifications.json, written by the
generators beside them), as the engine, server and SDK tests read them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortia import MemberKeys, Platform, SigningKey, open_notification, sign_creation
from consortia._json import JSONObject
from consortia.identity.keys import EncryptionKey, PublicEncryptionKey
from consortia.server.run import ServerConfig, ServerThread

__all__ = [
    "JOSE",
    "NOTIFICATIONS",
    "NOTIFIED",
    "REQUESTS",
    "VectorPlatform",
    "member_keys",
    "notifications_of",
    "opened",
    "served_vectors",
    "vector_platform",
]

#: The request headers of a JOSE body.
JOSE = {"content-type": "application/jose"}

_VECTORS = Path(__file__).parent / "vectors"
#: The parsed requests.json.
REQUESTS: Any = json.loads((_VECTORS / "requests.json").read_text(encoding="utf-8"))
#: The parsed notifications.json (None while it is being generated).
NOTIFICATIONS: Any = (
    json.loads((_VECTORS / "notifications.json").read_text(encoding="utf-8"))
    if (_VECTORS / "notifications.json").exists()
    else None
)
#: The members whose queues notifications.json records: the founders and dave, who joins.
NOTIFIED = ("alice", "bob", "dave")


def member_keys(member: str) -> MemberKeys:
    """A member's keys from the seeds the vectors publish."""
    entry = REQUESTS["members"][member]
    return MemberKeys(
        member,
        SigningKey(bytes.fromhex(entry["signing_seed"])),
        EncryptionKey(bytes.fromhex(entry["encryption_secret"])),
    )


@dataclass(frozen=True)
class VectorPlatform:
    """A platform whose clock reads the vectors' time, with their consortium founded."""

    platform: Platform
    cid: str


@contextmanager
def vector_platform(data: Path) -> Iterator[VectorPlatform]:
    """The platform the vectors' answers hold for: consortium ``vectors``, founders alice and
    bob (default template), the clock at ``REQUESTS["clock"]``; closed when the block ends."""
    clock = int(REQUESTS["clock"])
    # A fixed operator key and nonce: the genesis txid, which notifications name, is fixed.
    operator = SigningKey(hashlib.sha256(b"consortia test vectors: operator").digest())
    platform = Platform.open(data, operator_keys=[operator.verify_key], clock=lambda: clock)
    try:
        founders = [member_keys(m).public_info() for m in REQUESTS["founders"]]
        platform.create_consortium(
            sign_creation(
                operator,
                consortium=REQUESTS["consortium"],
                name="Vectors",
                members=founders,
                now=clock,
                nonce="vectors-genesis-0001",
            )
        )
        yield VectorPlatform(platform, REQUESTS["consortium"])
    finally:
        platform.close()


@contextmanager
def served_vectors(data: Path) -> Iterator[tuple[VectorPlatform, str]]:
    """:func:`vector_platform` served over plain HTTP on a free loopback port; its URL."""
    with vector_platform(data) as v:
        config = ServerConfig(port=0, tls=None, access_log=False, log_level="warning")
        thread = ServerThread(v.platform, config).start()
        try:
            yield v, thread.url
        finally:
            thread.stop()


def opened(entry: JSONObject, member: str, service_key: PublicEncryptionKey) -> JSONObject:
    """A queue entry with its sealed body opened by ``member`` (PROTOCOL.md section 5), in
    the form notifications.json records. A recovery share is sealed again to the member
    with a fresh random key each time, so its ``sealed`` field is recorded as null."""
    body = open_notification(entry, member_keys(member), service_key)
    if isinstance(body, dict) and body.get("event") == "recovery_share":
        body = {**body, "sealed": None}
    return {k: v for k, v in entry.items() if k != "sealed"} | {"body": body}


def notifications_of(platform: Platform, cid: str) -> dict[str, list[JSONObject]]:
    """Every member's queue, opened, as the engine holds it now."""
    service_key = platform.service.encryption.public_key
    queues: dict[str, list[JSONObject]] = {}
    for member in NOTIFIED:
        view = platform.member_view(cid, member)
        queues[member] = [opened(e, member, service_key) for e in view.notifications()]
    return queues
