"""The host side of the sandbox: what action code may ask of the platform.

The engine implements :class:`Host` once per execution (it buffers writes and notices and
throws them away if the action fails); the sandbox runtime exposes these methods to action
code as the host functions of PROTOCOL.md section 7. Nothing else crosses the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from consortia._json import JSON, JSONObject

__all__ = ["BuiltinTarget", "CallTarget", "Host", "StarlarkTarget"]


@dataclass(frozen=True, slots=True)
class StarlarkTarget:
    """An internal action whose code the sandbox runs itself (nested call)."""

    name: str
    code: str


@dataclass(frozen=True, slots=True)
class BuiltinTarget:
    """An internal action implemented by the platform (e.g. ``sendNotifications``)."""

    name: str


CallTarget = StarlarkTarget | BuiltinTarget


class Host(Protocol):
    """One execution's view of the consortium, as action code sees it.

    Reads see the full current state (action code may read what no single member can see);
    writes and notices are buffered until commit. Every method raises a
    :class:`consortia.errors.ConsortiaError` on bad input (e.g. ``ActionFailed`` for a key
    that is not a string, ``ScopeViolation`` for a reserved key).
    """

    def caller(self) -> str:
        """The member id that submitted the request."""
        ...

    def txid(self) -> str:
        """The request's transaction id (lowercase hex)."""
        ...

    def now(self) -> int:
        """The transaction's time (NumericDate), fixed for the whole execution."""
        ...

    def visible_to(self) -> list[str]:
        """The request's ``visible_to`` list."""
        ...

    def members(self) -> list[str]:
        """Ids of the active members, sorted."""
        ...

    def get(self, key: str) -> JSON:
        """Newest value of ``key`` (including this execution's own writes), or None."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` currently has a value."""
        ...

    def put(self, key: str, value: JSON, visible_to: list[str] | None) -> None:
        """Write a new version of ``key``; ``visible_to`` None means the request's audience."""
        ...

    def delete(self, key: str) -> None:
        """Write a deletion (tombstone) version of ``key``."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Keys directly under ``prefix`` (which ends with ``/``) that have a value, sorted."""
        ...

    def notify(self, members: list[str], body: JSON) -> None:
        """Queue a ``notice`` notification to active ``members``."""
        ...

    def resolve_call(self, action: str) -> CallTarget:
        """Resolve a ``call(action, ...)`` target; raises ``ScopeViolation`` for a public action
        and ``UnknownAction`` for none."""
        ...

    def call_builtin(self, action: str, params: JSONObject) -> JSON:
        """Run a builtin internal action and return its result."""
        ...
