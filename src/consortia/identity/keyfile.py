"""Key files on disk: a member's private keys (mode 0600) and a public JWK (the operator's).

A member key file is JSON::

    {"format": "consortia-member-key/1", "member": "<member id>",
     "signing_key": <private Ed25519 JWK>, "encryption_key": <private X25519 JWK>}

It is written atomically (a 0600 temporary file, fsync, then a no-clobber link or a rename)
so a crash never leaves a torn key file, and it is refused on load when group or others can
reach it, as OpenSSH refuses a loose private key. This is the only module of the package
that touches the file system.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from consortia._json import JSON, loads_strict
from consortia.errors import BadRequest
from consortia.identity.keys import EncryptionKey, MemberKeys, SigningKey, validate_member_id

__all__ = [
    "MEMBER_KEY_FORMAT",
    "load_member_keys",
    "load_public_jwk",
    "load_signing_key",
    "save_member_keys",
    "save_public_jwk",
    "save_signing_key",
    "write_private_file",
]

#: The ``format`` member of a member key file; bump it when the layout changes.
MEMBER_KEY_FORMAT: Final = "consortia-member-key/1"
_MEMBER_FIELDS: Final = frozenset({"format", "member", "signing_key", "encryption_key"})
# Key files are a few hundred bytes; the cap keeps a wrong path from reading a huge file.
_MAX_FILE_BYTES: Final = 64 * 1024


def write_private_file(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write a file only its owner may read (0600), atomically and durably: a TLS key, a
    member's saved recovery share, the operator's sealed backup."""
    _write_atomic(path, data, mode=0o600, overwrite=overwrite)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, *, mode: int, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through a same-directory temporary file created with ``mode``."""
    if not overwrite and path.exists():
        raise BadRequest(f"{path} already exists; refusing to overwrite it (choose another path)")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have narrowed it; make it exactly `mode`
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if path appeared since the check above, so a concurrent writer
            # is never clobbered.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise BadRequest(
                    f"{path} already exists; refusing to overwrite it (choose another path)"
                ) from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _read_small(path: Path, *, private: bool) -> bytes:
    """Read a key file; refuse a non-regular, oversized or (if ``private``) loose one."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise BadRequest(f"no key file at {path}") from None
    try:
        # fstat on the open descriptor, so the mode checked is that of the file read.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadRequest(f"{path} is not a regular file")
        if private and info.st_mode & 0o077:
            raise BadRequest(
                f"key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: group or others "
                f"can access it; run `chmod 600 {path}` and try again"
            )
        if info.st_size > _MAX_FILE_BYTES:
            raise BadRequest(f"{path} is {info.st_size} bytes; a key file is under 64 KiB")
        chunks: list[bytes] = []
        size = 0
        while size <= _MAX_FILE_BYTES:
            chunk = os.read(fd, _MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > _MAX_FILE_BYTES:
            raise BadRequest(f"{path} grew past 64 KiB while being read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _dump(document: dict[str, JSON]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def save_member_keys(keys: MemberKeys, path: Path, *, overwrite: bool = False) -> None:
    """Write ``keys`` to ``path`` with mode 0600, atomically; refuse an existing file.

    Pass ``overwrite=True`` to replace one (the old keys are then gone for good).
    """
    signing: dict[str, JSON] = dict(keys.signing.to_jwk())
    encryption: dict[str, JSON] = dict(keys.encryption.to_jwk())
    document: dict[str, JSON] = {
        "format": MEMBER_KEY_FORMAT,
        "member": keys.member_id,
        "signing_key": signing,
        "encryption_key": encryption,
    }
    _write_atomic(Path(path), _dump(document), mode=0o600, overwrite=overwrite)


def load_member_keys(path: Path) -> MemberKeys:
    """Read and validate a member key file written by :func:`save_member_keys`.

    Raises :class:`BadRequest` for a missing, loose (not 0600), truncated or invalid file.
    """
    path = Path(path)
    what = f"key file {path}"
    document = loads_strict(_read_small(path, private=True), what=what)
    if not isinstance(document, dict):
        raise BadRequest(f"{what} must hold a JSON object")
    missing = sorted(_MEMBER_FIELDS - document.keys())
    unknown = sorted(document.keys() - _MEMBER_FIELDS)
    if missing:
        raise BadRequest(f"{what} lacks members {missing}; is it a member key file?")
    if unknown:
        raise BadRequest(f"{what} has unknown members {unknown}")
    if document["format"] != MEMBER_KEY_FORMAT:
        raise BadRequest(
            f"{what}: format {document['format']!r} is not {MEMBER_KEY_FORMAT!r}; "
            "was it written by another version?"
        )
    member = validate_member_id(document["member"], what=f"{what}: member")
    signing = SigningKey.from_jwk(document["signing_key"], what=f"{what}: signing_key")
    encryption = EncryptionKey.from_jwk(document["encryption_key"], what=f"{what}: encryption_key")
    return MemberKeys(member, signing, encryption)


def save_public_jwk(path: Path, jwk: dict[str, str], *, overwrite: bool = False) -> None:
    """Write a public JWK (such as the operator's signing key) with mode 0644, atomically.

    Refuses a JWK carrying a private part ``d``.
    """
    if "d" in jwk:
        raise BadRequest("refusing to save a private key as a public JWK file (it has 'd')")
    document: dict[str, JSON] = dict(jwk)
    _write_atomic(Path(path), _dump(document), mode=0o644, overwrite=overwrite)


def load_public_jwk(path: Path) -> dict[str, JSON]:
    """Read a public JWK file; the caller parses it with the matching ``from_jwk``.

    Raises :class:`BadRequest` if it is not a JSON object or carries a private part ``d``.
    """
    path = Path(path)
    jwk = loads_strict(_read_small(path, private=False), what=f"public key file {path}")
    if not isinstance(jwk, dict):
        raise BadRequest(f"public key file {path} must hold a JSON object (a JWK)")
    if "d" in jwk:
        raise BadRequest(f"public key file {path} holds a private key ('d'); remove it")
    return jwk


def save_signing_key(key: SigningKey, path: Path, *, overwrite: bool = False) -> None:
    """Write a lone private Ed25519 JWK (such as the operator's) with mode 0600, atomically."""
    document: dict[str, JSON] = dict(key.to_jwk())
    _write_atomic(Path(path), _dump(document), mode=0o600, overwrite=overwrite)


def load_signing_key(path: Path) -> SigningKey:
    """Read a private Ed25519 JWK file written by :func:`save_signing_key` (refused if loose)."""
    path = Path(path)
    jwk = loads_strict(_read_small(path, private=True), what=f"private key file {path}")
    return SigningKey.from_jwk(jwk, what=f"private key file {path}")
