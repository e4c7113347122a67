"""The member SDK: sign, submit, read and listen, over the wire protocol only.

The seed's "common implementation library circulated amongst consortium members". It
depends on :mod:`consortia.identity` and :mod:`consortia.protocol` (keys, JWS, JWT, boxes)
and speaks PROTOCOL.md over HTTPS; it knows nothing of the server's internals.

    async with MemberClient(url, keys, "acme", fingerprint=pin) as client:
        answer = await client.call("recordOrder", {"order": "O-1"}, visible_to=["vendor"])
        async for note in client.notifications():
            print(note.kind, note.body)
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, urlsplit

import httpx

from consortia._json import JSON, JSONObject, loads_strict
from consortia.client._transport import (
    ServiceUnreachable,
    check_pin,
    error_from_response,
    normalize_fingerprint,
    parse_sse,
    peer_certificate,
    pinned_context,
    tls_verify,
)
from consortia.client.attest import Attested, Trust, verify_service
from consortia.errors import ConsortiaError, VoteRejected, error_for_code
from consortia.identity.jwe import encrypt_compact
from consortia.identity.jwt import issue_token
from consortia.identity.keys import MemberKeys, PublicEncryptionKey, SigningKey, VerifyKey
from consortia.ledger.receipts import VerifiedReceipt, verify_receipt
from consortia.protocol import JOSE_MEDIA_TYPE, open_notification, sign_action, sign_creation

__all__ = ["MemberClient", "Notification", "Submitted", "create_consortium", "open_service"]

JOSE: Final = JOSE_MEDIA_TYPE
_TOKEN_LIFETIME: Final = 300
_TOKEN_REUSE: Final = 240
# Three missed keep-alives (the server sends one every 15 s) mean the stream is dead.
_STREAM_READ_TIMEOUT: Final = 45.0
_MAX_BACKOFF: Final = 5.0


@dataclass(frozen=True, slots=True)
class Submitted:
    """The answer to executeAction: ``committed`` (with ``seqno``) or ``pending``."""

    status: str
    txid: str
    seqno: int | None = None
    proposal: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification with its sealed body opened (and so proven written by the TEP)."""

    id: int
    kind: str
    txid: str | None
    txref: str | None
    action: str | None
    body: JSON


async def _connect(
    url: str, fingerprint: str | None, insecure: bool, timeout: float
) -> httpx.AsyncClient:
    verify = await tls_verify(url, fingerprint=fingerprint, insecure=insecure)
    return httpx.AsyncClient(base_url=url.rstrip("/"), verify=verify, timeout=timeout)


async def _service(http: httpx.AsyncClient) -> JSONObject:
    service = await _send(http, "GET", "/v1/service")
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
        service = await _service(http)
        attested = verify_service(
            service, tls_certificate_sha256=tls_sha256, trust=trust, now=datetime.now(UTC)
        )
        if not attested.attested and tls_sha256 is not None and fingerprint is None:
            # Nothing vouches for the certificate we pinned: trust it the usual way instead.
            await http.aclose()
            http = httpx.AsyncClient(base_url=base, verify=not insecure, timeout=timeout)
            service = await _service(http)
            attested = verify_service(
                service, tls_certificate_sha256=None, trust=trust, now=datetime.now(UTC)
            )
    except BaseException:
        await http.aclose()
        raise
    return http, service, attested


