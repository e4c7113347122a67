"""Reading constitution pieces from untrusted JSON (action parameters, stored records).

Each parser names the offending field and what was expected. Parameters of base actions are
the action's own validation, so the default error is ``action_failed``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from consortia._json import JSON, JSONObject, require_fields
from consortia.errors import ActionFailed, ConsortiaError
from consortia.governance.constitution import (
    BUDGET_LIMITS,
    ROLE_PREFIX,
    ActionDefinition,
    Member,
    MemberStatus,
    Permission,
    Scope,
    VotingSchema,
)
from consortia.governance.params_schema import check_schema
from consortia.identity.keys import (
    PublicEncryptionKey,
    VerifyKey,
    validate_audience_entry,
    validate_member_id,
    validate_role,
)

if TYPE_CHECKING:
    from consortia.governance.voting import Proposal

__all__ = [
    "MAX_CODE_BYTES",
    "parse_action_definition",
    "parse_action_name",
    "parse_audience_entry",
    "parse_budget",
    "parse_member",
    "parse_permissions",
    "parse_proposal",
    "parse_role",
    "parse_roles",
    "parse_voting",
]

#: Largest action code accepted by amendConstitution.
MAX_CODE_BYTES = 256 * 1024
_ACTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: Most roles one member may hold.
MAX_ROLES = 16
_ErrorType = type[ConsortiaError]


def _str(obj: JSONObject, key: str, what: str, error: _ErrorType) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise error(f"{what}.{key} must be a string")
    return value


def _member_id(value: JSON, what: str, error: _ErrorType) -> str:
    try:
        return validate_member_id(value, what=what)
    except ConsortiaError as exc:
        raise error(exc.message) from None


def _time(value: JSON, what: str, error: _ErrorType) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise error(f"{what} must be a NumericDate (non-negative integer seconds) or null")
    return value


def parse_action_name(value: JSON, *, what: str, error: _ErrorType = ActionFailed) -> str:
    """An action name: a letter then up to 63 letters, digits or underscores."""
    if not isinstance(value, str) or not _ACTION_NAME.match(value):
        raise error(f"{what} must be an action name like 'placeOrder' (letters, digits, _)")
    return value


def parse_role(value: JSON, *, what: str, error: _ErrorType = ActionFailed) -> str:
    """A role name such as ``supplier``: a letter, then up to 31 of ``A-Za-z0-9_-``."""
    try:
        return validate_role(value, what=what)
    except ConsortiaError as exc:
        raise error(exc.message) from None


def parse_roles(
    value: JSON, *, what: str = "roles", error: _ErrorType = ActionFailed
) -> tuple[str, ...]:
    """A member's roles: a list of at most :data:`MAX_ROLES` role names (sorted, distinct)."""
    if not isinstance(value, list) or len(value) > MAX_ROLES:
        raise error(f"{what} must be a list of at most {MAX_ROLES} role names")
    roles = {parse_role(item, what=f"{what}[{i}]", error=error) for i, item in enumerate(value)}
    return tuple(sorted(roles))


def parse_audience_entry(value: JSON, *, what: str, error: _ErrorType = ActionFailed) -> str:
    """One ``visible_to`` or voter entry: a member id, or ``role:NAME`` for a role's holders."""
    try:
        return validate_audience_entry(value, what=what)
    except ConsortiaError as exc:
        raise error(exc.message) from None


def parse_permissions(
    value: JSON, *, what: str = "permissions", error: _ErrorType = ActionFailed
) -> tuple[Permission, ...]:
    """A permission list: ``[{"member" | "role", "execute", "valid_from"?, "valid_to"?}]``.

    Each entry names one member (``member``) or every holder of a role (``role``), not both.
    """
    if not isinstance(value, list):
        raise error(f"{what} must be a list of permission entries")
    out: list[Permission] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"{what}[{index}]"
        if isinstance(item, dict) and "role" in item and "member" not in item:
            entry = require_fields(
                item,
                what=where,
                required=("role", "execute"),
                optional=("valid_from", "valid_to"),
                error=error,
            )
            role = parse_role(entry["role"], what=f"{where}.role", error=error)
            member = ROLE_PREFIX + role
            if member in seen:
                raise error(f"{where}: role {role!r} appears twice in the permission list")
        else:
            if isinstance(item, dict) and "role" in item:
                raise error(f"{where} names a member and a role: give one of the two")
            entry = require_fields(
                item,
                what=where,
                required=("member", "execute"),
                optional=("valid_from", "valid_to"),
                error=error,
            )
            member = _member_id(entry["member"], f"{where}.member", error)
            if member in seen:
                raise error(f"{where}: member {member!r} appears twice in the permission list")
        seen.add(member)
        execute = entry["execute"]
        if not isinstance(execute, bool):
            raise error(f"{where}.execute must be true or false")
        valid_from = _time(entry.get("valid_from"), f"{where}.valid_from", error)
        valid_to = _time(entry.get("valid_to"), f"{where}.valid_to", error)
        if valid_from is not None and valid_to is not None and valid_to <= valid_from:
            raise error(f"{where}: valid_to ({valid_to}) must be after valid_from ({valid_from})")
        out.append(Permission(member, execute, valid_from, valid_to))
    return tuple(out)


