"""The executor protocol: length-prefixed frames over a pair of pipes.

A frame is a 4-byte big-endian length ``n``, then ``n`` bytes: a one-byte tag and a payload.
Payloads are UTF-8; values travel as the JSON texts Starlark's ``json.encode`` produced, so
the executor forwards them without parsing. The conversation is strictly request/response:

==========  =========  ==========================================================
direction   tag        payload
==========  =========  ==========================================================
exec→host   ``Y``      ready: JSON ``[PROTOCOL_VERSION, pid]``
host→exec   ``L``      load (compile) code: JSON ``[name, code_hash, budget]``, ``\\n``, code
host→exec   ``R``      run: JSON ``[name, code_hash, budget, cache, constants]``, ``\\n``,
                       params JSON (``cache``: the read cache's update or null, see
                       :mod:`.cache`; ``constants``: caller, txid, now, visible_to)
exec→host   ``H``      held writes and a request: JSON ``[[write...], request-or-null]``
exec→host   ``V``      resolve a ``call`` target: the action name
exec→host   ``B``      builtin call: action name, ``\\n``, params JSON
exec→host   ``K``      code request: a code hash
host→exec   ``O``      answer to H/V/B/K: JSON text (for K: the source code)
host→exec   ``E``      the host refused: JSON ``[code, message, locate]``
exec→host   ``D``      done: JSON ``[[write...], null]``, ``\\n``, result (after L: empty)
exec→host   ``F``      the run or load failed: JSON ``[code, message, restart]``
host→exec   ``X``      exit
==========  =========  ==========================================================

The parent side (:class:`Channel`) is non-blocking and every wait has a deadline, because
the other end runs hostile code; the executor side blocks.
"""

from __future__ import annotations

import math
import os
import select
import struct
import time

__all__ = [
    "BUILTIN",
    "CODE",
    "DONE",
    "EXIT",
    "FAILED",
    "HEADER",
    "LOAD",
    "MAX_FRAME",
    "OK",
    "PROTOCOL_VERSION",
    "RAISE",
    "READY",
    "REQUEST",
    "RESOLVE",
    "RUN",
    "SPIN_BACKOFF",
    "SPIN_SECONDS",
    "Channel",
    "ChannelClosed",
    "ChannelGarbled",
    "ChannelTimeout",
    "Spinner",
    "encode",
    "read_frame",
    "write_all",
]

PROTOCOL_VERSION = 2
HEADER = struct.Struct(">I")
#: Largest frame either side accepts (a value bigger than this cannot cross).
MAX_FRAME = 64 * 1024 * 1024

READY = ord("Y")
LOAD = ord("L")
RUN = ord("R")
REQUEST = ord("H")
RESOLVE = ord("V")
BUILTIN = ord("B")
CODE = ord("K")
OK = ord("O")
RAISE = ord("E")
DONE = ord("D")
FAILED = ord("F")
EXIT = ord("X")

_CHUNK = 1 << 16

#: How long a side waiting for an answer polls before it sleeps. Waking a sleeping process
#: (on a VM, through an inter-processor interrupt) costs more than the work of a small
#: action: on an idle 2-core machine a get+put action went from 367 to 228 µs with it.
SPIN_SECONDS = 100e-6
#: Waits without spinning after a spin that did not pay. On a busy machine the peer cannot
#: run while we spin, and spinning made the same action slower (374 -> 582 µs).
SPIN_BACKOFF = 32


class Spinner:
    """Polls briefly before a wait sleeps, and stops trying while that does not pay."""

    def __init__(self, poller: select.poll) -> None:
        self._poller = poller
        self._skip = 0

    def spin(self) -> bool:
        """True if ``poller`` has an event within :data:`SPIN_SECONDS` (without sleeping)."""
        if self._skip:
            self._skip -= 1
            return False
        end = time.perf_counter() + SPIN_SECONDS
        while not self._poller.poll(0):
            if time.perf_counter() > end:
                self._skip = SPIN_BACKOFF
                return False
        return True


class ChannelTimeout(Exception):
    """The executor did not answer before the deadline."""


class ChannelClosed(Exception):
    """The other end closed its pipe (it exited or was killed)."""


class ChannelGarbled(Exception):
    """The other end sent something that is not a frame of this protocol."""


def encode(tag: int, payload: bytes = b"") -> bytes:
    """One frame: length, tag, payload."""
    if len(payload) + 1 > MAX_FRAME:
        raise ValueError(f"a frame of {len(payload) + 1} bytes exceeds {MAX_FRAME}")
    return HEADER.pack(len(payload) + 1) + bytes((tag,)) + payload


# -- executor side: blocking ---------------------------------------------------------------


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (blocking)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int) -> bytes | None:
    parts: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def read_frame(fd: int) -> tuple[int, bytes] | None:
    """Read one frame (blocking); None at end of file. Raises ChannelGarbled."""
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if not 0 < size <= MAX_FRAME:
        raise ChannelGarbled(f"frame length {size}")
    body = _read_exact(fd, size)
    if body is None:
        return None
    return body[0], body[1:]


# -- parent side: non-blocking, with deadlines ---------------------------------------------


class Channel:
    """The parent's end: frames in and out, each wait bounded by a monotonic deadline."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._buffer = bytearray()
        self._readable = select.poll()
        self._readable.register(read_fd, select.POLLIN)
        self._spinner = Spinner(self._readable)
        self._writable = select.poll()
        self._writable.register(write_fd, select.POLLOUT)

    def send(self, frame: bytes, deadline: float | None) -> None:
        """Write ``frame`` completely; raises ChannelTimeout or ChannelClosed."""
        view = memoryview(frame)
        while view:
            try:
                view = view[os.write(self._write_fd, view) :]
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                raise ChannelClosed("the executor closed its input") from None
            if view and not self._readable_or_writable(self._writable, deadline):
                raise ChannelTimeout("the executor stopped reading")

    def recv(self, deadline: float | None) -> tuple[int, bytes]:
        """Next frame ``(tag, payload)``; raises ChannelTimeout/ChannelClosed/ChannelGarbled."""
        while True:
            frame = self._take()
            if frame is not None:
                return frame
            ready = self._spinner.spin() or self._readable_or_writable(self._readable, deadline)
            if not ready:
                raise ChannelTimeout("the executor did not answer in time")
            try:
                chunk = os.read(self._read_fd, self._wanted())
            except BlockingIOError:
                continue
            if not chunk:
                raise ChannelClosed("the executor closed its output")
            self._buffer += chunk

    def idle_broken(self) -> bool:
        """Between runs the executor never writes: anything readable means it is gone."""
        return not self._buffer and self._readable_or_writable(self._readable, 0.0)

    def _wanted(self) -> int:
        if len(self._buffer) >= HEADER.size:
            size: int = HEADER.unpack_from(self._buffer)[0]
            return max(_CHUNK, min(size + HEADER.size - len(self._buffer), MAX_FRAME))
        return _CHUNK

    def _take(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(buffer)
        if not 0 < size <= MAX_FRAME:
            raise ChannelGarbled(f"frame length {size}")
        end = HEADER.size + size
        if len(buffer) < end:
            return None
        tag, payload = buffer[HEADER.size], bytes(buffer[HEADER.size + 1 : end])
        del buffer[:end]
        return tag, payload

    @staticmethod
    def _readable_or_writable(poller: select.poll, deadline: float | None) -> bool:
        if deadline is None:
            return bool(poller.poll())
        if deadline == 0.0:
            return bool(poller.poll(0))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bool(poller.poll(0))
        return bool(poller.poll(math.ceil(remaining * 1000)))
