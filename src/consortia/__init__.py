"""Consortia: a Trusted Execution Platform for consortium business processes.

The public Python API. Everything else lives in subpackages whose layering is described in
ARCHITECTURE.md and enforced by import-linter.
"""

from consortia.engine import Committed, Created, MemberView, Pending, Platform
from consortia.errors import ConsortiaError
from consortia.identity.keys import MemberKeys, SigningKey, VerifyKey
from consortia.protocol import open_notification, sign_action, sign_creation, sign_key_proof

__version__ = "0.1.0"

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
