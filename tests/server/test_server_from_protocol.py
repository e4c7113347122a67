"""A client written from PROTOCOL.md alone: httpx, PyNaCl and the standard library only.

No `consortia` import anywhere in this file: JWS, JWT, JWE (ECDH-ES + A256GCM), boxes and
receipt checks are written here by hand, and the server is `python -m consortia serve` in a
child process (TLS with a self-signed certificate pinned by its printed fingerprint), stopped
by SIGTERM at the end, which must exit 0.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nacl.bindings
import nacl.public
import nacl.signing
import pytest

ORDER_CODE = """
def main(params):
    key = "order/" + params["order"]
    put(key, {"status": params["status"], "by": caller()})
    notify(visible_to(), {"order": params["order"], "status": params["status"]})
    return {"key": key, "status": params["status"]}
"""


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jws(payload: dict[str, Any], key: nacl.signing.SigningKey, kid: str, typ: str) -> str:
    header = b64e(json.dumps({"alg": "EdDSA", "kid": kid, "typ": typ}).encode())
    body = b64e(json.dumps(payload).encode())
    signature = key.sign(f"{header}.{body}".encode()).signature
    return f"{header}.{body}.{b64e(signature)}"


def jws_verify(token: str, public_jwk: dict[str, str]) -> dict[str, Any]:
    header, body, signature = token.split(".")
    nacl.signing.VerifyKey(b64d(public_jwk["x"])).verify(
        f"{header}.{body}".encode(), b64d(signature)
    )
    payload: dict[str, Any] = json.loads(b64d(body))
    return payload


def jwe(plaintext: bytes, recipient_x: bytes) -> str:
    """Compact JWE, alg ECDH-ES, enc A256GCM (RFC 7516, RFC 7518 section 4.6)."""
    eph_secret = secrets.token_bytes(32)
    eph_public = nacl.bindings.crypto_scalarmult_base(eph_secret)
    shared = nacl.bindings.crypto_scalarmult(eph_secret, recipient_x)
    header = {
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "epk": {"kty": "OKP", "crv": "X25519", "x": b64e(eph_public)},
    }
    encoded = b64e(json.dumps(header).encode())
    enc = b"A256GCM"
    other = struct.pack(">I", len(enc)) + enc + struct.pack(">I", 0) * 2 + struct.pack(">I", 256)
    cek = hashlib.sha256(b"\x00\x00\x00\x01" + shared + other).digest()  # Concat KDF, 1 round
    iv = secrets.token_bytes(12)
    sealed = nacl.bindings.crypto_aead_aes256gcm_encrypt(plaintext, encoded.encode(), iv, cek)
    return ".".join((encoded, "", b64e(iv), b64e(sealed[:-16]), b64e(sealed[-16:])))


class Member:
    """A member's two key pairs, and what it needs to sign and open."""

    def __init__(self, member_id: str) -> None:
        self.id = member_id
        self.signing = nacl.signing.SigningKey.generate()
        self.box = nacl.public.PrivateKey.generate()

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "signing_key": {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64e(bytes(self.signing.verify_key)),
            },
            "encryption_key": {
                "kty": "OKP",
                "crv": "X25519",
                "x": b64e(bytes(self.box.public_key)),
            },
            "info": {},
        }

    def action(
        self,
        cid: str,
        action: str,
        params: dict[str, Any],
        visible_to: list[str] | None = None,
        txref: str | None = None,
    ) -> str:
        payload: dict[str, Any] = {
            "consortium": cid,
            "member": self.id,
            "action": action,
            "params": params,
            "visible_to": visible_to or [],
            "nonce": secrets.token_hex(16),
            "iat": int(time.time()),
        }
        if txref:
            payload["txref"] = txref
        return jws(payload, self.signing, self.id, "consortia-action")

    def token(self, cid: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.id,
            "aud": cid,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
        }
        return jws(claims, self.signing, self.id, "JWT")

    def open(self, sealed: str, service_x: bytes) -> Any:
        raw = b64d(sealed)
        box = nacl.public.Box(self.box, nacl.public.PublicKey(service_x))
        return json.loads(box.decrypt(raw[24:], raw[:24]))


