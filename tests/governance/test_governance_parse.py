"""Parsing constitution pieces from untrusted JSON: valid input, every refusal, round trips."""

from __future__ import annotations

import json
import operator
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia._json import JSON, JSONObject, require_fields
from consortia.errors import ActionFailed, BadRequest, ConsortiaError
from consortia.governance import (
    ActionDefinition,
    Ballot,
    Member,
    MemberStatus,
    Permission,
    Proposal,
    ProposalStatus,
    VotingSchema,
)
from consortia.governance.parse import (
    MAX_CODE_BYTES,
    parse_action_definition,
    parse_member,
    parse_permissions,
    parse_proposal,
    parse_voting,
)
from consortia.identity.keys import EncryptionKey, SigningKey

_SIGNING = tuple(SigningKey.generate().verify_key for _ in range(3))
_ENCRYPTION = tuple(EncryptionKey.generate().public_key for _ in range(3))
CODE = "def main(params):\n    return {'ok': True}\n"
PROPERTY = settings(max_examples=100, deadline=None)


def refused(
    call: Any, value: Any, *fragments: str, error: type[ConsortiaError] = ActionFailed
) -> None:
    """``call(value)`` raises ``error`` (by default, and as ``error=``) naming each fragment."""
    with pytest.raises(ActionFailed) as info:
        call(value)
    assert info.value.code == "action_failed"
    for fragment in fragments:
        assert fragment in info.value.message, (fragment, info.value.message)
    with pytest.raises(error) as custom:
        call(value, error=error)
    assert type(custom.value) is error
    assert custom.value.message == info.value.message


# -- require_fields ---------------------------------------------------------------------------


def test_require_fields_returns_the_object() -> None:
    obj: JSONObject = {"a": 1, "b": 2}
    assert require_fields(obj, what="x", required=("a",), optional=("b",)) is obj
    assert require_fields({"a": None}, what="x", required=["a"]) == {"a": None}


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ([], ("thing must be a JSON object", "got list")),
        ("a", ("got str",)),
        (None, ("got NoneType",)),
        ({}, ("thing is missing 'a', 'b'",)),
        ({"b": 1}, ("thing is missing 'a'",)),
        ({"a": 1, "b": 2, "z": 3, "y": 4}, ("unknown field(s) 'y', 'z'", "expected a, b, c")),
    ],
)
def test_require_fields_refusals(value: JSON, fragments: tuple[str, ...]) -> None:
    def call(v: JSON, error: type[ConsortiaError] = ActionFailed) -> JSONObject:
        return require_fields(v, what="thing", required=("a", "b"), optional=("c",), error=error)

    refused(call, value, *fragments, error=BadRequest)


# -- permissions ------------------------------------------------------------------------------


def test_parse_permissions_valid() -> None:
    raw: JSON = [
        {"member": "M1", "execute": True},
        {"member": "M2", "execute": False, "valid_from": 10, "valid_to": 11},
        {"member": "m.3_x-Y", "execute": True, "valid_from": None, "valid_to": 0},
        {"member": "M4", "execute": True, "valid_from": 0},
    ]
    assert parse_permissions(raw) == (
        Permission("M1", True),
        Permission("M2", False, 10, 11),
        Permission("m.3_x-Y", True, None, 0),
        Permission("M4", True, 0, None),
    )
    assert parse_permissions([]) == ()


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ({}, ("permissions must be a list",)),
        ("M1", ("permissions must be a list",)),
        (None, ("permissions must be a list",)),
        ([1], ("permissions[0] must be a JSON object",)),
        ([{"member": "M1"}], ("permissions[0] is missing 'execute'",)),
        ([{"execute": True}], ("permissions[0] is missing 'member'",)),
        (
            [{"member": "M1", "execute": True}, {"member": "M2", "execute": True, "admin": 1}],
            ("permissions[1] has unknown field(s) 'admin'",),
        ),
        ([{"member": 7, "execute": True}], ("permissions[0].member", "got int")),
        ([{"member": "", "execute": True}], ("permissions[0].member", "not a valid member id")),
        ([{"member": "M 1", "execute": True}], ("permissions[0].member",)),
        ([{"member": "-M1", "execute": True}], ("permissions[0].member",)),
        ([{"member": "M1/..", "execute": True}], ("permissions[0].member",)),
        ([{"member": "é", "execute": True}], ("permissions[0].member",)),
        ([{"member": "M" * 65, "execute": True}], ("permissions[0].member",)),
        (
            [{"member": "M1", "execute": True}, {"member": "M1", "execute": False}],
            ("permissions[1]", "'M1' appears twice"),
        ),
        ([{"member": "M1", "execute": 1}], ("permissions[0].execute must be true or false",)),
        ([{"member": "M1", "execute": "true"}], ("permissions[0].execute",)),
        ([{"member": "M1", "execute": None}], ("permissions[0].execute",)),
        ([{"member": "M1", "execute": True, "valid_from": "10"}], ("permissions[0].valid_from",)),
        ([{"member": "M1", "execute": True, "valid_from": -1}], ("permissions[0].valid_from",)),
        ([{"member": "M1", "execute": True, "valid_from": 1.5}], ("permissions[0].valid_from",)),
        ([{"member": "M1", "execute": True, "valid_from": True}], ("NumericDate",)),
        ([{"member": "M1", "execute": True, "valid_to": False}], ("permissions[0].valid_to",)),
        ([{"member": "M1", "execute": True, "valid_to": [5]}], ("permissions[0].valid_to",)),
        (
            [{"member": "M1", "execute": True, "valid_from": 10, "valid_to": 10}],
            ("permissions[0]", "valid_to (10) must be after valid_from (10)"),
        ),
        (
            [{"member": "M1", "execute": True, "valid_from": 10, "valid_to": 9}],
            ("valid_to (9) must be after valid_from (10)",),
        ),
    ],
)
def test_parse_permissions_refusals(value: JSON, fragments: tuple[str, ...]) -> None:
    refused(parse_permissions, value, *fragments, error=BadRequest)


