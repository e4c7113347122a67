"""How the interpreter reaches the host: one narrow, text-based interface.

Host function requests and replies are JSON texts (see :mod:`consortia.sandbox._prelude` for
why). Writes (``put``, ``delete``, ``notify``) answer nothing, so the interpreter holds them
back and hands them over with the next read, ``call`` or the end of the run: in process
isolation that saves a round trip per write. The host still sees every call in program
order, and a write it refuses still fails the run (see ``Interpreter``).

:class:`Link` is what the interpreter needs from the outside during one run;
:class:`HostLink` answers it from a :class:`~consortia.sandbox.host.Host`. Inline runs use a
``HostLink`` directly; in process isolation the executor forwards the same texts over a
pipe and the parent answers them with a ``HostLink``, so both modes make exactly the same
host calls in the same order.

``HostLink`` re-checks every request as untrusted input, because in process isolation it
comes from the process that runs hostile code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from consortia._json import JSON, check_value, loads_strict
from consortia.errors import ActionFailed, BadRequest, Unavailable
from consortia.sandbox.compiler import CompiledAction
from consortia.sandbox.host import BuiltinTarget, Host, StarlarkTarget

__all__ = [
    "CONSTANT_REQUESTS",
    "HostArgError",
    "HostLink",
    "Link",
    "ResolvedAction",
    "batch_text",
    "dumps",
    "loads",
]

#: Requests whose answer is fixed for a whole execution (Host says so), cached per run.
CONSTANT_REQUESTS = frozenset({'["caller"]', '["txid"]', '["now"]', '["visible_to"]'})


class HostArgError(ActionFailed):
    """A host function refused its arguments; the interpreter adds the author's position."""


@dataclass(frozen=True, slots=True)
class ResolvedAction:
    """A nested Starlark action, compiled and known by its code hash."""

    name: str
    code_hash: str


class Link(Protocol):
    """What the interpreter asks of the outside world during one run."""

    def exchange(self, writes: list[str], request: str | None) -> str:
        """Apply ``writes`` in order, then answer ``request`` (JSON text ``[op, args...]``).

        Returns the JSON text of the request's value (``null`` without a request). The
        first write or request the host refuses raises, and nothing after it happens.
        """
        ...

    def resolve(self, action: str) -> ResolvedAction | BuiltinTarget:
        """Resolve ``call(action, ...)``; raises the host's ScopeViolation/UnknownAction."""
        ...

    def call_builtin(self, action: str, params_json: str) -> str:
        """Run a builtin internal action; JSON text in and out."""
        ...

    def code(self, code_hash: str) -> str:
        """Source text of an action this run resolved (or the top-level action)."""
        ...


def _no_constant(name: str) -> JSON:
    raise ValueError(f"{name} is not JSON")


# One encoder and one decoder: json.dumps/json.loads with options build new ones per call,
# which measured as a third of the inline cost of a small action.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def dumps(value: JSON) -> str:
    """Compact JSON text; raises ValueError for NaN/infinity (a host bug, never hidden)."""
    return _ENCODER.encode(value)


def loads(text: str) -> JSON:
    """Parse JSON text produced by Starlark or an executor; raise ValueError if malformed."""
    try:
        value: JSON = _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON text nests too deeply") from None
    return value


