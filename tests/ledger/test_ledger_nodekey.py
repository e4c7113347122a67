"""The node key file: created atomically (a crash never leaves a half-written key), read
strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortia.errors import BadRequest
from consortia.ledger.nodekey import load_node_key, load_or_create_node_key


def test_created_once_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    key = load_or_create_node_key(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_node_key(path) == key == load_node_key(path)
    assert [p.name for p in tmp_path.iterdir()] == ["node.key"]  # no temporary file left


def test_a_crash_before_the_link_leaves_no_key_file(tmp_path: Path) -> None:
    # What a kill between writing the temporary file and linking it leaves behind.
    (tmp_path / ".node.key.0123456789abcdef.tmp").write_bytes(b"consortia-node-key/1:")
    key = load_or_create_node_key(tmp_path / "node.key")
    assert load_node_key(tmp_path / "node.key") == key


def test_missing_loose_or_damaged_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    with pytest.raises(BadRequest, match="no node key"):
        load_node_key(path)
    load_or_create_node_key(path)
    path.chmod(0o644)
    with pytest.raises(BadRequest, match="chmod 600"):
        load_node_key(path)
    path.chmod(0o600)
    path.write_text("consortia-node-key/1:AAAA\n")
    with pytest.raises(BadRequest, match="3 bytes"):
        load_node_key(path)