def test_parse_permissions_names_the_caller_field() -> None:
    with pytest.raises(ActionFailed, match=r"params\.permissions\[0\]\.execute"):
        parse_permissions([{"member": "M1", "execute": "x"}], what="params.permissions")


# -- voting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"voters": "any", "majority": 1}, VotingSchema("any", 1, ())),
        ({"voters": "all", "majority": 5, "veto": []}, VotingSchema("all", 5, ())),
        ({"voters": "all", "majority": 2, "veto": None}, VotingSchema("all", 2, ())),
        (
            {"voters": ["M1", "M2", "M3"], "majority": 3, "veto": ["M3", "M9"]},
            VotingSchema(("M1", "M2", "M3"), 3, ("M3", "M9")),
        ),
        ({"voters": ["M1"], "majority": 1, "veto": ["M1"]}, VotingSchema(("M1",), 1, ("M1",))),
    ],
)
def test_parse_voting_valid(value: JSON, expected: VotingSchema) -> None:
    assert parse_voting(value) == expected


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ([], ("voting must be a JSON object",)),
        ({"majority": 1}, ("voting is missing 'voters'",)),
        ({"voters": "any"}, ("voting is missing 'majority'",)),
        ({"voters": "any", "majority": 1, "quorum": 2}, ("unknown field(s) 'quorum'",)),
        ({"voters": "some", "majority": 1}, ("voting.voters must be 'any', 'all'",)),
        ({"voters": "ANY", "majority": 1}, ("voting.voters",)),
        ({"voters": [], "majority": 1}, ("non-empty list",)),
        ({"voters": None, "majority": 1}, ("voting.voters",)),
        ({"voters": {"M1": 1}, "majority": 1}, ("voting.voters",)),
        ({"voters": ["M1", 2], "majority": 1}, ("voting.voters[1]",)),
        ({"voters": ["M1", "not ok"], "majority": 1}, ("voting.voters[1]",)),
        ({"voters": ["M1", "M1"], "majority": 1}, ("voting.voters lists a member or role twice",)),
        ({"voters": "any", "majority": 0}, ("voting.majority must be an integer of at least 1",)),
        ({"voters": "any", "majority": -1}, ("voting.majority",)),
        ({"voters": "any", "majority": True}, ("voting.majority",)),
        ({"voters": "all", "majority": False}, ("voting.majority",)),
        ({"voters": "any", "majority": "2"}, ("voting.majority",)),
        ({"voters": "any", "majority": 1.0}, ("voting.majority",)),
        ({"voters": "any", "majority": None}, ("voting.majority",)),
        (
            {"voters": ["M1", "M2"], "majority": 3},
            ("voting.majority 3 can never be reached by 2 listed voters",),
        ),
        ({"voters": "any", "majority": 1, "veto": "M1"}, ("voting.veto must be a list",)),
        ({"voters": "any", "majority": 1, "veto": {}}, ("voting.veto must be a list",)),
        ({"voters": "any", "majority": 1, "veto": [None]}, ("voting.veto[0]",)),
        ({"voters": "any", "majority": 1, "veto": ["M1", "x y"]}, ("voting.veto[1]",)),
        ({"voters": "any", "majority": 1, "veto": ["M1", "M1"]}, ("voting.veto lists a member",)),
    ],
)
def test_parse_voting_refusals(value: JSON, fragments: tuple[str, ...]) -> None:
    refused(parse_voting, value, *fragments, error=BadRequest)


