"""The ASGI app: every endpoint of PROTOCOL.md over the engine, and nothing more.

Thin by design (docs/architecture.md): each handler parses the HTTP request, calls the engine
through its consortium's :class:`~consortia.server._lanes.Lane` (writes, group-committed) or
under the consortium's lock (reads), and renders the answer. No business rule lives here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from consortia import __version__
from consortia._json import JSON
from consortia.engine import Committed, MemberView, Platform
from consortia.engine.sequencer import ServedElsewhere
from consortia.engine.views import LIST_DEFAULT
from consortia.errors import HTTP_STATUS, BadRequest, ConsortiaError, NotFound, Unavailable
from consortia.server._attest import ServiceAttestation
from consortia.server._forward import Forwarder
from consortia.server._http import (
    after_param,
    bearer,
    consortium_id,
    endpoint,
    error_response,
    json_response,
    limit_param,
    query,
    read_body,
    read_jose_body,
)
from consortia.server._insights import insights_endpoint
from consortia.server._join import JoinDesk
from consortia.server._lanes import Sequencer, StreamHub
from consortia.server._metrics import CONTENT_TYPE, NAMED_OUTCOMES, Metrics
from consortia.server._openapi import openapi_document
from consortia.server._stream import NotificationStream
from consortia.wire import BATCH_MEDIA_TYPE, parse_batch_body

__all__ = ["Exposure", "Limits", "Service", "create_app"]

log = logging.getLogger("consortia.server")

T = TypeVar("T")
_TXID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what idle or slow clients may hold (documented in docs/protocol-notes.md)."""

    streams_per_member: int = 8
    streams_total: int = 2000


@dataclass(frozen=True, slots=True)
class Exposure:
    """What the host shows about the consortia it serves (all off by default)."""

    #: ``/metrics`` labels may name consortia and actions.
    metrics_names: bool = False
    #: ``/metrics`` also answers unauthenticated clients on a loopback address (a local
    #: Prometheus agent); everyone else needs an operator token.
    metrics_local: bool = False


