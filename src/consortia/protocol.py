"""Member-side messages of the wire protocol (PROTOCOL.md), for in-process use and the SDK.

Pure builders and openers: they take keys, a time and (optionally) a nonce, and return the
exact compact strings a member sends. Nothing here talks to a platform.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Final

from consortia._json import JSON, JSONObject, canonical, loads_strict
from consortia.errors import BadRequest
from consortia.identity.box import open_box
from consortia.identity.jws import sign_compact
from consortia.identity.keys import MemberKeys, PublicEncryptionKey, SigningKey

__all__ = [
    "ACTION_TYP",
    "CREATE_TYP",
    "IAT_WINDOW",
    "JOSE_MEDIA_TYPE",
    "KEY_PROOF_TYP",
    "new_nonce",
    "open_notification",
    "sign_action",
    "sign_creation",
    "sign_key_proof",
    "sign_operator_token",
]

# The wire's constants, one home for both sides (PROTOCOL.md, docs/protocol-notes.md).
#: ``typ`` of an executeAction JWS.
ACTION_TYP: Final = "consortia-action"
#: ``typ`` of the operator's consortium-creation request.
CREATE_TYP: Final = "consortia-create"
#: ``typ`` of a new key's proof of possession (refreshTrustKeys).
KEY_PROOF_TYP: Final = "consortia-key-proof"
#: Media type of a body that is a compact JWS or JWE.
JOSE_MEDIA_TYPE: Final = "application/jose"
#: Seconds a request's (or a key proof's) ``iat`` may differ from the server's clock.
IAT_WINDOW: Final = 300


def new_nonce() -> str:
    """A fresh 32-character nonce."""
    return secrets.token_hex(16)


def sign_action(
    keys: MemberKeys,
    *,
    consortium: str,
    action: str,
    params: JSONObject,
    now: int,
    visible_to: Sequence[str] = (),
    txref: str | None = None,
    nonce: str | None = None,
) -> str:
    """An executeAction request (PROTOCOL.md section 2) as a compact JWS."""
    payload: JSONObject = {
        "consortium": consortium,
        "member": keys.member_id,
        "action": action,
        "params": params,
        "visible_to": list(visible_to),
        "nonce": nonce or new_nonce(),
        "iat": now,
    }
    if txref is not None:
        payload["txref"] = txref
    return sign_compact(canonical(payload), keys.signing, kid=keys.member_id, typ=ACTION_TYP)


def sign_creation(
    operator: SigningKey,
    *,
    consortium: str,
    name: str,
    members: Sequence[JSONObject],
    now: int,
    template: str = "default",
    nonce: str | None = None,
) -> str:
    """A consortium-creation request (PROTOCOL.md section 8), signed by the operator key."""
    payload: JSONObject = {
        "consortium": consortium,
        "name": name,
        "template": template,
        "members": list(members),
        "nonce": nonce or new_nonce(),
        "iat": now,
    }
    return sign_compact(canonical(payload), operator, kid="operator", typ=CREATE_TYP)


def sign_key_proof(new_key: SigningKey, *, member: str, consortium: str, now: int) -> str:
    """The refreshTrustKeys proof of possession: a JWS by the *new* key."""
    payload: JSONObject = {"member": member, "consortium": consortium, "iat": now}
    return sign_compact(canonical(payload), new_key, kid=member, typ=KEY_PROOF_TYP)


def open_notification(data: JSONObject, keys: MemberKeys, service_key: PublicEncryptionKey) -> JSON:
    """Open a notification's ``sealed`` body (PROTOCOL.md section 5) with the member's key."""
    sealed = data.get("sealed")
    if not isinstance(sealed, str):
        raise BadRequest("notification has no sealed body")
    return loads_strict(open_box(sealed, keys.encryption, service_key), what="notification body")


def sign_operator_token(
    operator: SigningKey, *, audience: str, now: int, lifetime: int = 300
) -> str:
    """A bearer JWT by the operator key (``kid`` and ``iss`` "operator") for ``audience``,
    e.g. ``metrics`` for ``GET /metrics``; valid ``lifetime`` s from ``now`` (at most 600)."""
    if not 0 < lifetime <= 600:
        raise BadRequest(f"an operator token lives 1-600 s, not {lifetime}")
    claims: JSONObject = {
        "iss": "operator",
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_hex(16),
    }
    return sign_compact(canonical(claims), operator, kid="operator", typ="JWT")