def leaf_hash(seqno: int, txid: str, digest: str) -> bytes:
    return hashlib.sha256(
        b"\x00" + struct.pack(">Q", seqno) + bytes.fromhex(txid) + bytes.fromhex(digest)
    ).digest()


def fold(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise AssertionError("proof too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    assert sn == 0
    return r


def pinned_context(host: str, port: int, fingerprint: str) -> ssl.SSLContext:
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as raw, probe.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    assert hashlib.sha256(der).hexdigest() == fingerprint.replace(":", "").lower()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=der)
    return context


class Server:
    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "consortia",
                "serve",
                "--data",
                str(data),
                "--port",
                "0",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self.fingerprint = ""
        deadline = time.time() + 30
        while not self.url and time.time() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if "fingerprint:" in line:
                self.fingerprint = line.rsplit(" ", 1)[1]
            if line.startswith("consortia: serving "):
                self.url = line.rsplit(" ", 1)[1]
        assert self.url and self.fingerprint, self.output

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line.strip())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "tep")
    try:
        yield running
    finally:
        status = running.stop()
    assert status == 0, "".join(running.output)
    assert not any("Traceback" in line for line in running.output), "".join(running.output)


def sse_events(response: httpx.Response) -> Iterator[tuple[str, str, str]]:
    event, data, eid = "message", "", ""
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event, data, eid
            event, data = "message", ""
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data += value
            elif name == "id":
                eid = value


