"""Process isolation: the executor's wire protocol, supervision and confinement."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from consortia.errors import Unavailable
from consortia.sandbox import ActionRuntime, MemoryHost, _wire
from consortia.sandbox._link import HostLink
from consortia.sandbox._supervisor import ExecutorProcess

from .conftest import HEALTHY, assert_still_serving, run


def test_frames_round_trip_through_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    try:
        _wire.write_all(write_fd, _wire.encode(_wire.REQUEST, b'["get","k"]'))
        _wire.write_all(write_fd, _wire.encode(_wire.EXIT))
        assert _wire.read_frame(read_fd) == (_wire.REQUEST, b'["get","k"]')
        assert _wire.read_frame(read_fd) == (_wire.EXIT, b"")
        os.close(write_fd)
        assert _wire.read_frame(read_fd) is None
    finally:
        os.close(read_fd)


def test_a_frame_that_is_too_long_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        _wire.encode(_wire.DONE, bytes(_wire.MAX_FRAME))
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, _wire.HEADER.pack(_wire.MAX_FRAME + 1))
        with pytest.raises(_wire.ChannelGarbled):
            _wire.read_frame(read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_channel_deadlines_and_closing() -> None:
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    channel = _wire.Channel(to_parent_r, to_child_w)
    try:
        started = time.monotonic()
        with pytest.raises(_wire.ChannelTimeout):
            channel.recv(time.monotonic() + 0.05)
        assert 0.04 < time.monotonic() - started < 1.0
        # Partial frames are buffered until complete.
        frame = _wire.encode(_wire.DONE, b"[1,2]")
        os.write(to_parent_w, frame[:3])
        with pytest.raises(_wire.ChannelTimeout):
            channel.recv(time.monotonic() + 0.01)
        os.write(to_parent_w, frame[3:])
        assert channel.recv(None) == (_wire.DONE, b"[1,2]")
        channel.send(_wire.encode(_wire.OK, b"null"), None)
        assert _wire.read_frame(to_child_r) == (_wire.OK, b"null")
        os.close(to_parent_w)
        with pytest.raises(_wire.ChannelClosed):
            channel.recv(time.monotonic() + 1)
        os.close(to_child_r)
        with pytest.raises(_wire.ChannelClosed):
            channel.send(_wire.encode(_wire.OK, b"null"), time.monotonic() + 1)
    finally:
        for fd in (to_parent_r, to_child_w):
            os.close(fd)


def _proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text(errors="replace")


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs Linux /proc")
def test_the_executor_is_confined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSORTIA_TEST_SECRET", "do-not-leak")
    with ActionRuntime(isolation="process") as runtime:
        assert_still_serving(runtime)
        executor = runtime._executor
        assert executor is not None
        limits = _proc(executor.pid, "limits")
        environ = _proc(executor.pid, "environ")
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]
    address = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert address.split()[3] != "unlimited"
    assert "do-not-leak" not in environ
    assert environ.split("\0")[:2] == ["RUST_BACKTRACE=0", "LC_ALL=C.UTF-8"]


def test_close_stops_the_executor_and_refuses_later_runs() -> None:
    runtime = ActionRuntime(isolation="process")
    assert_still_serving(runtime)
    executor = runtime._executor
    assert executor is not None
    pid = executor.pid
    runtime.close()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in _proc(pid, "status")
    with pytest.raises(Unavailable, match="closed"):
        run(runtime, HEALTHY, {"id": "x"})
    runtime.close()  # idempotent


_GARBAGE = """
import os, struct
def frame(tag, payload):
    return struct.pack(">I", len(payload) + 1) + bytes([tag]) + payload
os.write(1, frame(ord("Y"), b"[VERSION, 0]"))
os.read(0, 1 << 20)
os.write(1, b"\\xff\\xff\\xff\\xff")
os.read(0, 1)
""".replace("VERSION", str(_wire.PROTOCOL_VERSION))


class _Misbehaving(ExecutorProcess):
    def _argv(self) -> list[str]:
        return [sys.executable, "-c", _GARBAGE]


def test_a_misbehaving_executor_is_replaced() -> None:
    executor = _Misbehaving()
    runtime = ActionRuntime(isolation="inline")
    action = runtime.compile("healthy", HEALTHY)
    try:
        link = HostLink(MemoryHost(), runtime.compile, action)
        with pytest.raises(Unavailable, match="misbehaved"):
            executor.run(action, '{"id": "x"}', link, runtime.default_budget)
        assert executor.restarts == 1
    finally:
        executor.close()


def test_compile_after_close_is_refused() -> None:
    runtime = ActionRuntime(isolation="process")
    runtime.close()
    with pytest.raises(Unavailable, match="closed"):
        runtime.compile("late", HEALTHY)