# -- action definitions -----------------------------------------------------------------------


def definition_json(**changes: JSON) -> JSONObject:
    base: JSONObject = {
        "name": "placeOrder",
        "scope": "public",
        "language": "starlark",
        "code": CODE,
        "permissions": [{"member": "M1", "execute": True, "valid_from": 5}],
        "voting": {"voters": ["M1", "M2"], "majority": 2, "veto": ["M2"]},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v != "<absent>"}


def test_parse_action_definition_starlark() -> None:
    assert parse_action_definition(definition_json()) == ActionDefinition(
        "placeOrder",
        "public",
        "starlark",
        CODE,
        (Permission("M1", True, 5),),
        VotingSchema(("M1", "M2"), 2, ("M2",)),
    )
    internal = parse_action_definition(
        definition_json(scope="internal", replace_self=True, name="a" * 64)
    )
    assert internal.scope == "internal" and internal.name == "a" * 64


def test_parse_action_definition_builtin() -> None:
    # Amending a base action keeps it builtin; the engine refuses builtin for new names.
    parsed = parse_action_definition(definition_json(language="builtin", code="<absent>"))
    assert (parsed.language, parsed.code) == ("builtin", None)
    nulled = parse_action_definition(definition_json(language="builtin", code=None))
    assert nulled == parsed


