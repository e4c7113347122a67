"""Run action code in starlark-pyo3: the same code path in both isolation modes.

One :class:`Interpreter` owns the host module (see :mod:`._prelude`), a bounded cache of
compiled action modules keyed by code hash, and at most one run at a time. It talks to the
world only through a :class:`~._link.Link`, so it neither knows nor cares whether the host
is in this process (``inline``) or on the other side of a pipe (the executor process).

Writes are held back (see :mod:`._link`) and handed over with the next read or ``call``.
When a run fails with writes still held, they are applied first: a write the host refuses
happened earlier in the program than whatever failed later, so its error is the run's error,
exactly as if it had been applied at once. On success the held writes are returned with the
result, and the caller applies them before accepting it.

starlark-pyo3 flattens any Python exception raised inside a host function into the text of
a ``StarlarkError``. Starlark has no ``try``, so the first exception raised in a host
function always ends the run: the interpreter records it (``pending``) and re-raises that
very object when the evaluation unwinds, which keeps host errors' codes intact.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import starlark as sl

from consortia.errors import ActionFailed, BudgetExceeded, ScopeViolation, Unavailable
from consortia.sandbox._link import (
    CONSTANT_REQUESTS,
    HostArgError,
    Link,
    ResolvedAction,
    dumps,
    loads,
)
from consortia.sandbox._messages import StarlarkFailure, parse_failure
from consortia.sandbox._prelude import (
    ENTRY,
    PRELUDE_FILE,
    PRELUDE_LOAD,
    PRELUDE_SOURCE,
    SUFFIX,
    USER_FILE,
)
from consortia.sandbox.budget import Budget
from consortia.sandbox.cache import ReadCache, RunWrites
from consortia.sandbox.compiler import code_hash

__all__ = ["MAX_HELD_BYTES", "MAX_HELD_WRITES", "Interpreter"]

#: Writes held back before they are handed over anyway (bounds memory and frame size).
MAX_HELD_WRITES = 256
MAX_HELD_BYTES = 1024 * 1024

#: Action modules see Starlark's standard library only: no print, no json, no struct.
_ACTION_GLOBALS = sl.Globals.standard()
#: The host module also needs json.encode/json.decode (Rust-fast value transfer).
_PRELUDE_GLOBALS = sl.Globals.extended_by([sl.LibraryExtension.Json])


def _dialect() -> sl.Dialect:
    dialect = sl.Dialect.standard()
    # Belt and braces: the compiler already refuses top-level statements.
    dialect.enable_top_level_stmt = False
    return dialect


def _is_panic(exc: BaseException) -> bool:
    # pyo3_runtime.PanicException is not importable; its name is the stable handle.
    return type(exc).__name__ == "PanicException"


@dataclass(frozen=True, slots=True)
class _Loaded:
    module: sl.FrozenModule
    user_lines: int


@dataclass(slots=True)
class _Run:
    link: Link
    budget: Budget
    options: sl.EvalOptions
    started: float
    limit: float
    paused: float = 0.0
    ticks: int = 0
    stack: list[str] = field(default_factory=list)
    pending: BaseException | None = None
    constants: dict[str, str] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    held_bytes: int = 0
    #: The executor's read cache when this run may use it (see :mod:`.cache`), else None.
    cache: ReadCache | None = None
    own: RunWrites = field(default_factory=RunWrites)


class Interpreter:
    """Compiles and runs action modules; one run at a time (not thread-safe)."""

    def __init__(self, cache_size: int = 256) -> None:
        self._cache: OrderedDict[str, _Loaded] = OrderedDict()
        self._cache_size = cache_size
        self._options: dict[int, sl.EvalOptions] = {}
        self._dialect = _dialect()
        self._run: _Run | None = None
        #: Set after an interpreter panic: the process should be replaced when it can be.
        self.tainted = False
        self._prelude = self._build_prelude()
        self._loader = sl.FileLoader(self._load_prelude)

    # -- compiling ---------------------------------------------------------------------------

    def load(self, name: str, code: str, digest: str) -> None:
        """Parse and load ``code`` (cached by ``digest``); raise ActionFailed with a position.

        Only code that passed :func:`consortia.sandbox.compiler.inspect_source` may come here:
        that check bounds nesting (the Starlark parser does not) and makes loading cheap.
        """
        self._loaded(name, code, digest)

    def _loaded(self, name: str, code: str, digest: str) -> _Loaded:
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return cached
        user_lines = code.count("\n") + 1
        try:
            ast = sl.parse(USER_FILE, code + SUFFIX, self._dialect)
            module = sl.Module()
            sl.eval(module, ast, _ACTION_GLOBALS, self._loader)
            loaded = _Loaded(module.freeze(), user_lines)
        except sl.StarlarkError as exc:
            failure = parse_failure(str(exc), user_lines)
            raise ActionFailed(_compile_message(name, failure)) from None
        except BaseException as exc:
            # A PanicException derives from BaseException; contain exactly that.
            if not _is_panic(exc):
                raise
            self.tainted = True
            raise ActionFailed(f"{name}: the Starlark compiler failed on this code") from None
        self._cache[digest] = loaded
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return loaded

    def _module(self, run: _Run, name: str, digest: str) -> _Loaded:
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return cached
        code = run.link.code(digest)
        if code_hash(code) != digest:
            raise Unavailable(f"the code sent for action {name!r} does not match its hash")
        return self._loaded(name, code, digest)

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        name: str,
        digest: str,
        params_json: str,
        link: Link,
        budget: Budget,
        *,
        constants: dict[str, str] | None = None,
        cache: ReadCache | None = None,
    ) -> tuple[str, list[str]]:
        """Run ``main`` of the action with code hash ``digest``; JSON text in and out.

        Returns the result and the writes still held back: the caller must apply them
        (``link.exchange(writes, None)``) before it accepts the result. Raises the host's own
        errors unchanged, ActionFailed for errors in the action, BudgetExceeded past a
        limit, ScopeViolation for call cycles or too-deep calls.

        ``constants`` are the answers to :data:`CONSTANT_REQUESTS` known in advance (the
        executor gets them with the run); ``cache`` answers committed reads (see
        :mod:`.cache`), already brought up to date for this run.
        """
        if self._run is not None:
            raise RuntimeError("Interpreter.run is not re-entrant")
        options = self._options.get(budget.max_stack_frames)
        if options is None:
            options = sl.EvalOptions(
                check_cancelled=self._tick, max_callstack_size=budget.max_stack_frames
            )
            self._options[budget.max_stack_frames] = options
        run = _Run(link, budget, options, time.perf_counter(), budget.time_ms / 1000, cache=cache)
        if constants:
            run.constants.update(
                (text, reply) for text, reply in constants.items() if text in CONSTANT_REQUESTS
            )
        self._run = run
        try:
            loaded = self._module(run, name, digest)
            run.started = time.perf_counter()  # loading is not the action's time
            try:
                result = self._invoke(run, name, loaded, params_json)
            except Exception:
                # A held write the host refuses happened before this failure: its error wins
                # (it propagates from here, with this one as its context).
                self._flush(run)
                raise
            return result, run.writes
        finally:
            self._run = None

    def _invoke(self, run: _Run, action: str, loaded: _Loaded, params_json: str) -> str:
        run.stack.append(action)
        try:
            result = loaded.module.call_with(run.options, ENTRY, params_json).value
        except sl.StarlarkError as exc:
            raise self._failure(run, action, loaded, exc) from None
        except BaseException as exc:
            # A PanicException (e.g. an allocation failure inside Rust) derives from
            # BaseException; contain exactly that and let everything else through.
            if not _is_panic(exc):
                raise
            self.tainted = True
            raise BudgetExceeded(
                f"the Starlark interpreter aborted action {action!r} ({exc}); "
                "it most likely ran out of memory"
            ) from None
        finally:
            run.stack.pop()
        if not isinstance(result, str):
            raise Unavailable(f"action {action!r} returned without a result")
        return result

    def _failure(
        self, run: _Run, action: str, loaded: _Loaded, exc: sl.StarlarkError
    ) -> BaseException:
        pending, run.pending = run.pending, None
        failure = parse_failure(str(exc), loaded.user_lines)
        if isinstance(pending, HostArgError):
            return ActionFailed(f"{pending.message} ({failure.where(action)})")
        if pending is not None:
            return pending
        text = failure.text
        if text == "Starlark call stack overflow":
            return BudgetExceeded(
                f"function calls nested deeper than {run.budget.max_stack_frames} frames "
                f"({failure.where(action)})"
            )
        if text == "Evaluation cancelled":
            return BudgetExceeded(f"the action was cancelled ({failure.where(action)})")
        if text.startswith("fail: "):
            return ActionFailed(text[len("fail: ") :])
        return ActionFailed(f"{text} ({failure.where(action)})")

    # -- budget ------------------------------------------------------------------------------

    def _tick(self) -> bool:
        # starlark-pyo3 calls this about every 1,000 instructions; raising stops the run.
        run = self._run
        if run is None:
            return True
        run.ticks += 1
        budget = run.budget
        if run.ticks > budget.steps:
            raise self._pend(
                run,
                BudgetExceeded(
                    f"the action ran past its budget of {budget.steps} steps "
                    f"(about {budget.steps * 1000} Starlark instructions)"
                ),
            )
        if time.perf_counter() - run.started - run.paused > run.limit:
            raise self._pend(
                run, BudgetExceeded(f"the action ran past its time budget of {budget.time_ms} ms")
            )
        return False

    @staticmethod
    def _pend(run: _Run, exc: BudgetExceeded) -> BudgetExceeded:
        run.pending = exc
        return exc

    # -- host module -------------------------------------------------------------------------

    def _build_prelude(self) -> sl.FrozenModule:
        module = sl.Module()
        module.add_callable("_host", self._native(self._host))
        module.add_callable("_write", self._native(self._write))
        module.add_callable("_call", self._native(self._call))
        module.add_callable("_refuse", self._native(self._refuse))
        ast = sl.parse(PRELUDE_FILE, PRELUDE_SOURCE, self._dialect)
        sl.eval(module, ast, _PRELUDE_GLOBALS)
        return module.freeze()

    def _load_prelude(self, module_id: str) -> sl.FrozenModule:
        if module_id != PRELUDE_LOAD:
            raise ActionFailed(f"no module {module_id!r}: action code cannot import modules")
        return self._prelude

    def _native(self, function: Callable[[object], str]) -> Callable[[object], str]:
        def native(argument: object) -> str:
            try:
                return function(argument)
            except BaseException as exc:
                # Recorded, never swallowed: Starlark would flatten it to text, and run()
                # must re-raise this very object once the evaluation has unwound.
                if self._run is not None:
                    self._run.pending = exc
                raise

        return native

    def _active(self) -> _Run:
        if self._run is None:
            raise Unavailable("a host function was called outside a run")
        return self._run

    def _host(self, text: object) -> str:
        run = self._active()
        if not isinstance(text, str):
            raise HostArgError("malformed host request")
        cached = run.constants.get(text)
        if cached is not None:
            return cached
        if run.cache is not None:
            return self._read(run, run.cache, text)
        reply = self._exchange(run, text)
        if text in CONSTANT_REQUESTS:
            run.constants[text] = reply
        return reply

    def _read(self, run: _Run, cache: ReadCache, text: str) -> str:
        """A read through the cache: the run's own writes, then committed answers, then the
        host (whose answer is kept when it is a committed one)."""
        found = cache.lookup(text, run.own)
        if found is not None:
            return found
        op, key = _keyed(loads(text))
        own = run.own
        if op in ("get", "exists") and key in own.values:
            value = own.values[key]
            if op == "exists":
                return "false" if value is None else "true"
            return "null" if value is None else value
        reply = self._exchange(run, text)
        # A listing that includes this run's own writes is not a committed answer.
        if op in ("get", "exists") or (op == "list_keys" and key not in own.listed):
            cache.store(text, op, key, reply)
        return reply

    def _write(self, text: object) -> str:
        run = self._active()
        if not isinstance(text, str):
            raise HostArgError("malformed host request")
        if run.cache is not None:
            _record_own(run.own, text)
        run.writes.append(text)
        run.held_bytes += len(text)
        if len(run.writes) >= MAX_HELD_WRITES or run.held_bytes >= MAX_HELD_BYTES:
            self._flush(run)
        return ""

    def _flush(self, run: _Run) -> None:
        if run.writes:
            self._exchange(run, None)

    @staticmethod
    def _exchange(run: _Run, request: str | None) -> str:
        writes, run.writes, run.held_bytes = run.writes, [], 0
        started = time.perf_counter()
        try:
            return run.link.exchange(writes, request)
        finally:
            run.paused += time.perf_counter() - started

    def _call(self, text: object) -> str:
        run = self._active()
        request = loads(text) if isinstance(text, str) else None
        if not (isinstance(request, list) and len(request) == 2):
            raise HostArgError("call: malformed request")
        action, params = request
        if not isinstance(action, str):
            raise HostArgError("call: malformed request")
        chain = run.stack
        if action in chain:
            raise ScopeViolation(
                f"call cycle {' -> '.join([*chain, action])}: "
                "an action may not call itself, directly or through others"
            )
        if len(chain) > run.budget.max_call_depth:
            raise ScopeViolation(
                f"calls nest deeper than {run.budget.max_call_depth} levels: "
                f"{' -> '.join([*chain, action])}"
            )
        params_json = dumps(params)
        self._flush(run)  # the callee may read what was written
        started = time.perf_counter()
        try:
            target = run.link.resolve(action)
            if not isinstance(target, ResolvedAction):
                run.cache = None  # a builtin may write what this run cannot see
                return run.link.call_builtin(target.name, params_json)
            loaded = self._module(run, target.name, target.code_hash)
        finally:
            run.paused += time.perf_counter() - started
        return self._invoke(run, action, loaded, params_json)

    def _refuse(self, message: object) -> str:
        raise HostArgError(str(message))


def _keyed(request: object) -> tuple[str, str]:
    """``(op, key)`` of a one-argument request such as ``["get", key]``; else empty strings."""
    if isinstance(request, list) and len(request) == 2:
        op, key = request
        if isinstance(op, str) and isinstance(key, str):
            return op, key
    return "", ""


def _record_own(own: RunWrites, text: str) -> None:
    """Note a held ``put``/``delete`` so this run's later reads see it."""
    try:
        request = loads(text)
    except ValueError:
        return  # the host refuses it when it arrives, and that fails the run
    if not (isinstance(request, list) and request and isinstance(request[0], str)):
        return
    if request[0] == "put" and len(request) == 4 and isinstance(request[1], str):
        own.record(request[1], dumps(request[2]))
    elif request[0] == "delete" and len(request) == 2 and isinstance(request[1], str):
        own.record(request[1], None)


def _compile_message(name: str, failure: StarlarkFailure) -> str:
    if failure.line is None:
        return f"{name}: {failure.text}"
    column = f", column {failure.column}" if failure.column is not None else ""
    return f"{name}: line {failure.line}{column}: {failure.text}"
