"""Write tests/vectors/receipts.json: ``python tests/vectors/generate_receipts.py``.

Receipts (PROTOCOL.md section 6) over the same synthetic leaves as merkle.json, signed by a
service key derived from a fixed seed (Ed25519 signatures are deterministic), so this script
reproduces the file byte for byte; tests/ledger/test_ledger_receipts.py checks that it does.
The file holds receipts that verify and receipts that must not, each with the error code a
verifier raises and words its message contains, for the server, SDK and CLI tests to share.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from consortia._json import JSON, JSONObject, canonical
from consortia.identity._b64 import b64url_encode
from consortia.identity.jws import sign_compact
from consortia.identity.keys import SigningKey
from consortia.ledger.merkle import MerkleFrontier, inclusion_proof, leaf_hash, leaf_input
from consortia.ledger.receipts import (
    SERVICE_KID,
    SIGNED_ROOT_TYP,
    build_receipt,
    parse_signed_root,
    sign_root,
)

VECTORS_PATH = Path(__file__).with_name("receipts.json")
CONSORTIUM = "vectors"
IAT = 1_800_000_000
TREE_SIZES = (1, 2, 7, 100)
#: Test keys only: the seeds are public, so these keys protect nothing.
SERVICE_SEED = hashlib.sha256(b"consortia test vectors: service key").digest()
OTHER_SEED = hashlib.sha256(b"consortia test vectors: another platform's service key").digest()


def txid_of(seqno: int) -> bytes:
    """As in merkle.json: SHA-256 of the UTF-8 text ``tx{seqno}``."""
    return hashlib.sha256(f"tx{seqno}".encode()).digest()


def digest_of(seqno: int) -> bytes:
    """As in merkle.json: SHA-256 of ``record{seqno}``."""
    return hashlib.sha256(f"record{seqno}".encode()).digest()


def receipts_for(tree_size: int, key: SigningKey, seqnos: list[int]) -> list[JSONObject]:
    """Receipts for ``seqnos`` of the synthetic tree of ``tree_size`` leaves."""
    frontier = MerkleFrontier()
    nodes: dict[tuple[int, int], bytes] = {}
    for seqno in range(tree_size):
        leaf = leaf_hash(leaf_input(seqno, txid_of(seqno), digest_of(seqno)))
        for level, index, value in frontier.append(leaf):
            nodes[level, index] = value
    jws = sign_root(key, consortium=CONSORTIUM, tree_size=tree_size, root=frontier.root(), iat=IAT)
    signed = parse_signed_root(jws)
    return [
        build_receipt(
            txid=txid_of(seqno).hex(),
            seqno=seqno,
            digest=digest_of(seqno),
            proof=inclusion_proof(seqno, tree_size, lambda lv, ix: nodes[lv, ix]),
            signed_root=signed,
            service_key=key.verify_key,
        )
        for seqno in seqnos
    ]


def _root_jws(key: SigningKey, header_kid: str, typ: str, payload: JSONObject) -> str:
    return sign_compact(canonical(payload), key, kid=header_kid, typ=typ)


def invalid_cases(service: SigningKey, other: SigningKey) -> list[JSONObject]:
    """Receipts that must fail: name, receipt, error code, words of the message."""
    (base,) = receipts_for(7, service, [3])
    (foreign,) = receipts_for(7, other, [3])
    (bigger,) = receipts_for(100, service, [3])
    payload: JSONObject = {
        "consortium": CONSORTIUM,
        "tree_size": 7,
        "root": base["root"],
        "iat": IAT,
    }
    hashes = [str(h) for h in base["proof"]] if isinstance(base["proof"], list) else []
    jwk = dict(base["service_key"]) if isinstance(base["service_key"], dict) else {}

    def changed(**fields: JSON) -> JSONObject:
        return {**copy.deepcopy(base), **fields}

    def proof(items: list[str]) -> JSON:
        out: list[JSON] = [*items]
        return out

    cases: list[tuple[str, JSON, str, str]] = [
        ("another platform's receipt", foreign, "bad_signature", "another platform"),
        (
            "service_key swapped for the pinned one",
            {**foreign, "service_key": base["service_key"]},
            "bad_signature",
            "not signed by the pinned service key",
        ),
        (
            "a proof hash changed",
            changed(proof=proof([_flip_hex(hashes[0]), *hashes[1:]])),
            "bad_signature",
            "not proven",
        ),
        ("proof shortened", changed(proof=proof(hashes[:-1])), "bad_signature", "proof has"),
        (
            "proof lengthened",
            changed(proof=proof([*hashes, str(base["root"])])),
            "bad_signature",
            "proof has",
        ),
        ("seqno changed", changed(seqno=4), "bad_signature", "not proven"),
        ("txid changed", changed(txid=txid_of(4).hex()), "bad_signature", "not proven"),
        ("digest changed", changed(digest=digest_of(4).hex()), "bad_signature", "not proven"),
        ("seqno beyond the tree", changed(seqno=7), "bad_signature", "not below tree size"),
        ("tree_size changed", changed(tree_size=8), "bad_signature", "signed tree size"),
        ("root changed", changed(root=bigger["root"]), "bad_signature", "the signed root"),
        ("consortium changed", changed(consortium="other"), "bad_signature", "its signed root"),
        (
            "signed root of another tree",
            changed(signed_root=bigger["signed_root"]),
            "bad_signature",
            "signed tree size",
        ),
        (
            "signature altered",
            changed(signed_root=_alter_signature(str(base["signed_root"]))),
            "bad_signature",
            "not signed by the pinned service key",
        ),
        (
            "signed root with another kid",
            changed(signed_root=_root_jws(service, "operator", SIGNED_ROOT_TYP, payload)),
            "bad_request",
            "kid",
        ),
        (
            "signed root with another typ",
            changed(signed_root=_root_jws(service, SERVICE_KID, "JWT", payload)),
            "bad_request",
            "typ",
        ),
        (
            "signed root with alg none",
            changed(signed_root=_alg_none(str(base["signed_root"]))),
            "bad_request",
            "alg",
        ),
        (
            "proof missing",
            {k: v for k, v in base.items() if k != "proof"},
            "bad_request",
            "missing ['proof']",
        ),
        ("unknown field", changed(note="x"), "bad_request", "unknown ['note']"),
        ("txid in upper case", changed(txid=str(base["txid"]).upper()), "bad_request", "lowercase"),
        ("seqno as a string", changed(seqno="3"), "bad_request", "seqno must be an integer"),
        ("seqno negative", changed(seqno=-1), "bad_request", "seqno must be an integer"),
        ("seqno true", changed(seqno=True), "bad_request", "seqno must be an integer"),
        ("not an object", [base], "bad_request", "must be a JSON object"),
        (
            "service_key with extra members",
            changed(service_key={**jwk, "kid": "service"}),
            "bad_request",
            "exactly the public JWK",
        ),
    ]
    return [
        {"name": name, "receipt": receipt, "code": code, "message": words}
        for name, receipt, code, words in cases
    ]


def _flip_hex(value: str) -> str:
    """``value`` with its first hex digit changed."""
    return ("1" if value[0] == "0" else "0") + value[1:]


def _alter_signature(jws: str) -> str:
    head, body, signature = jws.split(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{body}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"


def _alg_none(jws: str) -> str:
    _, body, signature = jws.split(".")
    header = b64url_encode(b'{"alg":"none","kid":"service","typ":"consortia-root"}')
    return f"{header}.{body}.{signature}"


def render() -> str:
    """The exact text of receipts.json."""
    service = SigningKey(SERVICE_SEED)
    other = SigningKey(OTHER_SEED)
    valid: list[JSON] = []
    for size in TREE_SIZES:
        seqnos = sorted({0, size // 2, size - 1})
        for receipt in receipts_for(size, service, seqnos):
            valid.append({"name": f"tree {size}, seqno {receipt['seqno']}", "receipt": receipt})
    vectors = {
        "description": (
            "Receipts of PROTOCOL.md section 6 over the leaves of merkle.json (txid = "
            "SHA-256(utf8('tx' + seqno)), digest = SHA-256(utf8('record' + seqno))), in "
            "consortium 'vectors', signed roots with iat 1800000000. Verify each with "
            "service_key pinned: every 'valid' receipt verifies; every 'invalid' one fails "
            "with error 'code' and a message containing 'message'. The seeds are public: "
            "test keys only. Regenerate with: python tests/vectors/generate_receipts.py"
        ),
        "service_key": service.public_jwk(),
        "service_seed": SERVICE_SEED.hex(),
        "other_key": other.public_jwk(),
        "other_seed": OTHER_SEED.hex(),
        "valid": valid,
        "invalid": invalid_cases(service, other),
    }
    return json.dumps(vectors, indent=2) + "\n"


def main() -> None:
    """Rewrite receipts.json next to this script."""
    VECTORS_PATH.write_text(render(), encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
