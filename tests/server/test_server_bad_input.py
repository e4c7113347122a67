"""The issue's "Bad input" list: each gets a clear error or a bounded cost, and the server
keeps serving everyone else; no traceback or secret reaches an answer."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from server_harness import JOSE, serve

from consortia.identity.jws import sign_compact
from consortia.server import Limits, _http
from consortia.server import run as server_run


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
        assert s.http.get("/nowhere").status_code == 404
        assert _code(s.http.delete("/v1/service")) == "bad_request"
        assert _code(s.http.get("/v1/consortia/acme/constitution")) == "bad_signature"
        assert s.http.get("/v1/consortia/acme/constitution").headers["www-authenticate"]
        assert _code(s.read("telco", "transactions/nothex")) == "bad_request"
        assert s.http.get("/healthz").json() == {"status": "ok"}


def test_slow_clients_are_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_run, "HEADER_TIMEOUT", 0.5)
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