def test_code_is_stored_verbatim_up_to_the_limit() -> None:
    code = "#" * (MAX_CODE_BYTES - 1) + "\n"
    assert parse_action_definition(definition_json(code=code)).code == code
    weird = "  def main(p):\r\n\treturn 'é'  \n\n"
    assert parse_action_definition(definition_json(code=weird)).code == weird


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"name": "1st"}, ("params.name must be an action name",)),
        ({"name": ""}, ("params.name",)),
        ({"name": "place-order"}, ("params.name",)),
        ({"name": "place order"}, ("params.name",)),
        ({"name": "a" * 65}, ("params.name",)),
        ({"name": 5}, ("params.name",)),
        ({"name": "<absent>"}, ("params is missing 'name'",)),
        ({"scope": "private"}, ("params.scope must be 'public' or 'internal'", "'private'")),
        ({"scope": None}, ("params.scope",)),
        ({"scope": ["public"]}, ("params.scope",)),
        ({"language": "python"}, ("params.language must be 'starlark'", "'python'")),
        ({"language": "Starlark"}, ("params.language",)),
        ({"language": None}, ("params.language",)),
        ({"language": "<absent>"}, ("params is missing 'language'",)),
        ({"code": "<absent>"}, ("params.code must be the action's Starlark source",)),
        ({"code": None}, ("params.code",)),
        ({"code": ""}, ("params.code",)),
        ({"code": " \n\t "}, ("params.code",)),
        ({"code": 42}, ("params.code",)),
        ({"code": ["def main(p): pass"]}, ("params.code",)),
        ({"code": "#" * (MAX_CODE_BYTES + 1)}, ("params.code is larger than", str(MAX_CODE_BYTES))),
        # The limit is in UTF-8 bytes, not characters.
        ({"code": "é" * (MAX_CODE_BYTES // 2 + 1)}, ("params.code is larger than",)),
        ({"language": "builtin", "code": CODE}, ("params.code must be absent for a builtin",)),
        ({"permissions": {}}, ("params.permissions must be a list",)),
        ({"permissions": [{"member": "M1"}]}, ("params.permissions[0] is missing 'execute'",)),
        ({"permissions": "<absent>"}, ("params is missing 'permissions'",)),
        ({"voting": {"voters": "any", "majority": 0}}, ("params.voting.majority",)),
        ({"voting": None}, ("params.voting must be a JSON object",)),
        ({"voting": "<absent>"}, ("params is missing 'voting'",)),
        ({"owner": "M1"}, ("params has unknown field(s) 'owner'",)),
    ],
)
def test_parse_action_definition_refusals(
    changes: dict[str, JSON], fragments: tuple[str, ...]
) -> None:
    refused(parse_action_definition, definition_json(**changes), *fragments, error=BadRequest)


def test_parse_action_definition_refuses_a_non_object() -> None:
    refused(parse_action_definition, ["placeOrder"], "params must be a JSON object")


# -- members ----------------------------------------------------------------------------------


def member_json(**changes: JSON) -> JSONObject:
    base: JSONObject = {
        "id": "M1",
        "signing_key": dict(_SIGNING[0].to_jwk()),
        "encryption_key": dict(_ENCRYPTION[0].to_jwk()),
        "info": {"name": "Acme"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v != "<absent>"}


def test_parse_member_valid() -> None:
    parsed = parse_member(member_json())
    assert parsed == Member("M1", _SIGNING[0], _ENCRYPTION[0], {"name": "Acme"})
    assert parsed.status is MemberStatus.ACTIVE
    bare = parse_member(member_json(info="<absent>"))
    assert bare.info == {}
    removed = parse_member(member_json(status="removed"))
    assert removed.status is MemberStatus.REMOVED and not removed.active


@pytest.mark.parametrize("status", list(MemberStatus))
def test_parse_member_round_trip(status: MemberStatus) -> None:
    original = Member("Acme.Telco-1", _SIGNING[1], _ENCRYPTION[2], {"n": [1, {"x": None}]}, status)
    assert parse_member(original.to_json()) == original
    assert parse_member(json.loads(json.dumps(original.to_json()))) == original


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"id": "<absent>"}, ("member is missing 'id'",)),
        ({"signing_key": "<absent>"}, ("member is missing 'signing_key'",)),
        ({"encryption_key": "<absent>"}, ("member is missing 'encryption_key'",)),
        ({"role": "admin"}, ("member has unknown field(s) 'role'",)),
        ({"id": "M 1"}, ("member.id", "not a valid member id")),
        ({"id": "_M1"}, ("member.id",)),
        ({"id": 1}, ("member.id",)),
        ({"id": "M" * 65}, ("member.id",)),
        # Each key must be of its own kind: an X25519 key is no signing key, and vice versa.
        ({"signing_key": dict(_ENCRYPTION[0].to_jwk())}, ("member:",)),
        ({"encryption_key": dict(_SIGNING[0].to_jwk())}, ("member:",)),
        ({"signing_key": "not a jwk"}, ("member:",)),
        ({"signing_key": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}, ("member:",)),
        ({"info": []}, ("member.info must be a JSON object",)),
        ({"info": "Acme"}, ("member.info",)),
        ({"status": "gone"}, ("member.status must be active, suspended or removed",)),
        ({"status": "ACTIVE"}, ("member.status",)),
        ({"status": None}, ("member.status",)),
        ({"status": ["active"]}, ("member.status",)),
    ],
)
def test_parse_member_refusals(changes: dict[str, JSON], fragments: tuple[str, ...]) -> None:
    refused(parse_member, member_json(**changes), *fragments, error=BadRequest)


def test_parse_member_refuses_a_non_object() -> None:
    refused(parse_member, "M1", "member must be a JSON object")


# -- round trips (hypothesis) -----------------------------------------------------------------

_LETTERS = string.ascii_letters
_ALNUM = _LETTERS + string.digits
IDS = st.builds(operator.add, st.sampled_from(_ALNUM), st.text(_ALNUM + "._-", max_size=10))
TIMES = st.none() | st.integers(0, 2**53 - 1)


@st.composite
def permissions(draw: st.DrawFn) -> tuple[Permission, ...]:
    members = draw(st.lists(IDS, unique=True, max_size=6))
    out = []
    for m in members:
        start, end = draw(TIMES), draw(TIMES)
        if start is not None and end is not None and end <= start:
            start, end = end, start + 1 if start == end else start
        out.append(Permission(m, draw(st.booleans()), start, end))
    return tuple(out)


