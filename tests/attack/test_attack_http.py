"""Family 3, the HTTP layer, on raw TLS connections: header and request-line caps (431,
414), malformed HTTP and unknown methods answered with the JSON error body, and a server
whose memory does not grow with huge heads."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from attack_kit import TRACEBACK, RawAnswer, Server, raw_exchange, running

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running() as started:
        yield started


def _request(extra: bytes = b"", target: bytes = b"/v1/service", method: bytes = b"GET") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n"


def _json_error(answer: RawAnswer, status: int) -> str:
    assert answer.status == status, (
        f"expected HTTP {status}, got {answer.status or 'no answer'} "
        f"(closed={answer.closed}, {answer.error}): {answer.head[:200]!r} {answer.body[:200]!r}"
    )
    assert "application/json" in answer.head.lower(), answer.head
    body = json.loads(answer.body)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == "bad_request", body
    assert TRACEBACK not in answer.body.decode(errors="replace")
    return str(body["error"]["message"])


def test_control_raw_request_is_served(server: Server) -> None:
    answer = raw_exchange(server, _request())
    assert answer.status == 200 and b"service_key" in answer.body, answer.head


@pytest.mark.parametrize(
    "size", [64 * 1024, 256 * 1024, MIB, 8 * MIB], ids=["64KiB", "256KiB", "1MiB", "8MiB"]
)
def test_huge_header_is_431_json(server: Server, size: int) -> None:
    answer = raw_exchange(server, _request(b"X-Big: " + b"a" * size + b"\r\n"))
    _json_error(answer, 431)


def test_many_medium_headers_past_the_head_cap_is_431(server: Server) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(60))
    _json_error(raw_exchange(server, _request(headers)), 431)


@pytest.mark.parametrize("count", [101, 500, 5000])
def test_more_than_100_headers_is_431(server: Server, count: int) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(count))
    _json_error(raw_exchange(server, _request(headers)), 431)


def test_control_100_headers_are_served(server: Server) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(99))  # plus Host: 100
    answer = raw_exchange(server, _request(headers))
    assert answer.status == 200, answer.head


@pytest.mark.parametrize(
    "size", [8 * 1024 + 1, 16 * 1024, 64 * 1024, MIB], ids=["8KiB+1", "16KiB", "64KiB", "1MiB"]
)
def test_long_request_target_is_414_json(server: Server, size: int) -> None:
    # How the bytes arrive (one write, or 16 KiB writes) must not change the answer: every
    # attempt of both kinds is 414, so a size-dependent or timing-dependent answer shows.
    target = b"/v1/service?" + b"a" * (size - len(b"/v1/service?"))
    attempts = 20 if size >= 64 * 1024 else 4
    statuses = []
    for attempt in range(attempts):
        chunk = 16 * 1024 if attempt % 2 else len(target) + 100
        answer = raw_exchange(server, _request(target=target), chunk=chunk)
        statuses.append(answer.status)
        if answer.status == 414:
            _json_error(answer, 414)
    assert statuses == [414] * attempts, f"statuses over {attempts} attempts: {statuses}"


def test_long_path_is_414_json(server: Server) -> None:
    _json_error(raw_exchange(server, _request(target=b"/" + b"p" * 9000)), 414)


MALFORMED: dict[str, bytes] = {
    "binary-garbage": b"\x00\x01\x02\xff\xfe garbage\r\n\r\n",
    "text-garbage": b"hello there\r\n\r\n",
    "unknown-method-foo": b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n",
    "unknown-method-lowercase": b"get /v1/service HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-version": b"GET /v1/service HTTP/9.9\r\nHost: x\r\n\r\n",
    "header-without-colon": b"GET /v1/service HTTP/1.1\r\nHost x\r\n\r\n",
    "space-before-colon": b"GET /v1/service HTTP/1.1\r\nHost : x\r\n\r\n",
    "nul-in-header": b"GET /v1/service HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare-lf": b"GET /v1/service HTTP/1.1\nHost: x\n\n",
    "content-length-and-chunked": b"POST /v1/consortia HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "content-length-word": b"POST /v1/consortia HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "content-length-negative": b"POST /v1/consortia HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: -5\r\n\r\n",
    "content-length-twice-differing": b"POST /v1/consortia HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "bad-chunk-size": b"POST /v1/consortia HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/jose\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "connect": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "header-folding": b"GET /v1/service HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_http_gets_a_json_error(server: Server, case: str) -> None:
    answer = raw_exchange(server, MALFORMED[case])
    assert 400 <= answer.status < 500, (
        f"{case}: got {answer.status or 'no answer'} {answer.head[:120]!r} {answer.body[:120]!r}"
    )
    _json_error(answer, answer.status)


@pytest.mark.parametrize("method", [b"DELETE", b"PUT", b"PATCH", b"OPTIONS", b"TRACE"])
def test_known_method_not_allowed_gets_a_json_error(server: Server, method: bytes) -> None:
    _json_error(raw_exchange(server, _request(method=method)), 400)


def test_unknown_path_gets_a_json_404(server: Server) -> None:
    answer = raw_exchange(server, _request(target=b"/etc/passwd"))
    assert answer.status == 404, answer.head
    assert json.loads(answer.body)["error"]["code"] == "not_found"


def test_plain_http_on_the_tls_port_is_not_served(server: Server) -> None:
    import socket

    host, port = server.host_port
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(_request())
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
    assert b"service_key" not in data and not data.startswith(b"HTTP/1.1 200")


def test_server_memory_does_not_grow_with_huge_heads(server: Server) -> None:
    for _ in range(3):  # warm up allocator and TLS buffers before measuring
        raw_exchange(server, _request(b"X-Big: " + b"a" * MIB + b"\r\n"))
    before = server.rss_kib()
    statuses = []
    for index in range(20):
        size = 8 * MIB if index % 2 else 64 * 1024
        statuses.append(raw_exchange(server, _request(b"X-Big: " + b"a" * size + b"\r\n")).status)
    after = server.rss_kib()
    assert statuses == [431] * 20, statuses
    assert after - before < 5 * 1024, f"VmRSS grew from {before} KiB to {after} KiB"


def test_control_server_serves_after_the_http_family(server: Server) -> None:
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
    assert server.alive()
    assert TRACEBACK not in server.output()
