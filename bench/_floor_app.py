"""Trivial ASGI apps for ``bench/http_floor.py``: what serving a POST costs before any work.

``raw`` reads the body and answers ``{}``; ``star`` does the same through Starlette, as the
real app does. Neither parses, verifies nor stores anything.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Message = dict[str, Any]


async def raw(scope: Message, receive: Any, send: Any) -> None:
    """Read the whole body, answer 200 ``{}``."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


async def _act(request: Request) -> Response:
    await request.body()
    return Response(b"{}", media_type="application/json")


star = Starlette(routes=[Route("/v1/consortia/{cid}/actions", _act, methods=["POST"])])
