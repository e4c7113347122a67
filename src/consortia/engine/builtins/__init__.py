"""The base actions of PROTOCOL.md section 7, as builtin Python.

Each action has a ``check`` (its own validation against a constitution, pure, run both before
the vote gate, so a malformed proposal is refused at once, and again at execution, since the
constitution may have changed meanwhile) and a ``run`` that stages its effects on an
:class:`~consortia.engine.execution.Execution`.

Modules: :mod:`.spec` (the :class:`Builtin` type and its :class:`CheckContext`),
:mod:`.members`, :mod:`.actions` (amendConstitution, updatePermissions), :mod:`.voting`
(voteFor, approveAction, closing proposals), :mod:`.keys`, :mod:`.policies`,
:mod:`.notifications` and :mod:`.registry` (:data:`BUILTINS`, name to builtin, in protocol
order).
"""

from __future__ import annotations

from consortia.engine.builtins.registry import BUILTINS
from consortia.engine.builtins.spec import Builtin, CheckContext, CodeChecker
from consortia.engine.builtins.voting import close_proposal, vote_result_recipients

__all__ = [
    "BUILTINS",
    "Builtin",
    "CheckContext",
    "CodeChecker",
    "close_proposal",
    "vote_result_recipients",
]
