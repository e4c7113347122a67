"""Serving the app: uvicorn (httptools, uvloop), TLS, slow-client guards, graceful stop.

Why uvicorn: granian serves a trivial Starlette POST over TLS about 1.5 times as fast here
(``bench/http_floor.py``), but with this platform behind it the gain was 14 % (README,
Performance): the platform's own Python dominates. uvicorn serves an app *object* in this
process, on a socket bound beforehand (granian's embedded mode is experimental and binds its
own), so the platform, the sequencers and the SSE hub live in one process that tests can
start in a thread and stop for certain.

SIGTERM (or Ctrl-C): stop accepting, end every notification stream, let in-flight requests
finish (their commits included), drain each consortium's queue, close the platform, exit 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from consortia.attestation.providers import PlatformProvider
from consortia.engine import Platform
from consortia.server._attest import ServiceAttestation, tls_certificate_sha256
from consortia.server._connection import HEADER_TIMEOUT, GuardedHttpTools
from consortia.server._forward import Forwarder, cluster_tls
from consortia.server.app import Exposure, Limits, Service, create_app

__all__ = [
    "HEADER_TIMEOUT",
    "ServerConfig",
    "ServerThread",
    "SignalledServer",
    "bind",
    "serve",
    "url_of",
    "uvicorn_config",
]

log = logging.getLogger("consortia.server")

#: Seconds an idle keep-alive connection stays open.
KEEPALIVE_TIMEOUT: Final = 5
#: Seconds in-flight requests get at shutdown before they are cancelled.
GRACEFUL_TIMEOUT: Final = 20
#: Most connections served at once; past it new ones get 503 (SSE streams have own caps).
MAX_CONNECTIONS: Final = 10_000


@dataclass
class ServerConfig:
    """Where and how to serve. ``tls`` is (certificate file, key file) or None for plain HTTP."""

    host: str = "127.0.0.1"
    port: int = 8443
    tls: tuple[Path, Path] | None = None
    limits: Limits = field(default_factory=Limits)
    exposure: Exposure = field(default_factory=Exposure)
    #: A line per request: method, path without its query (object keys travel there), status.
    access_log: bool = False
    log_level: str = "info"
    #: Where attestation evidence comes from (None: virtual, no evidence). The platform
    #: must be opened with ``running=running_platform(provider)`` to match.
    provider: PlatformProvider | None = None
    #: A cluster node's URL as the other nodes reach it (None: the one it is bound to).
    advertise: str | None = None


class SignalledServer(uvicorn.Server):
    """uvicorn's server that says when it takes connections and exits cleanly on SIGTERM."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None):
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start (the app's start-up included), then say so: only now are connections taken."""
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """SIGTERM/SIGINT start a graceful stop; unlike uvicorn's own, no re-raise after it.

        uvicorn re-raises the caught signal once stopped, so the process would die by
        SIGTERM (status 143); a clean, complete shutdown should exit 0.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        saved = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: graceful; a second Ctrl-C: force."""
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


class _Server(SignalledServer):
    """The platform's server: its streams end first at shutdown."""

    def __init__(
        self,
        config: uvicorn.Config,
        service: Service,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, on_started)
        self.service = service

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the streams first, so waiting for open connections does not wait for them."""
        self.service.begin_shutdown()
        await super().shutdown(sockets)


class _PathOnly(logging.Filter):
    """Drops the query string from uvicorn's access-log lines: object keys travel there
    (``?key=stock/vendorA/...``), and storage hides them for a reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def _path_only_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _PathOnly) for f in access.filters):
        access.addFilter(_PathOnly())


def uvicorn_config(app: ASGIApp, config: ServerConfig, *, lifespan: bool) -> uvicorn.Config:
    """uvicorn's settings for ``app`` under ``config``: the guarded HTTP parser, the limits,
    TLS when configured, no server header, no proxy headers."""
    if config.access_log:
        _path_only_access_log()
    ssl_options: dict[str, object] = {}
    if config.tls is not None:
        cert, key = config.tls
        ssl_options = {
            "ssl_certfile": str(cert),
            "ssl_keyfile": str(key),
            "ssl_version": ssl.PROTOCOL_TLS_SERVER,
        }
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=GuardedHttpTools,
        loop="auto",
        lifespan="on" if lifespan else "off",
        ws="none",
        access_log=config.access_log,
        log_level=config.log_level,
        timeout_keep_alive=KEEPALIVE_TIMEOUT,
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT,
        limit_concurrency=MAX_CONNECTIONS,
        server_header=False,
        proxy_headers=False,
        **ssl_options,  # type: ignore[arg-type]
    )


def _uvicorn_config(platform: Platform, config: ServerConfig) -> tuple[uvicorn.Config, Service]:
    tls_sha256 = None if config.tls is None else tls_certificate_sha256(config.tls[0])
    attestation = ServiceAttestation(config.provider, tls_sha256=tls_sha256)
    forwarder = None
    if platform.node is not None:
        cert = None if config.tls is None else config.tls[0]
        forwarder = Forwarder(platform.node, cluster_tls(cert))
    app = create_app(
        platform,
        limits=config.limits,
        exposure=config.exposure,
        attestation=attestation,
        forwarder=forwarder,
        tls=config.tls,
    )
    service: Service = app.state.service
    return uvicorn_config(app, config, lifespan=True), service


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: the system picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def url_of(config: ServerConfig, sock: socket.socket) -> str:
    """The base URL a member uses to reach a server bound on ``sock``."""
    scheme = "https" if config.tls is not None else "http"
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{scheme}://{host}:{sock.getsockname()[1]}"


def serve(
    platform: Platform, config: ServerConfig, *, on_bound: Callable[[str], None] | None = None
) -> int:
    """Serve until SIGTERM or Ctrl-C; 0 after a clean, complete shutdown.

    The caller opened ``platform`` and closes it afterwards. ``on_bound`` hears the URL once
    the server takes connections (with ``port=0`` that is the only way to learn the port).
    """
    sock = bind(config.host, config.port)
    try:
        uv, service = _uvicorn_config(platform, config)
        url = url_of(config, sock)
        platform.advertise(config.advertise or url)
        server = _Server(uv, service, None if on_bound is None else lambda: on_bound(url))
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0 if server.started else 1


class ServerThread:
    """The server in a background thread of this process, on a socket it has already bound.

    For tests and embedding: ``url`` is known at once, and :meth:`stop` always returns with
    the thread ended, so nothing keeps running after the caller is done.
    """

    def __init__(self, platform: Platform, config: ServerConfig | None = None) -> None:
        config = config or ServerConfig(port=0)
        self.sock = bind(config.host, config.port)
        self.port: int = self.sock.getsockname()[1]
        self.url = url_of(config, self.sock)
        platform.advertise(config.advertise or self.url)
        uv, self.service = _uvicorn_config(platform, config)
        self.server = _Server(uv, self.service)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self, timeout: float = 30.0) -> ServerThread:
        """Start, and wait until the server accepts connections."""
        self.thread.start()
        ready = threading.Event()

        def poll() -> None:
            while not self.server.started and self.thread.is_alive():
                ready.wait(0.01)
            ready.set()

        poll_thread = threading.Thread(target=poll, daemon=True)
        poll_thread.start()
        ready.wait(timeout)
        if not self.server.started:
            self.stop()
            raise RuntimeError("the server did not start")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (as SIGTERM), then wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
