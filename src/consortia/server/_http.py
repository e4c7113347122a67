"""HTTP plumbing at the edge: bounded body reads, strict queries, and error rendering.

Every refusal leaves as ``{"error":{"code","message"},"txid"?}`` with the status that
:data:`consortia.errors.HTTP_STATUS` gives its code. An unexpected exception becomes
``unavailable`` with a fixed message: its text and traceback stay out of the answer and out
of the default log line, since either could carry request data.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Final

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from consortia.engine.sequencer import ServedElsewhere
from consortia.engine.views import MAX_PAGE
from consortia.errors import (
    HTTP_STATUS,
    BadRequest,
    BadSignature,
    ConsortiaError,
    NotFound,
    Unavailable,
)
from consortia.identity.keys import validate_member_id
from consortia.wire import JOSE_MEDIA_TYPE, MAX_BODY_BYTES

if TYPE_CHECKING:
    from consortia.server._forward import Forwarder

__all__ = [
    "BODY_TIMEOUT",
    "JOSE",
    "Handler",
    "after_param",
    "bearer",
    "endpoint",
    "error_response",
    "json_response",
    "limit_param",
    "query",
    "read_body",
    "read_jose_body",
]

log = logging.getLogger("consortia.server")

#: The media type of a compact JWS or JWE body (RFC 7515 section 9.2.1).
JOSE: Final = JOSE_MEDIA_TYPE
#: Seconds a client has to send a whole request body; a slower one is cut off.
BODY_TIMEOUT: Final = 10.0

Handler = Callable[[Request], Awaitable[Response]]


def json_response(value: object, status: int = 200) -> Response:
    """A compact JSON answer."""
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def error_response(exc: ConsortiaError) -> Response:
    """The error body of PROTOCOL.md section 2, with the status of its code."""
    response = json_response(exc.to_wire(), HTTP_STATUS.get(exc.code, 503))
    if exc.code in ("bad_signature", "unknown_member", "stale_request"):
        response.headers["WWW-Authenticate"] = 'Bearer realm="consortia"'
    if exc.code in ("rate_limited", "unavailable"):
        response.headers["Retry-After"] = "1"
    return response


def endpoint(handler: Handler) -> Handler:
    """Wrap a route handler so every failure is rendered here, never by the framework."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ServedElsewhere as exc:
            # A cluster node: another node sequences this consortium; pass the request on.
            forwarder: Forwarder | None = getattr(request.app.state, "forwarder", None)
            if forwarder is None:
                return error_response(exc)
            try:
                return await forwarder.forward(request, exc, getattr(request.state, "body", None))
            except ConsortiaError as refused:
                return error_response(refused)
        except ConsortiaError as exc:
            return error_response(exc)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        except Exception as exc:
            # The edge's last line: an unexpected failure answers `unavailable`, and neither
            # its text nor its traceback leaves (both could carry request data).
            log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
            log.debug("unexpected failure", exc_info=True)
            return error_response(Unavailable("the platform hit an internal error; retry later"))

    return wrapped


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_jose_body(request: Request) -> bytes:
    """The body of a JWS/JWE request: right media type, at most 1 MiB, within 10 s."""
    return await read_body(request, JOSE, "a compact JWS, or a JWE wrapping one")


async def read_body(request: Request, media_type: str, what: str) -> bytes:
    """A request body of ``media_type`` (``what`` it holds): at most 1 MiB, within 10 s."""
    media = _media_type(request)
    if media != media_type:
        raise BadRequest(f"Content-Type must be {media_type} ({what}), not {media or 'missing'!r}")
    declared = request.headers.get("content-length")
    if declared is not None:
        # isascii too: str.isdigit() accepts '²' and other digits int() refuses.
        if not (declared.isascii() and declared.isdigit()):
            raise BadRequest("Content-Length must be a decimal number (ASCII digits 0-9)")
        if int(declared) > MAX_BODY_BYTES:
            raise BadRequest(
                f"request body is {int(declared)} bytes; the limit is {MAX_BODY_BYTES} (1 MiB)"
            )
    chunks: list[bytes] = []
    size = 0

    async def collect() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BadRequest(f"request body exceeds the limit of {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(collect(), BODY_TIMEOUT)
    except TimeoutError:
        raise BadRequest(
            f"the request body did not arrive within {BODY_TIMEOUT:g} s; send it at once"
        ) from None
    body = b"".join(chunks)
    if not body:
        raise BadRequest(f"the request body is empty; send {what}")
    request.state.body = body  # a cluster node may pass the request on as it came
    return body


def query(request: Request, allowed: Collection[str]) -> dict[str, str]:
    """Query parameters, refusing unknown or repeated ones (silent acceptance hides bugs)."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            expected = ", ".join(sorted(allowed)) or "none"
            raise BadRequest(f"unknown query parameter {name!r}; this endpoint takes: {expected}")
        if name in params:
            raise BadRequest(f"query parameter {name!r} is given twice")
        params[name] = value
    return params


def bearer(request: Request, *, who: str = "a member") -> str:
    """The bearer token of an authenticated read (PROTOCOL.md section 4)."""
    header = request.headers.get("authorization")
    if header is None:
        raise BadSignature(f"this read needs 'Authorization: Bearer <JWT>' signed by {who}'s key")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BadSignature("the Authorization header must be 'Bearer <JWT>'")
    return token.strip()


def after_param(value: str | None) -> int:
    """The ``after`` notification id of a query or ``Last-Event-ID`` (0 when absent)."""
    if value is None or value == "":
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise BadRequest(f"'after' must be a non-negative integer notification id, not {value!r}")
    return int(value)


def limit_param(value: str | None) -> int:
    """The ``limit`` of a notifications page: 1 to :data:`MAX_PAGE` (that many when absent)."""
    if value is None:
        return MAX_PAGE
    digits = value.isascii() and value.isdigit()  # isdigit() alone accepts '²'; int() not
    if not digits or len(value) > 6 or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(f"'limit' must be an integer from 1 to {MAX_PAGE}, not {value[:20]!r}")
    return int(value)


def consortium_id(request: Request) -> str:
    """The ``{cid}`` of the path; one no consortium could have is simply not found."""
    cid = str(request.path_params["cid"])
    try:
        return validate_member_id(cid, what="consortium id")
    except BadRequest:
        raise NotFound(f"no consortium {cid[:80]!r} on this platform") from None
