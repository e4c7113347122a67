"""The issue's "Bad input" list: each gets a clear error or a bounded cost, and the server
keeps serving everyone else; no traceback or secret reaches an answer."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest
from server_harness import JOSE, serve

from consortia.identity.jws import sign_compact
from consortia.server import Limits, _connection, _http


def _code(answer: httpx.Response) -> str:
    body = answer.json()
    assert set(body) <= {"error", "txid"} and set(body["error"]) == {"code", "message"}
    assert "Traceback" not in answer.text
    return str(body["error"]["code"])


def test_body_limits_types_encoding_nesting_and_fields(tmp_path: Path) -> None:
    with serve(tmp_path) as s:
        url = "/v1/consortia/acme/actions"
        big = s.http.post(url, headers=JOSE, content=b"a" * (1_048_576 + 1))
        assert big.status_code == 400 and _code(big) == "bad_request"
        assert "1048576" in big.json()["error"]["message"]

        def chunks() -> object:
            for _ in range(20):
                yield b"a" * 65536  # no Content-Length: the limit holds while streaming

        streamed = s.http.post(url, headers=JOSE, content=chunks())  # type: ignore[arg-type]
        assert streamed.status_code == 400 and "limit" in streamed.json()["error"]["message"]

        wrong = s.http.post(url, headers={"content-type": "application/json"}, content=b"{}")
        assert wrong.status_code == 400 and "application/jose" in wrong.json()["error"]["message"]
        missing = s.http.post(url, content=b"x.y.z")
        assert _code(missing) == "bad_request"

        utf8 = s.http.post(url, headers=JOSE, content=b"\xff\xfe.\xc3\x28.x")
        assert utf8.status_code == 400 and _code(utf8) == "bad_request"

        deep: object = "x"
        for _ in range(40):
            deep = [deep]
        nested = s.signed("telco", "recordOrder", {"deep": deep})  # type: ignore[dict-item]
        answer = s.http.post(url, headers=JOSE, content=nested)
        assert answer.status_code == 400 and "deeper" in answer.json()["error"]["message"]
        assert "txid" in answer.json()

        payload = json.dumps(
            {
                "consortium": "acme",
                "member": "telco",
                "action": "x",
                "params": {},
                "visible_to": [],
                "nonce": "n" * 20,
                "iat": int(time.time()),
                "surprise": 1,
            }
        ).encode()
        extra = sign_compact(payload, s.keys["telco"].signing, kid="telco", typ="consortia-action")
        answer = s.http.post(url, headers=JOSE, content=extra)
        assert answer.status_code == 400 and "surprise" in answer.json()["error"]["message"]

        assert _code(s.read("telco", "object", key="k", color="red")) == "bad_request"
        assert _code(s.read("telco", "object")) == "bad_request"
        assert _code(s.read("telco", "notifications", after="-1")) == "bad_request"
        for limit in ("0", "1001", "-1", "x", "9" * 30):
            assert _code(s.read("telco", "notifications", limit=limit)) == "bad_request"
        assert s.read("telco", "notifications", limit="1").status_code == 200
        assert s.http.get("/nowhere").status_code == 404
        assert _code(s.http.delete("/v1/service")) == "bad_request"
        assert _code(s.http.get("/v1/consortia/acme/constitution")) == "bad_signature"
        assert s.http.get("/v1/consortia/acme/constitution").headers["www-authenticate"]
        assert _code(s.read("telco", "transactions/nothex")) == "bad_request"
        assert s.http.get("/healthz").json() == {"status": "ok"}


def test_slow_clients_are_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_connection, "HEADER_TIMEOUT", 0.5)
    monkeypatch.setattr(_http, "BODY_TIMEOUT", 0.5)
    with serve(tmp_path) as s:
        host, port = s.url.split("//")[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finish
            time.sleep(1.0)
            assert slow.recv(100) == b""  # closed by the server
        with socket.create_connection((host, int(port)), timeout=5) as slow:
            slow.sendall(
                b"POST /v1/consortia/acme/actions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/jose\r\nContent-Length: 100\r\n\r\nab"
            )
            answer = slow.recv(4096)
            assert b" 400 " in answer.split(b"\r\n")[0] and b"did not arrive" in answer
        assert s.http.get("/healthz").status_code == 200  # everyone else is still served


def test_idle_streams_are_capped_and_others_still_served(tmp_path: Path) -> None:
    with serve(tmp_path, limits=Limits(streams_per_member=2, streams_total=3)) as s:
        stream_headers = {**s.auth("telco"), "accept": "text/event-stream"}
        path = "/v1/consortia/acme/notifications"
        with httpx.Client(base_url=s.url, timeout=10) as other:
            opened = [other.stream("GET", path, headers=stream_headers) for _ in range(3)]
            responses = [cm.__enter__() for cm in opened[:2]]
            assert all(r.status_code == 200 for r in responses)
            third = s.http.get(path, headers=stream_headers)
            assert third.status_code == 429 and _code(third) == "rate_limited"
            vendor = {**s.auth("vendor"), "accept": "text/event-stream"}
            with s.http.stream("GET", path, headers=vendor) as ok:
                assert ok.status_code == 200
                installer = {**s.auth("installer"), "accept": "text/event-stream"}
                full = httpx.get(s.url + path, headers=installer, timeout=10)
                assert full.status_code == 429 and "maximum" in full.json()["error"]["message"]
                assert s.read("telco", "constitution").status_code == 200
            for cm in opened[:2]:
                cm.__exit__(None, None, None)
        time.sleep(0.3)
        with s.http.stream("GET", path, headers=stream_headers) as again:
            assert again.status_code == 200  # the slots came back


def test_an_unexpected_failure_leaks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(tmp_path) as s:

        def broken() -> None:
            raise RuntimeError("ledger secret 0xDEADBEEF")

        monkeypatch.setattr(s.platform, "service_info", broken)
        answer = s.http.get("/v1/service")
        assert answer.status_code == 503 and _code(answer) == "unavailable"
        assert "DEADBEEF" not in answer.text
        assert all("DEADBEEF" not in r.getMessage() for r in caplog.records)


def _raw(url: str, request: bytes) -> bytes:
    """Send raw bytes on a fresh connection; everything the server answers before closing."""
    host, port = url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        with contextlib.suppress(OSError):  # the server may close while a head is sent
            conn.sendall(request)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _json_error(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower()
    return status, json.loads(body)["error"]


def test_heads_past_the_caps_are_refused_in_json(tmp_path: Path) -> None:
    big = b"x" * (_connection.MAX_HEAD_BYTES + 1)
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(_connection.MAX_HEADERS + 1))
    long_url = b"/v1/service?" + b"k" * (_connection.MAX_REQUEST_LINE + 1)
    with serve(tmp_path) as s:
        status, error = _json_error(_raw(s.url, b"GET /healthz HTTP/1.1\r\nX-Big: " + big))
        assert status == 431 and error["code"] == "bad_request"
        assert str(_connection.MAX_HEAD_BYTES) in error["message"]
        status, error = _json_error(_raw(s.url, b"GET /healthz HTTP/1.1\r\n" + many + b"\r\n"))
        assert status == 431 and "header fields" in error["message"]
        status, error = _json_error(_raw(s.url, b"GET " + long_url + b" HTTP/1.1\r\n\r\n"))
        assert status == 414 and "request target" in error["message"]
        status, error = _json_error(_raw(s.url, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"))
        assert status == 400 and "not valid HTTP/1.1" in error["message"]
        status, error = _json_error(_raw(s.url, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status == 400 and "unknown HTTP method" in error["message"]
        # A head just within the caps is served, and so is a body far larger than the head
        # budget sent together with its head.
        near = b"X-Near: " + b"n" * (_connection.MAX_HEAD_BYTES - 200) + b"\r\n"
        ok = _raw(
            s.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + near + b"Connection: close\r\n\r\n"
        )
        assert ok.startswith(b"HTTP/1.1 200")
        body = b"a" * (200 * 1024)
        posted = _raw(
            s.url,
            b"POST /v1/consortia/acme/actions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/jose\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        )
        assert _json_error(posted)[0] == 400  # read whole, refused by the engine as no JWS
        assert s.http.get("/healthz").status_code == 200


def test_a_graceful_stop_does_not_wait_for_idle_tls_connections(tmp_path: Path) -> None:
    """An idle keep-alive client that never reads used to hold every stop for the full
    graceful timeout (20 s): uvicorn's TLS close waited for the client's close_notify."""
    from consortia import Platform
    from consortia.server.run import ServerConfig, ServerThread
    from consortia.server.tls import ensure_self_signed

    cert, key, _ = ensure_self_signed(tmp_path, "127.0.0.1")
    platform = Platform.open(tmp_path / "data", analytics=False)
    try:
        server = ServerThread(platform, ServerConfig(port=0, tls=(cert, key))).start()
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
            context.wrap_socket(raw) as idle,
        ):
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert idle.recv(100).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            server.stop()
            took = time.monotonic() - started
        assert not server.thread.is_alive()
        assert took < 5, f"the stop took {took:.1f} s with one idle connection"
    finally:
        platform.close()


def test_a_non_member_cannot_tell_an_existing_consortium_from_an_unknown_one(
    tmp_path: Path,
) -> None:
    from consortia import MemberKeys
    from consortia.identity.jwt import issue_token

    stranger = MemberKeys.generate("mallory")
    with serve(tmp_path) as s:
        answers: dict[str, list[tuple[int, str]]] = {}
        for cid in ("acme", "nope"):
            token = issue_token(stranger, audience=cid, now=int(time.time()))
            found = []
            for headers in (
                {},
                {"authorization": "Bearer not-a-jwt"},
                {"authorization": f"Bearer {token}"},
            ):
                for tail in ("constitution", "object?key=order%2FO-1", "notifications"):
                    answer = s.http.get(f"/v1/consortia/{cid}/{tail}", headers=headers)
                    found.append((answer.status_code, answer.text.replace(cid, "CID")))
            answers[cid] = found
        assert answers["acme"] == answers["nope"]
        assert {status for status, _ in answers["acme"]} == {401}
        assert any('"unknown_member"' in text for _, text in answers["acme"])