def parse_voting(
    value: JSON, *, what: str = "voting", error: _ErrorType = ActionFailed
) -> VotingSchema:
    """A voting schema: ``{"voters": "any"|"all"|[ids], "majority": int, "veto": [ids]}``."""
    obj = require_fields(
        value, what=what, required=("voters", "majority"), optional=("veto",), error=error
    )
    voters_raw = obj["voters"]
    voters: Literal["any", "all"] | tuple[str, ...]
    if voters_raw == "any":
        voters = "any"
    elif voters_raw == "all":
        voters = "all"
    elif isinstance(voters_raw, list) and voters_raw:
        ids = [
            parse_audience_entry(v, what=f"{what}.voters[{i}]", error=error)
            for i, v in enumerate(voters_raw)
        ]
        if len(set(ids)) != len(ids):
            raise error(f"{what}.voters lists a member or role twice")
        voters = tuple(ids)
    else:
        raise error(
            f"{what}.voters must be 'any', 'all' or a non-empty list of member ids and "
            "role:NAME entries"
        )
    majority = obj["majority"]
    if isinstance(majority, bool) or not isinstance(majority, int) or majority < 1:
        raise error(f"{what}.majority must be an integer of at least 1")
    named_only = isinstance(voters, tuple) and not any(v.startswith(ROLE_PREFIX) for v in voters)
    if isinstance(voters, tuple) and named_only and majority > len(voters):
        raise error(
            f"{what}.majority {majority} can never be reached by {len(voters)} listed voters"
        )
    veto_raw = obj.get("veto", [])
    if veto_raw is None:
        veto_raw = []
    if not isinstance(veto_raw, list):
        raise error(f"{what}.veto must be a list of member ids and role:NAME entries")
    veto = tuple(
        parse_audience_entry(v, what=f"{what}.veto[{i}]", error=error)
        for i, v in enumerate(veto_raw)
    )
    if len(set(veto)) != len(veto):
        raise error(f"{what}.veto lists a member or role twice")
    return VotingSchema(voters, majority, veto)


def parse_action_definition(
    value: JSON, *, what: str = "params", error: _ErrorType = ActionFailed
) -> ActionDefinition:
    """An amendConstitution definition (the code is stored verbatim)."""
    obj = require_fields(
        value,
        what=what,
        required=("name", "scope", "language", "permissions", "voting"),
        optional=("code", "replace_self", "budget", "params_schema"),
        error=error,
    )
    name = parse_action_name(obj["name"], what=f"{what}.name", error=error)
    scope_raw = obj["scope"]
    if scope_raw not in ("public", "internal"):
        raise error(f"{what}.scope must be 'public' or 'internal', got {scope_raw!r}")
    scope: Scope = "public" if scope_raw == "public" else "internal"
    language = obj["language"]
    code = obj.get("code")
    budget = parse_budget(obj.get("budget"), what=f"{what}.budget", error=error)
    if language == "builtin":
        if code is not None:
            raise error(f"{what}.code must be absent for a builtin action")
        if budget is not None:
            raise error(f"{what}.budget applies to Starlark code; a builtin action has none")
        if obj.get("params_schema") is not None:
            raise error(
                f"{what}.params_schema applies to Starlark actions; a builtin checks its own"
            )
        return ActionDefinition(
            name,
            scope,
            "builtin",
            None,
            parse_permissions(obj["permissions"], what=f"{what}.permissions", error=error),
            parse_voting(obj["voting"], what=f"{what}.voting", error=error),
        )
    if language != "starlark":
        raise error(f"{what}.language must be 'starlark', got {language!r}")
    if not isinstance(code, str) or not code.strip():
        raise error(f"{what}.code must be the action's Starlark source")
    if len(code.encode("utf-8")) > MAX_CODE_BYTES:
        raise error(f"{what}.code is larger than {MAX_CODE_BYTES} bytes")
    return ActionDefinition(
        name,
        scope,
        "starlark",
        code,
        parse_permissions(obj["permissions"], what=f"{what}.permissions", error=error),
        parse_voting(obj["voting"], what=f"{what}.voting", error=error),
        budget,
        None
        if obj.get("params_schema") is None
        else check_schema(obj["params_schema"], what=f"{what}.params_schema", error=error),
    )


