"""Boxed messages (crypto_box) and anonymous sealed boxes (crypto_box_seal)."""

from __future__ import annotations

import nacl.public
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.errors import BadRequest, BadSignature
from consortia.identity import (
    EncryptionKey,
    Sealer,
    b64url_decode,
    b64url_encode,
    open_anonymous,
    open_box,
    seal_anonymous,
)
from consortia.identity import box as box_module

SERVICE = EncryptionKey(bytes(range(32)))
MEMBER = EncryptionKey(bytes(range(100, 132)))
STRANGER = EncryptionKey(bytes(range(200, 232)))
SEALER = Sealer(SERVICE)
MESSAGE = b'{"kind":"result","status":"committed"}'
SEALED = SEALER.seal(MEMBER.public_key, MESSAGE)


@given(st.binary(max_size=2048))
def test_round_trip(plaintext: bytes) -> None:
    sealed = SEALER.seal(MEMBER.public_key, plaintext)
    assert open_box(sealed, MEMBER, SERVICE.public_key) == plaintext
    assert len(b64url_decode(sealed, what="box")) == 24 + 16 + len(plaintext)


def test_fresh_nonce_each_time() -> None:
    assert SEALER.seal(MEMBER.public_key, MESSAGE) != SEALER.seal(MEMBER.public_key, MESSAGE)


def test_vector_matches_nacl_box_directly() -> None:
    nonce = bytes(range(24))
    expected = nacl.public.Box(
        nacl.public.PrivateKey(bytes(range(32))),
        nacl.public.PublicKey(MEMBER.public_key.raw),
    ).encrypt(MESSAGE, nonce)
    sealed = SEALER.seal(MEMBER.public_key, MESSAGE, nonce=nonce)
    assert sealed == b64url_encode(bytes(expected))
    assert b64url_decode(sealed, what="box")[:24] == nonce
    # And the member side opens what plain libsodium made.
    assert open_box(b64url_encode(bytes(expected)), MEMBER, SERVICE.public_key) == MESSAGE


def test_nonce_length_checked() -> None:
    with pytest.raises(BadRequest, match="24 bytes"):
        SEALER.seal(MEMBER.public_key, MESSAGE, nonce=bytes(23))


def test_wrong_recipient_key() -> None:
    with pytest.raises(BadSignature, match="box does not open with this key pair"):
        open_box(SEALED, STRANGER, SERVICE.public_key)


def test_wrong_sender_key() -> None:
    # A box that the service did not write does not open with the service's key.
    forged = Sealer(STRANGER).seal(MEMBER.public_key, MESSAGE)
    with pytest.raises(BadSignature, match="box does not open with this key pair"):
        open_box(forged, MEMBER, SERVICE.public_key)


@given(st.data())
def test_any_tampered_byte_fails(data: st.DataObject) -> None:
    raw = bytearray(b64url_decode(SEALED, what="box"))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(BadSignature):
        open_box(b64url_encode(bytes(raw)), MEMBER, SERVICE.public_key)


@pytest.mark.parametrize(
    ("sealed", "fragment"),
    [
        (SEALED + "=", "padding"),
        (SEALED[:-1] + "!", "alphabet"),
        (b64url_encode(bytes(39)), "at least 40"),
        ("", "at least 40"),
    ],
)
def test_malformed(sealed: str, fragment: str) -> None:
    with pytest.raises(BadRequest, match=fragment):
        open_box(sealed, MEMBER, SERVICE.public_key)


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(box_module, "MAX_CACHED_BOXES", 2)
    sealer = Sealer(SERVICE)
    members = [EncryptionKey.generate() for _ in range(5)]
    for member in members:
        sealed = sealer.seal(member.public_key, b"hi")
        assert open_box(sealed, member, sealer.public_key) == b"hi"
        assert len(sealer._boxes) <= 2
    # Sealing to a cached recipient again reuses the cached box.
    cached = sealer._boxes[members[-1].public_key.raw]
    sealer.seal(members[-1].public_key, b"again")
    assert sealer._boxes[members[-1].public_key.raw] is cached


@given(st.binary(max_size=1024))
def test_anonymous_round_trip(plaintext: bytes) -> None:
    data = seal_anonymous(MEMBER.public_key, plaintext)
    assert open_anonymous(data, MEMBER) == plaintext


def test_anonymous_failures() -> None:
    data = seal_anonymous(MEMBER.public_key, MESSAGE)
    with pytest.raises(BadSignature, match="does not open"):
        open_anonymous(data, STRANGER)
    tampered = bytearray(data)
    tampered[-1] ^= 1
    with pytest.raises(BadSignature):
        open_anonymous(bytes(tampered), MEMBER)
    with pytest.raises(BadRequest, match="at least 48"):
        open_anonymous(bytes(47), MEMBER)
    # Interoperates with libsodium's own sealed box.
    theirs = nacl.public.SealedBox(nacl.public.PublicKey(MEMBER.public_key.raw)).encrypt(b"x")
    assert open_anonymous(theirs, MEMBER) == b"x"
