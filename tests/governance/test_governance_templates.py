"""The default genesis template of PROTOCOL.md section 8, for one to six founders."""

from __future__ import annotations

import pytest

from consortia.errors import NotPublic
from consortia.governance import (
    BASE_ACTIONS,
    DEFAULT_TEMPLATE,
    GOVERNANCE_ACTIONS,
    Member,
    Permission,
    Template,
    VotingSchema,
    default_constitution,
)
from consortia.identity.keys import EncryptionKey, SigningKey

_POOL = tuple(
    (SigningKey.generate().verify_key, EncryptionKey.generate().public_key) for _ in range(6)
)
FOUNDERS = tuple(
    Member(f"founder-{i}", signing, encryption, {"n": i})
    for i, (signing, encryption) in enumerate(_POOL)
)
PUBLIC = (
    "addMember",
    "removeMember",
    "amendConstitution",
    "updatePermissions",
    "refreshTrustKeys",
    "voteFor",
    "setRecoveryThreshold",  # this implementation's extensions (docs/governance.md)
    "rotateLedgerSecret",
    "setAnalyticsPolicy",
    "reinstateMember",
    "setPlatformPolicy",
    "setMemberRoles",
)
VOTED = (
    "addMember",
    "removeMember",
    "amendConstitution",
    "updatePermissions",
    "setRecoveryThreshold",
    "rotateLedgerSecret",
    "setAnalyticsPolicy",
    "reinstateMember",
    "setPlatformPolicy",
    "setMemberRoles",
)
UNVOTED = ("refreshTrustKeys", "voteFor")
INTERNAL = ("approveAction", "sendNotifications")
# PROTOCOL.md section 8: a majority of all active members, floor(n/2) + 1.
MAJORITY = {1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4}
TIMES = (0, 1_700_000_000, 2**53 - 1)


def test_base_action_sets() -> None:
    assert frozenset((*PUBLIC, *INTERNAL)) == BASE_ACTIONS
    assert len(BASE_ACTIONS) == 14
    governance = {*VOTED, "refreshTrustKeys"}
    assert governance == GOVERNANCE_ACTIONS
    assert GOVERNANCE_ACTIONS < BASE_ACTIONS


@pytest.mark.parametrize("n", range(1, 7))
def test_every_founder_may_execute_every_public_base_action(n: int) -> None:
    founders = FOUNDERS[:n]
    c = default_constitution(founders)
    assert set(c.actions) == BASE_ACTIONS
    assert dict(c.members) == {m.id: m for m in founders}
    assert c.active_ids() == sorted(m.id for m in founders)
    for name in PUBLIC:
        definition = c.actions[name]
        assert (definition.scope, definition.language, definition.code) == (
            "public",
            "builtin",
            None,
        )
        assert definition.permissions == tuple(Permission(m.id, True) for m in founders)
        for founder in founders:
            for now in TIMES:
                assert c.authorize(founder.id, name, now) is definition
    # A later member has no entry until addMember grants new_member_actions.
    assert all(c.actions[name].permission_for("founder-9") is None for name in PUBLIC)


@pytest.mark.parametrize("n", range(1, 7))
def test_governance_needs_a_majority_of_all(n: int) -> None:
    c = default_constitution(FOUNDERS[:n])
    for name in VOTED:
        voting = c.actions[name].voting
        assert voting == VotingSchema("all", MAJORITY[n], ())
        assert voting.majority == n // 2 + 1
        assert voting.needs_vote
    for name in UNVOTED:
        voting = c.actions[name].voting
        assert voting == VotingSchema("any", 1, ())
        assert not voting.needs_vote


@pytest.mark.parametrize("n", range(1, 7))
def test_internal_actions(n: int) -> None:
    c = default_constitution(FOUNDERS[:n])
    for name in INTERNAL:
        definition = c.actions[name]
        assert (definition.scope, definition.language, definition.code) == (
            "internal",
            "builtin",
            None,
        )
        assert definition.permissions == ()
        assert not definition.voting.needs_vote
        for founder in FOUNDERS[:n]:
            with pytest.raises(NotPublic) as info:
                c.authorize(founder.id, name, 0)
            assert info.value.code == "not_public"
            assert repr(name) in info.value.message


@pytest.mark.parametrize("n", range(1, 7))
def test_new_member_actions(n: int) -> None:
    c = default_constitution(FOUNDERS[:n])
    assert c.new_member_actions == ("refreshTrustKeys", "voteFor")
    assert all(not c.actions[a].voting.needs_vote for a in c.new_member_actions)


def test_default_template() -> None:
    assert isinstance(DEFAULT_TEMPLATE, Template)
    assert DEFAULT_TEMPLATE.name == "default"
    assert DEFAULT_TEMPLATE.description
    assert DEFAULT_TEMPLATE.build(FOUNDERS[:3]) == default_constitution(FOUNDERS[:3])


def test_founders_list_is_not_kept() -> None:
    founders = list(FOUNDERS[:2])
    c = default_constitution(founders)
    founders.append(FOUNDERS[2])
    assert set(c.members) == {"founder-0", "founder-1"}
    assert len(c.actions["addMember"].permissions) == 2
