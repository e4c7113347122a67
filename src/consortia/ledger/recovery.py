"""Recovery shares: k-of-n Shamir sharing of a consortium's recovery key (pure logic).

Each consortium has a *recovery key* (32 random bytes) that wraps its keyring a second time,
beside the node key. The recovery key is never stored: it is split k-of-n with
pycryptodome's Shamir sharing over GF(2^128) (16-byte secrets, so the key is split as two
halves that use the same x-coordinates), one share per active member, each sealed to that
member's X25519 key. A platform started on a copy of the storage with no node key combines
k shares that members submit, signed, to unwrap the keyring.

The stored :class:`RecoveryRecord` (in the meta table, readable without any key) names the
share holders only by digests that bind consortium, epoch, x-coordinate, member id and
signing key, so a submission from anyone else is refused before any share is combined.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from Crypto.Protocol.SecretSharing import Shamir

from consortia._json import JSON, JSONObject, canonical, loads_strict
from consortia.errors import BadRequest, BadSignature, ConsortiaError
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.box import open_anonymous, seal_anonymous
from consortia.identity.jws import parse_compact, sign_compact
from consortia.identity.keys import MemberKeys, PublicEncryptionKey, VerifyKey
from consortia.ledger.crypto import KEY_BYTES, LedgerCorrupted

__all__ = [
    "SHARE_TYP",
    "RecoveryRecord",
    "Share",
    "ShareSubmission",
    "check_holder",
    "combine_key",
    "default_threshold",
    "holder_digest",
    "open_share",
    "parse_submission",
    "record_name",
    "seal_share",
    "sign_submission",
    "split_key",
    "wrap_aad",
]

#: ``typ`` of a member's signed share submission (a compact JWS).
SHARE_TYP = "consortia-recovery-share"
_HALF = KEY_BYTES // 2


def default_threshold(holders: int) -> int:
    """k for ``holders`` share holders: a majority, ⌊n/2⌋ + 1."""
    return holders // 2 + 1


def split_key(key: bytes, threshold: int, holders: int) -> list[tuple[int, bytes]]:
    """Split a 32-byte key k-of-n: ``(x, 32-byte share)`` for x = 1..n."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a recovery key is {KEY_BYTES} bytes, got {len(key)}")
    if not 1 <= threshold <= holders:
        raise ValueError(f"threshold {threshold} does not fit {holders} holders")
    if threshold == 1:
        # Shamir needs k >= 2; with one holder (or k = 1) every share is the key itself.
        return [(x, key) for x in range(1, holders + 1)]
    high = Shamir.split(threshold, holders, key[:_HALF])
    low = Shamir.split(threshold, holders, key[_HALF:])
    return [(x, h + lo) for (x, h), (x2, lo) in zip(high, low, strict=True) if x == x2]


def combine_key(shares: Sequence[tuple[int, bytes]], threshold: int) -> bytes:
    """Rebuild the key from at least ``threshold`` shares (refused with fewer)."""
    if len(shares) < threshold:
        raise BadRequest(
            f"{len(shares)} recovery share(s) submitted; {threshold} are needed to recover"
        )
    chosen = list(shares)[:threshold]
    if any(len(s) != KEY_BYTES for _, s in chosen):
        raise BadRequest(f"a recovery share is {KEY_BYTES} bytes")
    if threshold == 1:
        return chosen[0][1]
    high = Shamir.combine([(x, s[:_HALF]) for x, s in chosen])
    low = Shamir.combine([(x, s[_HALF:]) for x, s in chosen])
    return high + low


def record_name(cid: str, epoch: int | None = None) -> str:
    """Meta-table name of a consortium's recovery record (or, without epoch, its pointer)."""
    return f"recovery/{cid}" if epoch is None else f"recovery/{cid}/{epoch}"


def holder_digest(cid: str, epoch: int, x: int, member: str, signing_key: VerifyKey) -> bytes:
    """What the stored record keeps of a holder: SHA-256 binding all it must match."""
    message = canonical(
        {"cid": cid, "epoch": epoch, "x": x, "member": member, "key": signing_key.raw.hex()}
    )
    return hashlib.sha256(b"consortia-recovery-holder\x00" + message).digest()


