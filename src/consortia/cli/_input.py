"""Reading a file a command was given (``-`` for stdin): bounded, with a clear refusal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from consortia._json import JSON, loads_strict
from consortia.errors import BadRequest

__all__ = ["MAX_INPUT_BYTES", "json_arg", "read_input"]

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


def json_arg(text: str | None, what: str) -> JSON:
    """A JSON argument given inline, or as ``@FILE`` (``@-``: stdin); None when absent."""
    if text is None:
        return None
    if text.startswith("@"):
        return loads_strict(read_input(text[1:], what), what=f"{what} {text[1:]}")
    return loads_strict(text, what=what)
