"""Notifications as a Server-Sent Events stream (PROTOCOL.md section 5).

A stream first sends what the member's queue holds after ``Last-Event-ID`` (or ``after``),
then whatever each commit adds, each as ``id: N`` / ``event: notification`` / ``data: JSON``.
Every read goes through the engine with the id of the last event sent, so a reconnect that
names that id misses nothing and repeats nothing. Its cost while idle is one asyncio event
and a comment line every :data:`KEEPALIVE` seconds. A stream ends when its bearer token
expires (the client reconnects with a fresh one) and when the server shuts down; a read
that fails (the member was removed, say) ends it with an ``event: error``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Final

from consortia._json import JSON, loads_strict
from consortia.engine.views import MAX_PAGE
from consortia.errors import BadRequest, ConsortiaError
from consortia.identity.jwt import read_token
from consortia.server._lanes import Sequencer, Waiter

__all__ = ["KEEPALIVE", "NotificationStream", "sse_event"]

#: Seconds between comment lines on an idle stream (keeps proxies from closing it).
KEEPALIVE: Final = 15.0
#: Milliseconds a client should wait before reconnecting (the SSE ``retry`` field).
RETRY_MS: Final = 1000


def sse_event(event: str, data: JSON, event_id: int | None = None) -> bytes:
    """One SSE event; ``data`` is compact JSON, so it is always a single line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


def token_expiry(token: str) -> int:
    """The ``exp`` claim of a bearer token the engine has already verified."""
    claims = loads_strict(read_token(token).payload, what="token claims")
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int):
        raise BadRequest("token claim 'exp' must be an integer NumericDate")
    return exp


class NotificationStream:
    """One member's open stream: authenticated, registered with the hub, then iterated."""

    def __init__(self, sequencer: Sequencer, cid: str, token: str, closing: asyncio.Event) -> None:
        self.sequencer = sequencer
        self.cid = cid
        self.token = token
        self.closing = closing
        self.waiter: Waiter | None = None
        self.expires = 0

    async def open(self, after: int) -> None:
        """Authenticate and take a slot (``rate_limited`` past a cap): before any byte is sent."""
        platform = self.sequencer.platform

        def authenticate() -> tuple[str, int]:
            view = platform.reader(self.cid, self.token)
            return view.member, token_expiry(self.token)

        member, self.expires = await self.sequencer.call(self.cid, authenticate)
        waiter = Waiter(member, after)
        self.sequencer.hub.add(self.cid, waiter)
        self.waiter = waiter
        self.sequencer.metrics.streams.set(self.sequencer.hub.count)

    def close(self) -> None:
        """Give the slot back."""
        if self.waiter is not None:
            self.sequencer.hub.remove(self.cid, self.waiter)
            self.waiter = None
            self.sequencer.metrics.streams.set(self.sequencer.hub.count)

    async def _page(self, after: int) -> list[dict[str, JSON]]:
        platform = self.sequencer.platform
        token = self.token
        cid = self.cid
        return await self.sequencer.call(
            cid, lambda: platform.reader(cid, token).notifications(after=after)
        )

    async def events(self) -> AsyncIterator[bytes]:
        """The SSE body; always gives the slot back, however the stream ends."""
        waiter = self.waiter
        if waiter is None:
            return
        try:
            yield f": consortia notifications for {waiter.member}\nretry: {RETRY_MS}\n\n".encode()
            while not self.closing.is_set():
                waiter.wake.clear()
                try:
                    page = await self._page(waiter.last_id)
                except ConsortiaError as exc:
                    yield sse_event("error", exc.to_wire())  # type: ignore[arg-type]
                    return
                for note in page:
                    nid = note.get("id")
                    if isinstance(nid, int):
                        yield sse_event("notification", note, nid)
                        waiter.last_id = nid
                if len(page) >= MAX_PAGE:
                    continue  # more is queued: read on without waiting
                while not waiter.wake.is_set() and not self.closing.is_set():
                    remaining = self.expires - time.time()
                    if remaining <= 0:
                        yield sse_event(
                            "end", {"reason": "token expired; reconnect with a fresh token"}
                        )
                        return
                    try:
                        await asyncio.wait_for(waiter.wake.wait(), min(KEEPALIVE, remaining))
                    except TimeoutError:
                        yield b": keepalive\n\n"
        finally:
            self.close()
