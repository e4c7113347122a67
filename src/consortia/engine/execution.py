"""Step 5: one execution of an action, as the host the action code talks to.

An :class:`Execution` reads the full current state (through the batch overlay, so it sees
earlier requests of the same group commit), and stages writes, notices, governance changes
and resumed proposals. The engine keeps them only if the whole execution succeeds; on any
error it drops the object, which is how "a failed request changes nothing" holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from consortia._json import JSON, JSONObject, check_value, copy_json
from consortia.engine.batch import Batch
from consortia.engine.consortium import (
    GOV_ACTIONS,
    GOV_MEMBERS,
    GOV_PREFIX,
    Write,
    parent_of,
)
from consortia.engine.invocation import Invocation
from consortia.errors import ActionFailed, BadRequest, ScopeViolation
from consortia.governance.constitution import ActionDefinition, Constitution, Member
from consortia.governance.parse import parse_audience_entry
from consortia.governance.voting import Proposal
from consortia.identity.keys import ROLE_PREFIX
from consortia.ledger.records import Audience
from consortia.sandbox.host import BuiltinTarget, CallTarget, StarlarkTarget
from consortia.wire.notification import Notice

__all__ = ["MAX_KEY_LENGTH", "Execution", "check_key"]

MAX_KEY_LENGTH = 512
_MAX_WRITES = 10_000
_MAX_NOTICES = 10_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: Runs a builtin internal action: (execution, params) -> result.
BuiltinRunner = Callable[["Execution", str, JSONObject], JSON]


def check_key(key: object) -> str:
    """A state key: 1-512 characters, no control characters, not ending in ``/``."""
    if not isinstance(key, str) or not key:
        raise ActionFailed("a state key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ActionFailed(f"state key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}")
    if _CONTROL.search(key):
        raise ActionFailed(f"state key {key[:40]!r} contains a control character")
    if key.endswith("/"):
        raise ActionFailed(f"state key {key!r} ends with '/', which names a directory")
    return key


@dataclass
class Execution:
    """One action's run: what it may read, and what it has staged so far."""

    batch: Batch
    constitution: Constitution
    #: Who asked for what: the run's identity, and what its record will say.
    invocation: Invocation
    #: Who reads what this run writes unless a ``put`` names its own audience.
    audience: Audience
    builtin_runner: BuiltinRunner
    privileged: bool = False
    writes: dict[str, Write] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    proposals: dict[str, Proposal] = field(default_factory=dict)
    resumes: list[str] = field(default_factory=list)
    #: Set by rotateLedgerSecret: the batch must rotate the consortium's ledger secret.
    rekey: bool = False

    # -- identity of the run ----------------------------------------------------------------

    def caller(self) -> str:
        """The requesting member."""
        return self.invocation.member

    def txid(self) -> str:
        """The transaction id."""
        return self.invocation.txid

    def now(self) -> int:
        """The transaction time."""
        return self.invocation.time

    def visible_to(self) -> list[str]:
        """The request's ``visible_to``."""
        return list(self.invocation.visible_to)

    def members(self) -> list[str]:
        """Active member ids, sorted."""
        return self.constitution.active_ids()

    # -- state ------------------------------------------------------------------------------

    def get(self, key: str) -> JSON:
        """Newest value of ``key`` (this run's writes first), or None; a private copy."""
        key = check_key(key)
        staged = self.writes.get(key)
        if staged is not None:
            return None if staged.deleted else copy_json(staged.value)
        version = self.batch.latest(key)
        if version is None or version.deleted:
            return None
        return copy_json(version.value)

    def exists(self, key: str) -> bool:
        """Whether ``key`` currently has a value."""
        key = check_key(key)
        staged = self.writes.get(key)
        if staged is not None:
            return not staged.deleted
        version = self.batch.latest(key)
        return version is not None and not version.deleted

    def _writable(self, key: str) -> str:
        key = check_key(key)
        if key.startswith(GOV_PREFIX) and not self.privileged:
            raise ScopeViolation(
                f"key {key!r} is reserved for governance; action code may not write it"
            )
        if len(self.writes) >= _MAX_WRITES and key not in self.writes:
            raise ActionFailed(f"an action may write at most {_MAX_WRITES} keys")
        return key

    def _audience(self, visible_to: list[str] | None) -> Audience:
        if visible_to is None:
            return self.audience
        if not isinstance(visible_to, list):
            raise ActionFailed(
                "put(..., visible_to=...) must be a list of member ids and role:NAME entries"
            )
        ids = set()
        for member in visible_to:
            if isinstance(member, str) and member.startswith(ROLE_PREFIX):
                ids.add(parse_audience_entry(member, what="visible_to entry"))
                continue
            if not isinstance(member, str) or not self.constitution.is_active(member):
                raise ActionFailed(f"visible_to names {member!r}, which is not an active member")
            ids.add(member)
        ids.add(self.invocation.member)
        return tuple(sorted(ids))

    def put(self, key: str, value: JSON, visible_to: list[str] | None = None) -> None:
        """Stage a new version of ``key`` (a private copy of ``value``)."""
        key = self._writable(key)
        try:
            check_value(value, what=f"value of {key!r}")
        except BadRequest as exc:
            raise ActionFailed(exc.message) from None
        self.writes.pop(key, None)  # re-insert so write order is last-write order
        self.writes[key] = Write(key, copy_json(value), self._audience(visible_to))

    def put_everyone(self, key: str, value: JSON) -> None:
        """Stage a governance write that every member, present and future, may read."""
        self.writes.pop(key, None)
        self.writes[key] = Write(key, value, None)

    def delete(self, key: str) -> None:
        """Stage a deletion of ``key``."""
        key = self._writable(key)
        self.writes.pop(key, None)
        self.writes[key] = Write(key, None, self.audience, deleted=True)

    def list_keys(self, prefix: str) -> list[str]:
        """Live keys directly under ``prefix`` (which must end with ``/``)."""
        if not isinstance(prefix, str) or (prefix and not prefix.endswith("/")):
            raise ActionFailed("list_keys(prefix): prefix must be a string ending with '/'")
        names = set(self.batch.list_keys(prefix))
        for key, write in self.writes.items():
            if parent_of(key) == prefix:
                if write.deleted:
                    names.discard(key)
                else:
                    names.add(key)
        return sorted(names)

    # -- notices ----------------------------------------------------------------------------

    def notify(self, members: list[str], body: JSON) -> None:
        """Queue a ``notice`` to each active member named, by id or ``role:NAME``
        (deliberate, minimal disclosure)."""
        if not isinstance(members, list):
            raise ActionFailed("notify(members, body): members must be a list of member ids")
        try:
            check_value(body, what="notice body")
        except BadRequest as exc:
            raise ActionFailed(exc.message) from None
        named: set[str] = set()
        for member in members:
            if isinstance(member, str) and member.startswith(ROLE_PREFIX):
                # A role's holders now: a notification is delivered once, not re-resolved.
                parse_audience_entry(member, what="notify entry")
                named.update(self.constitution.expand([member]))
            elif not isinstance(member, str) or not self.constitution.is_active(member):
                raise ActionFailed(f"notify names {member!r}, which is not an active member")
            else:
                named.add(member)
        for member in sorted(named):
            self.tell(member, "notice", copy_json(body))

    def tell(
        self,
        member: str,
        kind: str,
        body: JSON,
        *,
        txid: str | None = None,
        action: str | None = None,
    ) -> None:
        """Stage a notification of any kind (the engine's own, e.g. ``vote_request``)."""
        if len(self.notices) >= _MAX_NOTICES:
            raise ActionFailed(f"an action may send at most {_MAX_NOTICES} notifications")
        run = self.invocation
        about = txid or run.txid
        # The caller's correlation id goes only to the caller: it is its own business.
        txref = run.txref if member == run.member and about == run.txid else None
        self.notices.append(Notice(member, kind, about, txref, action or run.action, body))

    # -- calls ------------------------------------------------------------------------------

    def resolve_call(self, action: str) -> CallTarget:
        """Resolve ``call(action, ...)``: internal actions only."""
        if not isinstance(action, str):
            raise ActionFailed("call(action, params): action must be a string")
        definition = self.constitution.action(action)
        if definition.scope != "internal":
            raise ScopeViolation(
                f"action code may call internal actions only; {action!r} is public"
            )
        if definition.language == "builtin":
            return BuiltinTarget(action)
        if definition.code is None:
            raise ActionFailed(f"internal action {action!r} has no code")
        return StarlarkTarget(action, definition.code)

    def call_builtin(self, action: str, params: JSONObject) -> JSON:
        """Run a builtin internal action."""
        if not isinstance(params, dict):
            raise ActionFailed("call(action, params): params must be a dict")
        return self.builtin_runner(self, action, params)

    # -- governance (builtins only) ---------------------------------------------------------

    def stage_member(self, member: Member) -> None:
        """Add or replace a member in the staged constitution and its ``gov/`` key."""
        self.constitution = self.constitution.with_member(member)
        self.put_everyone(GOV_MEMBERS + member.id, member.to_json())

    def stage_action(self, definition: ActionDefinition) -> None:
        """Add or replace an action in the staged constitution and its ``gov/`` key."""
        self.constitution = self.constitution.with_action(definition)
        self.put_everyone(GOV_ACTIONS + definition.name, definition.to_json())

    def proposal(self, pid: str) -> Proposal | None:
        """A proposal as this run sees it."""
        staged = self.proposals.get(pid)
        return staged if staged is not None else self.batch.proposal(pid)

    def stage_proposal(self, proposal: Proposal) -> None:
        """Stage a changed proposal."""
        self.proposals[proposal.id] = proposal

    def open_proposals(self) -> list[Proposal]:
        """Every open proposal as this run sees it, oldest first."""
        found = {p.id: p for p in self.batch.open_proposals()}
        found.update(self.proposals)
        return sorted((p for p in found.values() if p.is_open), key=lambda p: (p.created_at, p.id))

    def resume(self, pid: str) -> None:
        """Ask the engine to run an approved proposal's request after this transaction."""
        self.resumes.append(pid)
