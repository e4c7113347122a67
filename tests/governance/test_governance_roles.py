"""Roles in the constitution: parsing, permissions by role, audiences and votes by role."""

from __future__ import annotations

import dataclasses

import pytest

from consortia.errors import ActionFailed, BadRequest, PermissionDenied
from consortia.governance import (
    ActionDefinition,
    Ballot,
    Constitution,
    Decision,
    Member,
    MemberStatus,
    Permission,
    VotingSchema,
    electorate,
    tally,
)
from consortia.governance.parse import (
    parse_member,
    parse_permissions,
    parse_roles,
    parse_voting,
)
from consortia.governance.voting import vetoers
from consortia.identity.keys import EncryptionKey, MemberKeys, SigningKey, validate_audience_entry
from testkit import js


def _member(mid: str, *roles: str, status: MemberStatus = MemberStatus.ACTIVE) -> Member:
    return Member(
        mid,
        SigningKey.generate().verify_key,
        EncryptionKey.generate().public_key,
        {},
        status,
        tuple(sorted(roles)),
    )


def _constitution(*members: Member, permissions: tuple[Permission, ...] = ()) -> Constitution:
    act = ActionDefinition("ship", "public", "starlark", "def main(p):\n    return None\n")
    return Constitution(
        actions={"ship": dataclasses.replace(act, permissions=permissions)},
        members={m.id: m for m in members},
    )


def test_a_role_entry_grants_every_holder_and_only_them() -> None:
    c = _constitution(
        _member("s1", "supplier"),
        _member("s2", "supplier", "installer"),
        _member("c1", "customer"),
        permissions=(Permission("role:supplier", True),),
    )
    for holder in ("s1", "s2"):
        c.check_permission(c.actions["ship"], holder, 100)
    with pytest.raises(PermissionDenied, match=r"its roles: customer"):
        c.check_permission(c.actions["ship"], "c1", 100)


def test_the_members_own_entry_decides_over_its_roles() -> None:
    c = _constitution(
        _member("s1", "supplier"),
        permissions=(Permission("role:supplier", True), Permission("s1", False)),
    )
    with pytest.raises(PermissionDenied, match="no execute permission"):
        c.check_permission(c.actions["ship"], "s1", 100)


def test_role_entries_keep_their_validity_windows() -> None:
    c = _constitution(
        _member("s1", "supplier", "installer"),
        permissions=(
            Permission("role:supplier", True, valid_from=200),
            Permission("role:installer", True, valid_to=150),
        ),
    )
    c.check_permission(c.actions["ship"], "s1", 100)  # as installer
    c.check_permission(c.actions["ship"], "s1", 250)  # as supplier
    with pytest.raises(PermissionDenied, match=r"\(as supplier\) only within \[200, None\)"):
        c.check_permission(c.actions["ship"], "s1", 170)


def test_audiences_resolve_roles_when_read() -> None:
    early = _constitution(_member("a1", "auditor"), _member("v1", "supplier"))
    audience = ("role:auditor", "v1")
    assert early.sees(audience, "a1") and early.sees(audience, "v1")
    later = dataclasses.replace(early, members={**early.members, "a2": _member("a2", "auditor")})
    assert later.sees(audience, "a2")
    demoted = later.with_member(dataclasses.replace(later.members["a1"], roles=()))
    assert not demoted.sees(audience, "a1")
    assert demoted.sees(None, "a1")  # everyone (governance)
    assert demoted.expand(["role:auditor", "v1", "role:nobody"]) == ["a2", "v1"]


def test_votes_by_role_count_the_holders_at_the_tally() -> None:
    schema = VotingSchema(("role:seller",), 1, ("role:seller",))
    c = _constitution(_member("t1", "seller"), _member("v1", "supplier"))
    assert electorate(schema, c) == {"t1"} and vetoers(schema, c) == {"t1"}
    grown = c.with_member(_member("t2", "seller"))
    assert vetoers(schema, grown) == {"t1", "t2"}
    result = tally(schema, grown, "v1", [Ballot("t2", False, "x" * 64)])
    assert result.decision is Decision.REJECTED and "vetoed by t2" in result.reason
    gone = grown.with_member(_member("t2", "seller", status=MemberStatus.REMOVED))
    assert vetoers(schema, gone) == {"t1"}


def test_parsing_roles_permissions_and_members() -> None:
    entries = parse_permissions(
        js(
            [
                {"role": "supplier", "execute": True, "valid_to": 10},
                {"member": "m1", "execute": False},
            ]
        )
    )
    assert [e.to_json() for e in entries] == [
        {"role": "supplier", "execute": True, "valid_to": 10},
        {"member": "m1", "execute": False},
    ]
    for bad, message in (
        ([{"role": "a", "member": "m", "execute": True}], "names a member and a role"),
        ([{"role": "a", "execute": True}, {"role": "a", "execute": False}], "appears twice"),
        ([{"role": "no such", "execute": True}], "is not a role name"),
        ([{"role": "a", "execute": True, "extra": 1}], "extra"),
    ):
        with pytest.raises(ActionFailed, match=message):
            parse_permissions(js(bad))
    assert parse_roles(["b", "a", "b"]) == ("a", "b")
    with pytest.raises(ActionFailed, match="at most 16"):
        parse_roles([f"r{i}" for i in range(17)])
    keys = MemberKeys.generate("m1").public_info()
    assert parse_member({**keys, "info": {"role": "auditor"}}).roles == ("auditor",)
    explicit = parse_member({**keys, "info": {"role": "auditor"}, "roles": ["seller"]})
    assert explicit.roles == ("seller",) and explicit.to_json()["roles"] == ["seller"]
    assert parse_member(explicit.to_json()) == explicit
    with pytest.raises(ActionFailed, match=r"member\.roles\[0\]"):
        parse_member({**keys, "roles": [""]}, what="member")
    # A majority above a list of ids alone can never be reached; with a role it may be.
    with pytest.raises(ActionFailed, match="can never be reached"):
        parse_voting({"voters": ["m1"], "majority": 2})
    assert parse_voting({"voters": ["m1", "role:seller"], "majority": 3}).majority == 3


def test_audience_entries_on_the_wire() -> None:
    assert validate_audience_entry("role:auditor", what="x") == "role:auditor"
    assert validate_audience_entry("vendorA", what="x") == "vendorA"
    for bad in ("role:", "role:a b", "role:9x", "a:b", 7):
        with pytest.raises(BadRequest):
            validate_audience_entry(bad, what="visible_to[0]")
