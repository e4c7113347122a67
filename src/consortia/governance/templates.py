"""Genesis templates: the constitution a consortium starts with (PROTOCOL.md section 8)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consortia.governance.constitution import (
    ActionDefinition,
    Constitution,
    Member,
    Permission,
    VotingSchema,
)

__all__ = ["DEFAULT_TEMPLATE", "Template", "base_actions", "default_constitution"]

#: Public base actions and whether the default template puts them to a vote.
_PUBLIC_BASE: dict[str, bool] = {
    "addMember": True,
    "removeMember": True,
    "amendConstitution": True,
    "updatePermissions": True,
    "refreshTrustKeys": False,
    "voteFor": False,
    "setRecoveryThreshold": True,
    "rotateLedgerSecret": True,
    "setAnalyticsPolicy": True,
    "reinstateMember": True,
    "setPlatformPolicy": True,
    "setMemberRoles": True,
}
_INTERNAL_BASE = ("approveAction", "sendNotifications")
#: What a member added later may execute at once.
DEFAULT_NEW_MEMBER_ACTIONS = ("refreshTrustKeys", "voteFor")


@dataclass(frozen=True, slots=True)
class Template:
    """A named way to build a genesis constitution from the founding members."""

    name: str
    description: str
    build: Callable[[Sequence[Member]], Constitution]


def base_actions(founders: Sequence[Member], voted: VotingSchema) -> dict[str, ActionDefinition]:
    """The base actions with every founder permitted, governance ones under ``voted``."""
    everyone = tuple(Permission(m.id, True) for m in founders)
    actions: dict[str, ActionDefinition] = {}
    for name, needs_vote in _PUBLIC_BASE.items():
        voting = voted if needs_vote else VotingSchema()
        actions[name] = ActionDefinition(name, "public", "builtin", None, everyone, voting)
    for name in _INTERNAL_BASE:
        actions[name] = ActionDefinition(name, "internal", "builtin", None)
    return actions


def default_constitution(founders: Sequence[Member]) -> Constitution:
    """The ``default`` template: governance by a majority of all active members."""
    majority = len(founders) // 2 + 1
    voted = VotingSchema("all", majority, ())
    return Constitution(
        actions=base_actions(founders, voted),
        members={m.id: m for m in founders},
        new_member_actions=DEFAULT_NEW_MEMBER_ACTIONS,
    )


DEFAULT_TEMPLATE = Template(
    name="default",
    description=(
        "Every founder may run every public base action; addMember, removeMember, "
        "amendConstitution, updatePermissions, setRecoveryThreshold, rotateLedgerSecret, "
        "setAnalyticsPolicy, reinstateMember, setPlatformPolicy and setMemberRoles need a "
        "majority of all active members."
    ),
    build=default_constitution,
)
