"""What members and the operator sign besides requests: key proofs and operator tokens.

A ``refreshTrustKeys`` carries a proof of possession signed by the *new* key
(:func:`sign_key_proof`, ``typ`` ``consortia-key-proof``); operator endpoints such as
``GET /metrics`` take a bearer JWT by an operator key (:func:`sign_operator_token`).
Member read tokens are :func:`consortia.identity.jwt.sign_token`.
"""

from __future__ import annotations

import secrets

from consortia._json import JSONObject, canonical
from consortia.errors import BadRequest
from consortia.identity.jws import sign_compact
from consortia.identity.keys import SigningKey
from consortia.wire.envelope import KEY_PROOF_TYP

__all__ = ["MEMBERSHIPS_AUDIENCE", "sign_key_proof", "sign_operator_token"]

#: The ``aud`` of a member token that asks which consortia it belongs to
#: (``GET /v1/consortia``); every other member token names its consortium.
MEMBERSHIPS_AUDIENCE = "consortia"


def sign_key_proof(new_key: SigningKey, *, member: str, consortium: str, now: int) -> str:
    """The refreshTrustKeys proof of possession: a JWS by the *new* key."""
    payload: JSONObject = {"member": member, "consortium": consortium, "iat": now}
    return sign_compact(canonical(payload), new_key, kid=member, typ=KEY_PROOF_TYP)


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
