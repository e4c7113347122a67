"""Voting schemas, the electorate and the tally: worked examples and hypothesis properties."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.governance import (
    Ballot,
    Constitution,
    Decision,
    Member,
    MemberStatus,
    Proposal,
    ProposalStatus,
    Tally,
    VotingSchema,
    default_constitution,
    electorate,
    may_vote,
    tally,
)
from consortia.identity.keys import EncryptionKey, SigningKey

# Key generation is cheap, but hypothesis builds thousands of constitutions: share one pool.
IDS = tuple(f"M{i}" for i in range(1, 9))
_POOL = tuple((SigningKey.generate().verify_key, EncryptionKey.generate().public_key) for _ in IDS)
_MEMBERS = {
    (member_id, status): Member(member_id, *_POOL[index], {}, status)
    for index, member_id in enumerate(IDS)
    for status in MemberStatus
}

Voters = Literal["any", "all"] | tuple[str, ...]


def member(member_id: str, status: MemberStatus = MemberStatus.ACTIVE) -> Member:
    return _MEMBERS[(member_id, status)]


def consortium(
    *active: str, suspended: Sequence[str] = (), removed: Sequence[str] = ()
) -> Constitution:
    members = [member(m) for m in active]
    members += [member(m, MemberStatus.SUSPENDED) for m in suspended]
    members += [member(m, MemberStatus.REMOVED) for m in removed]
    return Constitution(actions={}, members={m.id: m for m in members})


def remove(constitution: Constitution, member_id: str) -> Constitution:
    return constitution.with_member(member(member_id, MemberStatus.REMOVED))


def approve(member_id: str) -> Ballot:
    return Ballot(member_id, True, f"tx-{member_id}-approve")


def reject(member_id: str) -> Ballot:
    return Ballot(member_id, False, f"tx-{member_id}-reject")


# -- needs_vote -------------------------------------------------------------------------------


def test_default_schema_is_the_no_vote_schema() -> None:
    schema = VotingSchema()
    assert (schema.voters, schema.majority, schema.veto) == ("any", 1, ())
    assert schema.needs_vote is False
    assert VotingSchema("any", 1, ()).needs_vote is False


@pytest.mark.parametrize(
    "schema",
    [
        VotingSchema("all", 1, ()),
        VotingSchema("any", 2, ()),
        VotingSchema("any", 1, ("M1",)),
        VotingSchema(("M1",), 1, ()),
        VotingSchema(("M1", "M2"), 1, ()),
        VotingSchema("all", 2, ("M3",)),
    ],
)
def test_every_other_schema_needs_a_vote(schema: VotingSchema) -> None:
    assert schema.needs_vote is True


def test_schema_to_json() -> None:
    assert VotingSchema().to_json() == {"voters": "any", "majority": 1, "veto": []}
    assert VotingSchema(("M1", "M2"), 2, ("M3",)).to_json() == {
        "voters": ["M1", "M2"],
        "majority": 2,
        "veto": ["M3"],
    }


# -- electorate and may_vote ------------------------------------------------------------------


def test_electorate_is_the_active_members_or_the_active_listed_ones() -> None:
    c = consortium("M1", "M2", "M3", suspended=["M4"], removed=["M5"])
    everyone = frozenset({"M1", "M2", "M3"})
    assert electorate(VotingSchema("all", 2), c) == everyone
    assert electorate(VotingSchema("any", 2), c) == everyone
    listed = VotingSchema(("M2", "M4", "M5", "ghost"), 1)
    assert electorate(listed, c) == frozenset({"M2"})


def test_may_vote() -> None:
    c = consortium("M1", "M2", "M3", removed=["M4"])
    schema = VotingSchema(("M1", "M2"), 2, ("M3", "M4"))
    assert may_vote(schema, c, "M1") and may_vote(schema, c, "M2")
    assert may_vote(schema, c, "M3")  # a veto member may always cast a ballot
    assert not may_vote(schema, c, "M4")  # ... unless it is no longer active
    assert not may_vote(schema, c, "ghost")
    assert not may_vote(VotingSchema(("M1",), 1), c, "M2")


# -- worked examples --------------------------------------------------------------------------

TWO_OF_THREE_VETO_M3 = VotingSchema("all", 2, ("M3",))
THREE = consortium("M1", "M2", "M3")


def test_two_of_three_approved() -> None:
    result = tally(TWO_OF_THREE_VETO_M3, THREE, "M1", [approve("M2")])
    assert result.decision is Decision.APPROVED
    assert result.approvals == {"M1", "M2"}
    assert result.rejections == frozenset()
    assert result.needed == 2
    assert "2 of 2" in result.reason


def test_requester_alone_is_open() -> None:
    result = tally(TWO_OF_THREE_VETO_M3, THREE, "M1", [])
    assert result.decision is Decision.OPEN
    assert result.approvals == {"M1"}
    assert result.reason == "1 of 2 approvals, 2 outstanding"


def test_two_of_three_vetoed() -> None:
    result = tally(TWO_OF_THREE_VETO_M3, THREE, "M1", [reject("M3")])
    assert result.decision is Decision.REJECTED
    assert result.reason == "vetoed by M3"
    assert result.rejections == {"M3"}
    # The veto holds whatever else comes in: the tally is over the set of ballots.
    later = tally(TWO_OF_THREE_VETO_M3, THREE, "M1", [reject("M3"), approve("M2")])
    assert later.decision is Decision.REJECTED
    assert later.reason == "vetoed by M3"
    assert later.approvals == {"M1", "M2"}


def test_a_non_veto_rejection_is_not_a_veto() -> None:
    result = tally(TWO_OF_THREE_VETO_M3, THREE, "M1", [reject("M2")])
    assert result.decision is Decision.OPEN
    assert result.rejections == {"M2"}
    assert tally(TWO_OF_THREE_VETO_M3, THREE, "M1", [reject("M2"), approve("M3")]).decision is (
        Decision.APPROVED
    )


def test_unreachable_is_rejected() -> None:
    result = tally(TWO_OF_THREE_VETO_M3, THREE, "M3", [reject("M1"), reject("M2")])
    assert result.decision is Decision.REJECTED
    assert "can no longer be reached" in result.reason
    assert "1 approvals" in result.reason and "2 needed" in result.reason
    # A requester outside a listed electorate adds nothing: two rejections end it.
    four = consortium("M1", "M2", "M3", "M4")
    listed = VotingSchema(("M1", "M2", "M3"), 2, ("M3",))
    result = tally(listed, four, "M4", [reject("M1"), reject("M2")])
    assert result.decision is Decision.REJECTED
    assert "can no longer be reached" in result.reason
    assert result.approvals == frozenset()


def test_a_majority_larger_than_the_electorate_is_rejected_at_once() -> None:
    result = tally(VotingSchema("all", 4), THREE, "M1", [])
    assert result.decision is Decision.REJECTED
    assert "can no longer be reached" in result.reason


def test_veto_members_approval_counts_only_inside_the_electorate() -> None:
    schema = VotingSchema(("M1", "M2"), 2, ("M3",))
    result = tally(schema, THREE, "M1", [approve("M3")])
    assert result.decision is Decision.OPEN
    assert result.approvals == {"M1"}
    assert tally(schema, THREE, "M1", [approve("M3"), approve("M2")]).decision is (
        Decision.APPROVED
    )


def test_requester_rejecting_its_own_request_withdraws_its_approval() -> None:
    result = tally(TWO_OF_THREE_VETO_M3, THREE, "M1", [reject("M1"), approve("M2")])
    assert result.decision is Decision.OPEN
    assert result.approvals == {"M2"}
    assert result.rejections == {"M1"}


def test_removing_members_while_open_rejects() -> None:
    schema = VotingSchema("all", 2)
    assert tally(schema, THREE, "M1", []).decision is Decision.OPEN
    one_left = remove(remove(THREE, "M2"), "M3")
    result = tally(schema, one_left, "M1", [])
    assert result.decision is Decision.REJECTED
    assert "can no longer be reached" in result.reason


def test_removed_members_approval_no_longer_counts() -> None:
    schema = VotingSchema("all", 2)
    assert tally(schema, THREE, "M1", [approve("M2")]).decision is Decision.APPROVED
    result = tally(schema, remove(THREE, "M2"), "M1", [approve("M2")])
    assert result.decision is Decision.OPEN
    assert result.approvals == {"M1"}


def test_removed_veto_member_no_longer_vetoes_an_open_proposal() -> None:
    c = consortium("M1", "M2", "M3", removed=["M4"])
    schema = VotingSchema("all", 2, ("M4",))
    result = tally(schema, c, "M1", [reject("M4"), approve("M2")])
    assert result.decision is Decision.APPROVED
    assert result.rejections == frozenset()


@pytest.mark.parametrize("n", range(1, 7))
def test_default_template_needs_a_strict_majority(n: int) -> None:
    founders = [member(m) for m in IDS[:n]]
    schema = default_constitution(founders).actions["addMember"].voting
    c = default_constitution(founders)
    for approvers in range(1, n + 1):
        # The requester plus approvers - 1 ballots; everyone else has not voted yet.
        ballots = [approve(m) for m in IDS[1:approvers]]
        result = tally(schema, c, "M1", ballots)
        expected = Decision.APPROVED if 2 * approvers > n else Decision.OPEN
        assert result.decision is expected, (n, approvers, result)


# -- an independent model of the rules (docs: voting.py module docstring) ---------------------


def model(
    schema: VotingSchema, c: Constitution, requester: str, ballots: Sequence[Ballot]
) -> tuple[Decision, frozenset[str], frozenset[str]]:
    active = {m for m, entry in c.members.items() if entry.status is MemberStatus.ACTIVE}
    listed = set(active) if schema.voters in ("any", "all") else set(schema.voters) & active
    rejectors = {b.member for b in ballots if not b.approve} & active
    approvers = {b.member for b in ballots if b.approve} & listed
    if requester in listed:
        approvers.add(requester)
    approvers -= rejectors
    if rejectors & set(schema.veto):
        decision = Decision.REJECTED
    elif len(approvers) >= schema.majority:
        decision = Decision.APPROVED
    elif len(approvers) + len(listed - approvers - rejectors) < schema.majority:
        decision = Decision.REJECTED
    else:
        decision = Decision.OPEN
    return decision, frozenset(approvers), frozenset(rejectors)


# -- strategies -------------------------------------------------------------------------------

STATUS = st.sampled_from([MemberStatus.ACTIVE] * 4 + [MemberStatus.SUSPENDED, MemberStatus.REMOVED])


@dataclasses.dataclass(frozen=True)
class Scenario:
    schema: VotingSchema
    constitution: Constitution
    requester: str
    ballots: tuple[Ballot, ...]

    def run(self, ballots: Sequence[Ballot] | None = None) -> Tally:
        chosen = self.ballots if ballots is None else ballots
        return tally(self.schema, self.constitution, self.requester, chosen)


@st.composite
def schemas(draw: st.DrawFn, ids: Sequence[str]) -> VotingSchema:
    listed = st.lists(st.sampled_from(ids), unique=True, min_size=1).map(tuple)
    voters: Voters = draw(st.sampled_from(["any", "all"]) | listed)  # type: ignore[arg-type]
    count = len(ids) if isinstance(voters, str) else len(voters)
    majority = draw(st.integers(1, count))
    veto = tuple(draw(st.lists(st.sampled_from(ids), unique=True)))
    return VotingSchema(voters, majority, veto)


@st.composite
def scenarios(draw: st.DrawFn, *, inactive: bool = True) -> Scenario:
    n = draw(st.integers(1, 7))
    ids = IDS[:n]
    statuses = [draw(STATUS) if inactive else MemberStatus.ACTIVE for _ in ids]
    if MemberStatus.ACTIVE not in statuses:
        statuses[draw(st.integers(0, n - 1))] = MemberStatus.ACTIVE
    c = Constitution(
        actions={}, members={m: member(m, s) for m, s in zip(ids, statuses, strict=True)}
    )
    schema = draw(schemas(ids))
    requester = draw(st.sampled_from(ids))
    voting = draw(st.lists(st.sampled_from(ids), unique=True))
    ballots = tuple(Ballot(m, draw(st.booleans()), f"tx-{m}") for m in voting)
    return Scenario(schema, c, requester, ballots)


PROPERTY = settings(max_examples=120, deadline=None)


# -- properties -------------------------------------------------------------------------------


@PROPERTY
@given(scenarios())
def test_tally_matches_the_model(s: Scenario) -> None:
    result = s.run()
    assert (result.decision, result.approvals, result.rejections) == model(
        s.schema, s.constitution, s.requester, s.ballots
    )
    assert result.needed == s.schema.majority
    assert result.reason


@PROPERTY
@given(st.data(), scenarios())
def test_order_never_matters(data: st.DataObject, s: Scenario) -> None:
    # Duplicate ballots by one member included: the tally is over the set of ballots.
    extra = data.draw(st.lists(st.sampled_from(s.ballots), max_size=3)) if s.ballots else []
    ballots = [*s.ballots, *(dataclasses.replace(b, approve=not b.approve) for b in extra)]
    shuffled = data.draw(st.permutations(ballots))
    assert s.run(shuffled) == s.run(ballots)
    assert s.run(list(reversed(ballots))) == s.run(ballots)


@PROPERTY
@given(st.data(), scenarios())
def test_an_active_veto_always_rejects(data: st.DataObject, s: Scenario) -> None:
    active = s.constitution.active_ids()
    vetoer = data.draw(st.sampled_from(active))
    schema = dataclasses.replace(s.schema, veto=tuple({*s.schema.veto, vetoer}))
    others = [b for b in s.ballots if b.member != vetoer]
    ballots = data.draw(st.permutations([*others, reject(vetoer)]))
    result = tally(schema, s.constitution, s.requester, ballots)
    assert result.decision is Decision.REJECTED
    vetoes = sorted(
        b.member
        for b in ballots
        if not b.approve and b.member in schema.veto and b.member in active
    )
    assert result.reason == f"vetoed by {vetoes[0]}"
    assert vetoer in result.rejections


@PROPERTY
@given(scenarios())
def test_enough_approvals_and_no_veto_approve(s: Scenario) -> None:
    result = s.run()
    vetoed = any(
        not b.approve and b.member in s.schema.veto
        for b in s.ballots
        if (s.constitution.is_active(b.member))
    )
    if len(result.approvals) >= s.schema.majority and not vetoed:
        assert result.decision is Decision.APPROVED
    if result.decision is Decision.APPROVED:
        assert len(result.approvals) >= s.schema.majority and not vetoed


@PROPERTY
@given(st.data(), scenarios(inactive=False))
def test_unanimous_approval_without_veto_approves(data: st.DataObject, s: Scenario) -> None:
    voters = sorted(electorate(s.schema, s.constitution))
    ballots = data.draw(st.permutations([approve(m) for m in voters]))
    result = s.run(ballots)
    assert result.decision is Decision.APPROVED
    assert result.approvals == frozenset(voters)


def decide_sequentially(s: Scenario, ballots: Sequence[Ballot]) -> tuple[Tally, int]:
    """Feed ballots one at a time as the engine does, stopping at the first decision."""
    current = s.run(())
    used = 0
    while current.decision is Decision.OPEN and used < len(ballots):
        used += 1
        current = s.run(ballots[:used])
    return current, used


@PROPERTY
@given(st.data(), scenarios())
def test_a_decided_proposal_is_final(data: st.DataObject, s: Scenario) -> None:
    vetoer = data.draw(st.sampled_from(s.constitution.active_ids()))
    schema = dataclasses.replace(s.schema, veto=tuple({*s.schema.veto, vetoer}))
    s = dataclasses.replace(s, schema=schema)
    # A veto arrives last, after whatever the other ballots decided.
    ballots = [*(b for b in s.ballots if b.member != vetoer), reject(vetoer)]
    final, used = decide_sequentially(s, ballots)
    assert final == s.run(ballots[:used])
    assert final.decision is not Decision.OPEN  # the veto at the end decides at the latest
    before_veto, _ = decide_sequentially(s, ballots[:-1])
    if before_veto.decision is Decision.APPROVED:
        # Processing stopped at approval: the late veto was never counted.
        assert final == before_veto
        assert used < len(ballots)
        assert s.run(ballots).decision is Decision.REJECTED


@PROPERTY
@given(st.data(), scenarios())
def test_a_rejection_is_never_undone_by_more_ballots(data: st.DataObject, s: Scenario) -> None:
    cut = data.draw(st.integers(0, len(s.ballots)))
    if s.run(s.ballots[:cut]).decision is Decision.REJECTED:
        assert s.run().decision is Decision.REJECTED


@PROPERTY
@given(st.data(), scenarios())
def test_removing_a_member_never_approves(data: st.DataObject, s: Scenario) -> None:
    target = data.draw(st.sampled_from(sorted(s.constitution.members)))
    before = s.run()
    after = tally(s.schema, remove(s.constitution, target), s.requester, s.ballots)
    assert after.approvals <= before.approvals
    if before.decision is Decision.OPEN:
        assert after.decision is not Decision.APPROVED
    vetoed_by_target = any(
        b.member == target and not b.approve and target in s.schema.veto for b in s.ballots
    )
    if before.decision is Decision.REJECTED and not vetoed_by_target:
        # (A veto by the removed member itself no longer counts; that proposal was closed
        # when the veto came in, and the engine re-tallies open proposals only.)
        assert after.decision is Decision.REJECTED


@PROPERTY
@given(scenarios())
def test_requesters_request_counts_only_inside_the_electorate(s: Scenario) -> None:
    own = [b for b in s.ballots if b.member != s.requester]
    result = s.run(own)
    inside = s.requester in electorate(s.schema, s.constitution)
    assert (s.requester in result.approvals) is inside
    if not inside:
        # ... and then the request is no different from one by an outsider.
        assert result == tally(s.schema, s.constitution, "outsider", own)


@PROPERTY
@given(st.data(), scenarios())
def test_ballots_of_inactive_members_do_not_count(data: st.DataObject, s: Scenario) -> None:
    counted = [b for b in s.ballots if s.constitution.is_active(b.member)]
    assert s.run() == s.run(counted)
    inactive = [m for m in s.constitution.members if not s.constitution.is_active(m)]
    if inactive:
        ghost = data.draw(st.sampled_from(inactive))
        extra = Ballot(ghost, data.draw(st.booleans()), "tx-ghost")
        assert s.run([*counted, extra]) == s.run(counted)
        assert ghost not in s.run([*counted, extra]).approvals | s.run([*counted, extra]).rejections


# -- Ballot and Proposal ----------------------------------------------------------------------


def proposal() -> Proposal:
    return Proposal(
        id="tx-1",
        action="addMember",
        requester="M1",
        request="header.payload.signature",
        params={"id": "M4"},
        visible_to=("M2",),
        txref=None,
        audience=("M1", "M2"),
        created_at=1_700_000_000,
    )


def test_ballot_to_json() -> None:
    assert approve("M2").to_json() == {"member": "M2", "ballot": "approve", "txid": "tx-M2-approve"}
    assert reject("M3").to_json()["ballot"] == "reject"


def test_proposal_life() -> None:
    p = proposal()
    assert p.is_open and p.status is ProposalStatus.OPEN and p.ballots == ()
    voted = p.with_ballot(approve("M2"))
    assert voted.voted("M2") and not voted.voted("M3")
    assert not p.voted("M2")  # the original is unchanged
    closed = voted.closed(ProposalStatus.APPROVED, "2 of 2", seqno=7)
    assert not closed.is_open
    assert (closed.status, closed.reason, closed.seqno, closed.error) == (
        ProposalStatus.APPROVED,
        "2 of 2",
        7,
        None,
    )
    failed = voted.closed(ProposalStatus.FAILED, "boom", error="action_failed")
    assert failed.error == "action_failed" and failed.seqno is None
    assert voted.is_open


def test_proposal_audience() -> None:
    p = proposal()
    assert p.visible_to_member("M1") and p.visible_to_member("M2")
    assert not p.visible_to_member("M3")
    everyone = dataclasses.replace(p, audience=None)
    assert everyone.visible_to_member("M3")
    assert everyone.to_stored()["audience"] == "*"
    assert p.to_stored()["audience"] == ["M1", "M2"]


def test_proposal_to_json_hides_the_request() -> None:
    p = proposal().with_ballot(approve("M2"))
    shown = p.to_json()
    assert "request" not in shown and "audience" not in shown
    assert shown["ballots"] == [approve("M2").to_json()]
    assert shown["status"] == "open"
    stored = p.to_stored()
    assert stored["request"] == "header.payload.signature"
