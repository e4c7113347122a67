"""The member SDK: sign, submit, read and listen, over the wire protocol only.

The seed's "common implementation library circulated amongst consortium members". It
depends on :mod:`consortia.identity` and :mod:`consortia.wire` (keys, JWS, JWT, boxes)
and speaks PROTOCOL.md over HTTPS; it knows nothing of the server's internals.

    async with MemberClient(url, keys, "acme", fingerprint=pin) as client:
        answer = await client.call("recordOrder", {"order": "O-1"}, visible_to=["vendor"])
        async for note in client.notifications():
            print(note.kind, note.body)
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

import httpx

from consortia._json import JSON, JSONObject, loads_strict
from consortia.client._transport import ServiceUnreachable, error_from_response, parse_sse
from consortia.client.attest import Trust
from consortia.client.creation import create_consortium
from consortia.client.service import JOSE, open_service, send
from consortia.client.session import Session
from consortia.errors import ConsortiaError, VoteRejected, error_for_code
from consortia.identity.jwe import encrypt_compact
from consortia.identity.jwt import issue_token
from consortia.identity.keyfile import load_member_keys
from consortia.identity.keys import VerifyKey
from consortia.ledger.receipts import VerifiedReceipt, verify_receipt
from consortia.wire import (
    BATCH_MEDIA_TYPE,
    MEMBERSHIPS_AUDIENCE,
    batch_body,
    open_notification,
    sign_action,
)

__all__ = ["MemberClient", "Notification", "Submitted", "create_consortium", "open_service"]

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


class MemberClient(Session):
    """One member of one consortium, talking to a TEP over HTTPS."""

    def __repr__(self) -> str:
        return f"MemberClient({self.url!r}, member={self.member!r}, consortium={self.consortium!r})"

    @classmethod
    def from_key_file(
        cls,
        url: str,
        key_file: str | Path,
        consortium: str,
        *,
        fingerprint: str | None = None,
        insecure: bool = False,
        trust: Trust | None = None,
        timeout: float = 30.0,
    ) -> MemberClient:
        """A client for the member whose key file (``consortia keygen``) is ``key_file``.

        ``fingerprint`` pins the TEP's TLS certificate (what ``consortia serve`` prints);
        ``trust`` says which attested platforms this member accepts (docs/attestation.md).
        """
        return cls(
            url,
            load_member_keys(Path(key_file)),
            consortium,
            fingerprint=fingerprint,
            insecure=insecure,
            trust=trust,
            timeout=timeout,
        )

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
        answer = await send(
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

    async def submit_many(
        self, requests: Sequence[tuple[str, JSONObject]], *, visible_to: Sequence[str] = ()
    ) -> list[Submitted | ConsortiaError]:
        """Sign each ``(action, params)`` on its own and send them in one HTTP request
        (``POST .../actions/batch``, at most :data:`MAX_BATCH_REQUESTS`); one answer per
        request, in order: :class:`Submitted`, or the error that refused that one request.
        A refused request does not stop the others; retry it on its own."""
        now = int(time.time())
        bodies = [
            sign_action(
                self.keys,
                consortium=self.consortium,
                action=action,
                params=params,
                now=now,
                visible_to=visible_to,
            )
            for action, params in requests
        ]
        answer = await send(
            self.http,
            "POST",
            self._path("actions/batch"),
            content=batch_body(bodies),
            headers={"content-type": BATCH_MEDIA_TYPE},
        )
        items = answer.get("answers") if isinstance(answer, dict) else None
        if not isinstance(items, list) or len(items) != len(bodies):
            raise ServiceUnreachable("the batch answer does not hold one answer per request")
        return [_batch_answer(item) for item in items]

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

    async def history(
        self, key: str, *, after: int | None = None, limit: int | None = None
    ) -> JSON:
        """The versions of ``key``, oldest first, hidden ones as digests; with ``after``
        (a seqno) and ``limit``, one page of them."""
        params = {"key": key}
        if after is not None:
            params["after"] = str(after)
        if limit is not None:
            params["limit"] = str(limit)
        return await self._get("history", params)

    async def list_keys(
        self, prefix: str, *, limit: int | None = None, cursor: str | None = None
    ) -> JSON:
        """One page of the keys directly under ``prefix`` this member may read, with their
        newest visible values: ``{"prefix", "keys": [...], "next": cursor or null}``."""
        params = {"prefix": prefix}
        if limit is not None:
            params["limit"] = str(limit)
        if cursor is not None:
            params["cursor"] = cursor
        return await self._get("keys", params)

    async def all_keys(self, prefix: str, *, page: int = 200) -> AsyncIterator[JSONObject]:
        """Every key under ``prefix`` this member may read, page after page."""
        cursor: str | None = None
        while True:
            found = await self.list_keys(prefix, limit=page, cursor=cursor)
            if not isinstance(found, dict):
                return
            entries = found.get("keys")
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    yield entry
            following = found.get("next")
            if not isinstance(following, str):
                return
            cursor = following

    async def memberships(self) -> JSON:
        """The consortia of this TEP where this member's id and key are an active member
        (``GET /v1/consortia``, a token for audience ``consortia``)."""
        token = issue_token(self.keys, audience=MEMBERSHIPS_AUDIENCE, now=int(time.time()))
        headers = {"authorization": f"Bearer {token}"}
        return await send(self.http, "GET", "/v1/consortia", headers=headers)

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


def _batch_answer(item: JSON) -> Submitted | ConsortiaError:
    """One element of a batch answer: what the single endpoint would have answered."""
    if not isinstance(item, dict):
        raise ServiceUnreachable("a batch answer element is not an object")
    txid = item.get("txid")
    error = item.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return error_for_code(str(code), str(message), txid=txid if isinstance(txid, str) else None)
    if not isinstance(txid, str):
        raise ServiceUnreachable("a batch answer element has neither a txid nor an error")
    seqno, proposal = item.get("seqno"), item.get("proposal")
    return Submitted(
        status=str(item.get("status")),
        txid=txid,
        seqno=seqno if isinstance(seqno, int) else None,
        proposal=proposal if isinstance(proposal, str) else None,
    )


def _stream_error(doc: JSON) -> ConsortiaError:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        error = doc["error"]
        if isinstance(error, dict):
            return error_for_code(str(error.get("code")), str(error.get("message")))
    return ServiceUnreachable("the notification stream ended with an unreadable error")
