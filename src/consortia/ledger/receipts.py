"""Signed roots and receipts (PROTOCOL.md section 6): building them, and checking them offline.

A *signed root* is a compact JWS by the service key over ``{"consortium","tree_size","root",
"iat"}``; the platform writes one in the same storage transaction as every batch of leaves.
A *receipt* proves that one transaction is a leaf of a signed tree:

    {"consortium","txid","seqno","digest","tree_size","root","proof":[hex,...],
     "signed_root": <JWS>, "service_key": <JWK>}

:func:`verify_receipt` is what a member runs with nothing but the receipt and the service key
it pinned: rebuild the leaf, fold the proof to the root (RFC 9162 section 2.1.3.2), check the
root and tree size against the signed ones and the signature against the pinned key. It
raises; it never returns a bool. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from consortia._json import JSON, JSONObject, canonical, loads_strict
from consortia.errors import BadRequest, BadSignature
from consortia.identity.jws import ParsedJWS, parse_compact, sign_compact
from consortia.identity.keys import SigningKey, VerifyKey
from consortia.ledger.merkle import (
    HASH_BYTES,
    InclusionError,
    leaf_hash,
    leaf_input,
    verify_inclusion,
)

__all__ = [
    "MAX_PROOF_LENGTH",
    "RECEIPT_FIELDS",
    "SERVICE_KID",
    "SIGNED_ROOT_FIELDS",
    "SIGNED_ROOT_TYP",
    "SignedRoot",
    "VerifiedReceipt",
    "build_receipt",
    "parse_signed_root",
    "sign_root",
    "verify_receipt",
    "verify_signed_root",
]

#: JWS header of a signed root: ``{"alg":"EdDSA","kid":"service","typ":"consortia-root"}``.
SERVICE_KID: Final = "service"
SIGNED_ROOT_TYP: Final = "consortia-root"
SIGNED_ROOT_FIELDS: Final = ("consortium", "tree_size", "root", "iat")
RECEIPT_FIELDS: Final = (
    "consortium",
    "txid",
    "seqno",
    "digest",
    "tree_size",
    "root",
    "proof",
    "signed_root",
    "service_key",
)
#: A tree of 2**64 leaves has proofs of 64 hashes; anything longer is not a proof.
MAX_PROOF_LENGTH: Final = 64
#: A signed root is about 300 characters; refuse anything far larger before decoding it.
_MAX_SIGNED_ROOT: Final = 4096
_HEADER_FIELDS: Final = frozenset({"alg", "kid", "typ"})
_MAX_COUNT: Final = 2**53 - 1
_HEX = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True, slots=True)
class SignedRoot:
    """The content of a signed root (trusted only once :func:`verify_signed_root` returned)."""

    consortium: str
    tree_size: int
    root: bytes
    iat: int
    jws: str


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a receipt proved: transaction ``txid`` is leaf ``seqno`` of a signed tree."""

    consortium: str
    txid: str
    seqno: int
    digest: str
    tree_size: int
    root: str
    signed_at: int

    def to_json(self) -> JSONObject:
        """The verified facts, for display."""
        return {
            "consortium": self.consortium,
            "txid": self.txid,
            "seqno": self.seqno,
            "digest": self.digest,
            "tree_size": self.tree_size,
            "root": self.root,
            "signed_at": self.signed_at,
        }


def sign_root(key: SigningKey, *, consortium: str, tree_size: int, root: bytes, iat: int) -> str:
    """The compact JWS of a signed root, over canonical JSON of its four fields."""
    if len(root) != HASH_BYTES:
        raise ValueError(f"root has {len(root)} bytes, expected {HASH_BYTES}")
    payload: JSONObject = {
        "consortium": consortium,
        "tree_size": tree_size,
        "root": root.hex(),
        "iat": iat,
    }
    return sign_compact(canonical(payload), key, kid=SERVICE_KID, typ=SIGNED_ROOT_TYP)


def _parse(jws: object) -> tuple[ParsedJWS, SignedRoot]:
    if not isinstance(jws, str):
        raise BadRequest(f"signed_root must be a compact JWS string, got {type(jws).__name__}")
    parsed = parse_compact(jws, max_length=_MAX_SIGNED_ROOT)
    extra = sorted(set(parsed.header) - _HEADER_FIELDS)
    if extra:
        raise BadRequest(f"signed root header has unexpected members {extra}")
    if parsed.kid != SERVICE_KID:
        raise BadRequest(f"signed root header kid must be {SERVICE_KID!r}, got {parsed.kid!r}")
    if parsed.typ != SIGNED_ROOT_TYP:
        raise BadRequest(f"signed root header typ must be {SIGNED_ROOT_TYP!r}, got {parsed.typ!r}")
    what = "signed root payload"
    doc = _fields(loads_strict(parsed.payload, what=what), SIGNED_ROOT_FIELDS, what)
    root = SignedRoot(
        consortium=_text(doc, "consortium", "signed root"),
        tree_size=_count(doc, "tree_size", "signed root", least=1),
        root=_hash(doc, "root", "signed root"),
        iat=_count(doc, "iat", "signed root", least=0),
        jws=jws,
    )
    return parsed, root


def parse_signed_root(jws: object) -> SignedRoot:
    """Read a signed root's fields *without* checking its signature (for display or lookup)."""
    return _parse(jws)[1]


def verify_signed_root(jws: object, service_key: VerifyKey) -> SignedRoot:
    """The signed root's fields, once its signature verifies with ``service_key``.

    Raises BadRequest if it is not a signed root, BadSignature if the key did not sign it.
    """
    parsed, root = _parse(jws)
    try:
        parsed.verify(service_key)
    except BadSignature:
        raise BadSignature(
            f"the signed root (consortium {root.consortium!r}, tree size {root.tree_size}) "
            "is not signed by the pinned service key"
        ) from None
    return root


