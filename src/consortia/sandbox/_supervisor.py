"""The parent's side of process isolation: start, watch, answer and replace the executor.

One :class:`ExecutorProcess` owns one executor child (:mod:`consortia.sandbox.executor`) at
a time. A run sends the action's name, code hash, budget and params; then the parent answers
the child's host requests with a :class:`~consortia.sandbox._link.HostLink` until a result
or a failure arrives. Only the time spent waiting for the child counts against the budget.

Past ``time_ms`` plus a grace period, or when the child dies or speaks garbage, the parent
kills it (SIGKILL), starts a fresh one at once (so it boots while the engine carries on)
and raises ``BudgetExceeded`` (``Unavailable`` for garbage). Nothing of the dead run can
leak into the next: the engine discards a failed run's buffered writes, and the new child
starts empty.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

from consortia._json import JSON
from consortia.errors import (
    ActionFailed,
    BudgetExceeded,
    ConsortiaError,
    Unavailable,
    error_for_code,
)
from consortia.sandbox import _wire
from consortia.sandbox._link import HostArgError, HostLink, ResolvedAction, dumps
from consortia.sandbox.budget import Budget
from consortia.sandbox.cache import StateView, ViewTracker
from consortia.sandbox.compiler import CompiledAction

__all__ = ["KILL_GRACE_MS", "LOAD_TIMEOUT_S", "STARTUP_TIMEOUT_S", "ExecutorProcess"]

#: How long past ``time_ms`` the child may take to notice its own deadline before a kill.
KILL_GRACE_MS = 150
#: How long compiling one action may take. Starlark folds constants such as ``"x" * 10**8``
#: while compiling, so compiling untrusted code happens in the child, under this deadline.
LOAD_TIMEOUT_S = 5.0
#: How long a fresh executor may take to import and say it is ready.
STARTUP_TIMEOUT_S = 30.0

# The child gets a minimal environment: the platform's secrets stay out of its reach.
_CHILD_ENV = {"RUST_BACKTRACE": "0", "LC_ALL": "C.UTF-8"}

# The child imports the sandbox and nothing else of the platform: a stand-in for the root
# package keeps consortia/__init__.py (which imports the engine, keys, ...) from running in
# the process that runs hostile code. It also halves the executor's start-up time.
_BOOT = f"""
import sys, types
root = types.ModuleType("consortia")
root.__path__ = [{str(Path(__file__).resolve().parents[1])!r}]
sys.modules["consortia"] = root
from consortia.sandbox.executor import main
sys.exit(main())
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill and reap ``process`` (idempotent); used directly and as a GC finalizer."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


class _Garbage(Exception):
    """The child broke the protocol."""


