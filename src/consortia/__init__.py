"""Consortia: a Trusted Execution Platform for consortium business processes.

The public Python API. Everything else lives in subpackages whose layering is described in
docs/architecture.md and enforced by import-linter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consortia.errors import ConsortiaError
from consortia.identity.keys import MemberKeys, SigningKey, VerifyKey
from consortia.wire import open_notification, sign_action, sign_creation, sign_key_proof

if TYPE_CHECKING:
    from consortia.engine import Committed, Created, MemberView, Pending, Platform

__version__ = "0.1.0"

#: The engine's names load on first use, so a member (``import consortia.client``) never
#: pays for the engine, the ledger store, the sandbox or the analytics sink.
_ENGINE_NAMES = frozenset({"Committed", "Created", "MemberView", "Pending", "Platform"})


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        from consortia import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'consortia' has no attribute {name!r}")


__all__ = [
    "Committed",
    "ConsortiaError",
    "Created",
    "MemberKeys",
    "MemberView",
    "Pending",
    "Platform",
    "SigningKey",
    "VerifyKey",
    "__version__",
    "open_notification",
    "sign_action",
    "sign_creation",
    "sign_key_proof",
]