def parse_budget(
    value: JSON, *, what: str = "budget", error: _ErrorType = ActionFailed
) -> dict[str, int] | None:
    """An action's sandbox budget: some of :data:`BUDGET_LIMITS`' fields, each within range."""
    if value is None:
        return None
    obj = require_fields(value, what=what, required=(), optional=BUDGET_LIMITS, error=error)
    out: dict[str, int] = {}
    for name, raw in obj.items():
        least = 0 if name == "max_call_depth" else 1
        ceiling = BUDGET_LIMITS[name]
        if isinstance(raw, bool) or not isinstance(raw, int) or not least <= raw <= ceiling:
            raise error(f"{what}.{name} must be an integer from {least} to {ceiling}")
        out[name] = raw
    return out


def parse_member(value: JSON, *, what: str = "member", error: _ErrorType = ActionFailed) -> Member:
    """A member as addMember and genesis give it: id, public JWKs, info, roles.

    Without ``roles``, a string ``info.role`` (how founders' roles were given before roles
    were the constitution's own) is the member's one role.
    """
    obj = require_fields(
        value,
        what=what,
        required=("id", "signing_key", "encryption_key"),
        optional=("info", "status", "roles"),
        error=error,
    )
    member_id = _member_id(obj["id"], f"{what}.id", error)
    try:
        signing = VerifyKey.from_jwk(obj["signing_key"])
        encryption = PublicEncryptionKey.from_jwk(obj["encryption_key"])
    except ConsortiaError as exc:
        raise error(f"{what}: {exc.message}") from None
    info = obj.get("info", {})
    if not isinstance(info, dict):
        raise error(f"{what}.info must be a JSON object")
    status_raw = obj.get("status", "active")
    try:
        status = MemberStatus(str(status_raw))
    except ValueError:
        raise error(f"{what}.status must be active, suspended or removed") from None
    if "roles" in obj:
        roles = parse_roles(obj["roles"], what=f"{what}.roles", error=error)
    elif isinstance(info.get("role"), str):
        roles = (parse_role(info["role"], what=f"{what}.info.role", error=error),)
    else:
        roles = ()
    return Member(member_id, signing, encryption, info, status, roles)


def parse_proposal(value: JSON) -> Proposal:
    """A stored proposal (after decryption); raises ValueError saying what is wrong."""
    from consortia.governance.voting import Ballot, Proposal, ProposalStatus

    if not isinstance(value, dict):
        raise ValueError("stored proposal is not an object")
    try:
        ballots_raw = value["ballots"]
        params = value["params"]
        visible = value["visible_to"]
        audience = value["audience"]
        if not isinstance(ballots_raw, list) or not isinstance(params, dict):
            raise ValueError("stored proposal ballots/params are ill-typed")
        if not isinstance(visible, list):
            raise ValueError("stored proposal visible_to is ill-typed")
        ballots = []
        for b in ballots_raw:
            if not isinstance(b, dict):
                raise ValueError("stored ballot is not an object")
            if b["ballot"] not in ("approve", "reject"):
                raise ValueError(f"stored ballot is {b['ballot']!r}")
            ballots.append(Ballot(str(b["member"]), b["ballot"] == "approve", str(b["txid"])))
        created_at, seqno = value["created_at"], value["seqno"]
        if (
            isinstance(created_at, bool)
            or not isinstance(created_at, int)
            or not (seqno is None or isinstance(seqno, int))
        ):
            raise ValueError("stored proposal times are ill-typed")
        txref, error = value["txref"], value["error"]
        return Proposal(
            id=str(value["proposal"]),
            action=str(value["action"]),
            requester=str(value["requester"]),
            request=str(value["request"]),
            params=params,
            visible_to=tuple(str(v) for v in visible),
            txref=None if txref is None else str(txref),
            audience=None if audience == "*" else tuple(str(a) for a in _list(audience)),
            created_at=created_at,
            ballots=tuple(ballots),
            status=ProposalStatus(str(value["status"])),
            reason=str(value["reason"]),
            seqno=seqno,
            error=None if error is None else str(error),
        )
    except KeyError as exc:
        raise ValueError(f"stored proposal lacks {exc.args[0]!r}") from None


def _list(value: JSON) -> list[JSON]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value