async def _send(client: httpx.AsyncClient, method: str, path: str, **kw: object) -> JSON:
    try:
        response = await client.request(method, path, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise ServiceUnreachable(
            f"{method} {path} failed: {type(exc).__name__}: {exc}; is the server running?"
        ) from None
    if response.status_code >= 400:
        raise error_from_response(response, response.content)
    return loads_strict(response.content, what=f"answer to {method} {path}")


async def create_consortium(
    url: str,
    operator: SigningKey,
    *,
    consortium: str,
    name: str,
    members: Sequence[JSONObject],
    template: str = "default",
    fingerprint: str | None = None,
    insecure: bool = False,
    trust: Trust | None = None,
    on_attested: Callable[[Attested], None] | None = None,
) -> JSONObject:
    """PROTOCOL.md section 8: create a consortium with an operator key the server trusts
    (after attesting the TEP, as :func:`open_service`; ``on_attested`` hears the verdict
    before the request is sent)."""
    body = sign_creation(
        operator,
        consortium=consortium,
        name=name,
        members=members,
        now=int(time.time()),
        template=template,
    )
    http, _, attested = await open_service(
        url, fingerprint=fingerprint, insecure=insecure, trust=trust
    )
    if on_attested is not None:
        on_attested(attested)
    try:
        answer = await _send(
            http, "POST", "/v1/consortia", content=body, headers={"content-type": JOSE}
        )
    finally:
        await http.aclose()
    if not isinstance(answer, dict):
        raise ServiceUnreachable("the creation answer is not a JSON object")
    return answer


class MemberClient:
    """One member of one consortium, talking to a TEP over HTTPS."""

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

    def __repr__(self) -> str:
        return f"MemberClient({self.url!r}, member={self.member!r}, consortium={self.consortium!r})"

    async def __aenter__(self) -> MemberClient:
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
        return await _send(self.http, "GET", self._path(tail), params=params, headers=headers)

    # -- executeAction ----------------------------------------------------------------------

    async def submit(
        self,
        action: str,
        params: JSONObject | None = None,
        *,
        visible_to: Sequence[str] = (),
        txref: str | None = None,
        encrypt: bool = False,
    ) -> Submitted:
        """Sign and send one request; its answer once the outcome is durable."""
        body = sign_action(
            self.keys,
            consortium=self.consortium,
            action=action,
            params=params or {},
            now=int(time.time()),
            visible_to=visible_to,
            txref=txref,
        )
        if encrypt:
            body = encrypt_compact(body.encode("ascii"), self._service_encryption_key())
        answer = await _send(
            self.http, "POST", self._path("actions"), content=body, headers={"content-type": JOSE}
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("txid"), str):
            raise ServiceUnreachable("executeAction answered without a txid")
        seqno, proposal = answer.get("seqno"), answer.get("proposal")
        return Submitted(
            status=str(answer.get("status")),
            txid=str(answer["txid"]),
            seqno=seqno if isinstance(seqno, int) else None,
            proposal=proposal if isinstance(proposal, str) else None,
        )

    async def execute_action(
        self,
        action: str,
        params: JSONObject | None = None,
        *,
        visible_to: Sequence[str] = (),
        txref: str | None = None,
        encrypt: bool = False,
    ) -> str:
        """Submit and return the txid (committed or pending: see :meth:`submit` for which)."""
        answer = await self.submit(
            action, params, visible_to=visible_to, txref=txref, encrypt=encrypt
        )
        return answer.txid

    async def vote(self, proposal: str, ballot: str = "approve") -> Submitted:
        """``voteFor`` a proposal: ``approve`` or ``reject``."""
        return await self.submit("voteFor", {"proposal": proposal, "ballot": ballot})

    async def call(
        self,
        action: str,
        params: JSONObject | None = None,
        *,
        visible_to: Sequence[str] = (),
        timeout: float = 60.0,
    ) -> JSON:
        """Execute and wait for the action's ``result`` notification; its body.

        A request that needs votes waits until they decide: a rejection raises
        ``vote_rejected``, a failure after approval raises that failure's code.
        """
        floor = self._floor
        txref = "call-" + secrets.token_hex(12)
        answer = await self.submit(action, params, visible_to=visible_to, txref=txref)
        async with asyncio.timeout(timeout):
            async for note in self.notifications(after=floor):
                self._floor = max(self._floor, note.id)
                if note.txid != answer.txid:
                    continue
                if note.kind == "result":
                    return note.body
                if note.kind == "vote_result" and isinstance(note.body, dict):
                    outcome = note.body.get("outcome")
                    if outcome == "failed":
                        raise error_for_code(
                            str(note.body.get("error")),
                            str(note.body.get("message")),
                            txid=answer.txid,
                        )
                    if outcome not in ("approved", None):
                        raise VoteRejected(
                            f"the proposal was {outcome}: {note.body.get('reason')}",
                            txid=answer.txid,
                        )
        raise ServiceUnreachable("the notification stream ended before the result arrived")

    # -- reads (PROTOCOL.md section 4) ------------------------------------------------------

    async def constitution(self) -> JSON:
        """Every action definition and the member list."""
        return await self._get("constitution")

    async def proposals(self) -> JSON:
        """Open proposals this member may see."""
        return await self._get("proposals", {"status": "open"})

    async def proposal(self, pid: str) -> JSON:
        """One proposal by id (open or decided)."""
        return await self._get(f"proposals/{quote(pid, safe='')}")

    async def transaction(self, txid: str) -> JSON:
        """``{"txid","seqno","record"}`` of a transaction this member may see."""
        return await self._get(f"transactions/{quote(txid, safe='')}")

    async def receipt(self, txid: str) -> JSON:
        """A receipt for any committed transaction (verify it offline: PROTOCOL.md 6)."""
        return await self._get(f"transactions/{quote(txid, safe='')}/receipt")

    async def verified_receipt(
        self, txid: str, service_key: VerifyKey | None = None
    ) -> VerifiedReceipt:
        """Fetch a receipt and verify it offline (PROTOCOL.md section 6); raises if it fails.

        ``service_key`` is the key this member pinned; without one, the key the
        attestation bound at :meth:`connect` is used (on a virtual TEP: the key from
        ``GET /v1/service``, only as trustworthy as the TLS pin).
        """
        if service_key is None:
            service_key = VerifyKey.from_jwk(self.attested.service_key, what="service_key")
        return verify_receipt(await self.receipt(txid), service_key)

    async def object(self, key: str) -> JSON:
        """The newest version of ``key`` this member may see."""
        return await self._get("object", {"key": key})

    async def history(self, key: str) -> JSON:
        """Every version of ``key``; hidden ones as digests."""
        return await self._get("history", {"key": key})

    async def insights(
        self, bucket: int | None = None, since: float | None = None, *, tries: int = 4
    ) -> JSON:
        """The analytics insights this member may see (``consortia insights --json``'s
        document): per action and over time buckets of ``bucket`` seconds, from ``since``
        (unix seconds) on.

        A busy analytics store answers ``unavailable``; a read is safe to repeat, so it is
        retried up to ``tries`` times with a growing pause before the error is raised.
        """
        params: dict[str, str] = {}
        if bucket is not None:
            params["bucket"] = str(bucket)
        if since is not None:
            params["since"] = f"{since:.6f}".rstrip("0").rstrip(".")
        pause = 0.25
        for attempt in range(max(tries, 1)):
            try:
                return await self._get("insights", params)
            except ServiceUnreachable:
                raise
            except ConsortiaError as exc:
                if exc.code != "unavailable" or attempt == max(tries, 1) - 1:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_BACKOFF)
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self, data: JSON) -> Notification:
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise ServiceUnreachable("a notification without an integer id arrived")
        body = open_notification(data, self.keys, self._service_encryption_key())
        txid, txref, action = data.get("txid"), data.get("txref"), data.get("action")
        return Notification(
            id=int(str(data["id"])),
            kind=str(data.get("kind")),
            txid=txid if isinstance(txid, str) else None,
            txref=txref if isinstance(txref, str) else None,
            action=action if isinstance(action, str) else None,
            body=body,
        )

    async def notification_page(self, after: int = 0, limit: int = 1000) -> list[Notification]:
        """Notifications after id ``after`` (one JSON page), opened."""
        page = await self._get("notifications", {"after": str(after), "limit": str(limit)})
        return [self._open(item) for item in page] if isinstance(page, list) else []

    async def notifications(self, after: int = 0) -> AsyncIterator[Notification]:
        """Every notification after ``after``, live, forever: reconnects and resumes itself.

        A dropped connection, a server restart or an expired token cost a reconnect with
        ``Last-Event-ID``; nothing is missed and nothing repeats. Refusals other than
        ``rate_limited``/``unavailable`` are raised.
        """
        last, delay = after, 0.2
        timeout = httpx.Timeout(self._timeout, read=_STREAM_READ_TIMEOUT)
        while True:
            headers = {
                "authorization": f"Bearer {self.token()}",
                "accept": "text/event-stream",
                "last-event-id": str(last),
            }
            try:
                async with self.http.stream(
                    "GET", self._path("notifications"), headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        raise error_from_response(response, await response.aread())
                    delay = 0.2
                    async for event in parse_sse(response.aiter_lines()):
                        if event.event == "notification":
                            note = self._open(loads_strict(event.data, what="notification"))
                            if note.id <= last:
                                continue  # never hand the same notification out twice
                            last = note.id
                            yield note
                        elif event.event == "error":
                            doc = loads_strict(event.data, what="stream error")
                            raise _stream_error(doc)
            except httpx.HTTPError:
                pass  # a dropped connection: reconnect below
            except ConsortiaError as exc:
                if exc.code not in ("rate_limited", "unavailable"):
                    raise
            self._token = None  # a fresh token for the next attempt
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)


def _stream_error(doc: JSON) -> ConsortiaError:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        error = doc["error"]
        if isinstance(error, dict):
            return error_for_code(str(error.get("code")), str(error.get("message")))
    return ServiceUnreachable("the notification stream ended with an unreadable error")
