"""A consortium's genesis (PROTOCOL.md section 8): its founders, constitution and seqno 0.

:func:`founders_of` reads the founders of a creation request, refusing what the protocol
forbids; :func:`build_constitution` lets the template build the first constitution; and
:func:`stage_genesis` stages the genesis transaction (settings, analytics policy, every
founder, every action) and the welcome notices in a batch. The platform verifies the
operator, the nonce and the clock before, and commits the batch after, through the same
commit sequence as every other batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from consortia._json import JSONObject
from consortia.engine.batch import Batch
from consortia.engine.consortium import GOV_ACTIONS, GOV_ANALYTICS, GOV_MEMBERS, GOV_SETTINGS
from consortia.engine.invocation import Invocation
from consortia.errors import BadRequest
from consortia.governance.constitution import Constitution, Member
from consortia.governance.parse import parse_member
from consortia.governance.templates import Template
from consortia.ledger.sealed import Write
from consortia.wire import OperatorRequest
from consortia.wire.notification import Notice

__all__ = ["GENESIS_ACTION", "build_constitution", "founders_of", "stage_genesis"]

#: The action name the genesis record and its notices carry.
GENESIS_ACTION = "createConsortium"


def founders_of(request: OperatorRequest) -> list[Member]:
    """The founding members, each parsed; ``bad_request`` naming the first that is wrong."""
    founders: list[Member] = []
    for index, raw in enumerate(request.members):
        member = parse_member(raw, what=f"members[{index}]", error=BadRequest)
        if member.id == "operator":
            raise BadRequest("'operator' is reserved and cannot be a member id")
        if any(f.id == member.id for f in founders):
            raise BadRequest(f"members lists {member.id!r} twice")
        if any(f.signing_key == member.signing_key for f in founders):
            raise BadRequest(f"members[{index}] reuses another founder's signing key")
        founders.append(member)
    return founders


def build_constitution(template: Template, founders: Sequence[Member]) -> Constitution:
    """The template's first constitution; ``bad_request`` when it refuses the founders."""
    try:
        return template.build(founders)
    except ValueError as exc:  # a template's own rule, e.g. "telco needs a seller"
        raise BadRequest(f"template {template.name!r} refused the founders: {exc}") from None


def stage_genesis(
    batch: Batch,
    request: OperatorRequest,
    template: Template,
    founders: Sequence[Member],
    constitution: Constitution,
    *,
    now: int,
) -> int:
    """Stage seqno 0 and the founders' welcome in ``batch``; the seqno."""
    settings: JSONObject = {
        "name": request.name,
        "template": template.name,
        "new_member_actions": list(constitution.new_member_actions),
    }
    writes = [
        Write(GOV_SETTINGS, settings, None),
        Write(GOV_ANALYTICS, constitution.analytics.to_json(), None),
    ]
    writes += [Write(GOV_MEMBERS + m.id, m.to_json(), None) for m in founders]
    writes += [
        Write(GOV_ACTIONS + name, constitution.actions[name].to_json(), None)
        for name in sorted(constitution.actions)
    ]
    run = Invocation(
        txid=request.txid,
        member="operator",
        action=GENESIS_ACTION,
        params={},
        visible_to=(),
        txref=None,
        request=request.jws.compact,
        time=now,
        nonce=request.nonce,
        detail={"template": template.name},
    )
    seqno = batch.add_tx(run, audience=None, writes=writes)
    welcome: JSONObject = {
        "event": "consortium_created",
        "consortium": request.consortium,
        "name": request.name,
        "template": template.name,
        "members": [m.id for m in founders],
    }
    batch.notify(
        [Notice(m.id, "notice", request.txid, None, GENESIS_ACTION, welcome) for m in founders]
    )
    return seqno
