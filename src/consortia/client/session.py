"""A member's session with one consortium on a TEP: the attested connection and the token.

:class:`Session` attests and pins the TEP at :meth:`~Session.connect` (through
:func:`~consortia.client.service.open_service`), holds what that established (the service
document, :class:`~consortia.client.attest.Attested`), issues the bearer JWT reads carry
and sends authenticated GETs under the consortium's path. :class:`~consortia.client.member.
MemberClient` builds the member's requests on it.
"""

from __future__ import annotations

import time
from typing import Final, Self
from urllib.parse import quote

import httpx

from consortia._json import JSON, JSONObject
from consortia.client._transport import ServiceUnreachable
from consortia.client.attest import Attested, Trust
from consortia.client.service import open_service, send
from consortia.identity.jwt import issue_token
from consortia.identity.keys import MemberKeys, PublicEncryptionKey

__all__ = ["Session"]

_TOKEN_LIFETIME: Final = 300
_TOKEN_REUSE: Final = 240


class Session:
    """One member's connection to one consortium on a TEP (see :class:`MemberClient`)."""

    def __init__(
        self,
        url: str,
        keys: MemberKeys,
        consortium: str,
        *,
        fingerprint: str | None = None,
        insecure: bool = False,
        trust: Trust | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.keys = keys
        self.member = keys.member_id
        self.consortium = consortium
        self._fingerprint = fingerprint
        self._insecure = insecure
        self._trust = trust
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._service: JSONObject | None = None
        self._attested: Attested | None = None
        self._token: tuple[str, float] | None = None
        # Every notification up to this id was committed before any later call() submits.
        self._floor = 0

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Attest the TEP and pin what it attests (:func:`open_service`), or, on a virtual
        TEP, set up TLS as before (pinned when a fingerprint was given)."""
        if self._http is not None:
            return
        http, service, attested = await open_service(
            self.url,
            fingerprint=self._fingerprint,
            insecure=self._insecure,
            trust=self._trust,
            timeout=self._timeout,
        )
        self._http, self._service, self._attested = http, service, attested

    async def aclose(self) -> None:
        """Close the connections."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying httpx client (after :meth:`connect`)."""
        if self._http is None:
            raise ServiceUnreachable("call connect() (or use `async with`) first")
        return self._http

    @property
    def attested(self) -> Attested:
        """What was established about the TEP at :meth:`connect` (``attested`` false on
        the virtual platform)."""
        if self._attested is None:
            raise ServiceUnreachable("call connect() (or use `async with`) first")
        return self._attested

    @property
    def service(self) -> JSONObject:
        """The service document (keys, platform kind, templates)."""
        if self._service is None:
            raise ServiceUnreachable("call connect() (or use `async with`) first")
        return self._service

    def _service_encryption_key(self) -> PublicEncryptionKey:
        return PublicEncryptionKey.from_jwk(
            self.attested.encryption_key, what="service encryption_key"
        )

    def token(self) -> str:
        """A bearer JWT for reads (reused for a few minutes, then renewed)."""
        now = time.time()
        if self._token is None or now - self._token[1] > _TOKEN_REUSE:
            token = issue_token(
                self.keys, audience=self.consortium, now=int(now), lifetime=_TOKEN_LIFETIME
            )
            self._token = (token, now)
        return self._token[0]

    def _path(self, tail: str) -> str:
        return f"/v1/consortia/{quote(self.consortium, safe='')}/{tail}"

    async def _get(self, tail: str, params: dict[str, str] | None = None) -> JSON:
        headers = {"authorization": f"Bearer {self.token()}"}
        return await send(self.http, "GET", self._path(tail), params=params, headers=headers)
