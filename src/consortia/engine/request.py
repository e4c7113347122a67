"""Step 1 of the pipeline: parse an executeAction body into a checked request.

Accepts a compact JWS, or a compact JWE (ECDH-ES, A256GCM) to the service's X25519 key that
wraps one (PROTOCOL.md section 2). Nothing here trusts the signature yet: authentication is
step 2, in the engine, once the member's key is known.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from consortia._json import JSONObject, loads_strict
from consortia.errors import BadRequest
from consortia.governance.parse import require_fields
from consortia.identity.jwe import decrypt_compact, is_jwe
from consortia.identity.jws import ParsedJWS, parse_compact
from consortia.identity.keys import EncryptionKey, validate_member_id
from consortia.protocol import ACTION_TYP, CREATE_TYP

__all__ = [
    "ACTION_TYP",
    "CREATE_TYP",
    "MAX_BODY_BYTES",
    "ActionRequest",
    "OperatorRequest",
    "operator_nonce_name",
    "parse_action_request",
    "parse_operator_request",
    "unwrap_body",
]

#: Largest executeAction body accepted (JWS or JWE), before any parsing.
MAX_BODY_BYTES = 1_048_576
_NONCE = re.compile(r"^[\x21-\x7e]{16,64}$")
_MAX_TXREF = 128
_MAX_VISIBLE = 256


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


def unwrap_body(body: str | bytes, service_key: EncryptionKey) -> ParsedJWS:
    """The JWS of a body that is a JWS, or a JWE wrapping one."""
    if isinstance(body, bytes):
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            body = body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise BadRequest("request body must be a compact JWS or JWE (ASCII)") from None
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"request body is {len(body)} characters; the limit is {MAX_BODY_BYTES}")
    if is_jwe(body):
        inner = decrypt_compact(body, service_key, max_length=MAX_BODY_BYTES)
        return parse_compact(inner, max_length=MAX_BODY_BYTES)
    return parse_compact(body, max_length=MAX_BODY_BYTES)


def _nonce(value: object) -> str:
    if not isinstance(value, str) or not _NONCE.match(value):
        raise BadRequest("nonce must be a string of 16-64 printable ASCII characters")
    return value


def _iat(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("iat must be an integer NumericDate (seconds since the epoch)")
    return value


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
        raise BadRequest(f"visible_to must be a list of at most {_MAX_VISIBLE} member ids")
    visible = tuple(
        sorted({validate_member_id(v, what=f"visible_to[{i}]") for i, v in enumerate(raw_visible)})
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
        nonce=_nonce(payload["nonce"]),
        iat=_iat(payload["iat"]),
    )


def operator_nonce_name(key: bytes, nonce: str) -> str:
    """The platform-wide meta entry that marks an operator nonce used (its value is the
    creation's txid). Keyed (:meth:`ServiceIdentity.operator_nonce_key`; the node key in
    stores written before): storage learns no nonce."""
    digest = hmac.new(key, b"operator-nonce\x00" + nonce.encode(), hashlib.sha256)
    return "operator-nonce/" + digest.hexdigest()


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
        nonce=_nonce(payload["nonce"]),
        iat=_iat(payload["iat"]),
    )
