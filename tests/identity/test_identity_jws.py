"""Compact JWS (EdDSA): signing, strict parsing, and "any flipped byte fails"."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.errors import BadRequest, BadSignature
from consortia.identity import (
    ParsedJWS,
    SigningKey,
    b64url_decode,
    b64url_encode,
    parse_compact,
    sign_compact,
    txid_of,
)

KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))
PAYLOAD = b'{"action":"createOrder","consortium":"telco","nonce":"0123456789abcdef"}'
TOKEN = sign_compact(PAYLOAD, KEY, kid="alice", typ="consortia-action")
DUPLICATE_ALG = b'{"alg":"EdDSA","alg":"EdDSA","kid":"a"}'
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _forge(header: object, payload: bytes = b"{}", signature: bytes = bytes(64)) -> str:
    encoded = b64url_encode(json.dumps(header).encode())
    return f"{encoded}.{b64url_encode(payload)}.{b64url_encode(signature)}"


def _signed(header: object, payload: bytes = b"{}") -> str:
    """A token with a valid signature over an arbitrary header."""
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(payload)}"
    return f"{signing_input}.{b64url_encode(KEY.sign(signing_input.encode()))}"


def test_round_trip() -> None:
    parsed = parse_compact(TOKEN)
    assert parsed.verify(KEY.verify_key) == PAYLOAD
    assert parsed.kid == "alice"
    assert parsed.typ == "consortia-action"
    assert parsed.payload == PAYLOAD
    assert parsed.compact == TOKEN
    assert parsed.signing_input == TOKEN.rsplit(".", 1)[0].encode()
    assert len(parsed.signature) == 64


def test_header_bytes_are_compact_json() -> None:
    header = b64url_decode(TOKEN.split(".")[0], what="h")
    assert header == b'{"alg":"EdDSA","kid":"alice","typ":"consortia-action"}'
    untyped = sign_compact(b"x", KEY, kid="bob")
    assert b64url_decode(untyped.split(".")[0], what="h") == b'{"alg":"EdDSA","kid":"bob"}'
    assert parse_compact(untyped).typ is None


def test_signature_is_deterministic() -> None:
    assert sign_compact(PAYLOAD, KEY, kid="alice", typ="consortia-action") == TOKEN


def test_wrong_key_is_bad_signature() -> None:
    with pytest.raises(BadSignature):
        parse_compact(TOKEN).verify(OTHER.verify_key)


def test_bytes_input_accepted() -> None:
    assert parse_compact(TOKEN.encode()).verify(KEY.verify_key) == PAYLOAD


def test_txid() -> None:
    expected = hashlib.sha256(TOKEN.encode("ascii")).hexdigest()
    assert txid_of(TOKEN) == expected
    assert parse_compact(TOKEN).txid == expected
    assert expected == expected.lower()
    assert len(expected) == 64
    with pytest.raises(BadRequest):
        txid_of("caf\u00e9")


def _fails(token: str | bytes) -> None:
    with pytest.raises((BadRequest, BadSignature)):
        parse_compact(token).verify(KEY.verify_key)


@given(st.data())
def test_any_changed_character_fails(data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(TOKEN) - 1))
    replacement = data.draw(
        st.sampled_from(ALPHABET + ".=+/ \x00\u00e9").filter(lambda c: c != TOKEN[index])
    )
    _fails(TOKEN[:index] + replacement + TOKEN[index + 1 :])


@given(st.data())
def test_any_flipped_byte_fails(data: st.DataObject) -> None:
    raw = bytearray(TOKEN.encode())
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    _fails(bytes(raw))


@given(st.integers(min_value=0, max_value=len(TOKEN) - 1))
def test_any_truncation_fails(cut: int) -> None:
    _fails(TOKEN[:cut])


@given(st.binary(min_size=1, max_size=8))
def test_any_appended_data_fails(extra: bytes) -> None:
    _fails(TOKEN.encode() + extra)


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (_forge({"alg": "none", "kid": "alice"}, signature=b""), "'alg' must be 'EdDSA'"),
        (_forge({"alg": "HS256", "kid": "alice"}), "'alg' must be 'EdDSA'"),
        (_forge({"alg": "eddsa", "kid": "alice"}), "'alg' must be 'EdDSA'"),
        (_forge({"alg": "Ed25519", "kid": "alice"}), "'alg' must be 'EdDSA'"),
        (_forge({"kid": "alice"}), "'alg' must be 'EdDSA'"),
        (_forge({"alg": "EdDSA"}), "'kid'"),
        (_forge({"alg": "EdDSA", "kid": ""}), "'kid'"),
        (_forge({"alg": "EdDSA", "kid": 5}), "'kid'"),
        (_forge({"alg": "EdDSA", "kid": "a", "typ": 1}), "'typ'"),
        (_forge({"alg": "EdDSA", "kid": "a", "crit": ["exp"], "exp": 1}), "'crit'"),
        (_forge({"alg": "EdDSA", "kid": "a", "b64": False}), "'b64'"),
        (_forge(["alg", "EdDSA"]), "JSON object"),
        (_forge({"alg": "EdDSA", "kid": "a"}, signature=bytes(63)), "64 bytes"),
        (_forge({"alg": "EdDSA", "kid": "a"}, signature=bytes(65)), "64 bytes"),
        ("a.b", "3 dot-separated parts"),
        ("a.b.c.d", "3 dot-separated parts"),
        ("a.b.c.d.e", "is it a JWE?"),
        ("", "3 dot-separated parts"),
        (f"{b64url_encode(b'not json')}.e30.{b64url_encode(bytes(64))}", "not valid JSON"),
        (f"{b64url_encode(b'{}')}=.e30.{b64url_encode(bytes(64))}", "padding"),
        (f"{b64url_encode(DUPLICATE_ALG)}.e30.{b64url_encode(bytes(64))}", "duplicate"),
        (TOKEN + "\u00e9", "non-ASCII"),
    ],
)
def test_malformed_refused(token: str, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_compact(token)
    assert fragment in info.value.message


def test_validly_signed_but_forbidden_headers_refused() -> None:
    # Even with a good signature, crit and b64=false are refused before anyone trusts them.
    for header in (
        {"alg": "EdDSA", "kid": "alice", "b64": False, "crit": ["b64"]},
        {"alg": "EdDSA", "kid": "alice", "crit": ["x"], "x": 1},
    ):
        with pytest.raises(BadRequest):
            parse_compact(_signed(header))
    # b64 true is the default meaning and is harmless.
    parsed = parse_compact(_signed({"alg": "EdDSA", "kid": "alice", "b64": True}))
    assert parsed.verify(KEY.verify_key) == b"{}"


def test_length_limit() -> None:
    with pytest.raises(BadRequest, match="limit is 100"):
        parse_compact(TOKEN, max_length=100)
    assert parse_compact(TOKEN, max_length=len(TOKEN)).kid == "alice"


def test_non_text_refused() -> None:
    with pytest.raises(BadRequest, match="must be text"):
        parse_compact(12345)  # type: ignore[arg-type]


def test_sign_requires_kid() -> None:
    with pytest.raises(BadRequest, match="kid"):
        sign_compact(b"x", KEY, kid="")


def test_parsed_is_frozen() -> None:
    parsed = parse_compact(TOKEN)
    assert isinstance(parsed, ParsedJWS)
    with pytest.raises(AttributeError):
        parsed.payload = b"other"  # type: ignore[misc]
