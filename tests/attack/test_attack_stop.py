"""Family 8, graceful stop: SIGTERM with idle, half-open and streaming clients connected
exits with status 0 within 5 s, and leaves no traceback behind."""

from __future__ import annotations

import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from attack_kit import (
    TRACEBACK,
    SseReader,
    World,
    expect_committed,
    read_stream,
    world_running,
)


@dataclass
class Stopped:
    world: World
    code: int | None
    seconds: float
    stream: SseReader | None = None


def _idle_keepalive(world: World) -> ssl.SSLSocket:
    """A TLS connection that made one keep-alive request, read its answer, and went quiet."""
    sock = world.server.tls_socket()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
    answer = b""
    while b'"ok"' not in answer:
        piece = sock.recv(4096)
        assert piece, answer
        answer += piece
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return sock


def _sigterm(world: World) -> tuple[int | None, float]:
    proc = world.server.proc
    assert proc is not None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code: int | None = proc.wait(5.0)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - started


@pytest.fixture(scope="module")
def one_idle() -> Iterator[Stopped]:
    with world_running(record=False) as world:
        sock = _idle_keepalive(world)
        time.sleep(0.2)
        code, seconds = _sigterm(world)
        sock.close()
        yield Stopped(world, code, seconds)


def test_sigterm_with_one_idle_keepalive_connection_exits_0_within_5_s(one_idle: Stopped) -> None:
    assert one_idle.code == 0, f"exit status {one_idle.code} after {one_idle.seconds:.1f} s"
    assert one_idle.seconds <= 5.0


def test_no_traceback_after_the_idle_stop(one_idle: Stopped) -> None:
    assert TRACEBACK not in one_idle.world.server.stderr()


@pytest.fixture(scope="module")
def crowded() -> Iterator[Stopped]:
    with world_running() as world:
        expect_committed(world.record("telco", {"order": "before-stop"}))
        idle = _idle_keepalive(world)
        handshake_only = world.server.tls_socket()
        partial = world.server.tls_socket()
        partial.sendall(b"GET /v1/service HTTP/1.1\r\nHost: loc")  # a head that never ends
        pooled = world.server.client()
        assert pooled.get("/healthz").status_code == 200  # an httpx pool keeps it open
        stream, thread = read_stream(world, world.token("vendor"))
        stream.opened.wait(10)
        time.sleep(0.3)
        code, seconds = _sigterm(world)
        thread.join(5)
        for sock in (idle, handshake_only, partial):
            sock.close()
        pooled.close()
        yield Stopped(world, code, seconds, stream)


def test_sigterm_with_idle_partial_and_streaming_clients_exits_0_within_5_s(
    crowded: Stopped,
) -> None:
    assert crowded.code == 0, f"exit status {crowded.code} after {crowded.seconds:.1f} s"
    assert crowded.seconds <= 5.0


def test_open_stream_ends_at_shutdown_without_an_event(crowded: Stopped) -> None:
    stream = crowded.stream
    assert stream is not None and stream.status == 200
    assert stream.done.is_set(), "the stream outlived the server"
    assert "error" not in stream.kinds() and "end" not in stream.kinds(), stream.kinds()


def test_no_traceback_after_the_crowded_stop(crowded: Stopped) -> None:
    assert TRACEBACK not in crowded.world.server.stderr()
