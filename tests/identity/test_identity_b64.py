"""Strict base64url: one text per byte string, padding and stray characters refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.errors import BadRequest
from consortia.identity import b64url_decode, b64url_encode


@given(st.binary(max_size=200))
def test_round_trip(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text, what="x") == data


@given(st.binary(max_size=64))
def test_matches_stdlib_alphabet(data: bytes) -> None:
    assert b64url_encode(data) == base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_known_value() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_decode("-_8", what="x") == b"\xfb\xff"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("QQ==", "padding"),
        ("QQ=", "padding"),
        ("+/8", "alphabet"),
        ("QQ Q", "alphabet"),
        ("QQ\n", "alphabet"),
        ("QUJD\u00e9", "alphabet"),
        ("Q", "length"),
        ("QUJDR", "length"),
        # "QR" decodes to b"A" like "QQ" but with unused bits set: an alias, refused.
        ("QR", "canonical"),
    ],
)
def test_strict_rejections(text: str, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        b64url_decode(text, what="the widget")
    assert "the widget" in info.value.message
    assert fragment in info.value.message


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=1, max_value=15))
def test_trailing_bit_aliases_refused(data: bytes, bits: int) -> None:
    text = b64url_encode(data)
    unused = {2: 4, 3: 2}.get(len(text) % 4, 0)
    if unused == 0:
        return
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    alias = alphabet[last ^ (bits % (1 << unused) or 1)]
    with pytest.raises(BadRequest):
        b64url_decode(text[:-1] + alias, what="x")


def test_non_string_refused() -> None:
    with pytest.raises(BadRequest, match="must be a base64url string"):
        b64url_decode(b"QQ", what="x")  # type: ignore[arg-type]