def build_receipt(
    *,
    txid: str,
    seqno: int,
    digest: bytes,
    proof: Sequence[bytes],
    signed_root: SignedRoot,
    service_key: VerifyKey,
) -> JSONObject:
    """The receipt document of PROTOCOL.md section 6, fields in the protocol's order."""
    return {
        "consortium": signed_root.consortium,
        "txid": txid,
        "seqno": seqno,
        "digest": digest.hex(),
        "tree_size": signed_root.tree_size,
        "root": signed_root.root.hex(),
        "proof": [value.hex() for value in proof],
        "signed_root": signed_root.jws,
        "service_key": dict(service_key.to_jwk()),
    }


def verify_receipt(receipt: JSON, service_key: VerifyKey) -> VerifiedReceipt:
    """Check a receipt offline against the pinned ``service_key``; return what it proves.

    Raises :class:`BadRequest` when the receipt is malformed (missing, unknown or ill-typed
    fields), and :class:`BadSignature` when it is well formed but the service's signature
    does not vouch for it: another key, a root or tree size other than the signed one, or a
    proof that does not lead from the transaction's leaf to the signed root. Each message
    says what did not match.
    """
    doc = _fields(receipt, RECEIPT_FIELDS, "receipt")
    consortium = _text(doc, "consortium", "receipt")
    txid = _hash(doc, "txid", "receipt")
    seqno = _count(doc, "seqno", "receipt", least=0)
    digest = _hash(doc, "digest", "receipt")
    tree_size = _count(doc, "tree_size", "receipt", least=1)
    root = _hash(doc, "root", "receipt")
    proof = _proof(doc["proof"])
    _check_service_key(doc["service_key"], service_key)
    signed = verify_signed_root(doc["signed_root"], service_key)
    if signed.consortium != consortium:
        raise BadSignature(
            f"receipt is for consortium {consortium!r}, its signed root for {signed.consortium!r}"
        )
    if signed.tree_size != tree_size:
        raise BadSignature(
            f"receipt tree_size {tree_size} differs from the signed tree size {signed.tree_size}"
        )
    if signed.root != root:
        raise BadSignature(
            f"receipt root {root.hex()} differs from the signed root {signed.root.hex()}"
        )
    leaf = leaf_hash(leaf_input(seqno, txid, digest))
    try:
        verify_inclusion(leaf, seqno, tree_size, proof, root)
    except InclusionError as exc:
        raise BadSignature(
            f"transaction {txid.hex()} at seqno {seqno} is not proven to be in the signed "
            f"tree: {exc}"
        ) from None
    return VerifiedReceipt(
        consortium=consortium,
        txid=txid.hex(),
        seqno=seqno,
        digest=digest.hex(),
        tree_size=tree_size,
        root=root.hex(),
        signed_at=signed.iat,
    )


# -- field readers: each names the field and what was expected ------------------------------


def _fields(value: JSON, names: Sequence[str], what: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object, got {type(value).__name__}")
    missing = [n for n in names if n not in value]
    unknown = sorted(k for k in value if k not in names)
    if missing or unknown:
        raise BadRequest(
            f"{what} fields do not match: missing {missing}, unknown {unknown}; "
            f"expected exactly {list(names)}"
        )
    return value


def _text(doc: dict[str, JSON], name: str, what: str) -> str:
    value = doc[name]
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{what} {name} must be a non-empty string, got {value!r}")
    return value


def _count(doc: dict[str, JSON], name: str, what: str, *, least: int) -> int:
    value = doc[name]
    # bool is an int in Python; JSON true is not a number.
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= _MAX_COUNT:
        raise BadRequest(f"{what} {name} must be an integer from {least} to 2^53-1, got {value!r}")
    return value


def _hex_hash(value: JSON, what: str) -> bytes:
    # Lowercase only: one hash, one spelling, so no character of a receipt can change unseen.
    if not isinstance(value, str) or len(value) != 2 * HASH_BYTES or not _HEX.fullmatch(value):
        shown = value[:80] if isinstance(value, str) else value
        raise BadRequest(f"{what} must be {2 * HASH_BYTES} lowercase hex digits, got {shown!r}")
    return bytes.fromhex(value)


def _hash(doc: dict[str, JSON], name: str, what: str) -> bytes:
    return _hex_hash(doc[name], f"{what} {name}")


def _proof(value: JSON) -> list[bytes]:
    if not isinstance(value, list):
        raise BadRequest(f"receipt proof must be a list of hashes, got {type(value).__name__}")
    if len(value) > MAX_PROOF_LENGTH:
        raise BadRequest(f"receipt proof has {len(value)} hashes; at most {MAX_PROOF_LENGTH}")
    return [_hex_hash(item, f"receipt proof[{i}]") for i, item in enumerate(value)]


def _check_service_key(value: JSON, pinned: VerifyKey) -> None:
    named = VerifyKey.from_jwk(value, what="receipt service_key")
    if named != pinned:
        raise BadSignature(
            f"receipt names service key x={named.to_jwk()['x']}, but the pinned service key "
            f"is x={pinned.to_jwk()['x']}: the receipt comes from another platform"
        )
    if value != pinned.to_jwk():
        raise BadRequest(
            "receipt service_key must be exactly the public JWK {kty, crv, x} of the "
            f"service key; it has members {sorted(value) if isinstance(value, dict) else value}"
        )
