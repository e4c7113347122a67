"""Reaching a TEP: attest and pin it before anything is sent, then one request at a time.

:func:`open_service` connects to the TEP, reads its certificate, fetches ``GET
/v1/service`` over a connection pinned to exactly that certificate and verifies the
attestation against it (:mod:`consortia.client.attest`). :func:`send` is one request and
its answer, a refusal raised as its error code. Wire protocol only, as the whole SDK.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import httpx

from consortia._json import JSON, JSONObject, loads_strict
from consortia.client._transport import (
    ServiceUnreachable,
    UntrustedCertificate,
    check_pin,
    error_from_response,
    normalize_fingerprint,
    peer_certificate,
    pinned_context,
    tls_verify,
)
from consortia.client.attest import Attested, Trust, verify_service
from consortia.wire import JOSE_MEDIA_TYPE

__all__ = ["JOSE", "connect", "fetch_service", "open_service", "send"]

JOSE: Final = JOSE_MEDIA_TYPE


async def connect(
    url: str, fingerprint: str | None, insecure: bool, timeout: float
) -> httpx.AsyncClient:
    """An httpx client for ``url`` with TLS set up as :func:`~consortia.client._transport.
    tls_verify` says (pinned to ``fingerprint`` when given), without attesting the TEP."""
    verify = await tls_verify(url, fingerprint=fingerprint, insecure=insecure)
    return httpx.AsyncClient(base_url=url.rstrip("/"), verify=verify, timeout=timeout)


async def fetch_service(http: httpx.AsyncClient) -> JSONObject:
    """``GET /v1/service``: the service document (keys, platform kind, attestation)."""
    service = await send(http, "GET", "/v1/service")
    if not isinstance(service, dict):
        raise ServiceUnreachable("GET /v1/service did not answer a JSON object")
    return service


async def open_service(
    url: str,
    *,
    fingerprint: str | None = None,
    insecure: bool = False,
    trust: Trust | None = None,
    timeout: float = 30.0,
) -> tuple[httpx.AsyncClient, JSONObject, Attested]:
    """Connect to the TEP at ``url`` and attest it before anything else is sent.

    The certificate the server presents is read first (and checked against ``fingerprint``
    when given); ``GET /v1/service`` is fetched over a connection pinned to exactly that
    certificate, and its attestation verified (:func:`~consortia.client.attest.
    verify_service`) against the certificate's hash, so a report relayed by a host with
    other keys or another certificate is refused. An attested TEP stays pinned to the
    attested certificate. A virtual one, unless ``trust`` requires hardware, is trusted as
    before: by ``fingerprint``, or else by the system's CA store (or not at all with
    ``insecure``). Raises ``attestation_failed``, ``bad_signature`` (pin) or ``unavailable``.
    """
    base = url.rstrip("/")
    if urlsplit(url).scheme == "http":
        # Plain HTTP (a --no-tls development server): there is no TLS to verify.
        http = httpx.AsyncClient(base_url=base, verify=False, timeout=timeout)  # noqa: S501
        tls_sha256 = None
    else:
        if fingerprint is not None:
            normalize_fingerprint(fingerprint)
        der = await peer_certificate(url, min(timeout, 10.0))
        if fingerprint is not None:
            check_pin(der, fingerprint, urlsplit(url).hostname or "localhost")
        http = httpx.AsyncClient(base_url=base, verify=pinned_context(der), timeout=timeout)
        tls_sha256 = hashlib.sha256(der).hexdigest()
    try:
        service = await fetch_service(http)
        attested = verify_service(
            service, tls_certificate_sha256=tls_sha256, trust=trust, now=datetime.now(UTC)
        )
        if not attested.attested and tls_sha256 is not None and fingerprint is None:
            # Nothing vouches for the certificate we pinned: trust it the usual way instead.
            await http.aclose()
            http = httpx.AsyncClient(base_url=base, verify=not insecure, timeout=timeout)
            service = await fetch_service(http)
            attested = verify_service(
                service, tls_certificate_sha256=None, trust=trust, now=datetime.now(UTC)
            )
    except BaseException:
        await http.aclose()
        raise
    return http, service, attested


async def send(client: httpx.AsyncClient, method: str, path: str, **kw: object) -> JSON:
    """One request and its JSON answer; a refusal is raised as its error code."""
    try:
        response = await client.request(method, path, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise UntrustedCertificate(
                f"the TEP's TLS certificate is not signed by an authority this machine trusts "
                f"({_verify_reason(exc)}); pin it with --service-fingerprint (or "
                "CONSORTIA_FINGERPRINT; the SHA-256 fingerprint `consortia serve` printed, "
                "given to you with the URL); --insecure skips the check, for a test only"
            ) from None
        raise ServiceUnreachable(
            f"{method} {path} failed: {type(exc).__name__}: {exc}; is the server running?"
        ) from None
    if response.status_code >= 400:
        raise error_from_response(response, response.content)
    return loads_strict(response.content, what=f"answer to {method} {path}")


def _verify_reason(exc: Exception) -> str:
    """The part of an OpenSSL verification error a person needs ("self-signed certificate")."""
    text = str(exc)
    marker = "certificate verify failed: "
    if marker in text:
        return text.split(marker, 1)[1].split(" (_ssl", 1)[0]
    return "verification failed"
