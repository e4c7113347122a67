"""Recovery mode: a TEP that lost its node key serves only the endpoints members recover it by.

``consortia recovery serve`` runs this app over the same TLS as ``consortia serve`` on a copy
of the storage without ``node.key``, with the operator's service-key backup already opened
(:meth:`~consortia.engine.recovery.RecoverySession.restore_service`):

- ``GET /v1/recovery``: progress as counts (consortia, ready, complete) and the service key
  the platform will come back with; with ``Authorization: Bearer <holder proof>``
  (``sign_holder_proof``) also ``{"consortium","received","threshold"}`` of the holder's
  own consortium. No consortium or member id reaches anyone who holds no share.
- ``POST /v1/recovery/shares`` (``application/jose``, the JWS of ``sign_submission``): one
  member's share; the answer is the progress of that member's consortium. The share that
  completes the last consortium finishes the recovery in the same request (new node key,
  keyrings and service keys re-wrapped) and the answer says ``"complete": true``.

Every other path answers ``unavailable`` (503, ``Retry-After``): the platform's endpoints
return once the operator restarts it with ``consortia serve``. No share is ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consortia.engine.recovery import RecoverySession
from consortia.errors import BadRequest, ConsortiaError, Unavailable
from consortia.server._http import (
    bearer,
    endpoint,
    error_response,
    json_response,
    query,
    read_jose_body,
)
from consortia.server.run import ServerConfig, SignalledServer, bind, url_of, uvicorn_config

__all__ = ["MAX_SHARE_BYTES", "RecoveryServer", "create_recovery_app"]

log = logging.getLogger("consortia.server")

#: A signed share is under 2 KiB; anything much larger is not one.
MAX_SHARE_BYTES: Final = 16 * 1024
#: Seconds a client of the platform's endpoints is told to wait: recovery takes people.
RETRY_AFTER: Final = "30"


def _unavailable(complete: bool) -> Response:
    message = (
        "this TEP has recovered and is being restarted by its operator; retry shortly"
        if complete
        else "this TEP is recovering from a lost node key: only GET /v1/recovery and "
        "POST /v1/recovery/shares are served until k members of every consortium have "
        "submitted their recovery shares; retry later"
    )
    response = error_response(Unavailable(message))
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def create_recovery_app(
    session: RecoverySession, *, on_complete: Callable[[], None] | None = None
) -> Starlette:
    """The recovery-mode ASGI app over ``session`` (its service keys already restored).

    ``on_complete`` is called once, on the event loop, after the recovery finished.
    """
    # One submission at a time: finishing reads and writes the whole store.
    lock = asyncio.Lock()

    @endpoint
    async def status(request: Request) -> Response:
        query(request, ())
        doc = (await asyncio.to_thread(session.progress)).to_json()
        if request.headers.get("authorization") is not None:
            mine = await asyncio.to_thread(session.holder_progress, bearer(request))
            doc["consortium"] = mine.to_json()
        return json_response(doc)

    @endpoint
    async def submit(request: Request) -> Response:
        query(request, ())
        body = await read_jose_body(request)
        if len(body) > MAX_SHARE_BYTES:
            raise BadRequest(
                f"a recovery share submission is under {MAX_SHARE_BYTES} bytes; this body is "
                f"{len(body)}: send the JWS that `consortia recovery submit` makes"
            )
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            raise BadRequest("a share submission is a compact JWS (ASCII)") from None
        async with lock:
            share = await asyncio.to_thread(session.submit, text)
            finished = False
            if session.ready:
                try:
                    await asyncio.to_thread(session.finish)
                    finished = True
                except ConsortiaError as exc:
                    # The share itself was good; k of them did not open a record (a wrong
                    # share among them). Progress names the problem; more shares may cure it.
                    log.warning("recovery could not finish yet: %s", exc.code)
            progress = await asyncio.to_thread(session.progress)
        if finished:
            log.warning("recovery complete: restart the platform with `consortia serve`")
            if on_complete is not None:
                on_complete()
        return json_response(progress.to_json(share.cid))

    async def http_error(request: Request, exc: Exception) -> Response:
        # Unknown paths (every endpoint of the platform) say why they are not served.
        status_code = exc.status_code if isinstance(exc, HTTPException) else 500
        if status_code == 405:
            return error_response(
                BadRequest(f"{request.method} is not allowed on {request.url.path[:200]!r}")
            )
        return _unavailable(session.complete)

    return Starlette(
        routes=[
            Route("/v1/recovery", status, methods=["GET"]),
            Route("/v1/recovery/shares", submit, methods=["POST"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


class RecoveryServer:
    """The recovery app served on a socket bound at once (so ``url`` is known before start).

    :meth:`run` serves in the foreground until SIGTERM (or completion, with
    ``exit_when_complete``); :meth:`start`/:meth:`stop` run it in a thread, for tests.
    """

    def __init__(
        self,
        session: RecoverySession,
        config: ServerConfig | None = None,
        *,
        exit_when_complete: bool = False,
    ) -> None:
        config = config or ServerConfig(port=0)
        self.session = session
        self.exit_when_complete = exit_when_complete
        self.sock = bind(config.host, config.port)
        self.url = url_of(config, self.sock)
        self.app = create_recovery_app(session, on_complete=self._completed)
        self.server = SignalledServer(uvicorn_config(self.app, config, lifespan=False))
        self._thread: threading.Thread | None = None

    def _completed(self) -> None:
        if self.exit_when_complete:
            # Graceful: the answer that completed the recovery is sent before the stop.
            self.server.should_exit = True

    def run(self, on_bound: Callable[[str], None] | None = None) -> int:
        """Serve in this thread until SIGTERM (or completion); 0 after a clean stop."""
        if on_bound is not None:
            url = self.url
            self.server.on_started = lambda: on_bound(url)
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()
        return 0 if self.server.started else 1

    def start(self, timeout: float = 30.0) -> RecoveryServer:
        """Serve in a background thread; return once connections are taken."""
        ready = threading.Event()
        self.server.on_started = ready.set
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("the recovery server did not start")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop, then wait for the thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> RecoveryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
