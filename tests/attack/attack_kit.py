"""A black-box client for the security campaign, written from PROTOCOL.md alone.

Nothing of the project is imported here or by the campaign's tests: JWS compact EdDSA
signing, bearer JWTs, the ECDH-ES/A256GCM JWE and crypto_box opening are implemented on
PyNaCl, cryptography, httpx and the standard library. The server under test is a real
``consortia serve`` subprocess (its own process group, always stopped), reached over HTTPS
with its self-signed certificate as the only trusted CA and its fingerprint pinned.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import nacl.exceptions
import nacl.public
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

JOSE: Final = {"content-type": "application/jose"}
CONSORTIA: Final = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "consortia"
FOUNDERS: Final = ("telco", "vendor", "installer")
TRACEBACK: Final = "Traceback (most recent call last)"
#: The default ``iat``: the clock when the request is built (None is a value attackers send).
NOW: Final = object()

#: The campaign's one Starlark action: store the params (or a part of them) under a key.
RECORD_CODE: Final = """
def main(params):
    key = params["key"] if "key" in params else "order/" + str(params.get("order", "x"))
    to = params.get("to")
    if to == None:
        put(key, params)
    else:
        put(key, params, visible_to=to)
    return {"key": key}
"""

# -- encodings ----------------------------------------------------------------------------


def b64e(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Inverse of :func:`b64e`."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canon(value: object) -> bytes:
    """Compact JSON with sorted keys (RFC 8785 for the values this campaign signs)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def nonce() -> str:
    """A fresh 32-character nonce."""
    return secrets.token_hex(16)


def now() -> int:
    """The client's clock, NumericDate."""
    return int(time.time())


def txid_of(jws: str) -> str:
    """PROTOCOL.md section 2: SHA-256 of the JWS's ASCII bytes."""
    return hashlib.sha256(jws.encode("ascii")).hexdigest()


# -- keys and signed messages ---------------------------------------------------------------


@dataclass
class Member:
    """A member's private keys: Ed25519 for signing, X25519 for its notifications."""

    id: str
    signing: nacl.signing.SigningKey = field(default_factory=nacl.signing.SigningKey.generate)
    encryption: nacl.public.PrivateKey = field(default_factory=nacl.public.PrivateKey.generate)

    def signing_jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": b64e(bytes(self.signing.verify_key))}

    def encryption_jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "X25519", "x": b64e(bytes(self.encryption.public_key))}

    def public_info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "signing_key": self.signing_jwk(),
            "encryption_key": self.encryption_jwk(),
            "info": {},
        }


def sign_raw(header: bytes, payload: bytes, key: nacl.signing.SigningKey) -> str:
    """A compact JWS over the exact header and payload bytes given."""
    signing_input = f"{b64e(header)}.{b64e(payload)}"
    signature = key.sign(signing_input.encode("ascii")).signature
    return f"{signing_input}.{b64e(signature)}"


def sign(header: dict[str, Any], payload: bytes, key: nacl.signing.SigningKey) -> str:
    """A compact JWS (the header as compact JSON)."""
    return sign_raw(json.dumps(header, separators=(",", ":")).encode(), payload, key)


def action_header(kid: str) -> dict[str, Any]:
    return {"alg": "EdDSA", "kid": kid, "typ": "consortia-action"}


def action_payload(
    member: str,
    cid: str,
    action: str,
    params: dict[str, Any],
    *,
    visible_to: Sequence[str] = (),
    txref: str | None = None,
    nonce_: str | None = None,
    iat: Any = NOW,
) -> dict[str, Any]:
    """The executeAction payload of PROTOCOL.md section 2."""
    payload: dict[str, Any] = {
        "consortium": cid,
        "member": member,
        "action": action,
        "params": params,
        "visible_to": list(visible_to),
        "nonce": nonce_ or nonce(),
        "iat": now() if iat is NOW else iat,
    }
    if txref is not None:
        payload["txref"] = txref
    return payload


def sign_action(
    member: Member,
    cid: str,
    action: str,
    params: dict[str, Any],
    *,
    key: nacl.signing.SigningKey | None = None,
    kid: str | None = None,
    **fields: Any,
) -> str:
    """A signed executeAction request; ``key`` and ``kid`` let an attacker lie."""
    payload = action_payload(member.id, cid, action, params, **fields)
    return sign(action_header(kid or member.id), canon(payload), key or member.signing)


