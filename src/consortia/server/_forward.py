"""A cluster node passes a consortium's requests on to its sequencer (docs/cluster.md).

On a node of a cluster, the engine serves a consortium only while this node holds its
sequencer lease; otherwise it raises :class:`~consortia.engine.sequencer.ServedElsewhere`
naming the holder and the URL it advertised. The :class:`Forwarder` then sends the same
request (method, path, query, the member's body and bearer token, byte for byte) to that
node and relays its answer, so a member may talk to any node. A signed request stays
what it was: the sequencer checks its signature, nonce and permissions as if it had come
straight from the member, and a retry of the same body is as safe as ever.

The holder's URL comes from the lease row in PostgreSQL, which is not trusted: the
forwarder trusts only the cluster's own TLS certificate (the nodes share it, as they
share the node key), so a changed row can at worst send a request to a server that
fails the handshake. A request travels at most one hop (``X-Consortia-Forwarded-By``):
a node that receives a forwarded request it does not sequence refuses it
``unavailable``. Notification streams are relayed as they come; when the holder's lease
ends, its stream ends and the member's reconnect (with ``Last-Event-ID``) reaches the new
sequencer through whichever node it connects to.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from consortia._json import JSON
from consortia.engine.sequencer import ServedElsewhere
from consortia.errors import Unavailable

__all__ = ["FORWARDED_BY", "Forwarder", "cluster_tls"]

log = logging.getLogger("consortia.server")

#: The header that marks a request one node passed to another (its value: that node's id).
FORWARDED_BY: Final = "x-consortia-forwarded-by"
#: Request headers passed on; nothing else of the member's request is.
_REQUEST_HEADERS: Final = ("authorization", "content-type", "accept", "last-event-id")
#: Answer headers relayed back.
_ANSWER_HEADERS: Final = (
    "content-type",
    "retry-after",
    "www-authenticate",
    "cache-control",
    "x-accel-buffering",
)


#: A relayed stream may stay quiet for long (keep-alive comments come every 15 s).
_STREAM_TIMEOUT: Final = httpx.Timeout(10.0, connect=2.0, read=None)


def cluster_tls(cert: Path | None) -> ssl.SSLContext | bool:
    """How a node checks the node it forwards to: the cluster's certificate ``cert`` as
    the only trust anchor (False for plain HTTP, development only)."""
    if cert is None:
        return False
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # one certificate is trusted, whatever the host name
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cafile=str(cert))
    return context


class Forwarder:
    """Sends requests for consortia another node sequences to that node."""

    def __init__(self, node: str, verify: ssl.SSLContext | bool) -> None:
        self.node = node
        self._http = httpx.AsyncClient(
            verify=verify,
            # A node that does not connect within 2 s is taken for lost: the member's
            # retry (to any node) finds the new sequencer once its lease has expired.
            timeout=httpx.Timeout(10.0, connect=2.0, read=60.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    def _headers(self, request: Request) -> dict[str, str]:
        """What of the member's request headers travels on, marked as passed on by us."""
        headers = {k: v for k in _REQUEST_HEADERS if (v := request.headers.get(k)) is not None}
        headers[FORWARDED_BY] = self.node
        return headers

    async def close(self) -> None:
        """Close the connections to the other nodes."""
        await self._http.aclose()

    async def forward(
        self, request: Request, elsewhere: ServedElsewhere, body: bytes | None
    ) -> Response:
        """The holder's answer to ``request`` (whose body, if any, was ``body``); raises
        ``elsewhere`` itself when the request may not travel (again)."""
        if request.headers.get(FORWARDED_BY) is not None or not elsewhere.url:
            raise elsewhere
        url = elsewhere.url.rstrip("/") + request.url.path
        headers = self._headers(request)
        stream = "text/event-stream" in request.headers.get("accept", "")
        outgoing = self._http.build_request(
            request.method,
            url,
            params=list(request.query_params.multi_items()),
            headers=headers,
            content=body,
            timeout=_STREAM_TIMEOUT if stream else httpx.USE_CLIENT_DEFAULT,
        )
        try:
            answer = await self._http.send(outgoing, stream=stream)
        except httpx.HTTPError as exc:
            log.warning(
                "node %r, the sequencer of a consortium, did not answer a forwarded request (%s)",
                elsewhere.node,
                type(exc).__name__,
            )
            raise Unavailable(
                f"{elsewhere.message}; this node passes requests on to it, but it does not "
                f"answer now ({type(exc).__name__}): retry shortly with the same request "
                "(another node takes over once its lease expires)",
                txid=elsewhere.txid,
            ) from None
        relayed = {k: v for k in _ANSWER_HEADERS if (v := answer.headers.get(k)) is not None}
        if not stream:
            return Response(answer.content, status_code=answer.status_code, headers=relayed)

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in answer.aiter_raw():
                yield chunk

        return StreamingResponse(
            chunks(),
            status_code=answer.status_code,
            headers=relayed,
            background=BackgroundTask(answer.aclose),
        )

    async def memberships(self, request: Request, elsewhere: dict[str, set[str]]) -> list[JSON]:
        """``GET /v1/consortia`` for the consortia other nodes sequence (URL -> their ids):
        each holder is asked once, and only its entries for those consortia are kept. A
        request that was itself passed on asks nobody."""
        if request.headers.get(FORWARDED_BY) is not None:
            return []
        found: list[JSON] = []
        headers = self._headers(request)
        for url, cids in sorted(elsewhere.items()):
            try:
                answer = await self._http.get(url.rstrip("/") + "/v1/consortia", headers=headers)
                entries = answer.json() if answer.status_code == 200 else None
            except (httpx.HTTPError, ValueError) as exc:
                entries = None
                log.warning("a sequencer did not list memberships (%s)", type(exc).__name__)
            if not isinstance(entries, list):
                raise Unavailable(
                    f"the node sequencing {len(cids)} of these consortia did not answer; the "
                    "list would be incomplete: retry shortly"
                )
            found.extend(e for e in entries if isinstance(e, dict) and e.get("consortium") in cids)
        return found
