"""Fuzz the identity parsers: JWS, JWE, JWT, base64url, JWKs and member key files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from boundary_kit import (
    FAST,
    MEDIUM,
    b64,
    b64_alphabet,
    b64_json,
    jose_like,
    json_objects,
    json_values,
    keys,
    member_keys,
    mutations,
    only_consortia_errors,
    signed,
    wild_objects,
    wild_scalars,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consortia._json import JSON
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.jwe import decrypt_compact, encrypt_compact
from consortia.identity.jws import parse_compact
from consortia.identity.jwt import issue_token, read_token, verify_token
from consortia.identity.keyfile import load_member_keys, save_member_keys
from consortia.identity.keys import (
    EncryptionKey,
    PublicEncryptionKey,
    SigningKey,
    VerifyKey,
)

NOW = 1_700_000_000
_ALICE = member_keys("alice")
_VALID_JWS = signed({"hello": "world"}, typ="consortia-action")
_VALID_TOKEN = issue_token(_ALICE, audience="c1", now=NOW)
_VALID_JWE = encrypt_compact(_VALID_JWS.encode("ascii"), _ALICE.encryption.public_key, kid="svc")


def _parse_and_verify(token: str | bytes) -> None:
    with only_consortia_errors():
        parsed = parse_compact(token)
        _ = parsed.kid, parsed.typ, parsed.txid
        parsed.verify(_ALICE.signing.verify_key)


# -- base64url ---------------------------------------------------------------------------


@settings(max_examples=MEDIUM, deadline=None)
@given(st.text() | b64_alphabet)
@example("A")
@example("AB=")
@example("AB")
@example("A" * 4 + "\u0661")
def test_b64url_decode_random(text: str) -> None:
    with only_consortia_errors():
        data = b64url_decode(text, what="x")
        assert b64url_encode(data) == text


@settings(max_examples=FAST, deadline=None)
@given(wild_scalars)
def test_b64url_decode_non_strings(value: object) -> None:
    with only_consortia_errors():
        b64url_decode(value, what="x")  # type: ignore[arg-type]


# -- JWS ---------------------------------------------------------------------------------


@settings(max_examples=MEDIUM, deadline=None)
@given(st.text() | jose_like | st.binary())
def test_jws_parse_random(token: str | bytes) -> None:
    _parse_and_verify(token)


@settings(max_examples=MEDIUM, deadline=None)
@given(mutations(_VALID_JWS))
def test_jws_parse_mutated(token: str) -> None:
    _parse_and_verify(token)
    _parse_and_verify(token.encode("utf-8", "surrogatepass"))


@settings(max_examples=MEDIUM, deadline=None)
@given(wild_objects | json_values(wild_scalars), b64_alphabet, st.binary(max_size=70))
@example({"alg": "EdDSA", "kid": "alice", "crit": [{}]}, "", bytes(64))
@example({"alg": "EdDSA", "kid": "alice", "b64": []}, "", bytes(64))
@example({"alg": "EdDSA", "kid": "alice", "typ": []}, "", bytes(64))
@example({"alg": ["EdDSA"], "kid": "alice"}, "", bytes(64))
def test_jws_parse_random_headers(header: JSON, payload: str, signature: bytes) -> None:
    if isinstance(header, dict) and header.get("alg") is None:
        header = {**header, "alg": "EdDSA", "kid": header.get("kid", "alice")}
    _parse_and_verify(f"{b64_json(header)}.{payload}.{b64(signature)}")


# -- JWE ---------------------------------------------------------------------------------


def _decrypt(token: str) -> None:
    with only_consortia_errors():
        decrypt_compact(token, _ALICE.encryption)


@settings(max_examples=MEDIUM, deadline=None)
@given(st.text() | jose_like)
def test_jwe_decrypt_random(token: str) -> None:
    _decrypt(token)


@settings(max_examples=MEDIUM, deadline=None)
@given(mutations(_VALID_JWE))
def test_jwe_decrypt_mutated(token: str) -> None:
    _decrypt(token)


_EPK = EncryptionKey.generate().public_jwk()


@settings(max_examples=MEDIUM, deadline=None)
@given(
    wild_objects,
    st.none() | wild_objects | st.just(dict(_EPK)),
    st.binary(max_size=14),
    st.binary(max_size=20),
    st.binary(max_size=18),
)
@example({}, {**_EPK, "alg": []}, bytes(12), b"", bytes(16))
@example({}, {**_EPK, "alg": {}}, bytes(12), b"", bytes(16))
@example({"apu": 1}, dict(_EPK), bytes(12), b"", bytes(16))
@example({"crit": [[]]}, dict(_EPK), bytes(12), b"", bytes(16))
@example({}, {**_EPK, "x": b64(bytes(32))}, bytes(12), b"", bytes(16))
def test_jwe_decrypt_random_headers(
    header: dict[str, JSON], epk: JSON, iv: bytes, ciphertext: bytes, tag: bytes
) -> None:
    full: dict[str, JSON] = {"alg": "ECDH-ES", "enc": "A256GCM", **header}
    if epk is not None:
        full["epk"] = epk
    _decrypt(f"{b64_json(full)}..{b64(iv)}.{b64(ciphertext)}.{b64(tag)}")


# -- JWT ---------------------------------------------------------------------------------


def _token(token: str, now: int = NOW) -> None:
    with only_consortia_errors():
        parsed = read_token(token)
        verify_token(parsed, _ALICE.signing.verify_key, audience="c1", now=now)


@settings(max_examples=MEDIUM, deadline=None)
@given(st.text() | jose_like | mutations(_VALID_TOKEN))
def test_jwt_random_and_mutated(token: str) -> None:
    _token(token)


@settings(max_examples=MEDIUM, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "iss": st.just("alice") | wild_scalars,
            "aud": st.just("c1") | st.just(["c1", "c2"]) | json_values(wild_scalars),
            "iat": st.just(NOW) | wild_scalars,
            "exp": st.just(NOW + 300) | wild_scalars,
            "nbf": wild_scalars,
            "jti": st.just("j" * 8) | wild_scalars,
        },
    ),
    wild_objects,
    st.none() | st.sampled_from(["JWT", "jwt", "application/jwt", "other"]),
    st.integers(-(2**70), 2**70) | st.just(NOW),
)
@example(
    {"iss": "alice", "aud": "c1", "iat": NOW, "exp": NOW + 300, "jti": "j", "nbf": 2**80},
    {},
    "JWT",
    NOW,
)
@example({"iss": "alice", "aud": [[]], "iat": NOW, "exp": NOW + 300, "jti": "j"}, {}, "JWT", NOW)
def test_jwt_signed_random_claims(
    claims: dict[str, JSON], extra: dict[str, JSON], typ: str | None, now: int
) -> None:
    _token(signed({**extra, **claims}, typ=typ), now)


# -- JWKs --------------------------------------------------------------------------------

_jwk_like = st.fixed_dictionaries(
    {},
    optional={
        "kty": st.just("OKP") | wild_scalars,
        "crv": st.sampled_from(["Ed25519", "X25519"]) | wild_scalars,
        "x": st.binary(min_size=31, max_size=33).map(b64) | wild_scalars,
        "d": st.binary(min_size=32, max_size=32).map(b64) | wild_scalars,
        "use": st.sampled_from(["sig", "enc"]) | json_values(wild_scalars),
        "alg": st.sampled_from(["EdDSA", "ECDH-ES"]) | json_values(wild_scalars),
        "kid": json_values(wild_scalars),
    },
)

_OKP_ED = {"kty": "OKP", "crv": "Ed25519", "x": b64(bytes(_ALICE.signing.verify_key.raw))}
_OKP_X = {"kty": "OKP", "crv": "X25519", "x": b64(_ALICE.encryption.public_key.raw)}


@settings(max_examples=MEDIUM, deadline=None)
@given(_jwk_like | wild_objects | json_values(wild_scalars), st.dictionaries(keys, wild_scalars))
@example({**_OKP_ED, "alg": []}, {})
@example({**_OKP_X, "alg": {}}, {})
@example({**_OKP_ED, "use": []}, {})
def test_jwk_parsers_random(jwk: JSON, extra: dict[str, JSON]) -> None:
    candidates: list[JSON] = [jwk]
    if isinstance(jwk, dict):
        candidates.append({**jwk, **extra})
    for candidate in candidates:
        for parser in (
            VerifyKey.from_jwk,
            PublicEncryptionKey.from_jwk,
            SigningKey.from_jwk,
            EncryptionKey.from_jwk,
        ):
            with only_consortia_errors():
                parser(candidate)


@settings(max_examples=MEDIUM, deadline=None)
@given(
    st.sampled_from([_OKP_ED, _OKP_X]),
    st.sampled_from(["kty", "crv", "x", "alg", "use"]),
    json_values(wild_scalars),
)
def test_jwk_parsers_one_field_replaced(base: dict[str, str], field: str, value: JSON) -> None:
    jwk: dict[str, JSON] = {**base, field: value}
    for parser in (VerifyKey.from_jwk, PublicEncryptionKey.from_jwk):
        with only_consortia_errors():
            parser(jwk)


# -- key files ---------------------------------------------------------------------------

_KEYFILE_DIR = Path(tempfile.mkdtemp(prefix="fuzz-keyfile-"))
_VALID_KEYFILE = _KEYFILE_DIR / "valid.json"
save_member_keys(_ALICE, _VALID_KEYFILE, overwrite=True)
_VALID_KEYFILE_TEXT = _VALID_KEYFILE.read_text()


def _load(data: bytes) -> None:
    path = _KEYFILE_DIR / "fuzz.json"
    path.write_bytes(data)
    os.chmod(path, 0o600)
    with only_consortia_errors():
        load_member_keys(path)


@settings(max_examples=MEDIUM, deadline=None)
@given(st.binary(max_size=300))
def test_keyfile_random_bytes(data: bytes) -> None:
    _load(data)


@settings(max_examples=MEDIUM, deadline=None)
@given(mutations(_VALID_KEYFILE_TEXT))
def test_keyfile_mutated(text: str) -> None:
    _load(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=MEDIUM, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "format": wild_scalars,
            "member": st.just("alice") | wild_scalars,
            "signing_key": _jwk_like | json_objects,
            "encryption_key": _jwk_like | json_objects,
        },
    ),
    json_objects,
)
def test_keyfile_random_documents(doc: dict[str, JSON], extra: dict[str, JSON]) -> None:
    import json

    _load(json.dumps(doc).encode("utf-8", "surrogatepass"))
    _load(json.dumps({**extra, **doc}).encode("utf-8", "surrogatepass"))
