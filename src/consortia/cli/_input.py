"""Reading a file a command was given (``-`` for stdin): bounded, with a clear refusal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from consortia.errors import BadRequest

__all__ = ["MAX_INPUT_BYTES", "read_input"]

#: Largest file a command reads (a backup, a share file, a report, a certificate chain).
MAX_INPUT_BYTES: Final = 16 << 20


def read_input(path: str, what: str, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path`` (``-``: stdin); ``bad_request`` naming ``what`` if unreadable
    or over ``limit`` bytes."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(path).open("rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise BadRequest(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise BadRequest(f"{what} {path} is larger than {limit} bytes")
    return data
