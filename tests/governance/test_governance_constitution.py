"""The constitution: members, permission windows, authorization and immutability."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.errors import (
    ConsortiaError,
    MemberSuspended,
    NotPublic,
    PermissionDenied,
    UnknownAction,
    UnknownMember,
)
from consortia.governance import (
    ActionDefinition,
    Constitution,
    Member,
    MemberStatus,
    Permission,
    VotingSchema,
)
from consortia.identity.keys import EncryptionKey, SigningKey

# A small pool of real keys, generated once: members only need distinct, valid public keys.
_POOL = tuple(
    (SigningKey.generate().verify_key, EncryptionKey.generate().public_key) for _ in range(4)
)

START, END = 1_700_000_000, 1_700_086_400


def member(index: int, status: MemberStatus = MemberStatus.ACTIVE) -> Member:
    signing, encryption = _POOL[index]
    return Member(f"M{index + 1}", signing, encryption, {"name": f"member {index + 1}"}, status)


def action(
    name: str = "placeOrder",
    *permissions: Permission,
    scope: str = "public",
) -> ActionDefinition:
    return ActionDefinition(
        name,
        "public" if scope == "public" else "internal",
        "starlark",
        "def main(params):\n    return params\n",
        permissions,
    )


WINDOWED = Permission("M1", True, START, END)


def constitution() -> Constitution:
    return Constitution(
        actions={
            "placeOrder": action("placeOrder", WINDOWED, Permission("M2", True)),
            "audit": action("audit", Permission("M1", False), Permission("M2", True, None, END)),
            "reserve": action("reserve", Permission("M1", True), scope="internal"),
        },
        members={
            "M1": member(0),
            "M2": member(1),
            "M3": member(2, MemberStatus.SUSPENDED),
            "M4": member(3, MemberStatus.REMOVED),
        },
        new_member_actions=("voteFor",),
    )


def expect(
    error: type[ConsortiaError], code: str, call: Callable[[], object], *fragments: str
) -> None:
    """Run ``call`` and check it raises ``error`` with ``code`` and each fragment."""
    with pytest.raises(error) as info:
        call()
    assert info.value.code == code
    assert info.value.to_wire()["error"] == {"code": code, "message": info.value.message}
    for fragment in fragments:
        assert fragment in info.value.message, (fragment, info.value.message)


# -- Permission.allows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0, False),
        (START - 1, False),
        (START, True),  # valid_from is inclusive
        (START + 1, True),
        (END - 1, True),
        (END, False),  # valid_to is exclusive
        (END + 1, False),
        (2**53 - 1, False),
    ],
)
def test_window_is_half_open(now: int, expected: bool) -> None:
    assert WINDOWED.allows(now) is expected


@pytest.mark.parametrize("now", [0, START - 1, START, END - 1, END, 2**53 - 1])
def test_open_ended_windows(now: int) -> None:
    assert Permission("M1", True).allows(now) is True
    assert Permission("M1", True, valid_from=START).allows(now) is (now >= START)
    assert Permission("M1", True, valid_to=END).allows(now) is (now < END)


@pytest.mark.parametrize("now", [0, START, END - 1, END])
def test_execute_false_never_allows(now: int) -> None:
    assert Permission("M1", False).allows(now) is False
    assert Permission("M1", False, START, END).allows(now) is False


@settings(max_examples=200, deadline=None)
@given(
    execute=st.booleans(),
    valid_from=st.none() | st.integers(0, 1000),
    valid_to=st.none() | st.integers(0, 1000),
    now=st.integers(0, 1000),
)
def test_allows_matches_the_definition(
    execute: bool, valid_from: int | None, valid_to: int | None, now: int
) -> None:
    expected = (
        execute
        and (valid_from is None or valid_from <= now)
        and (valid_to is None or now < valid_to)
    )
    assert Permission("M1", execute, valid_from, valid_to).allows(now) is expected


def test_permission_to_json_omits_absent_dates() -> None:
    assert Permission("M1", True).to_json() == {"member": "M1", "execute": True}
    assert WINDOWED.to_json() == {
        "member": "M1",
        "execute": True,
        "valid_from": START,
        "valid_to": END,
    }
    assert Permission("M2", False, valid_to=5).to_json() == {
        "member": "M2",
        "execute": False,
        "valid_to": 5,
    }


# -- authorize / check_permission ------------------------------------------------------------


@pytest.mark.parametrize("now", [START, START + 1, END - 1])
def test_authorize_inside_the_window(now: int) -> None:
    c = constitution()
    assert c.authorize("M1", "placeOrder", now) is c.actions["placeOrder"]
    c.check_permission(c.actions["placeOrder"], "M1", now)  # does not raise


@pytest.mark.parametrize("now", [0, START - 1, END, END + 1])
def test_authorize_outside_the_window(now: int) -> None:
    c = constitution()
    expect(
        PermissionDenied,
        "permission_denied",
        lambda: c.authorize("M1", "placeOrder", now),
        "'M1'",
        "'placeOrder'",
        f"[{START}, {END})",
        f"now is {now}",
    )
    expect(
        PermissionDenied,
        "permission_denied",
        lambda: c.check_permission(c.actions["placeOrder"], "M1", now),
        f"[{START}, {END})",
    )


def test_window_with_only_valid_to() -> None:
    c = constitution()
    assert c.authorize("M2", "audit", END - 1).name == "audit"
    expect(
        PermissionDenied,
        "permission_denied",
        lambda: c.authorize("M2", "audit", END),
        "'M2'",
        "'audit'",
        f"{END})",
        f"now is {END}",
    )


def test_unbounded_permission_holds_at_any_time() -> None:
    c = constitution()
    for now in (0, START, END, 2**53 - 1):
        assert c.authorize("M2", "placeOrder", now).name == "placeOrder"


@pytest.mark.parametrize("now", [0, START, END])
def test_execute_false_is_denied(now: int) -> None:
    c = constitution()
    expect(
        PermissionDenied,
        "permission_denied",
        lambda: c.authorize("M1", "audit", now),
        "'M1'",
        "no execute permission",
        "'audit'",
    )


def test_no_entry_is_denied() -> None:
    c = constitution()
    expect(
        PermissionDenied,
        "permission_denied",
        lambda: c.authorize("M3", "placeOrder", START),
        "'M3'",
        "no execute permission",
        "'placeOrder'",
    )
    # authorize does not authenticate: a stranger simply has no permission entry.
    expect(
        PermissionDenied,
        "permission_denied",
        lambda: c.authorize("ghost", "placeOrder", START),
        "'ghost'",
    )


def test_internal_action_is_not_public_even_with_a_permission_entry() -> None:
    c = constitution()
    assert c.actions["reserve"].permission_for("M1") is not None
    for who in ("M1", "M2"):
        expect(
            NotPublic,
            "not_public",
            partial(c.authorize, who, "reserve", START),
            "'reserve'",
            "internal",
        )


def test_unknown_action() -> None:
    c = constitution()
    expect(UnknownAction, "unknown_action", lambda: c.authorize("M1", "fly", START), "'fly'")
    expect(UnknownAction, "unknown_action", lambda: c.action("fly"), "'fly'")


def test_last_permission_entry_wins() -> None:
    definition = action(
        "placeOrder", Permission("M1", True), Permission("M2", True), Permission("M1", False)
    )
    assert definition.permission_for("M1") == Permission("M1", False)
    assert definition.permission_for("M2") == Permission("M2", True)
    assert definition.permission_for("M3") is None
    c = constitution().with_action(definition)
    expect(PermissionDenied, "permission_denied", lambda: c.authorize("M1", "placeOrder", 0))


# -- members ----------------------------------------------------------------------------------


def test_member_lookup() -> None:
    c = constitution()
    assert c.member("M1") == member(0)
    assert c.active_member("M2") == member(1)
    assert c.member("M4").status is MemberStatus.REMOVED
    assert c.active_ids() == ["M1", "M2"]
    assert [c.is_active(m) for m in ("M1", "M2", "M3", "M4", "ghost")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert member(0).active and not member(0, MemberStatus.SUSPENDED).active


def test_unknown_member() -> None:
    c = constitution()
    expect(UnknownMember, "unknown_member", lambda: c.member("ghost"), "'ghost'")
    expect(UnknownMember, "unknown_member", lambda: c.active_member("ghost"), "'ghost'")


@pytest.mark.parametrize(("member_id", "status"), [("M3", "suspended"), ("M4", "removed")])
def test_inactive_member_is_suspended(member_id: str, status: str) -> None:
    c = constitution()
    expect(
        MemberSuspended,
        "member_suspended",
        lambda: c.active_member(member_id),
        repr(member_id),
        status,
    )


def test_active_ids_are_sorted() -> None:
    members = {m.id: m for m in (member(2), member(0), member(3), member(1))}
    assert Constitution(actions={}, members=members).active_ids() == ["M1", "M2", "M3", "M4"]


def test_member_to_json() -> None:
    signing, encryption = _POOL[0]
    assert member(0, MemberStatus.SUSPENDED).to_json() == {
        "id": "M1",
        "signing_key": signing.to_jwk(),
        "encryption_key": encryption.to_jwk(),
        "info": {"name": "member 1"},
        "status": "suspended",
        "roles": [],
    }


# -- immutability -----------------------------------------------------------------------------


def test_with_member_returns_a_new_constitution() -> None:
    c = constitution()
    before = c.to_json()
    removed = dataclasses.replace(c.member("M1"), status=MemberStatus.REMOVED)
    changed = c.with_member(removed)
    assert changed is not c
    assert changed.member("M1").status is MemberStatus.REMOVED
    assert c.member("M1").status is MemberStatus.ACTIVE
    added = c.with_member(Member("M9", *_POOL[0]))
    assert "M9" in added.members and "M9" not in c.members
    assert c.to_json() == before
    assert changed.actions == c.actions
    assert changed.new_member_actions == c.new_member_actions == ("voteFor",)


def test_with_action_returns_a_new_constitution() -> None:
    c = constitution()
    before = c.to_json()
    added = c.with_action(action("cancelOrder", Permission("M2", True)))
    assert added.authorize("M2", "cancelOrder", 0).name == "cancelOrder"
    expect(UnknownAction, "unknown_action", lambda: c.action("cancelOrder"))
    replaced = c.with_action(action("placeOrder"))
    assert replaced.actions["placeOrder"].permissions == ()
    assert c.actions["placeOrder"].permissions == (WINDOWED, Permission("M2", True))
    assert c.to_json() == before
    assert added.members == c.members


def test_with_permissions_returns_a_new_constitution() -> None:
    c = constitution()
    before = c.to_json()
    opened = c.with_permissions("placeOrder", [Permission("M1", True)])
    assert opened.actions["placeOrder"].permissions == (Permission("M1", True),)
    assert opened.authorize("M1", "placeOrder", END).name == "placeOrder"
    expect(PermissionDenied, "permission_denied", lambda: c.authorize("M1", "placeOrder", END))
    # Only the permissions change; the rest of the definition is kept.
    assert opened.actions["placeOrder"].code == c.actions["placeOrder"].code
    assert opened.actions["placeOrder"].voting == c.actions["placeOrder"].voting
    assert c.to_json() == before
    expect(UnknownAction, "unknown_action", lambda: c.with_permissions("fly", []), "'fly'")


def test_mappings_are_read_only() -> None:
    c = constitution()
    with pytest.raises(TypeError):
        c.actions["x"] = action("x")  # type: ignore[index]
    with pytest.raises(TypeError):
        c.members["M9"] = member(0)  # type: ignore[index]
    with pytest.raises(TypeError):
        del c.members["M1"]  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.actions = {}  # type: ignore[misc]
    # The results of with_* are frozen too.
    changed = c.with_member(member(0))
    with pytest.raises(TypeError):
        changed.members["M9"] = member(0)  # type: ignore[index]


def test_source_dicts_are_copied() -> None:
    actions = {"placeOrder": action("placeOrder", Permission("M1", True))}
    members = {"M1": member(0)}
    c = Constitution(actions=actions, members=members)
    actions["other"] = action("other")
    del members["M1"]
    assert set(c.actions) == {"placeOrder"}
    assert set(c.members) == {"M1"}


def test_value_objects_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        WINDOWED.execute = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        member(0).status = MemberStatus.REMOVED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        action().permissions = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        VotingSchema().majority = 2  # type: ignore[misc]


def test_json_view_does_not_alias_member_info() -> None:
    # The constitution is immutable: a caller that edits the JSON it was handed (say, to
    # decorate a response) must not change the member held by the constitution.
    c = constitution()
    shown = c.to_json()
    members = shown["members"]
    assert isinstance(members, list)
    first = members[0]
    assert isinstance(first, dict)
    info = first["info"]
    assert isinstance(info, dict)
    info["name"] = "tampered"
    assert c.member("M1").info == {"name": "member 1"}


def test_constitution_to_json_is_sorted() -> None:
    c = constitution()
    shown = c.to_json()
    assert shown["actions"] == [c.actions[n].to_json() for n in ("audit", "placeOrder", "reserve")]
    assert shown["members"] == [c.members[m].to_json() for m in ("M1", "M2", "M3", "M4")]
    assert shown["new_member_actions"] == ["voteFor"]


def test_action_definition_to_json() -> None:
    definition = ActionDefinition(
        "placeOrder",
        "public",
        "starlark",
        "def main(p):\n    return 1\n",
        (WINDOWED,),
        VotingSchema(("M1", "M2"), 2, ("M2",)),
    )
    assert definition.to_json() == {
        "name": "placeOrder",
        "scope": "public",
        "language": "starlark",
        "code": "def main(p):\n    return 1\n",
        "permissions": [WINDOWED.to_json()],
        "voting": {"voters": ["M1", "M2"], "majority": 2, "veto": ["M2"]},
    }
