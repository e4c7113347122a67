"""The node key: the local secret that wraps every consortium's keyring (embedded mode).

It lives in a file of mode 0600 beside the database. Losing it loses the ledger unless the
members hold recovery shares (:mod:`consortia.engine.recovery`); leaking it leaks the ledger.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

from consortia.errors import BadRequest
from consortia.ledger.crypto import KEY_BYTES

__all__ = ["load_node_key", "load_or_create_node_key", "save_node_key"]

_PREFIX = "consortia-node-key/1:"


def load_or_create_node_key(path: Path) -> bytes:
    """Read the node key at ``path``, creating it (mode 0600) if the file does not exist.

    Creation is atomic: the key is written and synced under a temporary name, then linked
    into place, so a crash at any instant leaves either no key file or a complete one (a
    half-written key file would stop every later start-up).
    """
    if path.exists():
        return load_node_key(path)
    key = os.urandom(KEY_BYTES)
    if not save_node_key(path, key):
        # Another process created it first: theirs is the key.
        return load_node_key(path)
    return key


def save_node_key(path: Path, key: bytes) -> bool:
    """Write ``key`` to a new file ``path`` (mode 0600), atomically and synced; False if a
    file is already there (it is left as it is)."""
    if len(key) != KEY_BYTES:
        raise BadRequest(f"a node key is {KEY_BYTES} bytes, not {len(key)}")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, (_PREFIX + base64.urlsafe_b64encode(key).decode() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def load_node_key(path: Path) -> bytes:
    """Read an existing node key; raises BadRequest if it is missing, loose or damaged."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BadRequest(f"no node key at {path}: is this a Consortia data directory?") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadRequest(
            f"node key {path} is accessible to group or others (mode {oct(mode & 0o777)}); "
            f"run: chmod 600 {path}"
        )
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not text.startswith(_PREFIX):
        raise BadRequest(f"{path} is not a Consortia node key file")
    try:
        key = base64.urlsafe_b64decode(text[len(_PREFIX) :])
    except ValueError:
        raise BadRequest(f"{path} holds a damaged node key") from None
    if len(key) != KEY_BYTES:
        raise BadRequest(f"{path} holds a node key of {len(key)} bytes, expected {KEY_BYTES}")
    return key
