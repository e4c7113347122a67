"""The executor process: runs action code under an address-space limit, disposable.

Started by :class:`consortia.sandbox._supervisor.ExecutorProcess` (``python -I`` with a
bootstrap that imports only the sandbox, then :func:`main`). It speaks
:mod:`consortia.sandbox._wire` on its stdin/stdout (which it first moves aside, so nothing
else can write into the channel), sets ``RLIMIT_AS`` to its baseline plus the budget's
``memory_bytes`` and runs one action at a time. Host function calls become request frames
that the parent answers.

Whatever goes wrong in here costs this process only: the parent kills it past the deadline,
and sees a crash (an allocation failure aborts, a stack overflow segfaults) as the end of
its pipe; either way it answers ``budget_exceeded`` and starts a fresh executor.
"""

from __future__ import annotations

import json
import os
import resource
import select
import sys

from consortia.errors import ConsortiaError, Unavailable, error_for_code
from consortia.sandbox import _wire
from consortia.sandbox._interpreter import Interpreter
from consortia.sandbox._link import HostArgError, ResolvedAction, batch_text, dumps
from consortia.sandbox.budget import Budget
from consortia.sandbox.cache import CACHE_MAX_BYTES, ReadCache
from consortia.sandbox.host import BuiltinTarget

__all__ = ["main"]


class _ParentGone(Exception):
    """The parent closed the channel: nothing left to do but exit."""


class RemoteLink:
    """The interpreter's :class:`~consortia.sandbox._link.Link`, answered by the parent."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        readable = select.poll()
        readable.register(read_fd, select.POLLIN)
        self._spinner = _wire.Spinner(readable)

    def exchange(self, writes: list[str], request: str | None) -> str:
        """Forward held writes and a request in one frame, unparsed."""
        return self._ask(_wire.REQUEST, batch_text(writes, request).encode())

    def resolve(self, action: str) -> ResolvedAction | BuiltinTarget:
        """Ask the parent to resolve (and compile) a ``call`` target."""
        reply = json.loads(self._ask(_wire.RESOLVE, action.encode()))
        if reply[0] == "starlark":
            return ResolvedAction(reply[1], reply[2])
        return BuiltinTarget(reply[1])

    def call_builtin(self, action: str, params_json: str) -> str:
        """Ask the parent to run a builtin internal action."""
        return self._ask(_wire.BUILTIN, action.encode() + b"\n" + params_json.encode())

    def code(self, code_hash: str) -> str:
        """Fetch the source of an action this process has not compiled yet."""
        return self._ask(_wire.CODE, code_hash.encode())

    def _ask(self, tag: int, payload: bytes) -> str:
        _wire.write_all(self._write_fd, _wire.encode(tag, payload))
        self._spinner.spin()  # the parent usually answers within the spin
        frame = _wire.read_frame(self._read_fd)
        if frame is None:
            raise _ParentGone
        reply_tag, reply = frame
        if reply_tag == _wire.OK:
            return reply.decode()
        if reply_tag == _wire.RAISE:
            code, message, locate = json.loads(reply)
            if locate:
                raise HostArgError(message)
            raise error_for_code(code, message)
        raise Unavailable(f"unexpected frame {reply_tag!r} from the platform")


def _address_space() -> int:
    """Current virtual memory size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _limit_memory(baseline: int, memory_bytes: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = baseline + memory_bytes
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


#: Address space set aside for the read cache on top of an action's memory budget (the
#: cache's accounted bytes, plus what Python's objects cost beyond them).
CACHE_RESERVE = 2 * CACHE_MAX_BYTES


def _serve(read_fd: int, write_fd: int) -> None:
    interpreter = Interpreter()
    cache = ReadCache()
    baseline = _address_space()
    link = RemoteLink(read_fd, write_fd)
    ready = dumps([_wire.PROTOCOL_VERSION, os.getpid()]).encode()
    _wire.write_all(write_fd, _wire.encode(_wire.READY, ready))
    memory_limit: int | None = None
    while True:
        frame = _wire.read_frame(read_fd)
        if frame is None or frame[0] == _wire.EXIT:
            return
        tag, payload = frame
        if tag not in (_wire.RUN, _wire.LOAD):
            raise _wire.ChannelGarbled(f"expected a run or load frame, got {tag!r}")
        header, _, body = payload.partition(b"\n")
        name, digest, fields, *extra = json.loads(header)
        budget = Budget.from_wire(fields)
        if budget.memory_bytes != memory_limit:
            _limit_memory(baseline, budget.memory_bytes + CACHE_RESERVE)
            memory_limit = budget.memory_bytes
        try:
            if tag == _wire.RUN:
                update, constants = extra if len(extra) == 2 else (None, None)
                if update is None:
                    cache.clear()  # no view of the state: nothing cached may be trusted
                else:
                    cache.apply(update)
                text, writes = interpreter.run(
                    name,
                    digest,
                    body.decode(),
                    link,
                    budget,
                    constants=_texts(constants),
                    cache=None if update is None else cache,
                )
                # The parent applies the last writes before it accepts the result.
                result = (batch_text(writes, None) + "\n" + text).encode()
            else:
                interpreter.load(name, body.decode(), digest)
                result = b""
            reply = _wire.encode(_wire.DONE, result)
        except ConsortiaError as exc:
            reply = _failure(exc.code, exc.message, restart=interpreter.tainted)
        except MemoryError:
            interpreter.tainted = True
            reply = _failure("budget_exceeded", "the action ran out of memory", restart=True)
        except ValueError as exc:  # a result or request too large for one frame
            reply = _failure("budget_exceeded", f"a value is too large to cross: {exc}")
        _wire.write_all(write_fd, reply)
        if interpreter.tainted:
            return  # after a panic or MemoryError, start afresh rather than trust this heap


def _texts(value: object) -> dict[str, str] | None:
    """The run's constant answers as the parent sent them (request text -> reply text)."""
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _failure(code: str, message: str, *, restart: bool = False) -> bytes:
    return _wire.encode(_wire.FAILED, dumps([code, message, restart]).encode())


def main() -> int:
    """Entry point: serve runs until the parent says exit or goes away."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    # The server's log, for one line of ours: the type of what ended this process.
    log_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # nothing but frames may reach the parent
    # Nor may anything else reach the server's log: a traceback (a MemoryError's, say) or a
    # Rust panic message could quote the action's data.
    os.dup2(devnull, 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not write a core file
    try:
        _serve(read_fd, write_fd)
    except (_ParentGone, BrokenPipeError):
        return 0
    except BaseException as exc:  # noqa: BLE001 - the process boundary, see below
        # The outermost boundary of a process that runs hostile code: whatever escaped
        # (including a PanicException, which derives from BaseException), say so and exit;
        # the parent sees the pipe close and replaces this process.
        line = f"consortia executor: stopped by {type(exc).__name__}; the platform restarts it\n"
        os.write(log_fd, line.encode())
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