@st.composite
def voting_schemas(draw: st.DrawFn) -> VotingSchema:
    listed = draw(st.lists(IDS, unique=True, min_size=1, max_size=6))
    voters = draw(st.sampled_from(["any", "all", "list"]))
    veto = tuple(draw(st.lists(IDS, unique=True, max_size=3)))
    if voters == "list":
        return VotingSchema(tuple(listed), draw(st.integers(1, len(listed))), veto)
    majority = draw(st.integers(1, 2**31))
    return VotingSchema("any" if voters == "any" else "all", majority, veto)


NAMES = st.builds(operator.add, st.sampled_from(_LETTERS), st.text(_ALNUM + "_", max_size=63))


@st.composite
def definitions(draw: st.DrawFn) -> ActionDefinition:
    builtin = draw(st.booleans())
    code = None if builtin else draw(st.text(min_size=1).filter(str.strip))
    return ActionDefinition(
        draw(NAMES),
        draw(st.sampled_from(["public", "internal"])),
        "builtin" if builtin else "starlark",
        code,
        draw(permissions()),
        draw(voting_schemas()),
    )


@PROPERTY
@given(permissions())
def test_permissions_round_trip(entries: tuple[Permission, ...]) -> None:
    assert parse_permissions([p.to_json() for p in entries]) == entries


@PROPERTY
@given(voting_schemas())
def test_voting_round_trip(schema: VotingSchema) -> None:
    assert parse_voting(schema.to_json()) == schema


@PROPERTY
@given(definitions())
def test_action_definition_round_trip(definition: ActionDefinition) -> None:
    assert parse_action_definition(definition.to_json()) == definition
    through_json = json.loads(json.dumps(definition.to_json()))
    assert parse_action_definition(through_json) == definition


# -- proposals --------------------------------------------------------------------------------

JSON_VALUES: st.SearchStrategy[JSON] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    return Proposal(
        id=draw(st.text(min_size=1, max_size=12)),
        action=draw(NAMES),
        requester=draw(IDS),
        request=draw(st.text(max_size=40)),
        params=draw(st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=4)),
        visible_to=tuple(draw(st.lists(IDS, max_size=3))),
        txref=draw(st.none() | st.text(max_size=12)),
        audience=draw(st.none() | st.lists(IDS, max_size=3).map(tuple)),
        created_at=draw(st.integers(0, 2**53 - 1)),
        ballots=tuple(
            draw(
                st.lists(
                    st.builds(Ballot, IDS, st.booleans(), st.text(min_size=1, max_size=12)),
                    max_size=4,
                )
            )
        ),
        status=draw(st.sampled_from(ProposalStatus)),
        reason=draw(st.text(max_size=20)),
        seqno=draw(st.none() | st.integers(0, 2**53 - 1)),
        error=draw(st.none() | st.sampled_from(["action_failed", "budget_exceeded"])),
    )


@PROPERTY
@given(proposals())
def test_proposal_round_trip(proposal: Proposal) -> None:
    assert parse_proposal(proposal.to_stored()) == proposal
    assert parse_proposal(json.loads(json.dumps(proposal.to_stored()))) == proposal


def stored_proposal(**changes: JSON) -> JSONObject:
    p = Proposal(
        id="tx-1",
        action="addMember",
        requester="M1",
        request="h.p.s",
        params={"id": "M4"},
        visible_to=(),
        txref=None,
        audience=None,
        created_at=1,
        ballots=(Ballot("M2", True, "tx-2"),),
    )
    doc = p.to_stored()
    doc.update(changes)
    return {k: v for k, v in doc.items() if v != "<absent>"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "stored proposal is not an object"),
        (stored_proposal(ballots="<absent>"), "lacks 'ballots'"),
        (stored_proposal(request="<absent>"), "lacks 'request'"),
        (stored_proposal(status="<absent>"), "lacks 'status'"),
        (stored_proposal(ballots={}), "ballots/params are ill-typed"),
        (stored_proposal(params=[]), "ballots/params are ill-typed"),
        (stored_proposal(visible_to="M1"), "visible_to is ill-typed"),
        (stored_proposal(ballots=["approve"]), "stored ballot is not an object"),
        (stored_proposal(ballots=[{"member": "M2", "ballot": "approve"}]), "lacks 'txid'"),
        (stored_proposal(created_at="1"), "times are ill-typed"),
        (stored_proposal(seqno="7"), "times are ill-typed"),
        (stored_proposal(audience="M1"), "expected a list"),
        (stored_proposal(status="pending"), "pending"),
    ],
)
def test_parse_proposal_refusals(value: JSON, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_proposal(value)
