"""The constitution: members, action definitions, permissions and voting schemas.

Pure data and rules, no I/O and no clock: every time-dependent decision takes ``now``.
Parsing from untrusted parameters lives in :mod:`consortia.governance.parse`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from consortia._json import JSON, JSONObject, json_list
from consortia.errors import (
    MemberSuspended,
    NotPublic,
    PermissionDenied,
    UnknownAction,
    UnknownMember,
)
from consortia.governance.analytics_policy import DEFAULT_ANALYTICS_POLICY, AnalyticsPolicy
from consortia.governance.platform_policy import PlatformPolicy
from consortia.identity.keys import ROLE_PREFIX, PublicEncryptionKey, VerifyKey

__all__ = [
    "BASE_ACTIONS",
    "BUDGET_LIMITS",
    "GOVERNANCE_ACTIONS",
    "ROLE_PREFIX",
    "ActionDefinition",
    "Constitution",
    "Member",
    "MemberStatus",
    "Permission",
    "Scope",
    "VotingSchema",
    "role_entry",
]

Scope = Literal["public", "internal"]


def role_entry(entry: str) -> str | None:
    """The role an audience or permission entry names (``role:auditor`` -> ``auditor``)."""
    return entry[len(ROLE_PREFIX) :] if entry.startswith(ROLE_PREFIX) else None


#: Actions every constitution starts with (PROTOCOL.md section 7). They stay builtin: an
#: amendment may change their permissions and voting schema, never their code.
BASE_ACTIONS: frozenset[str] = frozenset(
    {
        "addMember",
        "removeMember",
        "amendConstitution",
        "updatePermissions",
        "refreshTrustKeys",
        "voteFor",
        "approveAction",
        "sendNotifications",
        "setRecoveryThreshold",
        "rotateLedgerSecret",
        "setAnalyticsPolicy",
        "reinstateMember",
        "setPlatformPolicy",
        "setMemberRoles",
    }
)

#: Sandbox budget fields an action definition may set, with the largest value a consortium
#: may vote for each (a platform-wide ceiling: one action must not starve the platform).
BUDGET_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "steps": 100_000,
        "time_ms": 10_000,
        "memory_bytes": 1024 * 1024 * 1024,
        "max_call_depth": 16,
        "max_stack_frames": 1_000,
    }
)

#: Base actions whose transactions change governance and so are visible to every member.
GOVERNANCE_ACTIONS: frozenset[str] = frozenset(
    {
        "addMember",
        "removeMember",
        "amendConstitution",
        "updatePermissions",
        "refreshTrustKeys",
        "setRecoveryThreshold",
        "rotateLedgerSecret",
        "setAnalyticsPolicy",
        "reinstateMember",
        "setPlatformPolicy",
        "setMemberRoles",
    }
)


class MemberStatus(StrEnum):
    """A member's standing: only ``active`` members act, vote or read."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Member:
    """A consortium member and its current public keys."""

    id: str
    signing_key: VerifyKey
    encryption_key: PublicEncryptionKey
    info: JSONObject = field(default_factory=dict)
    status: MemberStatus = MemberStatus.ACTIVE
    #: The member's roles (sorted, distinct): what ``role:NAME`` permissions and audiences
    #: resolve against, set at genesis or by addMember and changed by ``setMemberRoles``.
    roles: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether the member may act, vote and read."""
        return self.status is MemberStatus.ACTIVE

    def to_json(self) -> JSONObject:
        """The member as the constitution read shows it."""
        return {
            "id": self.id,
            "signing_key": dict(self.signing_key.to_jwk()),
            "encryption_key": dict(self.encryption_key.to_jwk()),
            "info": copy.deepcopy(self.info),
            "status": self.status.value,
            "roles": list(self.roles),
        }


@dataclass(frozen=True, slots=True)
class Permission:
    """One entry of an action's permission list: for one member, or for a role.

    ``member`` is a member id, or ``role:NAME`` for every member holding role NAME when the
    request is checked (:attr:`role`). The validity window is half-open,
    ``[valid_from, valid_to)``, in NumericDate seconds, like a JWT's ``nbf``/``exp``:
    ``valid_to`` is the first instant it no longer holds.
    """

    member: str
    execute: bool
    valid_from: int | None = None
    valid_to: int | None = None

    @property
    def role(self) -> str | None:
        """The role this entry is for, or None when it names one member."""
        return role_entry(self.member)

    def allows(self, now: int) -> bool:
        """Whether this entry grants execution at ``now``."""
        if not self.execute:
            return False
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_to is None or now < self.valid_to

    def to_json(self) -> JSONObject:
        """The entry in the wire format of PROTOCOL.md section 7."""
        role = self.role
        out: JSONObject = (
            {"member": self.member, "execute": self.execute}
            if role is None
            else {"role": role, "execute": self.execute}
        )
        if self.valid_from is not None:
            out["valid_from"] = self.valid_from
        if self.valid_to is not None:
            out["valid_to"] = self.valid_to
        return out


@dataclass(frozen=True, slots=True)
class VotingSchema:
    """Who votes on an action, how many approvals it needs, and who may veto it.

    ``voters`` is ``"any"`` or ``"all"`` (every active member is in the electorate; the two
    differ only in that ``"any"`` with majority 1 and no veto means *no vote at all*), or a
    tuple of member ids. ``majority`` is an absolute count of approvals.
    """

    voters: Literal["any", "all"] | tuple[str, ...] = "any"
    majority: int = 1
    veto: tuple[str, ...] = ()

    @property
    def needs_vote(self) -> bool:
        """False for the seed's "no vote" schema: voters any, majority 1, no veto."""
        return not (self.voters == "any" and self.majority == 1 and not self.veto)

    def to_json(self) -> JSONObject:
        """The schema in the wire format of PROTOCOL.md section 7."""
        voters: JSON = self.voters if isinstance(self.voters, str) else json_list(self.voters)
        return {"voters": voters, "majority": self.majority, "veto": json_list(self.veto)}


