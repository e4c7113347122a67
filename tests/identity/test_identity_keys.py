"""Ed25519 and X25519 keys as JWKs: round trips, strict refusals, RFC test vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.errors import BadRequest, BadSignature
from consortia.identity import (
    EncryptionKey,
    MemberKeys,
    PublicEncryptionKey,
    SigningKey,
    VerifyKey,
    b64url_decode,
    b64url_encode,
    validate_member_id,
)

# RFC 8037 appendix A.1-A.4: an Ed25519 key and the JWS signature it makes.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)
# RFC 7748 section 6.1: Alice's and Bob's X25519 keys and their shared secret.
ALICE_D = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_X = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_D = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_X = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_rfc8037_ed25519_vector() -> None:
    key = SigningKey.from_jwk({"kty": "OKP", "crv": "Ed25519", "d": RFC8037_D, "x": RFC8037_X})
    assert key.public_jwk() == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    # Ed25519 is deterministic, so our signature must equal the RFC's byte for byte.
    assert b64url_encode(key.sign(RFC8037_SIGNING_INPUT)) == RFC8037_SIGNATURE
    key.verify_key.verify(b64url_decode(RFC8037_SIGNATURE, what="sig"), RFC8037_SIGNING_INPUT)


def test_rfc7748_x25519_vector() -> None:
    alice, bob = EncryptionKey(ALICE_D), EncryptionKey(BOB_D)
    assert alice.public_key.raw == ALICE_X
    assert bob.public_key.raw == BOB_X
    assert alice.exchange(bob.public_key) == SHARED
    assert bob.exchange(alice.public_key) == SHARED


@settings(max_examples=25)
@given(st.binary(min_size=32, max_size=32))
def test_signing_jwk_round_trip(seed: bytes) -> None:
    key = SigningKey(seed)
    private = key.to_jwk()
    assert set(private) == {"kty", "crv", "x", "d"}
    assert SigningKey.from_jwk(private) == key
    public = VerifyKey.from_jwk(key.public_jwk())
    assert public == key.verify_key
    assert hash(public) == hash(key.verify_key)
    assert public.to_jwk() == key.public_jwk()


@settings(max_examples=25)
@given(st.binary(min_size=32, max_size=32))
def test_encryption_jwk_round_trip(secret: bytes) -> None:
    key = EncryptionKey(secret)
    assert EncryptionKey.from_jwk(key.to_jwk()) == key
    public = PublicEncryptionKey.from_jwk(key.public_jwk())
    assert public == key.public_key
    assert hash(public) == hash(key.public_key)
    assert public.to_jwk()["crv"] == "X25519"


def test_sign_and_verify() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"message")
    assert len(signature) == 64
    key.verify_key.verify(signature, b"message")
    with pytest.raises(BadSignature):
        key.verify_key.verify(signature, b"messagf")
    with pytest.raises(BadSignature):
        SigningKey.generate().verify_key.verify(signature, b"message")
    with pytest.raises(BadSignature):
        key.verify_key.verify(signature[:63], b"message")


def test_equality_is_by_key_material() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    assert a != b
    assert a.verify_key != b.verify_key
    assert a.verify_key != a  # different kinds never compare equal
    assert len({a.verify_key, VerifyKey(a.verify_key.raw), b.verify_key}) == 2


def test_repr_never_shows_private_parts() -> None:
    keys = MemberKeys.generate("alice")
    text = repr(keys) + repr(keys.signing) + repr(keys.encryption) + str(keys)
    assert keys.signing.to_jwk()["d"] not in text
    assert keys.encryption.to_jwk()["d"] not in text
    assert keys.signing.public_jwk()["x"] in text


def _ed_jwk(**changes: object) -> dict[str, object]:
    jwk: dict[str, object] = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    jwk.update(changes)
    return {k: v for k, v in jwk.items() if v is not None}


@pytest.mark.parametrize(
    ("jwk", "fragment"),
    [
        ("not a dict", "JSON object"),
        ([RFC8037_X], "JSON object"),
        (_ed_jwk(kty="EC"), "'kty' must be 'OKP'"),
        (_ed_jwk(kty=None), "'kty' must be 'OKP'"),
        (_ed_jwk(crv="X25519"), "'crv' must be 'Ed25519'"),
        (_ed_jwk(crv="Ed448"), "'crv' must be 'Ed25519'"),
        (_ed_jwk(x=None), "no 'x'"),
        (_ed_jwk(x=123), "base64url string"),
        (_ed_jwk(x=RFC8037_X + "="), "padding"),
        (_ed_jwk(x=RFC8037_X.replace("_", "/")), "alphabet"),
        (_ed_jwk(x=b64url_encode(bytes(31))), "32 bytes, got 31"),
        (_ed_jwk(x=b64url_encode(bytes(33))), "32 bytes, got 33"),
        (_ed_jwk(d=RFC8037_D), "private part 'd'"),
        (_ed_jwk(kid=7), "'kid' must be a string"),
        (_ed_jwk(use="enc"), "'use' must be 'sig'"),
        (_ed_jwk(alg="RS256"), "'alg'"),
        (_ed_jwk(key_ops=["verify"]), "unsupported members"),
        # All-zero bytes and the identity point are small-order, never a real key.
        (_ed_jwk(x=b64url_encode(bytes(32))), "not a valid Ed25519 public key"),
        (_ed_jwk(x=b64url_encode(b"\x01" + bytes(31))), "not a valid Ed25519 public key"),
    ],
)
def test_bad_public_signing_jwk(jwk: object, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        VerifyKey.from_jwk(jwk)
    assert fragment in info.value.message


def test_optional_members_accepted() -> None:
    key = VerifyKey.from_jwk(_ed_jwk(kid="alice-1", use="sig", alg="EdDSA"))
    assert b64url_encode(key.raw) == RFC8037_X


P = 2**255 - 19


@pytest.mark.parametrize(
    "raw",
    [
        bytes(32),
        (1).to_bytes(32, "little"),
        (P - 1).to_bytes(32, "little"),
        P.to_bytes(32, "little"),
        (2**256 - 1).to_bytes(32, "little"),
        # A valid key's u with the top bit set is a second spelling of the same key.
        (int.from_bytes(ALICE_X, "little") | 1 << 255).to_bytes(32, "little"),
    ],
)
def test_bad_x25519_points(raw: bytes) -> None:
    jwk = {"kty": "OKP", "crv": "X25519", "x": b64url_encode(raw)}
    for _ in range(2):  # the second time answers from the point cache: still refused
        with pytest.raises(BadRequest, match="not a usable X25519 public key"):
            PublicEncryptionKey.from_jwk(jwk)


@pytest.mark.parametrize(
    ("jwk", "fragment"),
    [
        ({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(ALICE_X)}, "'crv' must be 'X25519'"),
        ({"kty": "OKP", "crv": "X25519", "x": b64url_encode(ALICE_X), "d": "AA"}, "'d'"),
        ({"kty": "OKP", "crv": "X25519", "x": b64url_encode(ALICE_X), "use": "sig"}, "'use'"),
    ],
)
def test_bad_public_encryption_jwk(jwk: object, fragment: str) -> None:
    with pytest.raises(BadRequest, match=fragment):
        PublicEncryptionKey.from_jwk(jwk)


def test_private_jwk_checks() -> None:
    good = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D}
    other_x = SigningKey.generate().public_jwk()["x"]
    with pytest.raises(BadRequest, match="'x' is not the public key of 'd'"):
        SigningKey.from_jwk({**good, "x": other_x})
    with pytest.raises(BadRequest, match="no 'd'"):
        SigningKey.from_jwk({k: v for k, v in good.items() if k != "d"})
    with pytest.raises(BadRequest, match="32 bytes, got 16"):
        SigningKey.from_jwk({**good, "d": b64url_encode(bytes(16))})
    with pytest.raises(BadRequest, match="'crv' must be 'X25519'"):
        EncryptionKey.from_jwk(good)
    enc = EncryptionKey(ALICE_D).to_jwk()
    with pytest.raises(BadRequest, match="'x' is not the public key of 'd'"):
        EncryptionKey.from_jwk({**enc, "x": b64url_encode(BOB_X)})
    with pytest.raises(BadRequest, match="no 'd'"):
        EncryptionKey.from_jwk({k: v for k, v in enc.items() if k != "d"})


def test_raw_constructors_check_length() -> None:
    for make in (VerifyKey, SigningKey, PublicEncryptionKey, EncryptionKey):
        with pytest.raises(BadRequest, match="32 bytes, got 31"):
            make(bytes(31))


@pytest.mark.parametrize(
    "value", ["a", "alice", "operator", "A.b_c-d", "0", "x" * 64, "9lives", "bob.example"]
)
def test_valid_member_ids(value: str) -> None:
    assert validate_member_id(value, what="member") == value


@pytest.mark.parametrize(
    "value",
    ["", "x" * 65, "-alice", ".alice", "_alice", "al ice", "alice\n", "ali/ce", "\u00e9lise", 5],
)
def test_invalid_member_ids(value: object) -> None:
    with pytest.raises(BadRequest, match="the member"):
        validate_member_id(value, what="the member")


def test_member_keys() -> None:
    keys = MemberKeys.generate("alice")
    info = keys.public_info()
    assert info["id"] == "alice"
    assert VerifyKey.from_jwk(info["signing_key"]) == keys.signing.verify_key
    assert PublicEncryptionKey.from_jwk(info["encryption_key"]) == keys.encryption.public_key
    for part in ("signing_key", "encryption_key"):
        jwk = info[part]
        assert isinstance(jwk, dict)
        assert "d" not in jwk
    with pytest.raises(BadRequest):
        MemberKeys.generate("not valid!")
    with pytest.raises(BadRequest):
        MemberKeys("", keys.signing, keys.encryption)
