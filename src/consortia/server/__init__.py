"""The TEP over HTTP: the ASGI app of PROTOCOL.md and the process that serves it.

:func:`create_app` builds the app over an open :class:`~consortia.engine.Platform`;
:mod:`consortia.server.run` serves it with TLS and graceful shutdown (``consortia serve``).
"""

from consortia.server._attest import ServiceAttestation, running_platform
from consortia.server.app import Limits, Service, create_app

__all__ = ["Limits", "Service", "ServiceAttestation", "create_app", "running_platform"]