class HostLink:
    """Answers interpreter requests from one execution's :class:`Host`.

    ``checked`` says whether values in requests were already checked by this process's own
    interpreter (inline isolation); requests from an executor process are always re-checked.
    """

    def __init__(
        self,
        host: Host,
        compile_action: Callable[[str, str], CompiledAction],
        top: CompiledAction,
        *,
        checked: bool = False,
    ) -> None:
        self._host = host
        self._compile = compile_action
        self._codes = {top.code_hash: top.code}
        self._value = _trusted if checked else _json

    def constants(self) -> dict[str, str]:
        """The answers to :data:`CONSTANT_REQUESTS`, sent with a run to save their trips."""
        host = self._host
        return {
            '["caller"]': dumps(host.caller()),
            '["txid"]': dumps(host.txid()),
            '["now"]': dumps(host.now()),
            '["visible_to"]': dumps(_listed(host.visible_to())),
        }

    def exchange(self, writes: list[str], request: str | None) -> str:
        """Apply the held-back writes, then answer the request (see :class:`Link`)."""
        for write in writes:
            self._answer(_parse(write))
        return "null" if request is None else dumps(self._answer(_parse(request)))

    def exchange_batch(self, text: str) -> str:
        """:meth:`exchange` for one JSON text ``[[write...], request-or-null]`` (the wire).

        From an executor, the whole text is checked once as it is parsed (depth, safe
        integers, finite numbers, no lone surrogates): one pass over the text instead of a
        recursive walk of every value in it.
        """
        if self._value is _json:
            batch = _parse_checked(text)
            return self._apply(batch, _trusted)
        return self._apply(_parse(text), self._value)

    def _apply(self, batch: list[JSON], check: _Check) -> str:
        writes = batch[0] if len(batch) == 2 else None
        if not isinstance(writes, list):
            raise HostArgError("malformed host request")
        request = batch[1]
        for write in writes:
            self._answer(write, check)
        return "null" if request is None else dumps(self._answer(request, check))

    def _answer(self, request: JSON, check: _Check | None = None) -> JSON:
        if not isinstance(request, list) or not request or not isinstance(request[0], str):
            raise HostArgError("malformed host request")
        op, args = request[0], request[1:]
        entry = _OPS.get(op)
        if entry is None:
            raise HostArgError(f"no host function {op!r}")
        arity, answer = entry
        if len(args) != arity:
            raise HostArgError(f"{op}: expected {arity} arguments, got {len(args)}")
        return answer(self._host, op, args, check or self._value)

    def resolve(self, action: str) -> ResolvedAction | BuiltinTarget:
        """Ask the host; compile a Starlark target (cached) so the interpreter can run it."""
        target = self._host.resolve_call(action)
        if isinstance(target, StarlarkTarget):
            compiled = self._compile(target.name, target.code)
            self._codes[compiled.code_hash] = target.code
            return ResolvedAction(target.name, compiled.code_hash)
        return target

    def call_builtin(self, action: str, params_json: str) -> str:
        """Run a builtin internal action with checked params."""
        try:
            params = loads(params_json)
        except ValueError:
            raise HostArgError("call: malformed params") from None
        if not isinstance(params, dict):
            raise HostArgError("call: params must be a dict")
        self._value("call params", params)
        return dumps(self._host.call_builtin(action, params))

    def code(self, code_hash: str) -> str:
        """Source of an action resolved in this run."""
        try:
            return self._codes[code_hash]
        except KeyError:
            raise Unavailable(f"no action with code hash {code_hash[:16]} in this run") from None


def _parse(text: str) -> list[JSON]:
    try:
        parsed = loads(text)
    except ValueError:
        raise HostArgError("malformed host request") from None
    if not isinstance(parsed, list):
        raise HostArgError("malformed host request")
    return parsed


def _parse_checked(text: str) -> list[JSON]:
    try:
        parsed = loads_strict(text, what="host request")
    except BadRequest as exc:
        raise HostArgError(exc.message) from None
    if not isinstance(parsed, list):
        raise HostArgError("malformed host request")
    return parsed


def batch_text(writes: list[str], request: str | None) -> str:
    """The JSON text :meth:`HostLink.exchange_batch` reads: ``[[writes...], request]``."""
    return "[[" + ",".join(writes) + "]," + ("null" if request is None else request) + "]"


def _key(op: str, value: JSON, name: str = "key") -> str:
    if not isinstance(value, str):
        raise HostArgError(f"{op}: {name} must be a string, not {type(value).__name__}")
    return value


def _ids(op: str, value: JSON, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise HostArgError(f"{op}: {name} must be a list of member ids")
    return [item for item in value if isinstance(item, str)]


def _json(what: str, value: JSON) -> JSON:
    try:
        return check_value(value, what=what)
    except BadRequest as exc:
        raise HostArgError(exc.message) from None


def _trusted(what: str, value: JSON) -> JSON:
    return value


def _listed(values: list[str]) -> JSON:
    listed: list[JSON] = [*values]
    return listed


_Check = Callable[[str, JSON], JSON]


def _put(host: Host, op: str, args: list[JSON], check: _Check) -> JSON:
    key, value, audience = args
    visible_to = None if audience is None else _ids(op, audience, "visible_to")
    host.put(_key(op, key), check("put value", value), visible_to)
    return None


def _notify(host: Host, op: str, args: list[JSON], check: _Check) -> JSON:
    members, body = args
    host.notify(_ids(op, members, "members"), check("notify body", body))
    return None


def _delete(host: Host, op: str, args: list[JSON], check: _Check) -> JSON:
    host.delete(_key(op, args[0]))
    return None


_Answer = Callable[[Host, str, list[JSON], _Check], JSON]

#: op -> (number of arguments, how to answer). The names are the host functions'.
_OPS: dict[str, tuple[int, _Answer]] = {
    "caller": (0, lambda host, op, args, check: host.caller()),
    "txid": (0, lambda host, op, args, check: host.txid()),
    "now": (0, lambda host, op, args, check: host.now()),
    "visible_to": (0, lambda host, op, args, check: _listed(host.visible_to())),
    "members": (0, lambda host, op, args, check: _listed(host.members())),
    "get": (1, lambda host, op, args, check: host.get(_key(op, args[0]))),
    "exists": (1, lambda host, op, args, check: host.exists(_key(op, args[0]))),
    "put": (3, _put),
    "delete": (1, _delete),
    "list_keys": (
        1,
        lambda host, op, args, check: _listed(host.list_keys(_key(op, args[0], "prefix"))),
    ),
    "notify": (2, _notify),
}
