"""Key files: 0600 on disk, loose or torn files refused, no silent overwrite."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia.errors import BadRequest
from consortia.identity import (
    MemberKeys,
    SigningKey,
    load_member_keys,
    load_public_jwk,
    save_member_keys,
    save_public_jwk,
)


@pytest.fixture
def keys() -> MemberKeys:
    return MemberKeys.generate("alice")


@pytest.fixture
def saved(tmp_path: Path, keys: MemberKeys) -> Path:
    path = tmp_path / "alice.key.json"
    save_member_keys(keys, path)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip(saved: Path, keys: MemberKeys) -> None:
    assert load_member_keys(saved) == keys


def test_file_layout(saved: Path, keys: MemberKeys) -> None:
    document = json.loads(saved.read_text())
    assert document == {
        "format": "consortia-member-key/1",
        "member": "alice",
        "signing_key": keys.signing.to_jwk(),
        "encryption_key": keys.encryption.to_jwk(),
    }


def test_mode_is_0600(saved: Path) -> None:
    assert _mode(saved) == 0o600


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_mode_is_0600_even_with_permissive_umask(tmp_path: Path, keys: MemberKeys) -> None:
    path = tmp_path / "k.json"
    save_member_keys(keys, path)
    assert _mode(path) == 0o600


def test_no_temporary_file_left(saved: Path) -> None:
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_refuses_to_overwrite(saved: Path) -> None:
    before = saved.read_bytes()
    with pytest.raises(BadRequest, match="already exists"):
        save_member_keys(MemberKeys.generate("bob"), saved)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_overwrite_when_asked(saved: Path) -> None:
    bob = MemberKeys.generate("bob")
    save_member_keys(bob, saved, overwrite=True)
    assert load_member_keys(saved) == bob
    assert _mode(saved) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610])
def test_refuses_loose_file(saved: Path, mode: int) -> None:
    saved.chmod(mode)
    with pytest.raises(BadRequest) as info:
        load_member_keys(saved)
    assert f"chmod 600 {saved}" in info.value.message


def test_accepts_0400(saved: Path, keys: MemberKeys) -> None:
    saved.chmod(0o400)
    assert load_member_keys(saved) == keys


def _write_private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_truncated_files_refused(saved: Path) -> None:
    data = saved.read_bytes()
    # Every proper prefix of the file is torn (the final newline is optional).
    for cut in range(len(data.rstrip())):
        _write_private(saved, data[:cut])
        with pytest.raises(BadRequest):
            load_member_keys(saved)


def _document(keys: MemberKeys, **changes: object) -> bytes:
    document: dict[str, object] = {
        "format": "consortia-member-key/1",
        "member": keys.member_id,
        "signing_key": keys.signing.to_jwk(),
        "encryption_key": keys.encryption.to_jwk(),
    }
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"format": "consortia-member-key/2"}, "format"),
        ({"format": None}, "lacks members ['format']"),
        ({"member": "bad id!"}, "not a valid member id"),
        ({"member": 7}, "member id"),
        ({"extra": 1}, "unknown members ['extra']"),
        ({"signing_key": {"kty": "OKP"}}, "signing_key"),
        ({"encryption_key": SigningKey.generate().to_jwk()}, "'crv' must be 'X25519'"),
        ({"signing_key": SigningKey.generate().public_jwk()}, "no 'd'"),
    ],
)
def test_invalid_documents_refused(
    tmp_path: Path, keys: MemberKeys, change: dict[str, object], fragment: str
) -> None:
    path = _write_private(tmp_path / "k.json", _document(keys, **change))
    with pytest.raises(BadRequest) as info:
        load_member_keys(path)
    assert fragment in info.value.message


def test_mismatched_private_key_refused(tmp_path: Path, keys: MemberKeys) -> None:
    jwk = keys.signing.to_jwk()
    jwk["x"] = SigningKey.generate().public_jwk()["x"]
    path = _write_private(tmp_path / "k.json", _document(keys, signing_key=jwk))
    with pytest.raises(BadRequest, match="not the public key"):
        load_member_keys(path)


@pytest.mark.parametrize(
    "data", [b"", b"\x00\xff\xfe garbage", b"[]", b'"text"', b"{}", b'{"a":1,"a":2}']
)
def test_garbage_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(BadRequest):
        load_member_keys(_write_private(tmp_path / "k.json", data))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="no key file"):
        load_member_keys(tmp_path / "absent.json")
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    with pytest.raises(BadRequest, match="not a regular file"):
        load_member_keys(directory)


def test_oversized_file_refused(tmp_path: Path) -> None:
    path = _write_private(tmp_path / "k.json", b" " * (65 * 1024))
    with pytest.raises(BadRequest, match="64 KiB"):
        load_member_keys(path)


def test_public_jwk_round_trip(tmp_path: Path) -> None:
    jwk = SigningKey.generate().public_jwk()
    path = tmp_path / "operator.jwk"
    save_public_jwk(path, jwk)
    assert _mode(path) == 0o644
    assert load_public_jwk(path) == jwk
    with pytest.raises(BadRequest, match="already exists"):
        save_public_jwk(path, jwk)


def test_public_jwk_refuses_private_parts(tmp_path: Path) -> None:
    private = SigningKey.generate().to_jwk()
    with pytest.raises(BadRequest, match="'d'"):
        save_public_jwk(tmp_path / "a.jwk", private)
    assert not (tmp_path / "a.jwk").exists()
    path = tmp_path / "b.jwk"
    path.write_text(json.dumps(private))
    with pytest.raises(BadRequest, match="'d'"):
        load_public_jwk(path)
    path.write_text("[1]")
    with pytest.raises(BadRequest, match="JSON object"):
        load_public_jwk(path)