def token_claims(
    iss: str, aud: str | list[str], *, iat: int | None = None, lifetime: int = 300
) -> dict[str, Any]:
    issued = now() if iat is None else iat
    return {"iss": iss, "aud": aud, "iat": issued, "exp": issued + lifetime, "jti": nonce()}


def bearer(
    member: Member,
    aud: str,
    *,
    key: nacl.signing.SigningKey | None = None,
    kid: str | None = None,
    claims: dict[str, Any] | None = None,
    typ: str | None = "JWT",
) -> str:
    """A bearer JWT (PROTOCOL.md section 4)."""
    header: dict[str, Any] = {"alg": "EdDSA", "kid": kid or member.id}
    if typ is not None:
        header["typ"] = typ
    body = claims if claims is not None else token_claims(member.id, aud)
    return sign(header, canon(body), key or member.signing)


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# -- JWE (ECDH-ES, A256GCM) and crypto_box ------------------------------------------------


def concat_kdf(shared: bytes, enc: str, apu: bytes = b"", apv: bytes = b"") -> bytes:
    """RFC 7518 section 4.6.2 for direct ECDH-ES with a 256-bit key."""
    alg = enc.encode()
    other = b"".join(
        (
            struct.pack(">I", len(alg)),
            alg,
            struct.pack(">I", len(apu)),
            apu,
            struct.pack(">I", len(apv)),
            apv,
            struct.pack(">I", 256),
        )
    )
    return ConcatKDFHash(algorithm=SHA256(), length=32, otherinfo=other).derive(shared)


def jwe_parts(
    plaintext: bytes,
    recipient_x: bytes,
    *,
    header_extra: dict[str, Any] | None = None,
    apu: bytes = b"",
    apv: bytes = b"",
) -> list[str]:
    """The five parts of a compact JWE to ``recipient_x`` (raw X25519 public key)."""
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes_raw()
    header: dict[str, Any] = {
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "epk": {"kty": "OKP", "crv": "X25519", "x": b64e(epk)},
    }
    if apu:
        header["apu"] = b64e(apu)
    if apv:
        header["apv"] = b64e(apv)
    header.update(header_extra or {})
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_x))
    cek = concat_kdf(shared, "A256GCM", apu, apv)
    encoded = b64e(json.dumps(header, separators=(",", ":")).encode())
    iv = secrets.token_bytes(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, encoded.encode("ascii"))
    return [encoded, "", b64e(iv), b64e(sealed[:-16]), b64e(sealed[-16:])]


def jwe(plaintext: bytes, recipient_x: bytes, **kw: Any) -> str:
    return ".".join(jwe_parts(plaintext, recipient_x, **kw))


def open_box(sealed: str, member: Member, service_x: bytes) -> bytes:
    """Open a boxed notification body: base64url(24-byte nonce || ciphertext)."""
    data = b64d(sealed)
    box = nacl.public.Box(member.encryption, nacl.public.PublicKey(service_x))
    return box.decrypt(data[24:], data[:24])


def box_opens(sealed: str, member: Member, service_x: bytes) -> bool:
    try:
        open_box(sealed, member, service_x)
    except nacl.exceptions.CryptoError:
        return False
    return True


# -- the server process -------------------------------------------------------------------

_SERVING = re.compile(r"consortia: serving (\S+)")
_FINGERPRINT = re.compile(r"fingerprint: ([0-9A-F:]+)")


