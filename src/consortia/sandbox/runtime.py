"""The action sandbox as the engine sees it: compile once, run many times.

``ActionRuntime(isolation="process")`` (the default) runs action code in a disposable,
supervised executor process with an address-space limit and a watchdog: a runaway action
costs one process restart and a ``budget_exceeded``, never the platform (docs/architecture.md,
"Hazards measured here"). ``isolation="inline"`` runs it in this process: faster, the same
semantics, and steps and time are still enforced through starlark-pyo3's cancellation
check; but it cannot bound memory, cannot stop a single long native operation (one huge
string repeat, say) before it ends, and an interpreter crash (a native stack overflow from
an absurdly deep value) takes the process with it. Use it for tests, tools and benchmarks.

A runtime serializes its runs (one executor, one evaluation at a time); it is safe to share
between threads, and several runtimes give parallelism. Host methods must not call back
into the runtime that is running them (``run`` raises RuntimeError if they do).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from consortia._json import JSON, JSONObject, check_value
from consortia.errors import ActionFailed, BadRequest, Unavailable
from consortia.sandbox._interpreter import Interpreter
from consortia.sandbox._link import HostLink, dumps, loads
from consortia.sandbox._supervisor import ExecutorProcess
from consortia.sandbox.budget import Budget
from consortia.sandbox.cache import StateView
from consortia.sandbox.compiler import CompiledAction, SourceFacts, code_hash, inspect_source
from consortia.sandbox.host import Host

__all__ = ["ActionRuntime", "Isolation", "SandboxStats"]

Isolation = Literal["process", "inline"]


@dataclass(frozen=True, slots=True)
class SandboxStats:
    """Counters of one runtime since it started (``/metrics`` shows them)."""

    #: Top-level runs of action code.
    runs: int
    #: Host requests that crossed the executor's pipe (0 inline): each a round trip.
    round_trips: int
    #: Executor processes replaced (a run past its budget, a crash).
    restarts: int


@dataclass(frozen=True, slots=True)
class _Checked:
    code: str
    facts: SourceFacts


class ActionRuntime:
    """Compiles action code and runs ``main(params)`` against a :class:`Host`."""

    def __init__(
        self,
        *,
        isolation: Isolation = "process",
        default_budget: Budget = Budget(),  # noqa: B008 - a frozen value, safe to share
        cache_size: int = 256,
    ) -> None:
        if isolation not in ("process", "inline"):
            raise ValueError(f"isolation must be 'process' or 'inline', not {isolation!r}")
        self.isolation: Isolation = isolation
        self.default_budget = default_budget
        self._lock = threading.RLock()
        self._facts: OrderedDict[str, _Checked] = OrderedDict()
        self._cache_size = cache_size
        # Exactly one of the two: where action code is compiled and run.
        self._interpreter = Interpreter(cache_size) if isolation == "inline" else None
        self._executor = ExecutorProcess() if isolation == "process" else None
        self._closed = False
        self._running = False
        self._inline_runs = 0

    def __enter__(self) -> ActionRuntime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the executor process, if any. The runtime cannot run afterwards."""
        with self._lock:
            self._closed = True
            if self._executor is not None:
                self._executor.close()

    @property
    def executor_restarts(self) -> int:
        """How many times the executor process was replaced (process isolation)."""
        return self._executor.restarts if self._executor is not None else 0

    def stats(self) -> SandboxStats:
        """Runs, round trips to the executor and its restarts so far."""
        executor = self._executor
        if executor is None:
            return SandboxStats(self._inline_runs, 0, 0)
        return SandboxStats(executor.runs, executor.round_trips, executor.restarts)

    def compile(self, name: str, code: str) -> CompiledAction:
        """Check ``code`` and compile it; raise :class:`ActionFailed` (with line and column).

        Refused: syntax errors, a missing or mis-declared ``main(params)``, top-level
        statements other than ``def``, constant assignments and a docstring, ``load``,
        reserved names, and names Starlark cannot resolve. Results are cached by code hash.
        """
        with self._lock:
            if self._closed:
                raise Unavailable("the action runtime is closed")
            if self._running:  # called from a host method: the executor is busy
                return self._compile_nested(name, code)
            return self._compile(name, code)

    def _compile(self, name: str, code: str) -> CompiledAction:
        digest = code_hash(code)
        cached = self._facts.get(digest)
        if cached is None:
            facts = inspect_source(name, code)
            # Starlark folds constant expressions while compiling ("x" * 10**9 allocates),
            # so untrusted code is compiled where a bomb costs a process, not the platform.
            if self._interpreter is not None:
                self._interpreter.load(name, code, digest)
            elif self._executor is not None:
                self._executor.load(name, code, digest, self.default_budget)
            self._facts[digest] = _Checked(code, facts)
            if len(self._facts) > self._cache_size:
                self._facts.popitem(last=False)
        else:
            self._facts.move_to_end(digest)
            facts = cached.facts
        return CompiledAction(name, digest, code, facts.literal_calls)

    def _compile_nested(self, name: str, code: str) -> CompiledAction:
        """Compile a ``call`` target while a run is in progress.

        In process isolation the executor is busy with that run, so only the structure
        check happens here (it is what makes compiling safe); the executor compiles the
        code itself when it first needs it, and a failure there fails the run.
        """
        digest = code_hash(code)
        cached = self._facts.get(digest)
        if cached is not None:
            return CompiledAction(name, digest, code, cached.facts.literal_calls)
        if self._interpreter is not None:
            return self._compile(name, code)
        return CompiledAction(name, digest, code, inspect_source(name, code).literal_calls)

    def run(
        self,
        action: CompiledAction,
        params: JSONObject,
        host: Host,
        budget: Budget | None = None,
        view: StateView | None = None,
    ) -> JSON:
        """Run ``main(params)`` of ``action`` with host functions bound to ``host``.

        ``view`` describes the committed state ``host`` reads (see :mod:`.cache`): in process
        isolation the executor then answers reads of unchanged objects itself.

        Returns main's return value (JSON, None allowed). Raises the host's own errors
        unchanged; :class:`ActionFailed` for ``fail()``, runtime errors and non-JSON values;
        :class:`BudgetExceeded` past steps, time or memory; :class:`ScopeViolation` for a call
        cycle or calls nested deeper than ``budget.max_call_depth``.
        """
        budget = budget or self.default_budget
        if not isinstance(params, dict):
            raise BadRequest("params must be a JSON object")
        check_value(params, what="params")
        with self._lock:
            if self._closed:
                raise Unavailable("the action runtime is closed")
            if self._running:
                raise RuntimeError("ActionRuntime.run is not re-entrant (a host called back)")
            self._running = True
            try:
                text, inline = self._run(action, params, host, budget, view)
            finally:
                self._running = False
        try:
            result = loads(text)
            # The executor is not trusted; this process's own interpreter checked already.
            return result if inline else check_value(result, what="result")
        except (ValueError, BadRequest) as exc:
            raise ActionFailed(f"{action.name}: the result is not JSON ({exc})") from None

    def _run(
        self,
        action: CompiledAction,
        params: JSONObject,
        host: Host,
        budget: Budget,
        view: StateView | None,
    ) -> tuple[str, bool]:
        checked = self._checked(action)
        if self._interpreter is not None:
            self._inline_runs += 1
            link = HostLink(host, self._compile_nested, checked, checked=True)
            text, writes = self._interpreter.run(
                checked.name,
                checked.code_hash,
                dumps(params),
                link,
                budget,
                constants=link.constants(),
            )
            if writes:
                link.exchange(writes, None)  # the last held-back writes, in order
            return text, True
        if self._executor is None:
            raise Unavailable("the action runtime is closed")
        link = HostLink(host, self._compile_nested, checked)
        return self._executor.run(checked, dumps(params), link, budget, view), False

    # -- the engine's ActionSandbox protocol (consortia.engine.platform) -----------------------

    def literal_calls(self, name: str, code: str) -> tuple[str, ...]:
        """Compile ``code`` (raising ActionFailed with positions); its literal ``call`` targets."""
        return self.compile(name, code).literal_calls

    def execute(
        self,
        name: str,
        code: str,
        params: JSONObject,
        host: Host,
        budget: Budget | None = None,
        view: StateView | None = None,
    ) -> JSON:
        """Compile (cached by code hash) and run ``main(params)`` (default budget if None)."""
        return self.run(self.compile(name, code), params, host, budget, view)

    def _checked(self, action: CompiledAction) -> CompiledAction:
        """``action`` if this runtime compiled its code; else compile it now.

        Every run executes checked code, even a CompiledAction built by hand.
        """
        facts = self._facts.get(action.code_hash)
        # Comparing the code (usually the very same string object) is cheaper than hashing.
        if facts is not None and facts.code == action.code:
            return action
        checked = self._compile(action.name, action.code)
        if checked.code_hash != action.code_hash:
            raise ActionFailed(f"{action.name}: code_hash does not match the code")
        return checked
