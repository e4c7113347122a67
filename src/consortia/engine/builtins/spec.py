"""What a builtin action is: its check, its run, and what the check sees.

Each base action of PROTOCOL.md section 7 has a ``check`` (its own validation against a
constitution, pure, run both before the vote gate, so a malformed proposal is refused at once,
and again at execution, since the constitution may have changed meanwhile) and a ``run`` that
stages its effects on an :class:`~consortia.engine.execution.Execution`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consortia._json import JSON, JSONObject
from consortia.engine.execution import Execution
from consortia.governance.constitution import Constitution

__all__ = ["Builtin", "CheckContext", "CodeChecker"]


#: Compiles Starlark at amendConstitution; returns the literal ``call`` targets.
CodeChecker = Callable[[str, str], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Builtin:
    """A base action: its validation and its effect."""

    check: Callable[[Constitution, str, JSONObject, CheckContext], None]
    run: Callable[[Execution, JSONObject, CheckContext], JSON]


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What validation needs besides the constitution."""

    consortium: str
    now: int
    code_checker: CodeChecker | None