NO_VOTE = VotingSchema()


@dataclass(frozen=True, slots=True)
class ActionDefinition:
    """One action of the constitution: its scope, code and rules."""

    name: str
    scope: Scope
    language: Literal["builtin", "starlark"]
    code: str | None
    permissions: tuple[Permission, ...] = ()
    voting: VotingSchema = NO_VOTE
    #: The action's own sandbox limits (field -> integer), voted with its code; None means
    #: the platform's defaults. Checked against :data:`BUDGET_LIMITS` when parsed.
    budget: Mapping[str, int] | None = None
    #: A JSON Schema (draft 2020-12) of the params, voted with the code; requests that do
    #: not match are refused before anything runs (:mod:`consortia.governance.params_schema`).
    params_schema: JSONObject | None = None

    def permission_for(self, member: str) -> Permission | None:
        """The member's own entry in the permission list, if any (the last one wins)."""
        found = None
        for entry in self.permissions:
            if entry.member == member:
                found = entry
        return found

    def role_permissions(self, roles: Iterable[str]) -> list[Permission]:
        """The entries for any of ``roles``, in list order."""
        wanted = {ROLE_PREFIX + r for r in roles}
        return [entry for entry in self.permissions if entry.member in wanted]

    def to_json(self) -> JSONObject:
        """The definition as the constitution read shows it (code included)."""
        out: JSONObject = {
            "name": self.name,
            "scope": self.scope,
            "language": self.language,
            "code": self.code,
            "permissions": [p.to_json() for p in self.permissions],
            "voting": self.voting.to_json(),
        }
        if self.budget is not None:
            out["budget"] = dict(self.budget)
        if self.params_schema is not None:
            out["params_schema"] = copy.deepcopy(self.params_schema)
        return out