class Service:
    """The state one app serves from: the engine lanes, the stream hub, the metrics."""

    def __init__(
        self,
        platform: Platform,
        limits: Limits,
        exposure: Exposure,
        attestation: ServiceAttestation | None = None,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.platform = platform
        #: On a cluster node: passes requests on to the sequencer of their consortium.
        self.forwarder = forwarder
        self.attestation = attestation or ServiceAttestation()
        if self.attestation.kind != platform.running.kind:
            raise ValueError(
                f"the engine runs as {platform.running.kind!r} but the server attests "
                f"{self.attestation.kind!r}; open the platform with running_platform(provider)"
            )
        self.exposure = exposure
        self.metrics = Metrics(
            analytics=platform.analytics_stats,
            sandbox=platform.sandbox_stats,
            names=exposure.metrics_names,
        )
        self.hub = StreamHub(per_member=limits.streams_per_member, total=limits.streams_total)
        self.sequencer = Sequencer(platform, metrics=self.metrics, hub=self.hub)
        self.closing = asyncio.Event()

    def begin_shutdown(self) -> None:
        """Stop taking work and end every open stream (SIGTERM's first step)."""
        self.closing.set()
        self.hub.wake_all()

    async def read(self, request: Request, fn: Callable[[MemberView], T]) -> T:
        """Authenticate the bearer token and run ``fn`` on the member's view, under the lock."""
        cid = consortium_id(request)
        token = bearer(request)
        platform = self.platform
        return await self.sequencer.call(cid, lambda: fn(platform.reader(cid, token)))


def _txid(request: Request, name: str = "txid") -> str:
    txid = str(request.path_params[name])
    if _TXID.fullmatch(txid) is None:
        raise BadRequest(f"{name} must be 64 lowercase hex characters (a SHA-256)")
    return txid


def _peek_action(body: bytes) -> str | None:
    """The action named by a refused JWS body, for the metrics label only (never trusted).

    An answer carries its action (the engine parsed it); a refusal does not, so this lax,
    cheap peek (plain base64 and the C JSON decoder) runs on refusals alone. A JWE is not
    peeked.
    """
    parts = body.split(b".")
    if len(parts) != 3:
        return None
    encoded = parts[1]
    try:
        payload = json.loads(base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    action = payload.get("action") if isinstance(payload, dict) else None
    return action if isinstance(action, str) else None


def _routes(service: Service) -> list[Route]:  # noqa: PLR0915 - one closure per endpoint
    sequencer = service.sequencer
    platform = service.platform

    @endpoint
    async def healthz(request: Request) -> Response:
        if service.closing.is_set():
            raise Unavailable("the service is shutting down")
        return json_response({"status": "ok"})

    @endpoint
    async def metrics(request: Request) -> Response:
        query(request, ())
        client = request.client.host if request.client is not None else ""
        local = service.exposure.metrics_local and client in ("127.0.0.1", "::1")
        if not local:
            platform.operators.verify_token(bearer(request, who="an operator"), audience="metrics")
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    @endpoint
    async def openapi(request: Request) -> Response:
        return json_response(openapi_document(__version__))

    @endpoint
    async def service_info(request: Request) -> Response:
        query(request, ())
        info = platform.service_info()
        # The firmware may take a moment (configfs-tsm); never on the event loop.
        info["attestation"] = await asyncio.to_thread(service.attestation.attestation, info)
        return json_response(info)

    @endpoint
    async def memberships(request: Request) -> Response:
        query(request, ())
        token = bearer(request)
        platform.token_claims(token)  # an ill-formed token is bad_signature, on no lane
        found: list[JSON] = []
        elsewhere: dict[str, set[str]] = {}  # a cluster node: URL of a sequencer -> its cids
        for cid in platform.consortia():
            # On each consortium's own lane, like every other read of it.
            try:
                entry = await sequencer.call(cid, partial(platform.membership, cid, token))
            except ServedElsewhere as exc:
                elsewhere.setdefault(exc.url, set()).add(cid)
                continue
            if entry is not None:
                found.append(entry)
        if elsewhere and service.forwarder is not None:
            found.extend(await service.forwarder.memberships(request, elsewhere))
        return json_response(found)

    @endpoint
    async def create(request: Request) -> Response:
        query(request, ())
        body = await read_jose_body(request)
        # Creation is rare: one lock orders all of it, apart from every consortium's lane.
        created = await sequencer.call("\x00create", lambda: platform.create_consortium(body))
        return json_response(created.to_wire(), 201)

    @endpoint
    async def execute(request: Request) -> Response:
        cid = consortium_id(request)
        query(request, ())
        if service.closing.is_set():
            raise Unavailable("the service is shutting down; retry with the same request")
        body = await read_jose_body(request)
        lane = await sequencer.lane(cid)
        try:
            outcome = await lane.execute(body)
        except ServedElsewhere:
            raise  # passed on to the sequencer, which counts it
        except ConsortiaError as exc:
            service.metrics.action(
                _peek_action(body) if exc.code in NAMED_OUTCOMES else None, exc.code
            )
            raise
        status = "committed" if isinstance(outcome, Committed) else "pending"
        service.metrics.action(outcome.action, status)
        return json_response(outcome.to_wire(), 200 if status == "committed" else 202)

    @endpoint
    async def execute_batch(request: Request) -> Response:
        cid = consortium_id(request)
        query(request, ())
        if service.closing.is_set():
            raise Unavailable("the service is shutting down; retry with the same requests")
        body = await read_body(request, BATCH_MEDIA_TYPE, '{"requests": [<compact JWS>, ...]}')
        bodies = parse_batch_body(body)
        lane = await sequencer.lane(cid)
        outcomes = await lane.execute_many(bodies)
        if isinstance(outcomes[0], ServedElsewhere):
            # The whole batch met one refusal (the lane's): pass it on as it came.
            raise outcomes[0]
        answers = []
        for each, outcome in zip(bodies, outcomes, strict=True):
            if isinstance(outcome, ConsortiaError):
                named = _peek_action(each) if outcome.code in NAMED_OUTCOMES else None
                service.metrics.action(named, outcome.code)
                answers.append({**outcome.to_wire(), "http": HTTP_STATUS.get(outcome.code, 503)})
                continue
            committed = isinstance(outcome, Committed)
            service.metrics.action(outcome.action, "committed" if committed else "pending")
            answers.append({**outcome.to_wire(), "http": 200 if committed else 202})
        return json_response({"answers": answers})

    @endpoint
    async def constitution(request: Request) -> Response:
        query(request, ())
        return json_response(await service.read(request, lambda v: v.constitution()))

    @endpoint
    async def proposals(request: Request) -> Response:
        status = query(request, ("status",)).get("status", "open")
        return json_response(await service.read(request, lambda v: v.proposals(status)))

    @endpoint
    async def proposal(request: Request) -> Response:
        query(request, ())
        pid = _txid(request, "pid")
        return json_response(await service.read(request, lambda v: v.proposal(pid)))

    @endpoint
    async def transaction(request: Request) -> Response:
        query(request, ())
        txid = _txid(request)
        return json_response(await service.read(request, lambda v: v.transaction(txid)))

    @endpoint
    async def receipt(request: Request) -> Response:
        query(request, ())
        txid = _txid(request)
        return json_response(await service.read(request, lambda v: v.receipt(txid)))

    def _key(request: Request) -> str:
        key = query(request, ("key",)).get("key")
        if key is None:
            raise BadRequest("query parameter 'key' is required, e.g. ?key=order%2FO-1")
        return key

    @endpoint
    async def get_object(request: Request) -> Response:
        key = _key(request)
        return json_response(await service.read(request, lambda v: v.object(key)))

    @endpoint
    async def history(request: Request) -> Response:
        params = query(request, ("key", "after", "limit"))
        key = params.get("key")
        if key is None:
            raise BadRequest("query parameter 'key' is required, e.g. ?key=order%2FO-1")
        after = None if params.get("after") is None else after_param(params.get("after"))
        limit = None if params.get("limit") is None else limit_param(params.get("limit"))
        return json_response(
            await service.read(request, lambda v: v.history(key, after=after, limit=limit))
        )

    @endpoint
    async def keys(request: Request) -> Response:
        params = query(request, ("prefix", "limit", "cursor"))
        prefix = params.get("prefix", "")
        limit = limit_param(params.get("limit", str(LIST_DEFAULT)))
        cursor = params.get("cursor")
        return json_response(
            await service.read(request, lambda v: v.keys(prefix, limit=limit, cursor=cursor))
        )

    @endpoint
    async def notifications(request: Request) -> Response:
        params = query(request, ("after", "limit"))
        wants_stream = "text/event-stream" in request.headers.get("accept", "")
        if not wants_stream:
            after = after_param(params.get("after"))
            limit = limit_param(params.get("limit"))
            page: list[dict[str, JSON]] = await service.read(
                request, lambda v: v.notifications(after=after, limit=limit)
            )
            return json_response(page)
        # Last-Event-ID wins over ?after: it is what a reconnecting EventSource sends.
        last = request.headers.get("last-event-id")
        after = after_param(last if last is not None else params.get("after"))
        if service.closing.is_set():
            raise Unavailable("the service is shutting down; reconnect shortly")
        stream = NotificationStream(
            sequencer, consortium_id(request), bearer(request), service.closing
        )
        await stream.open(after)
        return StreamingResponse(
            stream.events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    prefix = "/v1/consortia/{cid}"
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        Route("/v1/service", service_info, methods=["GET"]),
        Route("/v1/consortia", create, methods=["POST"]),
        Route("/v1/consortia", memberships, methods=["GET"]),
        Route(prefix + "/actions", execute, methods=["POST"]),
        Route(prefix + "/actions/batch", execute_batch, methods=["POST"]),
        Route(prefix + "/constitution", constitution, methods=["GET"]),
        Route(prefix + "/proposals", proposals, methods=["GET"]),
        Route(prefix + "/proposals/{pid}", proposal, methods=["GET"]),
        Route(prefix + "/transactions/{txid}", transaction, methods=["GET"]),
        Route(prefix + "/transactions/{txid}/receipt", receipt, methods=["GET"]),
        Route(prefix + "/object", get_object, methods=["GET"]),
        Route(prefix + "/history", history, methods=["GET"]),
        Route(prefix + "/keys", keys, methods=["GET"]),
        Route(prefix + "/notifications", notifications, methods=["GET"]),
        Route(prefix + "/insights", insights_endpoint(sequencer, platform), methods=["GET"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in the protocol's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        path = request.url.path[:200]
        return error_response(NotFound(f"no endpoint {path!r}; see /v1/openapi.json"))
    if status == 405:
        return error_response(
            BadRequest(f"{request.method} is not allowed on {request.url.path[:200]!r}")
        )
    return error_response(BadRequest(f"the request could not be served (HTTP {status})"))


def create_app(
    platform: Platform,
    *,
    limits: Limits | None = None,
    exposure: Exposure | None = None,
    attestation: ServiceAttestation | None = None,
    forwarder: Forwarder | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Starlette:
    """The ASGI app serving ``platform``; the caller opens and closes the platform.

    ``app.state.service`` is the :class:`Service` (``begin_shutdown()`` ends the streams).
    ``attestation`` gives ``GET /v1/service`` its evidence (default: virtual, none).
    ``forwarder`` (a cluster node's) passes requests on to the consortium's sequencer;
    ``tls`` (certificate, key files) is what a node joining the cluster is handed.
    """
    service = Service(platform, limits or Limits(), exposure or Exposure(), attestation, forwarder)

    async def heartbeats() -> None:
        # A cluster node says it is alive every half lease, busy or idle (engine/sequencer.py).
        while True:
            try:
                every = await asyncio.to_thread(platform.heartbeat)
            except ConsortiaError as exc:
                log.warning("cluster heartbeat failed: %s", exc.code)
                every = 1.0
            if every is None:
                return
            await asyncio.sleep(every)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not await asyncio.to_thread(platform.prepare_analytics):
            log.warning("the misuse detector is still loading; serving meanwhile")
        beating = asyncio.get_running_loop().create_task(heartbeats()) if platform.node else None
        yield
        if beating is not None:
            beating.cancel()
        service.begin_shutdown()
        await service.sequencer.close()
        if forwarder is not None:
            await forwarder.close()

    routes = _routes(service)
    if platform.node is not None:
        # A cluster node: new nodes join through it (server/_join.py).
        desk = JoinDesk(platform, tls)
        routes += [Route(path, h, methods=m) for path, h, m in desk.routes()]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.service = service
    app.state.forwarder = forwarder
    return app
