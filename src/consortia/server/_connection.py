"""One HTTP/1.1 connection, guarded: deadlines and size caps on a request's head, protocol
errors in the platform's JSON shape, and idle connections closed at once on shutdown.

uvicorn's httptools protocol bounds idle keep-alive connections, but not a client that sends
its head a byte at a time, nor a head of any size: httptools gathers a header's value in
memory until it ends, so one 8 MiB header costs the server 8 MiB. The caps here count the
bytes of a head as they arrive, before the parser sees them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Final

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "HEADER_TIMEOUT",
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "MAX_REQUEST_LINE",
    "GuardedHttpTools",
]

#: Seconds a client has to send a request's line and headers (slowloris guard).
HEADER_TIMEOUT: Final = 10.0
#: Longest request target (the URL of the request line), in bytes: past it, 414.
MAX_REQUEST_LINE: Final = 8 * 1024
#: Most bytes of a request's line and headers together: past it, 431.
MAX_HEAD_BYTES: Final = 32 * 1024
#: Most header fields in one request: past it, 431.
MAX_HEADERS: Final = 100
_TARGET_TOO_LONG: Final = (
    f"the request target is longer than {MAX_REQUEST_LINE} bytes; object keys and query "
    "parameters must be shorter"
)

_REASONS: Final = {
    400: "Bad Request",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
}
_END_OF_HEAD: Final = b"\r\n\r\n"


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that is refused."""


def protocol_error(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer with the platform's error body (``bad_request``), closing."""
    body = json.dumps(
        {"error": {"code": "bad_request", "message": message}}, separators=(",", ":")
    ).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Bad Request')}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the guards this module describes."""

    _header_timer: asyncio.TimerHandle | None = None
    #: Bytes of the current request's head received so far, and whether it is complete.
    _head_bytes: int = 0
    _head_done: bool = False
    #: Whether the current head's request line has ended (its first line feed arrived).
    _line_done: bool = False
    #: The last bytes of the head seen so far: its end may straddle two reads.
    _head_tail: bytes = b""
    _header_count: int = 0
    #: Set when a request is refused: (status, message); nothing more is read.
    _refusal: tuple[int, str] | None = None

    # -- the deadline for a request's head ------------------------------------------------

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head deadline as soon as the connection exists."""
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._disarm()
        super().connection_lost(exc)

    # -- reading, with the caps -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Count a head's bytes before the parser buffers them; refuse past the caps."""
        if self._refusal is not None:
            return  # the answer is written and the connection closing
        if self.cycle is None or self.cycle.response_complete:
            self._arm()
        if not self._head_done:
            budget = MAX_HEAD_BYTES - self._head_bytes
            if len(data) > budget:
                # Past the budget unless the head ends within it (the rest is body).
                window = self._head_tail + data[: budget + len(_END_OF_HEAD)]
                if _END_OF_HEAD not in window:
                    if not (self._line_done or b"\n" in data[:budget]):
                        # The request line alone is past the cap: its target is the fault,
                        # however the bytes were split into reads.
                        self._refuse(414, _TARGET_TOO_LONG)
                    else:
                        self._refuse(
                            431,
                            f"the request's line and headers exceed {MAX_HEAD_BYTES} bytes; "
                            "send fewer or shorter headers",
                        )
                    return
            self._line_done = self._line_done or b"\n" in data
            self._head_bytes += len(data)
            self._head_tail = (self._head_tail + data)[-(len(_END_OF_HEAD) - 1) :]
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """uvicorn's own ``data_received``, with every parse error answered in JSON."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserInvalidMethodError:
            self._refuse(400, "unknown HTTP method; this API takes GET and POST")
        except httptools.HttpParserError:
            refusal = self._refusal
            if refusal is not None:  # a cap, raised from a parser callback
                self._refusal = None
                self._refuse(*refusal)
            else:
                self._refuse(400, "the request is not valid HTTP/1.1; send a well-formed request")

    def on_message_begin(self) -> None:
        """A new request: its head's counters start again."""
        super().on_message_begin()
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        """Refuse a request target past :data:`MAX_REQUEST_LINE` (414)."""
        super().on_url(url)
        if len(self.url) > MAX_REQUEST_LINE:
            self._refusal = (414, _TARGET_TOO_LONG)
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        """Refuse more than :data:`MAX_HEADERS` header fields (431)."""
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refusal = (
                431,
                f"the request has more than {MAX_HEADERS} header fields; send fewer",
            )
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head came in time and within the caps: the body has its own guards."""
        self._disarm()
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is whole: the next bytes start another head."""
        self._head_done = False
        self._line_done = False
        self._head_bytes = 0
        self._head_tail = b""
        super().on_message_complete()

    # -- answers written by the connection itself -------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(protocol_error(status, message))
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Any other malformed request: the JSON error, never uvicorn's plain text."""
        self._refuse(400, "the request is not valid HTTP/1.1; send a well-formed request")

    def shutdown(self) -> None:
        """At a graceful stop: close an idle connection now, finish a busy one first.

        uvicorn closes idle connections gracefully, which over TLS waits for the client's
        close_notify: a client that keeps an idle keep-alive connection and is not reading
        held every stop for the full graceful timeout. Nothing is in flight on an idle
        connection, so it is aborted instead.
        """
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()
        else:
            self.cycle.keep_alive = False
