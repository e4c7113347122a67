"""consortia.ledger.receipts: the shared vectors, signed roots, and "any changed byte fails".

tests/vectors/receipts.json is the file the server, SDK and CLI tests read too; this module
checks that its generator reproduces it byte for byte, that it agrees with merkle.json (whose
proofs are checked against a naive RFC 9162 implementation in test_merkle.py), and that the
verifier accepts exactly the valid receipts.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia._json import JSON, canonical, loads_strict
from consortia.errors import BadRequest, BadSignature, ConsortiaError
from consortia.identity.keys import SigningKey, VerifyKey
from consortia.ledger import receipts
from consortia.ledger.receipts import (
    RECEIPT_FIELDS,
    VerifiedReceipt,
    parse_signed_root,
    sign_root,
    verify_receipt,
    verify_signed_root,
)

VECTORS_DIR = Path(__file__).parent.parent / "vectors"
VECTORS: Any = json.loads((VECTORS_DIR / "receipts.json").read_text(encoding="utf-8"))
MERKLE: Any = json.loads((VECTORS_DIR / "merkle.json").read_text(encoding="utf-8"))
SERVICE = VerifyKey.from_jwk(VECTORS["service_key"])
VALID: list[Any] = [case["receipt"] for case in VECTORS["valid"]]
INVALID: list[Any] = VECTORS["invalid"]


def valid(tree_size: int, seqno: int) -> Any:
    """The valid vector receipt for one leaf."""
    (found,) = [r for r in VALID if (r["tree_size"], r["seqno"]) == (tree_size, seqno)]
    return found


def load_render() -> Callable[[], str]:
    spec = importlib.util.spec_from_file_location(
        "generate_receipts", VECTORS_DIR / "generate_receipts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render: Callable[[], str] = module.render
    return render


def fails(receipt: JSON) -> ConsortiaError:
    """Verification must raise a ConsortiaError (never return quietly)."""
    with pytest.raises(ConsortiaError) as caught:
        verify_receipt(receipt, SERVICE)
    return caught.value


# --- the vectors file ---------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert set(receipts.__all__) == {
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
    }


def test_vectors_file_is_reproduced_byte_for_byte() -> None:
    on_disk = (VECTORS_DIR / "receipts.json").read_bytes()
    assert load_render()().encode("utf-8") == on_disk


def test_vectors_use_the_keys_their_seeds_give() -> None:
    assert SigningKey(bytes.fromhex(VECTORS["service_seed"])).public_jwk() == VECTORS["service_key"]
    assert SigningKey(bytes.fromhex(VECTORS["other_seed"])).public_jwk() == VECTORS["other_key"]


def test_receipts_agree_with_the_merkle_vectors() -> None:
    trees = {tree["tree_size"]: tree for tree in MERKLE["trees"]}
    compared = 0
    for receipt in VALID:
        tree = trees.get(receipt["tree_size"])
        if tree is None:
            continue
        assert receipt["root"] == tree["root"]
        for entry in tree["entries"]:
            if entry["seqno"] == receipt["seqno"]:
                assert receipt["proof"] == entry["proof"]
                assert (receipt["txid"], receipt["digest"]) == (entry["txid"], entry["digest"])
                compared += 1
    assert compared >= 6


@pytest.mark.parametrize("case", VECTORS["valid"], ids=[c["name"] for c in VECTORS["valid"]])
def test_valid_vectors_verify(case: Any) -> None:
    receipt = case["receipt"]
    verified = verify_receipt(receipt, SERVICE)
    assert isinstance(verified, VerifiedReceipt)
    assert verified.to_json() == {
        "consortium": receipt["consortium"],
        "txid": receipt["txid"],
        "seqno": receipt["seqno"],
        "digest": receipt["digest"],
        "tree_size": receipt["tree_size"],
        "root": receipt["root"],
        "signed_at": 1_800_000_000,
    }
    assert list(receipt) == list(RECEIPT_FIELDS)


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_invalid_vectors_fail_saying_what_did_not_match(case: Any) -> None:
    error = fails(case["receipt"])
    assert error.code == case["code"]
    assert case["message"] in error.message
    expected = BadSignature if case["code"] == "bad_signature" else BadRequest
    assert isinstance(error, expected)


# --- any change fails -----------------------------------------------------------------------


def mutated(text: bytes, position: int, byte: int) -> JSON:
    """The receipt with one byte replaced, parsed (a parse failure is a failure too)."""
    changed = bytearray(text)
    changed[position] = byte
    return loads_strict(bytes(changed), what="receipt")


def test_every_single_byte_change_of_a_receipt_fails() -> None:
    """Exhaustive over one receipt's canonical bytes: two replacements at every position."""
    receipt = valid(7, 3)  # a proof of three hashes
    text = canonical(receipt)
    for position, original in enumerate(text):
        for byte in {original ^ 0x01, original ^ 0x20} - {original}:
            with pytest.raises(ConsortiaError):
                verify_receipt(mutated(text, position, byte), SERVICE)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_changed_byte_of_any_receipt_fails(data: st.DataObject) -> None:
    receipt = data.draw(st.sampled_from(VALID))
    text = canonical(receipt)
    position = data.draw(st.integers(0, len(text) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != text[position]))
    with pytest.raises(ConsortiaError):
        verify_receipt(mutated(text, position, byte), SERVICE)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=70),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_changed_field_fails(data: st.DataObject) -> None:
    receipt = dict(data.draw(st.sampled_from(VALID)))
    name = data.draw(st.sampled_from(RECEIPT_FIELDS))
    value = data.draw(JSON_VALUES.filter(lambda v: v != receipt[name]))
    receipt[name] = value
    fails(receipt)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_changed_character_in_any_string_field_fails(data: st.DataObject) -> None:
    receipt: dict[str, Any] = json.loads(json.dumps(data.draw(st.sampled_from(VALID))))
    strings: list[tuple[Any, ...]] = [(n,) for n in RECEIPT_FIELDS if isinstance(receipt[n], str)]
    strings += [("proof", i) for i in range(len(receipt["proof"]))]
    strings += [("service_key", k) for k in receipt["service_key"]]
    where = data.draw(st.sampled_from(strings))
    holder: Any = receipt if len(where) == 1 else receipt[where[0]]
    key = where[-1]
    text: str = holder[key]
    i = data.draw(st.integers(0, len(text) - 1))
    char = data.draw(st.characters(codec="ascii").filter(lambda c: c != text[i]))
    holder[key] = text[:i] + char + text[i + 1 :]
    fails(receipt)


