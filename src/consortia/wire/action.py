"""The executeAction request (PROTOCOL.md section 2), both sides.

A member signs :func:`sign_action`; the server parses it with :func:`parse_action_request`
into an :class:`ActionRequest` for the consortium the body was posted to. Parsing trusts
nothing and checks no signature: authentication is the engine's next step, once the
member's key is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consortia._json import JSONObject, canonical, loads_strict, require_fields
from consortia.errors import BadRequest
from consortia.identity.jws import ParsedJWS, sign_compact
from consortia.identity.keys import MemberKeys, validate_audience_entry, validate_member_id
from consortia.wire.envelope import ACTION_TYP, check_iat, check_nonce, new_nonce

__all__ = ["ActionRequest", "parse_action_request", "sign_action"]

_MAX_TXREF = 128
_MAX_VISIBLE = 256


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


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A parsed executeAction request (signature not yet verified)."""

    jws: ParsedJWS
    txid: str
    consortium: str
    member: str
    action: str
    params: JSONObject
    visible_to: tuple[str, ...]
    txref: str | None
    nonce: str
    iat: int


def parse_action_request(jws: ParsedJWS, cid: str) -> ActionRequest:
    """Check the payload fields of PROTOCOL.md section 2 for consortium ``cid``."""
    if jws.typ != ACTION_TYP:
        raise BadRequest(f"JWS header typ must be {ACTION_TYP!r}, got {jws.typ!r}")
    payload = require_fields(
        loads_strict(jws.payload, what="JWS payload"),
        what="request payload",
        required=("consortium", "member", "action", "params", "visible_to", "nonce", "iat"),
        optional=("txref",),
        error=BadRequest,
    )
    consortium = payload["consortium"]
    if consortium != cid:
        raise BadRequest(f"payload consortium is {consortium!r} but the request went to {cid!r}")
    member = validate_member_id(payload["member"], what="payload member")
    if member != jws.kid:
        raise BadRequest(f"payload member {member!r} differs from JWS kid {jws.kid!r}")
    action = payload["action"]
    if not isinstance(action, str) or not action:
        raise BadRequest("action must be a non-empty string")
    params = payload["params"]
    if not isinstance(params, dict):
        raise BadRequest("params must be a JSON object")
    raw_visible = payload["visible_to"]
    if not isinstance(raw_visible, list) or len(raw_visible) > _MAX_VISIBLE:
        raise BadRequest(
            f"visible_to must be a list of at most {_MAX_VISIBLE} member ids or role:NAME entries"
        )
    visible = tuple(
        sorted(
            {validate_audience_entry(v, what=f"visible_to[{i}]") for i, v in enumerate(raw_visible)}
        )
    )
    txref = payload.get("txref")
    if txref is not None and (not isinstance(txref, str) or len(txref) > _MAX_TXREF):
        raise BadRequest(f"txref must be a string of at most {_MAX_TXREF} characters")
    return ActionRequest(
        jws=jws,
        txid=jws.txid,
        consortium=cid,
        member=member,
        action=action,
        params=params,
        visible_to=visible,
        txref=txref,
        nonce=check_nonce(payload["nonce"]),
        iat=check_iat(payload["iat"]),
    )
