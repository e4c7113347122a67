"""Action definitions: amendConstitution and updatePermissions.

``amendConstitution`` adds or replaces an action definition (base actions stay builtin and
keep their scope; new ones are Starlark, whose code may call internal actions only) and drops
the open proposals on the action it changed. ``updatePermissions`` replaces just the execute
permissions of a public action.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from consortia._json import JSON, JSONObject, require_fields
from consortia.engine.builtins.spec import Builtin, CheckContext
from consortia.engine.builtins.voting import close_proposal
from consortia.engine.execution import Execution
from consortia.errors import ActionFailed, ScopeViolation
from consortia.governance.constitution import BASE_ACTIONS, ActionDefinition, Constitution
from consortia.governance.parse import (
    parse_action_definition,
    parse_action_name,
    parse_permissions,
)
from consortia.governance.voting import ProposalStatus
from consortia.identity.keys import ROLE_PREFIX

__all__ = ["AMEND_CONSTITUTION", "UPDATE_PERMISSIONS"]


def _check_members_exist(constitution: Constitution, ids: list[str], what: str) -> None:
    """Every member id named exists; ``role:NAME`` entries may name a role no one holds
    yet (whoever takes it later is covered)."""
    for member in ids:
        if member not in constitution.members and not member.startswith(ROLE_PREFIX):
            raise ActionFailed(f"{what} names {member!r}, who is not a member")


def _check_definition_members(constitution: Constitution, definition: ActionDefinition) -> None:
    _check_members_exist(constitution, [p.member for p in definition.permissions], "permissions")
    voters = definition.voting.voters
    if not isinstance(voters, str):
        _check_members_exist(constitution, list(voters), "voting.voters")
    _check_members_exist(constitution, list(definition.voting.veto), "voting.veto")


# -- amendConstitution ------------------------------------------------------------------------


def _amend_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    definition = parse_action_definition(params, what="params")
    replace_self = params.get("replace_self", False)
    if not isinstance(replace_self, bool):
        raise ActionFailed("params.replace_self must be true or false")
    if definition.name == "amendConstitution" and not replace_self:
        raise ScopeViolation(
            "amendConstitution may replace itself only with params.replace_self set to true"
        )
    if definition.name in BASE_ACTIONS:
        current = c.actions.get(definition.name)
        if definition.language != "builtin":
            raise ActionFailed(
                f"{definition.name!r} is a base action and stays builtin; amend it with "
                "language 'builtin' to change its permissions or voting"
            )
        # A constitution older than a base action (setMemberRoles, say) takes it by a vote
        # like any amendment: public, as every base action a member runs.
        scope = "public" if current is None else current.scope
        if definition.scope != scope:
            raise ActionFailed(f"base action {definition.name!r} must be {scope}")
    elif definition.language == "builtin":
        raise ActionFailed("only base actions are builtin; new actions are written in starlark")
    if definition.scope == "internal" and (definition.voting.needs_vote or definition.permissions):
        raise ActionFailed(
            "an internal action is only called by action code: give it no permissions and "
            "the no-vote schema (voters 'any', majority 1, no veto)"
        )
    _check_definition_members(c, definition)
    if definition.code is not None and ctx.code_checker is not None:
        for target in ctx.code_checker(definition.name, definition.code):
            called = c.actions.get(target)
            if target == definition.name and definition.scope == "internal":
                continue
            if called is not None and called.scope == "public":
                raise ScopeViolation(
                    f"the code calls public action {target!r}; code may call internal actions only"
                )


def _amend_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    definition = parse_action_definition(params, what="params")
    ex.stage_action(definition)
    # Open proposals on an action whose definition changed are dropped, as CCF does: the
    # ballots were cast on rules that no longer hold.
    for proposal in ex.open_proposals():
        if proposal.action == definition.name:
            close_proposal(
                ex,
                proposal,
                ProposalStatus.DROPPED,
                f"action {definition.name!r} was amended while the proposal was open",
            )
    code_hash = (
        None if definition.code is None else hashlib.sha256(definition.code.encode()).hexdigest()
    )
    return {"action": definition.name, "code_hash": code_hash}


# -- updatePermissions ------------------------------------------------------------------------


def _permissions_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    require_fields(params, what="params", required=("action", "permissions"))
    name = parse_action_name(params["action"], what="params.action")
    if name == "updatePermissions":
        raise ScopeViolation(
            "updatePermissions cannot change its own permissions; use amendConstitution"
        )
    definition = c.actions.get(name)
    if definition is None:
        raise ActionFailed(f"params.action {name!r} is not in the constitution")
    if definition.scope == "internal":
        raise ActionFailed(f"{name!r} is internal: it has no execute permissions to update")
    permissions = parse_permissions(params["permissions"], what="params.permissions")
    _check_members_exist(c, [p.member for p in permissions], "params.permissions")


def _permissions_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    name = str(params["action"])
    permissions = parse_permissions(params["permissions"], what="params.permissions")
    ex.stage_action(replace(ex.constitution.action(name), permissions=permissions))
    return {"action": name, "permissions": [p.to_json() for p in permissions]}


AMEND_CONSTITUTION = Builtin(_amend_check, _amend_run)
UPDATE_PERMISSIONS = Builtin(_permissions_check, _permissions_run)