@dataclass(frozen=True)
class RecoveryRecord:
    """One epoch of a consortium's recovery: who holds shares, and the wrapped secrets."""

    cid: str
    epoch: int
    threshold: int
    holders: dict[int, bytes]
    keyring: bytes
    service: bytes

    def to_bytes(self) -> bytes:
        """Stored form (JSON; every field is public or already encrypted)."""
        doc: JSONObject = {
            "cid": self.cid,
            "epoch": self.epoch,
            "threshold": self.threshold,
            "holders": {str(x): d.hex() for x, d in sorted(self.holders.items())},
            "keyring": self.keyring.hex(),
            "service": self.service.hex(),
        }
        return canonical(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> RecoveryRecord:
        """Parse :meth:`to_bytes` output."""
        try:
            doc = loads_strict(data, what="recovery record")
            if not isinstance(doc, dict) or not isinstance(doc["holders"], dict):
                raise BadRequest("not an object")
            epoch, threshold = doc["epoch"], doc["threshold"]
            if not isinstance(epoch, int) or not isinstance(threshold, int):
                raise BadRequest("epoch and threshold must be integers")
            return cls(
                cid=str(doc["cid"]),
                epoch=epoch,
                threshold=threshold,
                holders={int(x): bytes.fromhex(str(d)) for x, d in doc["holders"].items()},
                keyring=bytes.fromhex(str(doc["keyring"])),
                service=bytes.fromhex(str(doc["service"])),
            )
        except (ConsortiaError, KeyError, ValueError) as exc:
            raise LedgerCorrupted(f"stored recovery record is unreadable: {exc}") from None

    def aad(self, what: str) -> bytes:
        """Associated data binding a wrapped secret to this consortium and epoch."""
        return wrap_aad(self.cid, self.epoch, what)


def wrap_aad(cid: str, epoch: int, what: str) -> bytes:
    """Associated data of a secret (``"keyring"`` or ``"service"``) wrapped for recovery."""
    return f"recovery-{what}|{cid}|{epoch}".encode()


@dataclass(frozen=True)
class Share:
    """One member's share of one epoch of a consortium's recovery key."""

    cid: str
    epoch: int
    x: int
    threshold: int
    value: bytes

    def __repr__(self) -> str:
        return f"Share(cid={self.cid!r}, epoch={self.epoch}, x={self.x}, <hidden>)"

    def to_json(self) -> JSONObject:
        """The share as a JSON object (it is secret: seal it before it leaves)."""
        return {
            "consortium": self.cid,
            "epoch": self.epoch,
            "x": self.x,
            "threshold": self.threshold,
            "share": self.value.hex(),
        }

    @classmethod
    def from_json(cls, doc: JSON) -> Share:
        """Parse :meth:`to_json` output, raising ``bad_request``."""
        try:
            if not isinstance(doc, dict):
                raise BadRequest("a recovery share is a JSON object")
            epoch, x, threshold = doc["epoch"], doc["x"], doc["threshold"]
            if not (isinstance(epoch, int) and isinstance(x, int) and isinstance(threshold, int)):
                raise BadRequest("epoch, x and threshold of a share are integers")
            value = bytes.fromhex(str(doc["share"]))
            cid = str(doc["consortium"])
        except (KeyError, ValueError) as exc:
            raise BadRequest(f"a recovery share is malformed: {exc}") from None
        if len(value) != KEY_BYTES:
            raise BadRequest(f"a recovery share is {KEY_BYTES} bytes")
        return cls(cid, epoch, x, threshold, value)


def seal_share(recipient: PublicEncryptionKey, share: Share) -> str:
    """The share sealed (``crypto_box_seal``) to a member's X25519 key, base64url."""
    return b64url_encode(seal_anonymous(recipient, canonical(share.to_json())))


def open_share(sealed: str, keys: MemberKeys) -> Share:
    """Member side: open a sealed share with the member's own encryption key."""
    plain = open_anonymous(b64url_decode(sealed, what="sealed share"), keys.encryption)
    return Share.from_json(loads_strict(plain, what="recovery share"))


def sign_submission(keys: MemberKeys, share: Share) -> str:
    """Member side: the share, signed by the member, for a recovering platform."""
    payload: JSONObject = {
        **share.to_json(),
        "member": keys.member_id,
        "signing_key": dict(keys.signing.public_jwk()),
    }
    return sign_compact(canonical(payload), keys.signing, kid=keys.member_id, typ=SHARE_TYP)


@dataclass(frozen=True)
class ShareSubmission:
    """A submitted share whose signature checked out under the key it names."""

    member: str
    signing_key: VerifyKey
    share: Share


def parse_submission(body: str) -> ShareSubmission:
    """Parse and verify a signed submission (against its own key: the caller checks the key)."""
    jws = parse_compact(body)
    if jws.typ != SHARE_TYP:
        raise BadRequest(f"a recovery share submission has typ {SHARE_TYP!r}")
    try:
        payload = loads_strict(jws.payload, what="share submission")
        if not isinstance(payload, dict):
            raise BadRequest("a share submission is a JSON object")
        key = VerifyKey.from_jwk(payload["signing_key"])
        member = payload["member"]
    except KeyError as exc:
        raise BadRequest(f"a share submission lacks {exc}") from None
    if not isinstance(member, str) or member != jws.kid:
        raise BadRequest("the submission's member must equal its JWS kid")
    jws.verify(key)
    return ShareSubmission(member, key, Share.from_json(payload))


def check_holder(record: RecoveryRecord, submission: ShareSubmission) -> None:
    """Refuse a submission that the record does not name as a share holder."""
    share = submission.share
    expected = record.holders.get(share.x)
    digest = holder_digest(
        record.cid, record.epoch, share.x, submission.member, submission.signing_key
    )
    if share.cid != record.cid or share.epoch != record.epoch or expected != digest:
        raise BadSignature(
            f"{submission.member!r} holds no recovery share {share.x} of {record.cid!r} "
            f"(epoch {record.epoch}): not a member at the time shares were issued"
        )
