"""The consortium-creation request (PROTOCOL.md section 8), both sides.

The platform operator signs :func:`sign_creation` with an operator key (``kid``
"operator"); the server parses it with :func:`parse_operator_request`. The founding
members' entries are checked by the engine when it builds the genesis constitution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consortia._json import JSONObject, canonical, loads_strict, require_fields
from consortia.errors import BadRequest
from consortia.identity.jws import ParsedJWS, sign_compact
from consortia.identity.keys import SigningKey, validate_member_id
from consortia.wire.envelope import CREATE_TYP, check_iat, check_nonce, new_nonce

__all__ = ["OperatorRequest", "parse_operator_request", "sign_creation"]


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


@dataclass(frozen=True, slots=True)
class OperatorRequest:
    """A parsed consortium-creation request (PROTOCOL.md section 8)."""

    jws: ParsedJWS
    txid: str
    consortium: str
    name: str
    template: str
    members: list[JSONObject]
    nonce: str
    iat: int


def parse_operator_request(jws: ParsedJWS) -> OperatorRequest:
    """Check the payload of a consortium-creation request (PROTOCOL.md section 8)."""
    if jws.kid != "operator":
        raise BadRequest(f"consortium creation must be signed with kid 'operator', not {jws.kid!r}")
    if jws.typ != CREATE_TYP:
        # An operator-signed JWS of another kind (a token, a key proof) is never a creation.
        raise BadRequest(
            f"consortium creation needs JWS header typ {CREATE_TYP!r}, got {jws.typ!r}"
        )
    payload = require_fields(
        loads_strict(jws.payload, what="JWS payload"),
        what="creation payload",
        required=("consortium", "name", "template", "members", "nonce", "iat"),
        error=BadRequest,
    )
    cid = validate_member_id(payload["consortium"], what="consortium id")
    name, template, members = payload["name"], payload["template"], payload["members"]
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise BadRequest("name must be a string of 1-200 characters")
    if not isinstance(template, str):
        raise BadRequest("template must be a string")
    if not isinstance(members, list) or not members or len(members) > 1000:
        raise BadRequest("members must be a non-empty list of founding members")
    founders: list[JSONObject] = []
    for index, item in enumerate(members):
        if not isinstance(item, dict):
            raise BadRequest(f"members[{index}] must be an object")
        founders.append(item)
    return OperatorRequest(
        jws=jws,
        txid=jws.txid,
        consortium=cid,
        name=name,
        template=template,
        members=founders,
        nonce=check_nonce(payload["nonce"]),
        iat=check_iat(payload["iat"]),
    )
