"""An in-memory :class:`~consortia.sandbox.host.Host`, for tests, benchmarks and dry runs.

It behaves like the engine's host where action code can tell (reads see this execution's
own writes; ``resolve_call`` refuses public actions), keeps everything in dicts, and records
every call in order, so tests can compare what two runs asked of the host.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from consortia._json import JSON, JSONObject
from consortia.errors import ActionFailed, ScopeViolation, UnknownAction
from consortia.sandbox.host import BuiltinTarget, CallTarget, StarlarkTarget

__all__ = ["MemoryHost", "Notice", "Write"]


@dataclass(frozen=True, slots=True)
class Write:
    """One ``put`` (``deleted`` False) or ``delete`` (``deleted`` True)."""

    key: str
    value: JSON
    visible_to: tuple[str, ...] | None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    """One ``notify``."""

    members: tuple[str, ...]
    body: JSON


class MemoryHost:
    """A Host over plain dicts that records every call (``log``), write and notice.

    ``internal`` maps internal Starlark action names to their code, ``builtins`` internal
    builtin actions to Python functions, and ``public`` names public actions (which
    ``call`` must refuse). Keys starting with ``$`` are reserved (``ScopeViolation``).
    """

    def __init__(
        self,
        *,
        caller: str = "alice",
        txid: str = "00" * 16,
        now: int = 1_700_000_000,
        visible_to: Iterable[str] = (),
        members: Iterable[str] = ("alice", "bob", "carol"),
        state: Mapping[str, JSON] | None = None,
        internal: Mapping[str, str] | None = None,
        builtins: Mapping[str, Callable[[JSONObject], JSON]] | None = None,
        public: Iterable[str] = (),
    ) -> None:
        self._caller = caller
        self._txid = txid
        self._now = now
        self._visible_to = list(visible_to)
        self._members = sorted(members)
        self.state: dict[str, JSON] = copy.deepcopy(dict(state or {}))
        self._internal = dict(internal or {})
        self._builtins = dict(builtins or {})
        self._public = frozenset(public)
        self.log: list[tuple[str, tuple[JSON, ...]]] = []
        self.writes: list[Write] = []
        self.notices: list[Notice] = []

    def _record(self, method: str, *args: JSON) -> None:
        self.log.append((method, copy.deepcopy(args)))

    def caller(self) -> str:
        """The member id that submitted the request."""
        self._record("caller")
        return self._caller

    def txid(self) -> str:
        """The request's transaction id."""
        self._record("txid")
        return self._txid

    def now(self) -> int:
        """The transaction's time (NumericDate)."""
        self._record("now")
        return self._now

    def visible_to(self) -> list[str]:
        """The request's ``visible_to``."""
        self._record("visible_to")
        return list(self._visible_to)

    def members(self) -> list[str]:
        """Ids of the active members, sorted."""
        self._record("members")
        return list(self._members)

    def get(self, key: str) -> JSON:
        """Newest value of ``key`` or None (a copy: callers cannot alias the store)."""
        self._record("get", key)
        self._check_key(key)
        return copy.deepcopy(self.state.get(key))

    def exists(self, key: str) -> bool:
        """Whether ``key`` has a value."""
        self._record("exists", key)
        self._check_key(key)
        return key in self.state

    def put(self, key: str, value: JSON, visible_to: list[str] | None) -> None:
        """Store a copy of ``value`` under ``key``."""
        audience: list[JSON] | None = None if visible_to is None else [*visible_to]
        self._record("put", key, value, audience)
        self._check_key(key)
        self.state[key] = copy.deepcopy(value)
        self.writes.append(
            Write(key, copy.deepcopy(value), None if visible_to is None else tuple(visible_to))
        )

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self._record("delete", key)
        self._check_key(key)
        self.state.pop(key, None)
        self.writes.append(Write(key, None, None, deleted=True))

    def list_keys(self, prefix: str) -> list[str]:
        """Keys directly under ``prefix`` (which must end with ``/``), sorted."""
        self._record("list_keys", prefix)
        if not prefix.endswith("/"):
            raise ActionFailed(f"list_keys: prefix {prefix!r} must end with '/'")
        return sorted(
            key for key in self.state if key.startswith(prefix) and "/" not in key[len(prefix) :]
        )

    def notify(self, members: list[str], body: JSON) -> None:
        """Record a notice to active ``members``."""
        self._record("notify", [*members], body)
        unknown = sorted(set(members) - set(self._members))
        if unknown:
            raise ActionFailed(f"notify: {', '.join(unknown)} are not active members")
        self.notices.append(Notice(tuple(members), copy.deepcopy(body)))

    def resolve_call(self, action: str) -> CallTarget:
        """Internal actions resolve; public ones raise ScopeViolation; others UnknownAction."""
        self._record("resolve_call", action)
        if action in self._public:
            raise ScopeViolation(
                f"call: {action!r} is a public action; code may call internal ones"
            )
        if action in self._internal:
            return StarlarkTarget(action, self._internal[action])
        if action in self._builtins:
            return BuiltinTarget(action)
        raise UnknownAction(f"call: no action {action!r}")

    def call_builtin(self, action: str, params: JSONObject) -> JSON:
        """Run a registered builtin."""
        self._record("call_builtin", action, params)
        return self._builtins[action](copy.deepcopy(params))

    @staticmethod
    def _check_key(key: str) -> None:
        if not key:
            raise ActionFailed("a key must not be empty")
        if key.startswith("$"):
            raise ScopeViolation(f"key {key!r} is reserved for the platform")