class Server:
    """``consortia serve`` in its own process group, with stdout/stderr in files."""

    def __init__(self, data: Path, logs: Path, args: Sequence[str] = ()) -> None:
        self.data = data
        self.logs = logs
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.fingerprint = ""
        self.starts = 0
        self.returncodes: list[int] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def host_port(self) -> tuple[str, int]:
        rest = self.url.split("://", 1)[1]
        host, port = rest.rsplit(":", 1)
        return host, int(port)

    def start(self, timeout: float = 40.0) -> Server:
        self.starts += 1
        out = self.logs / f"stdout-{self.starts}.txt"
        err = self.logs / f"stderr-{self.starts}.txt"
        command = [str(CONSORTIA), "serve", "--data", str(self.data), "--port", "0", *self.args]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen(  # noqa: S603 - our own venv's entry point
                command,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = out.read_text(errors="replace")
            found = _SERVING.search(text)
            if found:
                self.url = found.group(1)
                printed = _FINGERPRINT.search(text)
                self.fingerprint = printed.group(1) if printed else ""
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the server did not start:\n{self.output()}")

    def output(self) -> str:
        """Everything the server wrote, over every start, stdout and stderr."""
        parts = [p.read_text(errors="replace") for p in sorted(self.logs.glob("std*-*.txt"))]
        return "\n".join(parts)

    def stderr(self) -> str:
        parts = [p.read_text(errors="replace") for p in sorted(self.logs.glob("stderr-*.txt"))]
        return "\n".join(parts)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM; the exit status, or None if it did not exit within ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.returncodes.append(code)
        self._reap_group()
        return code

    def kill(self) -> None:
        """SIGKILL the server and anything left in its process group (the executor)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._reap_group()

    def _reap_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Graceful stop, forced if it takes too long: always leaves nothing running."""
        if self.proc is None:
            return
        if self.terminate(20) is None:
            self.kill()

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert found, status
        return int(found.group(1))

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data / "tls-cert.pem"))

    def client(self, **kw: Any) -> httpx.Client:
        timeout = kw.pop("timeout", httpx.Timeout(30.0))
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), timeout=timeout, **kw)

    def tls_socket(self, timeout: float = 10.0) -> ssl.SSLSocket:
        host, port = self.host_port
        raw = socket.create_connection((host, port), timeout=timeout)
        return self.ssl_context().wrap_socket(raw, server_hostname=host)

    def peer_fingerprint(self) -> str:
        with self.tls_socket() as sock:
            der = sock.getpeercert(binary_form=True)
        assert der is not None
        digest = hashlib.sha256(der).hexdigest().upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@contextlib.contextmanager
def running(args: Sequence[str] = ("--no-analytics",)) -> Iterator[Server]:
    """A fresh data directory, a server on it, and both gone afterwards."""
    root = Path(tempfile.mkdtemp(prefix="consortia-attack-"))
    data, logs = root / "data", root / "logs"
    logs.mkdir()
    server = Server(data, logs, args)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)


# -- raw HTTP over TLS --------------------------------------------------------------------


@dataclass
class RawAnswer:
    """What came back on a raw connection: status (0 if none), headers, body, and how."""

    status: int
    head: str
    body: bytes
    closed: bool
    error: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def _parse_raw(data: bytes, closed: bool, error: str) -> RawAnswer:
    head, sep, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    found = re.match(r"HTTP/1\.[01] (\d{3})", text)
    status = int(found.group(1)) if found else 0
    length = re.search(r"(?im)^content-length:\s*(\d+)", text)
    if length and sep:
        body = body[: int(length.group(1))]
    return RawAnswer(status, text, body, closed, error)


def _early_bytes(sock: ssl.SSLSocket, timeout: float) -> bytes | None:
    """Application bytes the server already sent (b"" if it closed), or None if none yet.

    A readable socket may only hold TLS records with no application data (a TLS 1.3 session
    ticket), so the read is non-blocking.
    """
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable and not sock.pending():
        return None
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return None
    finally:
        sock.settimeout(timeout)


def raw_exchange(
    server: Server, data: bytes, *, chunk: int = 16384, timeout: float = 8.0
) -> RawAnswer:
    """Send ``data`` on a fresh TLS connection, watching for an early answer between chunks,
    then read until the answer is whole, the server closes, or ``timeout``."""
    received = bytearray()
    closed = False
    error = ""
    with server.tls_socket(timeout) as sock:
        sock.settimeout(timeout)
        view = memoryview(data)
        try:
            while view:
                sock.sendall(view[:chunk])
                view = view[chunk:]
                early = _early_bytes(sock, timeout)
                if early is not None:
                    received += early
                    closed = not early
                    break
        except OSError as exc:  # the server cut us off mid-send: read what it said
            error = f"send: {type(exc).__name__}"
        deadline = time.monotonic() + timeout
        while not closed and time.monotonic() < deadline:
            try:
                piece = sock.recv(65536)
            except (TimeoutError, ssl.SSLError, OSError) as exc:
                error = error or f"recv: {type(exc).__name__}"
                closed = not isinstance(exc, TimeoutError)
                break
            if not piece:
                closed = True
                break
            received += piece
            answer = _parse_raw(bytes(received), False, "")
            length = re.search(r"(?im)^content-length:\s*(\d+)", answer.head)
            if answer.status and length and len(answer.body) >= int(length.group(1)):
                break
    return _parse_raw(bytes(received), closed, error)


