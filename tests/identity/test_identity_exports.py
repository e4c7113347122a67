"""The public face of consortia.identity is pinned: other packages code against these names."""

from __future__ import annotations

from consortia import identity

EXPECTED = {
    "EncryptionKey",
    "MemberKeys",
    "ParsedJWS",
    "PublicEncryptionKey",
    "Sealer",
    "SigningKey",
    "VerifyKey",
    "b64url_decode",
    "b64url_encode",
    "decrypt_compact",
    "encrypt_compact",
    "is_jwe",
    "issue_token",
    "load_member_keys",
    "load_public_jwk",
    "open_anonymous",
    "open_box",
    "parse_compact",
    "read_token",
    "save_member_keys",
    "save_public_jwk",
    "seal_anonymous",
    "sign_compact",
    "txid_of",
    "validate_member_id",
    "verify_token",
}


def test_all_is_pinned() -> None:
    assert set(identity.__all__) == EXPECTED
    assert len(identity.__all__) == len(EXPECTED)


def test_every_name_exists_and_is_documented() -> None:
    for name in identity.__all__:
        value = getattr(identity, name)
        assert value.__doc__, f"{name} has no docstring"
