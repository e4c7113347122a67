"""Reaching a TEP: TLS pinned to a certificate fingerprint, SSE framing, error decoding.

Only the wire protocol is known here (PROTOCOL.md); nothing of the server's internals.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from consortia._json import loads_strict
from consortia.errors import BadSignature, ConsortiaError, Unavailable, error_for_code

__all__ = [
    "PinMismatch",
    "SSEEvent",
    "ServiceUnreachable",
    "UntrustedCertificate",
    "check_pin",
    "error_from_response",
    "normalize_fingerprint",
    "parse_sse",
    "peer_certificate",
    "pinned_context",
    "tls_verify",
]


class ServiceUnreachable(Unavailable):
    """The TEP could not be reached, or its answer could not be read (code ``unavailable``)."""


class PinMismatch(BadSignature):
    """The server's TLS certificate is not the one whose fingerprint was pinned."""


class UntrustedCertificate(ServiceUnreachable):
    """No pin was given and the server's certificate does not verify (self-signed, say)."""


def normalize_fingerprint(text: str) -> str:
    """Lowercase hex without separators, from ``AB:CD:…``, ``abcd…`` or ``sha256:…``."""
    text = text.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise PinMismatch(
            "a certificate fingerprint is 64 hex digits (SHA-256), as `consortia serve` prints"
        )
    return text


async def _peer_certificate(host: str, port: int, timeout: float) -> bytes:
    # Unverified on purpose: the bytes are checked against the pinned fingerprint next.
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=probe, server_hostname=host), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise ServiceUnreachable(
            f"cannot reach {host}:{port} ({type(exc).__name__}: {exc})"
        ) from None
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
    finally:
        writer.close()
    if not der:
        raise ServiceUnreachable(f"{host}:{port} presented no TLS certificate")
    return bytes(der)


def check_pin(der: bytes, fingerprint: str, host: str) -> None:
    """Raise :class:`PinMismatch` unless the certificate ``der`` has SHA-256 ``fingerprint``."""
    expected = normalize_fingerprint(fingerprint)
    actual = hashlib.sha256(der).hexdigest()
    if not hmac.compare_digest(actual, expected):
        raise PinMismatch(
            f"the server at {host} presents a certificate with fingerprint {actual}, not the "
            f"pinned {expected}; check the URL and the fingerprint `consortia serve` printed"
        )


def pinned_context(der: bytes) -> ssl.SSLContext:
    """A TLS context whose only trust anchor is the certificate ``der``: any other
    certificate fails every handshake made with it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the pin names one certificate, whatever the host name
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a CA-issued leaf is its own anchor
    context.load_verify_locations(cadata=der)
    return context


async def peer_certificate(url: str, timeout: float = 10.0) -> bytes:
    """The DER certificate the server at ``url`` presents (not verified: the caller pins
    it, by a fingerprint or by an attestation report that binds its hash)."""
    parts = urlsplit(url)
    return await _peer_certificate(parts.hostname or "localhost", parts.port or 443, timeout)


async def tls_verify(
    url: str, *, fingerprint: str | None, insecure: bool, timeout: float = 10.0
) -> ssl.SSLContext | bool:
    """What httpx should verify the server with.

    With a ``fingerprint``: a context whose only trust anchor is the server's certificate,
    after checking that certificate's SHA-256 equals the pin, so any other certificate
    fails every later handshake. ``insecure``: no verification at all. Neither: the
    system's CA store, as for any public HTTPS site.
    """
    parts = urlsplit(url)
    if parts.scheme == "http":
        return False
    if fingerprint is None:
        return not insecure
    normalize_fingerprint(fingerprint)  # a malformed pin fails before any connection
    der = await peer_certificate(url, timeout)
    check_pin(der, fingerprint, parts.hostname or "localhost")
    return pinned_context(der)


def error_from_response(response: httpx.Response, body: bytes) -> ConsortiaError:
    """The typed error of a refusal body ``{"error":{"code","message"},"txid"?}``."""
    try:
        doc = loads_strict(body, what="error body")
    except ConsortiaError:
        doc = None
    if isinstance(doc, dict):
        error = doc.get("error")
        txid = doc.get("txid")
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            if isinstance(code, str) and isinstance(message, str):
                return error_for_code(code, message, txid=txid if isinstance(txid, str) else None)
    return ServiceUnreachable(
        f"HTTP {response.status_code} from {response.request.url.path} without a protocol "
        "error body; is this URL a consortia service?"
    )


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One Server-Sent Event."""

    event: str
    data: str
    id: str | None


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Events of an SSE body (WHATWG HTML, "event stream interpretation")."""
    event, event_id = "message", None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SSEEvent(event, "\n".join(data), event_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
