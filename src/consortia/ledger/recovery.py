"""Recovery shares: k-of-n Shamir sharing of a consortium's recovery key (pure logic).

Each consortium has a *recovery key* (32 random bytes) that wraps its keyring a second time,
beside the node key. The recovery key is never stored: it is split k-of-n with
pycryptodome's Shamir sharing over GF(2^128) (16-byte secrets, so the key is split as two
halves that use the same x-coordinates), one share per active member, each sealed to that
member's X25519 key. A platform started on a copy of the storage with no node key combines
k shares that members submit, signed, to unwrap the keyring.

A record wraps its own consortium's keyring and nothing else: never the platform-wide
service keys, which sign every consortium's roots, so k members of one consortium learn
nothing that works on another (docs/protocol-notes.md, "Disaster recovery").

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
from consortia.errors import BadRequest, ConsortiaError, StaleRequest
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.box import open_anonymous, seal_anonymous
from consortia.identity.jws import parse_compact, sign_compact
from consortia.identity.keys import MemberKeys, PublicEncryptionKey, VerifyKey
from consortia.ledger.crypto import KEY_BYTES, LedgerCorrupted

__all__ = [
    "SHARE_TYP",
    "STATUS_TYP",
    "STATUS_WINDOW",
    "HolderClaim",
    "RecoveryRecord",
    "Share",
    "ShareSubmission",
    "combine_key",
    "default_threshold",
    "holder_digest",
    "holds",
    "open_share",
    "parse_holder_proof",
    "parse_submission",
    "record_name",
    "seal_share",
    "sign_holder_proof",
    "sign_submission",
    "split_key",
    "wrap_aad",
]

#: ``typ`` of a member's signed share submission (a compact JWS).
SHARE_TYP = "consortia-recovery-share"
#: ``typ`` of a holder proof: the bearer token that shows a member its consortium's progress.
STATUS_TYP = "consortia-recovery-status"
#: Seconds a holder proof's ``iat`` may lie from the recovering TEP's clock.
STATUS_WINDOW = 300
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
    """One epoch of a consortium's recovery: who holds shares, and the wrapped keyring."""

    cid: str
    epoch: int
    threshold: int
    holders: dict[int, bytes]
    keyring: bytes

    def to_bytes(self) -> bytes:
        """Stored form (JSON; every field is public or already encrypted)."""
        doc: JSONObject = {
            "cid": self.cid,
            "epoch": self.epoch,
            "threshold": self.threshold,
            "holders": {str(x): d.hex() for x, d in sorted(self.holders.items())},
            "keyring": self.keyring.hex(),
        }
        return canonical(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> RecoveryRecord:
        """Parse :meth:`to_bytes` output.

        A record written before records stopped wrapping the service keys has a
        ``"service"`` field too; it is dropped unread, so no recovery ever relies on it.
        """
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
            )
        except (ConsortiaError, KeyError, ValueError) as exc:
            raise LedgerCorrupted(f"stored recovery record is unreadable: {exc}") from None

    def aad(self, what: str) -> bytes:
        """Associated data binding a wrapped secret to this consortium and epoch."""
        return wrap_aad(self.cid, self.epoch, what)


def wrap_aad(cid: str, epoch: int, what: str) -> bytes:
    """Associated data of a secret wrapped for recovery (``what`` is ``"keyring"``)."""
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


@dataclass(frozen=True)
class HolderClaim:
    """Who claims to hold which share: a verified submission's or holder proof's fields."""

    member: str
    signing_key: VerifyKey
    cid: str
    epoch: int
    x: int

    @classmethod
    def of(cls, submission: ShareSubmission) -> HolderClaim:
        """The claim a share submission makes."""
        share = submission.share
        return cls(submission.member, submission.signing_key, share.cid, share.epoch, share.x)


def holds(record: RecoveryRecord, claim: HolderClaim) -> bool:
    """Whether the record names the claimed member and key as the holder of share x."""
    digest = holder_digest(record.cid, record.epoch, claim.x, claim.member, claim.signing_key)
    return (
        claim.cid == record.cid
        and claim.epoch == record.epoch
        and record.holders.get(claim.x) == digest
    )


def sign_holder_proof(keys: MemberKeys, share: Share, *, now: int) -> str:
    """Member side: a token proving it holds ``share`` (the share itself is not in it).

    A recovering TEP shows a consortium's progress only to a holder of one of its shares,
    so it tells no outsider which consortia it holds.
    """
    payload: JSONObject = {
        "consortium": share.cid,
        "epoch": share.epoch,
        "x": share.x,
        "member": keys.member_id,
        "signing_key": dict(keys.signing.public_jwk()),
        "iat": now,
    }
    return sign_compact(canonical(payload), keys.signing, kid=keys.member_id, typ=STATUS_TYP)


def parse_holder_proof(token: str, *, now: int) -> HolderClaim:
    """Parse and verify a holder proof (against its own key: the caller checks the holder)."""
    jws = parse_compact(token)
    if jws.typ != STATUS_TYP:
        raise BadRequest(f"a recovery holder proof has typ {STATUS_TYP!r}")
    payload = loads_strict(jws.payload, what="holder proof")
    if not isinstance(payload, dict):
        raise BadRequest("a holder proof is a JSON object")
    try:
        key = VerifyKey.from_jwk(payload["signing_key"])
        member, cid = payload["member"], payload["consortium"]
        epoch, x, iat = payload["epoch"], payload["x"], payload["iat"]
    except KeyError as exc:
        raise BadRequest(f"a holder proof lacks {exc}") from None
    if not isinstance(member, str) or member != jws.kid:
        raise BadRequest("the holder proof's member must equal its JWS kid")
    # bool is an int subclass, but int(str(True)) below would raise ValueError: refuse it here.
    if not (
        isinstance(cid, str)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in (epoch, x, iat))
    ):
        raise BadRequest(
            "a holder proof has a string consortium and integer (not boolean) epoch, x and iat"
        )
    jws.verify(key)
    if abs(now - int(str(iat))) > STATUS_WINDOW:
        raise StaleRequest(
            f"the holder proof's iat is more than {STATUS_WINDOW} s from the server's clock; "
            "check this machine's time and ask again"
        )
    return HolderClaim(member, key, cid, int(str(epoch)), int(str(x)))