def test_extra_or_reordered_proof_hashes_fail() -> None:
    receipt = dict(valid(7, 3))
    proof = list(receipt["proof"])
    assert len(proof) == 3
    for changed in (proof[::-1], [proof[1], proof[0], proof[2]], [*proof, proof[0]], proof[:2]):
        fails({**receipt, "proof": changed})


# --- signed roots -----------------------------------------------------------------------------


def test_a_signed_root_round_trips_and_binds_its_key() -> None:
    key = SigningKey(bytes(range(32)))
    jws = sign_root(key, consortium="acme", tree_size=5, root=b"\x07" * 32, iat=12)
    signed = verify_signed_root(jws, key.verify_key)
    assert (signed.consortium, signed.tree_size, signed.root, signed.iat) == (
        "acme",
        5,
        b"\x07" * 32,
        12,
    )
    assert parse_signed_root(jws) == signed
    with pytest.raises(BadSignature, match="not signed by the pinned service key"):
        verify_signed_root(jws, SERVICE)
    with pytest.raises(ValueError, match="root has 31 bytes"):
        sign_root(key, consortium="acme", tree_size=5, root=b"\x07" * 31, iat=12)


@pytest.mark.parametrize(
    ("jws", "words"),
    [
        (17, "must be a compact JWS string"),
        ("a.b", "3 dot-separated parts"),
        ("x" * 5000, "limit is 4096"),
    ],
)
def test_malformed_signed_roots_are_bad_requests(jws: object, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        parse_signed_root(jws)
