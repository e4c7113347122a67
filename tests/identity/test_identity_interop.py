"""Cross-checks against joserfc, an independent JOSE implementation.

A member may use any off-the-shelf JOSE library (PROTOCOL.md, preamble); these tests show
that what we write, one reads, and the other way round.
"""

from __future__ import annotations

import json

import pytest
from joserfc import jwe, jws
from joserfc.jwk import OKPKey

from consortia.errors import BadSignature
from consortia.identity import (
    EncryptionKey,
    MemberKeys,
    PublicEncryptionKey,
    SigningKey,
    VerifyKey,
    decrypt_compact,
    encrypt_compact,
    issue_token,
    parse_compact,
    read_token,
    sign_compact,
    verify_token,
)

# joserfc warns that "EdDSA" is superseded by "Ed25519" (RFC 9864); the protocol uses EdDSA.
pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")

JWE_ALGS = ["ECDH-ES", "A256GCM"]
KEYS = MemberKeys.generate("alice")


def _okp(jwk: dict[str, str]) -> OKPKey:
    data: dict[str, str | list[str]] = dict(jwk)
    return OKPKey.import_key(data)


def test_our_jws_verifies_in_joserfc() -> None:
    token = sign_compact(b'{"a":1}', KEYS.signing, kid="alice", typ="consortia-action")
    result = jws.deserialize_compact(token, _okp(KEYS.signing.public_jwk()), algorithms=["EdDSA"])
    assert result.payload == b'{"a":1}'
    assert result.headers() == {"alg": "EdDSA", "kid": "alice", "typ": "consortia-action"}


def test_joserfc_jws_verifies_with_ours() -> None:
    private = _okp(KEYS.signing.to_jwk())
    token = jws.serialize_compact(
        {"alg": "EdDSA", "kid": "alice"}, b"payload", private, algorithms=["EdDSA"]
    )
    parsed = parse_compact(token)
    assert parsed.verify(KEYS.signing.verify_key) == b"payload"
    with pytest.raises(BadSignature):
        parsed.verify(SigningKey.generate().verify_key)


def test_joserfc_generated_keys_import() -> None:
    signing = OKPKey.generate_key("Ed25519", private=True)
    ours = SigningKey.from_jwk(signing.as_dict(private=True))
    assert ours.public_jwk()["x"] == signing.as_dict(private=False)["x"]
    assert VerifyKey.from_jwk(signing.as_dict(private=False)) == ours.verify_key
    encryption = OKPKey.generate_key("X25519", private=True)
    ours_enc = EncryptionKey.from_jwk(encryption.as_dict(private=True))
    assert PublicEncryptionKey.from_jwk(encryption.as_dict(private=False)) == ours_enc.public_key


def test_our_token_is_a_jwt_to_joserfc() -> None:
    token = issue_token(KEYS, audience="telco", now=1_700_000_000, jti="j1")
    result = jws.deserialize_compact(token, _okp(KEYS.signing.public_jwk()), algorithms=["EdDSA"])
    assert json.loads(result.payload) == {
        "iss": "alice",
        "aud": "telco",
        "iat": 1_700_000_000,
        "exp": 1_700_000_300,
        "jti": "j1",
    }


def test_joserfc_token_verifies_with_ours() -> None:
    claims = {"iss": "alice", "aud": "telco", "iat": 1000, "exp": 1300, "jti": "x"}
    token = jws.serialize_compact(
        {"alg": "EdDSA", "kid": "alice", "typ": "JWT"},
        json.dumps(claims).encode(),
        _okp(KEYS.signing.to_jwk()),
        algorithms=["EdDSA"],
    )
    got = verify_token(read_token(token), KEYS.signing.verify_key, audience="telco", now=1100)
    assert got == claims


def test_joserfc_jwe_decrypts_with_ours() -> None:
    recipient = _okp(KEYS.encryption.public_jwk())
    token = jwe.encrypt_compact(
        {"alg": "ECDH-ES", "enc": "A256GCM"}, b"secret request", recipient, algorithms=JWE_ALGS
    )
    assert decrypt_compact(token, KEYS.encryption) == b"secret request"


def test_joserfc_jwe_with_apu_apv_decrypts_with_ours() -> None:
    recipient = _okp(KEYS.encryption.public_jwk())
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "apu": "QWxpY2U", "apv": "Qm9i"}
    token = jwe.encrypt_compact(header, b"with party info", recipient, algorithms=JWE_ALGS)
    assert decrypt_compact(token, KEYS.encryption) == b"with party info"


def test_our_jwe_decrypts_in_joserfc() -> None:
    token = encrypt_compact(b"hello joserfc", KEYS.encryption.public_key, kid="svc", cty="JWT")
    result = jwe.decrypt_compact(token, _okp(KEYS.encryption.to_jwk()), algorithms=JWE_ALGS)
    assert result.plaintext == b"hello joserfc"
    assert result.headers()["kid"] == "svc"
