"""The wire protocol (docs/protocol-notes.md): one module per message, both sides of each.

==================  ========================================================================
``envelope``        the constants (``typ`` values, media type, iat window, body cap), the
                    JWS/JWE envelope of a body, nonces
``action``          executeAction: :func:`sign_action` (member) and
                    :func:`parse_action_request` (server)
``creation``        consortium creation: :func:`sign_creation` (operator) and
                    :func:`parse_operator_request` (server)
``batch``           batched submission: :func:`batch_body` (member) and
                    :func:`parse_batch_body` (server)
``outcomes``        the answers: ``Committed`` (200), ``Pending`` (202), ``Created`` (201)
``notification``    a queue entry: :func:`seal_notice` (server) and
                    :func:`open_notification` (member), the ``vote_result`` body
``tokens``          key proofs (refreshTrustKeys) and operator bearer tokens
==================  ========================================================================

Pure: keys, times and nonces are parameters (a fresh nonce is drawn only when none is
given). Nothing here talks to a platform or to storage; the member SDK, the server and the
engine all build on it.
"""

from consortia.wire.action import ActionRequest, parse_action_request, sign_action
from consortia.wire.batch import (
    BATCH_MEDIA_TYPE,
    MAX_BATCH_REQUESTS,
    batch_body,
    parse_batch_body,
)
from consortia.wire.creation import OperatorRequest, parse_operator_request, sign_creation
from consortia.wire.envelope import (
    ACTION_TYP,
    CREATE_TYP,
    IAT_WINDOW,
    JOSE_MEDIA_TYPE,
    KEY_PROOF_TYP,
    MAX_BODY_BYTES,
    new_nonce,
    unwrap_body,
)
from consortia.wire.notification import KINDS, Notice, open_notification, seal_notice
from consortia.wire.outcomes import Committed, Created, Outcome, Pending
from consortia.wire.tokens import MEMBERSHIPS_AUDIENCE, sign_key_proof, sign_operator_token

__all__ = [
    "ACTION_TYP",
    "BATCH_MEDIA_TYPE",
    "CREATE_TYP",
    "IAT_WINDOW",
    "JOSE_MEDIA_TYPE",
    "KEY_PROOF_TYP",
    "KINDS",
    "MAX_BATCH_REQUESTS",
    "MAX_BODY_BYTES",
    "MEMBERSHIPS_AUDIENCE",
    "ActionRequest",
    "Committed",
    "Created",
    "Notice",
    "OperatorRequest",
    "Outcome",
    "Pending",
    "batch_body",
    "new_nonce",
    "open_notification",
    "parse_action_request",
    "parse_batch_body",
    "parse_operator_request",
    "seal_notice",
    "sign_action",
    "sign_creation",
    "sign_key_proof",
    "sign_operator_token",
    "unwrap_body",
]