# -- the campaign's world: a server, a consortium, its members --------------------------


@dataclass
class World:
    """A running server with consortium ``cid`` of ``members`` and the RECORD action."""

    server: Server
    http: httpx.Client
    operator: nacl.signing.SigningKey
    service_x: bytes
    cid: str
    members: dict[str, Member]
    record_action: str = "recordOrder"
    #: Members of other consortia on the same server, by consortium id.
    others: dict[str, dict[str, Member]] = field(default_factory=dict)

    def post(
        self, body: str | bytes | Iterator[bytes], cid: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = kw.pop("headers", JOSE)
        return self.http.post(
            f"/v1/consortia/{cid or self.cid}/actions", content=body, headers=headers, **kw
        )

    def act(self, member: str, action: str, params: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.post(sign_action(self.members[member], self.cid, action, params, **kw))

    def record(self, member: str, params: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.act(member, self.record_action, params, **kw)

    def token(self, member: str, cid: str | None = None) -> str:
        return bearer(self.members[member], cid or self.cid)

    def read(
        self, member: str | None, tail: str, params: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        headers = kw.pop("headers", None)
        if headers is None:
            headers = auth(self.token(member)) if member is not None else {}
        return self.http.get(
            f"/v1/consortia/{self.cid}/{tail}", params=params, headers=headers, **kw
        )

    def operator_jws(self, payload: dict[str, Any]) -> str:
        header = {"alg": "EdDSA", "kid": "operator", "typ": "consortia-create"}
        return sign(header, canon(payload), self.operator)

    def creation(
        self, cid: str, founders: Sequence[Member], *, nonce_: str | None = None, **over: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "consortium": cid,
            "name": f"Consortium {cid}",
            "template": "default",
            "members": [m.public_info() for m in founders],
            "nonce": nonce_ or nonce(),
            "iat": now(),
        }
        payload.update(over)
        return payload

    def create(self, cid: str, founders: Sequence[Member]) -> httpx.Response:
        body = self.operator_jws(self.creation(cid, founders))
        return self.http.post("/v1/consortia", content=body, headers=JOSE)

    def vote(self, voter: str, proposal: str, ballot: str = "approve") -> httpx.Response:
        return self.act(voter, "voteFor", {"proposal": proposal, "ballot": ballot})

    def amend(
        self,
        name: str,
        code: str,
        *,
        voters: Sequence[str],
        permitted: Sequence[str] | None = None,
        scope: str = "public",
        budget: dict[str, int] | None = None,
        permissions: list[dict[str, Any]] | None = None,
    ) -> None:
        """Vote a Starlark action in (executes at once, permitted to ``permitted``)."""
        if permissions is None:
            permissions = (
                []
                if scope == "internal"
                else [{"member": m, "execute": True} for m in (permitted or list(self.members))]
            )
        definition: dict[str, Any] = {
            "name": name,
            "scope": scope,
            "language": "starlark",
            "code": code,
            "permissions": permissions,
            "voting": {"voters": "any", "majority": 1, "veto": []},
        }
        if budget is not None:
            definition["budget"] = budget
        self.pass_vote("amendConstitution", definition, voters)

    def pass_vote(self, action: str, params: dict[str, Any], voters: Sequence[str]) -> str:
        """Propose ``action`` as ``voters[0]`` and approve it with the others; the txid."""
        pending = self.act(voters[0], action, params)
        assert pending.status_code == 202, pending.text
        proposal = str(pending.json()["proposal"])
        for voter in voters[1:]:
            answer = self.vote(voter, proposal)
            assert answer.status_code == 200, answer.text
        decided = self.read(voters[0], f"proposals/{proposal}")
        assert decided.status_code == 200 and decided.json()["status"] != "open", decided.text
        return proposal


def operator_key(data: Path) -> nacl.signing.SigningKey:
    """The operator's private Ed25519 JWK that ``consortia serve`` wrote on first start."""
    jwk = json.loads((data / "operator.key.jwk").read_text())
    return nacl.signing.SigningKey(b64d(jwk["d"]))


def make_world(
    server: Server,
    *,
    cid: str = "acme",
    founders: Sequence[str] = FOUNDERS,
    record: bool = True,
    record_action: str = "recordOrder",
) -> World:
    """Create ``cid`` through the wire protocol and vote the RECORD action in."""
    http = server.client()
    service = http.get("/v1/service")
    assert service.status_code == 200, service.text
    service_x = b64d(service.json()["encryption_key"]["x"])
    members = {m: Member(m) for m in founders}
    world = World(server, http, operator_key(server.data), service_x, cid, members, record_action)
    created = world.create(cid, list(members.values()))
    assert created.status_code == 201, created.text
    if record:
        majority = len(founders) // 2 + 1
        world.amend(record_action, RECORD_CODE, voters=list(founders)[:majority])
    return world


@contextlib.contextmanager
def world_running(args: Sequence[str] = ("--no-analytics",), **kw: Any) -> Iterator[World]:
    with running(args) as server:
        world = make_world(server, **kw)
        try:
            yield world
        finally:
            world.http.close()


# -- answers -----------------------------------------------------------------------------


def error_of(answer: httpx.Response) -> tuple[int, str, str]:
    """(status, code, message) of an error answer; the body must have the error shape."""
    try:
        body = answer.json()
    except ValueError:
        return answer.status_code, f"<not JSON: {answer.text[:120]!r}>", ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return answer.status_code, f"<no error object: {answer.text[:120]!r}>", ""
    error = body["error"]
    return answer.status_code, str(error.get("code")), str(error.get("message"))


def expect_error(
    answer: httpx.Response, status: int, code: str, *, contains: Sequence[str] = ()
) -> str:
    """Assert an error answer of ``status``/``code`` whose message has each of ``contains``."""
    got_status, got_code, message = error_of(answer)
    assert (got_status, got_code) == (status, code), (
        f"expected {status} {code}, got {got_status} {got_code}: {answer.text[:400]}"
    )
    assert TRACEBACK not in answer.text
    for part in contains:
        assert part in message, f"message {message!r} does not mention {part!r}"
    return message


def expect_refused(
    answer: httpx.Response, statuses: Sequence[int], codes: Sequence[str]
) -> tuple[int, str, str]:
    """Assert a refusal in the error shape with one of ``statuses`` and one of ``codes``."""
    status, code, message = error_of(answer)
    assert status in statuses and code in codes, (
        f"expected one of {list(statuses)} {list(codes)}, got {status} {code}: {answer.text[:400]}"
    )
    assert TRACEBACK not in answer.text
    return status, code, message


def expect_committed(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, f"expected 200 committed, got {answer.text[:400]}"
    body: dict[str, Any] = answer.json()
    assert body["status"] == "committed" and isinstance(body["seqno"], int), body
    return body


# -- SSE ----------------------------------------------------------------------------------


@dataclass
class SseEvent:
    at: float
    event: str
    id: str | None
    data: str


@dataclass
class SseReader:
    """A notifications stream read in a background thread, its events timestamped."""

    status: int = 0
    events: list[SseEvent] = field(default_factory=list)
    eof_at: float | None = None
    error: str = ""
    opened: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    body: str = ""

    def kinds(self) -> list[str]:
        return [e.event for e in self.events]


def read_stream(
    world: World,
    token: str,
    *,
    after: str | None = None,
    last_event_id: str | None = None,
    limit_s: float = 30.0,
) -> tuple[SseReader, threading.Thread]:
    """Open ``GET …/notifications`` as SSE and read it in a thread until EOF."""
    reader = SseReader()
    headers = {"accept": "text/event-stream", **auth(token)}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    params = {"after": after} if after is not None else None

    def run() -> None:
        try:
            with (
                world.server.client(timeout=httpx.Timeout(limit_s)) as http,
                http.stream(
                    "GET",
                    f"/v1/consortia/{world.cid}/notifications",
                    headers=headers,
                    params=params,
                ) as response,
            ):
                reader.status = response.status_code
                reader.opened.set()
                if response.status_code != 200:
                    reader.body = response.read().decode(errors="replace")
                    return
                event, data, eid = "message", "", None
                for line in response.iter_lines():
                    if line == "":
                        if data or event != "message":
                            reader.events.append(SseEvent(time.monotonic(), event, eid, data))
                        event, data, eid = "message", "", None
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif line.startswith("id:"):
                        eid = line[3:].strip()
                reader.eof_at = time.monotonic()
        except (httpx.HTTPError, OSError) as exc:
            reader.error = f"{type(exc).__name__}: {exc}"
        finally:
            reader.opened.set()
            reader.done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return reader, thread