def _frozen(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Constitution:
    """The whole rule book of one consortium at one point in its history (immutable)."""

    actions: Mapping[str, ActionDefinition]
    members: Mapping[str, Member]
    #: Actions a member added later may execute at once (from the genesis template).
    new_member_actions: tuple[str, ...] = ()
    #: k of the k-of-n recovery shares, as voted by ``setRecoveryThreshold``; None: majority.
    recovery_threshold: int | None = None
    #: What may leave the TEP for analytics and who is told of misuse (``setAnalyticsPolicy``).
    analytics: AnalyticsPolicy = DEFAULT_ANALYTICS_POLICY
    #: Which TEPs may serve the consortium (``setPlatformPolicy``); None: any TEP, virtual
    #: included (the default policy).
    platform_policy: PlatformPolicy | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", _frozen(self.actions))
        object.__setattr__(self, "members", _frozen(self.members))

    # -- members ---------------------------------------------------------------------------

    def member(self, member_id: str) -> Member:
        """The member, raising ``unknown_member`` if there is none."""
        found = self.members.get(member_id)
        if found is None:
            raise UnknownMember(f"no member {member_id!r} in this consortium")
        return found

    def active_member(self, member_id: str) -> Member:
        """The member, raising unless it is active."""
        found = self.member(member_id)
        if not found.active:
            raise MemberSuspended(
                f"member {member_id!r} is {found.status.value}; only active members may act"
            )
        return found

    def active_ids(self) -> list[str]:
        """Ids of the active members, sorted."""
        return sorted(m.id for m in self.members.values() if m.active)

    def is_active(self, member_id: str) -> bool:
        """Whether ``member_id`` names an active member."""
        found = self.members.get(member_id)
        return found is not None and found.active

    # -- actions ---------------------------------------------------------------------------

    def action(self, name: str) -> ActionDefinition:
        """The action, raising ``unknown_action`` if there is none."""
        found = self.actions.get(name)
        if found is None:
            raise UnknownAction(f"no action {name!r} in the constitution")
        return found

    def authorize(self, member_id: str, action_name: str, now: int) -> ActionDefinition:
        """Step 3 of a request: the action exists, is public, and the member may run it now."""
        definition = self.action(action_name)
        if definition.scope != "public":
            raise NotPublic(f"action {action_name!r} is internal: only action code may call it")
        self.check_permission(definition, member_id, now)
        return definition

    def check_permission(self, definition: ActionDefinition, member_id: str, now: int) -> None:
        """Raise ``permission_denied`` unless the member may execute ``definition`` at ``now``.

        The member's own entry decides when there is one (``execute: false`` refuses it
        whatever its roles allow); otherwise any entry of one of its roles that holds at
        ``now`` grants it.
        """
        entry = definition.permission_for(member_id)
        if entry is None:
            by_role = definition.role_permissions(self.roles_of(member_id))
            if any(e.allows(now) for e in by_role):
                return
            entry = next((e for e in by_role if e.execute), None)
        if entry is None or not entry.execute:
            raise PermissionDenied(
                f"member {member_id!r} has no execute permission on {definition.name!r}"
                + self._held_roles(member_id)
            )
        if not entry.allows(now):
            window = f"[{entry.valid_from}, {entry.valid_to})"
            via = "" if entry.role is None else f" (as {entry.role})"
            raise PermissionDenied(
                f"member {member_id!r} may execute {definition.name!r}{via} only within "
                f"{window}; now is {now}"
            )

    def _held_roles(self, member_id: str) -> str:
        roles = self.roles_of(member_id)
        return f" (its roles: {', '.join(roles)})" if roles else " (it holds no role)"

    # -- changes (each returns a new constitution) ----------------------------------------

    def with_member(self, member: Member) -> Constitution:
        """A copy with ``member`` added or replaced."""
        members = dict(self.members)
        members[member.id] = member
        return replace(self, members=members)

    def with_action(self, definition: ActionDefinition) -> Constitution:
        """A copy with ``definition`` added or replaced."""
        actions = dict(self.actions)
        actions[definition.name] = definition
        return replace(self, actions=actions)

    def with_permissions(self, action: str, permissions: Iterable[Permission]) -> Constitution:
        """A copy where ``action`` has exactly ``permissions``."""
        return self.with_action(replace(self.action(action), permissions=tuple(permissions)))

    def recovery_threshold_for(self, holders: int) -> int:
        """k for ``holders`` share holders: the voted threshold (at most n), else ⌊n/2⌋+1."""
        if self.recovery_threshold is None:
            return holders // 2 + 1
        return max(1, min(self.recovery_threshold, holders))

    def to_json(self) -> JSONObject:
        """The constitution as ``GET …/constitution`` shows it."""
        doc: JSONObject = {
            "actions": [self.actions[n].to_json() for n in sorted(self.actions)],
            "members": [self.members[m].to_json() for m in sorted(self.members)],
            "new_member_actions": list(self.new_member_actions),
        }
        if self.recovery_threshold is not None:
            doc["recovery_threshold"] = self.recovery_threshold
        doc["analytics"] = self.analytics.to_json()
        if self.platform_policy is not None:
            doc["platform_policy"] = self.platform_policy.to_json()
        return doc

    def roles_of(self, member_id: str) -> tuple[str, ...]:
        """The member's roles (none for an unknown member)."""
        found = self.members.get(member_id)
        return () if found is None else found.roles

    def holders(self, role: str) -> list[str]:
        """Active members holding ``role``, sorted."""
        return sorted(m.id for m in self.members.values() if m.active and role in m.roles)

    def sees(self, audience: Iterable[str] | None, member_id: str) -> bool:
        """Whether ``member_id`` is in ``audience`` (None: everyone), by id or by a role it
        holds now: ``role:NAME`` entries resolve when read, so a member who takes a role
        later reads what was addressed to that role before."""
        if audience is None:
            return True
        roles = {ROLE_PREFIX + r for r in self.roles_of(member_id)}
        return any(entry == member_id or entry in roles for entry in audience)

    def expand(self, entries: Iterable[str]) -> list[str]:
        """Active member ids named by ``entries`` (ids and ``role:NAME``), sorted, distinct."""
        out: set[str] = set()
        for entry in entries:
            role = role_entry(entry)
            if role is None:
                out.add(entry)
            else:
                out.update(self.holders(role))
        return sorted(out)

    def alert_recipients(self) -> list[str]:
        """Active members the analytics policy names for ``misuse_alert``, sorted."""
        policy = self.analytics
        return [m for m in self.active_ids() if policy.alerted(m, self.roles_of(m))]
