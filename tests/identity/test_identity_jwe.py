"""Compact JWE (ECDH-ES + A256GCM to X25519): round trips, strict refusals, KDF vector."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.errors import BadRequest, BadSignature
from consortia.identity import (
    EncryptionKey,
    SigningKey,
    b64url_decode,
    b64url_encode,
    decrypt_compact,
    encrypt_compact,
    is_jwe,
    sign_compact,
)
from consortia.identity.jwe import _derive_cek, _encrypt

SERVICE = EncryptionKey(bytes(range(32)))
OTHER = EncryptionKey(bytes(range(50, 82)))
EPHEMERAL = EncryptionKey(bytes(range(7, 39)))
JWS = sign_compact(b'{"action":"x"}', SigningKey(bytes(32)), kid="alice", typ="consortia-action")
TOKEN = encrypt_compact(JWS.encode(), SERVICE.public_key, cty="JWT")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_rfc7518_appendix_c_concat_kdf_vector() -> None:
    shared = bytes(
        [158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156,
         251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196]
    )  # fmt: skip
    derived = _derive_cek(shared, b"Alice", b"Bob", algorithm="A128GCM", key_bits=128)
    assert b64url_encode(derived) == "VqqN6vgjbSBcIijNcacQGg"


@settings(max_examples=30)
@given(st.binary(max_size=4096))
def test_round_trip(plaintext: bytes) -> None:
    token = encrypt_compact(plaintext, SERVICE.public_key, kid="service-enc")
    assert is_jwe(token)
    assert decrypt_compact(token, SERVICE) == plaintext


def test_header() -> None:
    header = json.loads(b64url_decode(TOKEN.split(".")[0], what="h"))
    assert header["alg"] == "ECDH-ES"
    assert header["enc"] == "A256GCM"
    assert header["cty"] == "JWT"
    assert header["epk"]["crv"] == "X25519"
    assert "d" not in header["epk"]
    assert TOKEN.split(".")[1] == ""
    assert decrypt_compact(TOKEN, SERVICE) == JWS.encode()


def test_deterministic_with_fixed_ephemeral_and_iv() -> None:
    iv = bytes(12)
    first = _encrypt(b"hi", SERVICE.public_key, ephemeral=EPHEMERAL, iv=iv, kid=None, cty=None)
    second = _encrypt(b"hi", SERVICE.public_key, ephemeral=EPHEMERAL, iv=iv, kid=None, cty=None)
    assert first == second
    assert decrypt_compact(first, SERVICE) == b"hi"


def test_wrong_key_is_bad_signature() -> None:
    with pytest.raises(BadSignature, match="does not decrypt"):
        decrypt_compact(TOKEN, OTHER)


@given(st.data())
def test_any_changed_character_fails(data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(TOKEN) - 1))
    replacement = data.draw(
        st.sampled_from(ALPHABET + ".=+ \u00e9").filter(lambda c: c != TOKEN[index])
    )
    with pytest.raises((BadRequest, BadSignature)):
        decrypt_compact(TOKEN[:index] + replacement + TOKEN[index + 1 :], SERVICE)


def _with_header(header: dict[str, object], token: str = TOKEN) -> str:
    parts = token.split(".")
    parts[0] = b64url_encode(json.dumps(header).encode())
    return ".".join(parts)


def _header() -> dict[str, object]:
    header: dict[str, object] = json.loads(b64url_decode(TOKEN.split(".")[0], what="h"))
    return header


def _replace_part(index: int, value: str) -> str:
    parts = TOKEN.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (TOKEN.rsplit(".", 1)[0], "5 dot-separated parts"),
        (TOKEN + ".x", "5 dot-separated parts"),
        (_replace_part(1, b64url_encode(bytes(40))), "encrypted key must be empty"),
        (_with_header({**_header(), "alg": "ECDH-ES+A256KW"}), "'alg' must be 'ECDH-ES'"),
        (_with_header({**_header(), "alg": "dir"}), "'alg' must be 'ECDH-ES'"),
        (_with_header({**_header(), "enc": "A128GCM"}), "'enc' must be 'A256GCM'"),
        (_with_header({**_header(), "zip": "DEF"}), "'zip'"),
        (_with_header({**_header(), "crit": ["x"], "x": 1}), "'crit'"),
        (_with_header({**_header(), "kid": 5}), "'kid' must be a string"),
        (_with_header({k: v for k, v in _header().items() if k != "epk"}), "no 'epk'"),
        (_with_header({**_header(), "epk": SERVICE.to_jwk()}), "private part 'd'"),
        (_with_header({**_header(), "epk": SigningKey(bytes(32)).public_jwk()}), "'crv'"),
        (
            _with_header({**_header(), "epk": {"kty": "OKP", "crv": "X25519", "x": "A" * 43}}),
            "not a usable X25519 public key",
        ),
        (_with_header({**_header(), "apu": 5}), "'apu'"),
        (_with_header({**_header(), "apv": "!!"}), "'apv'"),
        (_replace_part(2, b64url_encode(bytes(11))), "12 bytes"),
        (_replace_part(2, b64url_encode(bytes(16))), "12 bytes"),
        (_replace_part(4, b64url_encode(bytes(15))), "16 bytes"),
        (_replace_part(0, b64url_encode(b"[]")), "JSON object"),
        (TOKEN + "\u00e9", "non-ASCII"),
    ],
)
def test_malformed_refused(token: str, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        decrypt_compact(token, SERVICE)
    assert fragment in info.value.message


def test_header_is_authenticated() -> None:
    # A header change that still parses (an extra kid) breaks the AAD, so decryption fails.
    with pytest.raises(BadSignature):
        decrypt_compact(_with_header({**_header(), "kid": "someone"}), SERVICE)


def test_length_limit() -> None:
    with pytest.raises(BadRequest, match="limit is 10"):
        decrypt_compact(TOKEN, SERVICE, max_length=10)
    with pytest.raises(BadRequest, match="must be text"):
        decrypt_compact(TOKEN.encode(), SERVICE)  # type: ignore[arg-type]


def test_is_jwe() -> None:
    assert is_jwe(TOKEN)
    assert is_jwe(TOKEN.encode())
    assert not is_jwe(JWS)
    assert not is_jwe(JWS.encode())
    assert not is_jwe("")