def test_a_member_written_from_the_protocol_alone(server: Server, tmp_path: Path) -> None:
    host_port = server.url.split("//", 1)[1]
    host, port = host_port.rsplit(":", 1)
    http = httpx.Client(
        base_url=server.url,
        verify=pinned_context(host, int(port), server.fingerprint),
        timeout=httpx.Timeout(10, read=20),
    )
    jose = {"content-type": "application/jose"}
    for _ in range(100):
        try:
            service = http.get("/v1/service").json()
            break
        except httpx.TransportError:
            time.sleep(0.1)
    service_x = b64d(service["encryption_key"]["x"])
    assert service["platform"] == "virtual"

    operator_jwk = json.loads((tmp_path / "tep" / "operator.key.jwk").read_text())
    operator = nacl.signing.SigningKey(b64d(operator_jwk["d"]))
    members = {m: Member(m) for m in ("telco", "vendor", "installer", "customer")}
    cid = "proto"

    def post(member: str, action: str, params: dict[str, Any], **kw: Any) -> httpx.Response:
        return http.post(
            f"/v1/consortia/{cid}/actions",
            headers=jose,
            content=members[member].action(cid, action, params, **kw),
        )

    def get(member: str, path: str, **params: str) -> Any:
        answer = http.get(
            f"/v1/consortia/{cid}/{path}",
            params=params,
            headers={"authorization": "Bearer " + members[member].token(cid)},
        )
        return answer.status_code, answer.json()

    # Section 8: create, signed by the operator key the server made on first start.
    creation = {
        "consortium": cid,
        "name": "From the protocol",
        "template": "default",
        "members": [members[m].info() for m in ("telco", "vendor", "installer")],
        "nonce": secrets.token_hex(16),
        "iat": int(time.time()),
    }
    created = http.post(
        "/v1/consortia",
        headers=jose,
        content=jws(creation, operator, "operator", "consortia-create"),
    )
    assert created.status_code == 201, created.text

    # Vote a member in; the pending answer names the proposal = the request's txid.
    body = members["telco"].action(cid, "addMember", members["customer"].info())
    pending = http.post(f"/v1/consortia/{cid}/actions", headers=jose, content=body)
    assert pending.status_code == 202, pending.text
    assert pending.json()["txid"] == hashlib.sha256(body.encode()).hexdigest()
    status, open_props = get("vendor", "proposals", status="open")
    assert status == 200 and [p["proposal"] for p in open_props] == [pending.json()["proposal"]]
    vote = post("vendor", "voteFor", {"proposal": pending.json()["proposal"], "ballot": "approve"})
    assert vote.status_code == 200 and vote.json()["status"] == "committed"

    # A Starlark action voted in by amendConstitution, sent as a JWE this time.
    amend = {
        "name": "recordOrder",
        "scope": "public",
        "language": "starlark",
        "code": ORDER_CODE,
        "permissions": [{"member": m, "execute": True} for m in members],
        "voting": {"voters": "any", "majority": 1, "veto": []},
    }
    inner = members["telco"].action(cid, "amendConstitution", amend)
    proposal = http.post(
        f"/v1/consortia/{cid}/actions", headers=jose, content=jwe(inner.encode(), service_x)
    )
    assert proposal.status_code == 202, proposal.text
    assert proposal.json()["txid"] == hashlib.sha256(inner.encode()).hexdigest()
    assert (
        post(
            "installer", "voteFor", {"proposal": proposal.json()["proposal"], "ballot": "approve"}
        ).status_code
        == 200
    )

    # The installer listens over SSE, then drops the connection after two events.
    auth = {
        "authorization": "Bearer " + members["installer"].token(cid),
        "accept": "text/event-stream",
    }
    seen: list[dict[str, Any]] = []
    with http.stream("GET", f"/v1/consortia/{cid}/notifications", headers=auth) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for event, data, eid in sse_events(stream):
            assert event == "notification" and int(eid) == json.loads(data)["id"]
            seen.append(json.loads(data))
            if len(seen) == 2:
                break

    # Actions with visibility while the installer is away.
    acked = post(
        "telco",
        "recordOrder",
        {"order": "O-1", "status": "acknowledged"},
        visible_to=["vendor"],
        txref="crm-1",
    )
    assert acked.status_code == 200, acked.text
    shipped = post(
        "vendor", "recordOrder", {"order": "O-1", "status": "shipped"}, visible_to=["installer"]
    )
    assert shipped.status_code == 200

    # Reconnect with Last-Event-ID: the rest, with no gap and no repeat.
    auth["last-event-id"] = str(seen[-1]["id"])
    with http.stream("GET", f"/v1/consortia/{cid}/notifications", headers=auth) as stream:
        for _, data, _ in sse_events(stream):
            seen.append(json.loads(data))
            if seen[-1]["action"] == "recordOrder":
                break
    assert [n["id"] for n in seen] == list(range(1, len(seen) + 1))
    bodies = [members["installer"].open(n["sealed"], service_x) for n in seen]
    assert seen[-1]["kind"] == "notice"
    assert bodies[-1] == {"order": "O-1", "status": "shipped"}
    assert any(n["kind"] == "vote_request" for n in seen)

    # The telco's own result carries its txref; its body is what main() returned.
    status, notes = get("telco", "notifications", after="0")
    mine = [n for n in notes if n["txid"] == acked.json()["txid"] and n["kind"] == "result"]
    assert mine and mine[0]["txref"] == "crm-1"
    assert members["telco"].open(mine[0]["sealed"], service_x) == {
        "key": "order/O-1",
        "status": "acknowledged",
    }

    # Who sees what: the installer sees the shipped version, not the acknowledged one.
    status, obj = get("installer", "object", key="order/O-1")
    assert status == 200 and obj["value"]["status"] == "shipped"
    status, history = get("installer", "history", key="order/O-1")
    assert [h["visible"] for h in history] == [False, True] and "digest" in history[0]
    status, hidden = get("customer", "transactions/" + acked.json()["txid"])
    assert status == 404 and hidden["error"]["code"] == "not_found"
    status, record = get("vendor", "transactions/" + acked.json()["txid"])
    assert status == 200 and json.loads(b64d(record["record"]))["txid"] == acked.json()["txid"]

    # Receipts: any member, any committed transaction, verified offline.
    for txid in (acked.json()["txid"], shipped.json()["txid"]):
        status, receipt = get("customer", f"transactions/{txid}/receipt")
        assert status == 200, receipt
        signed = jws_verify(receipt["signed_root"], service["service_key"])
        assert receipt["service_key"] == service["service_key"]
        leaf = leaf_hash(receipt["seqno"], receipt["txid"], receipt["digest"])
        root = fold(
            receipt["seqno"],
            receipt["tree_size"],
            leaf,
            [bytes.fromhex(p) for p in receipt["proof"]],
        )
        assert root.hex() == receipt["root"] == signed["root"]
        assert signed["tree_size"] == receipt["tree_size"] and signed["consortium"] == cid
    http.close()
