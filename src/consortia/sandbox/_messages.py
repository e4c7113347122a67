"""Turn starlark-rust's diagnostics into short messages for action authors.

A :class:`starlark.StarlarkError` renders a whole report: a traceback through the action and
the host module, the error, and a source excerpt. Members and authors need one sentence and
a position in *their* code, never the host module's internals, so this module extracts the
error text and the innermost position that lies in the author's lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from consortia.sandbox._prelude import USER_FILE

__all__ = ["MAX_MESSAGE_CHARS", "StarlarkFailure", "parse_failure"]

#: Messages are cut to this length: a message may echo a value, and values can be huge.
MAX_MESSAGE_CHARS = 1_000

_ERROR_LINE = re.compile(r"^error: ", re.MULTILINE)
_ARROW = re.compile(r"\n *--> (?P<file>[^\n]*?):(?P<line>\d+):(?P<column>\d+)(?:\n|$)")
_FRAME = re.compile(r"^\s*\* (?P<file>[^\n]*?):(?P<line>\d+), in ", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class StarlarkFailure:
    """The gist of one Starlark error: its text and where in the author's code it arose."""

    text: str
    line: int | None
    column: int | None

    def where(self, action: str) -> str:
        """``in action 'x' at line 3, column 5`` (or less when the position is unknown)."""
        place = f"in action {action!r}"
        if self.line is not None:
            place += f" at line {self.line}"
            if self.column is not None:
                place += f", column {self.column}"
        return place


def parse_failure(report: str, user_lines: int) -> StarlarkFailure:
    """Extract the error text and the author's position from a Starlark error report.

    ``user_lines`` is the number of lines the author wrote; positions past it belong to the
    code the runtime appended and are not shown.
    """
    start = _ERROR_LINE.search(report)
    body = report[start.end() :] if start else report.strip()
    arrow = _ARROW.search(body)
    text = (body[: arrow.start()] if arrow else body).strip()
    line: int | None = None
    column: int | None = None
    if arrow and arrow["file"] == USER_FILE and int(arrow["line"]) <= user_lines:
        line, column = int(arrow["line"]), int(arrow["column"])
    else:
        traceback = report[: start.start()] if start else ""
        for frame in _FRAME.finditer(traceback):
            if frame["file"] == USER_FILE and int(frame["line"]) <= user_lines:
                line = int(frame["line"])
    return StarlarkFailure(_clip(text), line, column)


def _clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 1] + "…"