class ExecutorProcess:
    """A supervised executor child; ``run`` is not re-entrant (the runtime serializes it)."""

    def __init__(self) -> None:
        self.restarts = 0
        #: Runs started, and host requests the child sent during them (each a round trip).
        self.runs = 0
        self.round_trips = 0
        self._closed = False
        #: What the child's read cache reflects (see consortia.sandbox.cache).
        self._view = ViewTracker()
        self._spawn()

    # -- lifecycle ---------------------------------------------------------------------------

    def _spawn(self) -> None:
        # Our own interpreter and module, no shell, a fixed argument list.
        process = subprocess.Popen(  # noqa: S603
            self._argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_CHILD_ENV,
            cwd="/",
            close_fds=True,
            start_new_session=True,  # terminal signals (Ctrl-C) are the parent's to handle
        )
        if process.stdin is None or process.stdout is None:
            raise Unavailable("the sandbox executor started without pipes")
        self._process = process
        self._channel = _wire.Channel(process.stdout.fileno(), process.stdin.fileno())
        self._ready = False
        self._view.reset()
        self._finalizer = weakref.finalize(self, _stop, process)

    def _argv(self) -> list[str]:
        """The executor's command line (a test may substitute a misbehaving one)."""
        # -I: no PYTHON* variables, no user site, no current directory on the path.
        return [sys.executable, "-I", "-B", "-c", _BOOT]

    def _replace(self) -> None:
        self._finalizer()
        if not self._closed:
            self.restarts += 1
            self._spawn()

    def close(self) -> None:
        """Ask the child to exit, then make sure it has; no child is started afterwards."""
        self._closed = True
        if self._finalizer.alive:
            try:
                self._channel.send(_wire.encode(_wire.EXIT), time.monotonic() + 1.0)
                self._process.wait(timeout=1.0)
            except (_wire.ChannelClosed, _wire.ChannelTimeout, subprocess.TimeoutExpired):
                pass
            self._finalizer()

    @property
    def pid(self) -> int:
        """The current child's process id."""
        return self._process.pid

    def _ensure_ready(self) -> None:
        if self._closed:
            raise Unavailable("the sandbox executor is closed")
        if self._process.poll() is not None or (self._ready and self._channel.idle_broken()):
            self._replace()
        if self._ready:
            return
        try:
            tag, payload = self._channel.recv(time.monotonic() + STARTUP_TIMEOUT_S)
            version = json.loads(payload)[0] if tag == _wire.READY else None
        except (_wire.ChannelClosed, _wire.ChannelTimeout, _wire.ChannelGarbled, ValueError):
            version = None
        if version != _wire.PROTOCOL_VERSION:
            self._replace()
            raise Unavailable("the sandbox executor failed to start; it will be retried")
        self._ready = True

    # -- compiling ---------------------------------------------------------------------------

    def load(self, name: str, code: str, digest: str, budget: Budget) -> None:
        """Compile ``code`` in the child; raise ActionFailed if it does not compile in budget."""
        self._ensure_ready()
        header = dumps([name, digest, budget.to_wire()])
        frame = _wire.encode(_wire.LOAD, header.encode() + b"\n" + code.encode())
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        answered = False
        try:
            self._channel.send(frame, deadline)
            tag, payload = self._channel.recv(deadline)
            answered = True
        except _wire.ChannelTimeout:
            raise ActionFailed(
                f"{name}: compiling took longer than {LOAD_TIMEOUT_S:g} s; "
                "a constant expression is probably too large"
            ) from None
        except _wire.ChannelClosed:
            raise ActionFailed(
                f"{name}: compiling exhausted the sandbox ({self._death()}); "
                "a constant expression is probably too large"
            ) from None
        except _wire.ChannelGarbled as exc:
            raise Unavailable(f"the sandbox executor misbehaved ({exc}); it was replaced") from None
        finally:
            if not answered:
                self._replace()
        if tag == _wire.DONE:
            return
        try:
            code_, message, restart = json.loads(payload) if tag == _wire.FAILED else (0, 0, 1)
        except ValueError:
            code_, message, restart = 0, 0, True
        if restart:
            self._replace()
        if tag != _wire.FAILED or not isinstance(message, str):
            raise Unavailable("the sandbox executor misbehaved while compiling; it was replaced")
        raise error_for_code(str(code_), message)

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        action: CompiledAction,
        params_json: str,
        link: HostLink,
        budget: Budget,
        view: StateView | None = None,
    ) -> str:
        """Run ``action`` in the child; JSON text in and out (see :meth:`Interpreter.run`).

        With a ``view`` of the state the host reads, the child's read cache serves what is
        still committed (see :mod:`consortia.sandbox.cache`); without one it is emptied.
        """
        self._ensure_ready()
        allowance = (budget.time_ms + KILL_GRACE_MS) / 1000
        update = None if view is None else self._view.update(view)
        self.runs += 1
        constants: dict[str, JSON] = {**link.constants()}
        header = dumps([action.name, action.code_hash, budget.to_wire(), update, constants])
        frame = _wire.encode(_wire.RUN, header.encode() + b"\n" + params_json.encode())
        conversed = False
        try:
            self._channel.send(frame, time.monotonic() + allowance)
            result, error, restart = self._converse(link, allowance)
            conversed = True
        except _wire.ChannelTimeout:
            raise BudgetExceeded(
                f"the action ran past its time budget of {budget.time_ms} ms "
                "and its executor was stopped"
            ) from None
        except _wire.ChannelClosed:
            raise BudgetExceeded(
                f"the action's executor died ({self._death()}); the action most likely "
                "exhausted its memory or stack budget"
            ) from None
        except (_wire.ChannelGarbled, _Garbage, ValueError, IndexError, TypeError) as exc:
            raise Unavailable(f"the sandbox executor misbehaved ({exc}); it was replaced") from None
        finally:
            if not conversed:
                self._replace()  # the child's state is unknown: never reuse it
        if restart:
            self._replace()
        if error is not None:
            raise error
        return result

    def _converse(self, link: HostLink, allowance: float) -> tuple[str, BaseException | None, bool]:
        """Answer requests until the child finishes: (result, error, replace the child)."""
        pending: BaseException | None = None
        spent = 0.0
        while True:
            started = time.monotonic()
            tag, payload = self._channel.recv(started + allowance - spent)
            spent += time.monotonic() - started
            if tag == _wire.DONE:
                if pending is not None:
                    raise _Garbage("a result after a refused host call")
                writes, _, result = payload.decode().partition("\n")
                try:
                    link.exchange_batch(writes)  # the last held writes, in order
                except ConsortiaError as exc:
                    return "", exc, False
                return result, None, False
            if tag == _wire.FAILED:
                code, message, restart = json.loads(payload)
                error = pending if pending is not None else error_for_code(str(code), str(message))
                return "", error, bool(restart)
            self.round_trips += 1
            reply, refusal = self._answer(tag, payload, link)
            if refusal is not None:
                pending = refusal
            self._channel.send(reply, time.monotonic() + allowance)

    def _answer(
        self, tag: int, payload: bytes, link: HostLink
    ) -> tuple[bytes, BaseException | None]:
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            raise _Garbage("a request that is not UTF-8") from None
        try:
            if tag == _wire.REQUEST:
                answer = link.exchange_batch(text)
            elif tag == _wire.RESOLVE:
                target = link.resolve(text)
                if isinstance(target, ResolvedAction):
                    answer = dumps(["starlark", target.name, target.code_hash])
                else:
                    answer = dumps(["builtin", target.name])
            elif tag == _wire.BUILTIN:
                action, _, params = text.partition("\n")
                answer = link.call_builtin(action, params)
            elif tag == _wire.CODE:
                answer = link.code(text)
            else:
                raise _Garbage(f"unexpected frame {tag!r}")
        except HostArgError as exc:
            # The child adds the author's position to this one and reports it back itself.
            return _wire.encode(_wire.RAISE, dumps([exc.code, exc.message, True]).encode()), None
        except ConsortiaError as exc:
            return _wire.encode(_wire.RAISE, dumps([exc.code, exc.message, False]).encode()), exc
        except _Garbage:
            raise
        except Exception as exc:  # noqa: BLE001 - stored and re-raised, see below
            # A fault in the host, not in the action: the child is told to stop, and this
            # very exception is re-raised to the engine once the child has unwound.
            refusal = dumps(["unavailable", "the platform failed while answering", False])
            return _wire.encode(_wire.RAISE, refusal.encode()), exc
        return _wire.encode(_wire.OK, answer.encode()), None

    def _death(self) -> str:
        try:
            code = self._process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            return "it stopped answering"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"
