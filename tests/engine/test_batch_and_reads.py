"""Group commit, a failing commit, and member-authenticated reads."""

from __future__ import annotations

import pytest
from conftest import World

from consortia import Committed, ConsortiaError, Pending
from consortia.errors import Unavailable
from consortia.identity.jwt import issue_token
from consortia.ledger.store import CommitBatch
from testkit import js, storage_fingerprint


def test_group_commit_answers_each_request(world: World) -> None:
    customer = world.add_keys("customer")
    bodies = [
        world.sign("telco", "addMember", customer.public_info()),
        world.sign("telco", "approveAction", {}),  # refused: internal
        world.sign("vendor", "mintCoins", {}),  # refused: unknown
    ]
    answers = world.platform.execute_batch("acme", bodies)
    assert isinstance(answers[0], Pending)
    assert isinstance(answers[1], ConsortiaError) and answers[1].code == "not_public"
    assert isinstance(answers[2], ConsortiaError) and answers[2].code == "unknown_action"
    # Within one batch, a later request sees an earlier one's effects: vote on the proposal
    # and use the new member in the same group commit.
    proposal = answers[0].proposal
    second = world.platform.execute_batch(
        "acme",
        [
            world.sign("vendor", "voteFor", {"proposal": proposal, "ballot": "approve"}),
            world.sign("customer", "voteFor", {"proposal": proposal, "ballot": "approve"}),
        ],
    )
    assert isinstance(second[0], Committed)
    # The customer was a member by then, but the proposal was already decided and final.
    assert isinstance(second[1], ConsortiaError) and second[1].code == "action_failed"


class BrokenStore:
    """Wraps a store; its commits fail (a full disk, say)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def commit(self, cid: str, batch: CommitBatch) -> None:
        raise Unavailable("disk full")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_failed_commit_answers_unavailable_and_changes_nothing(world: World) -> None:
    customer = world.add_keys("customer")
    body = world.sign("telco", "addMember", customer.public_info(), nonce="retry-me-later-0001")
    before = storage_fingerprint(world.db)
    real = world.platform.store
    world.platform.store = BrokenStore(real)  # type: ignore[assignment]
    world.platform.runtime("acme").store = world.platform.store
    with pytest.raises(ConsortiaError) as caught:
        world.platform.execute("acme", body)
    assert caught.value.code == "unavailable" and caught.value.txid is not None
    assert storage_fingerprint(world.db) == before
    # In-memory state was rolled back too: no phantom proposal; the same nonce works later.
    world.platform.store = real
    world.platform.runtime("acme").store = real
    assert world.platform.member_view("acme", "vendor").proposals() == []
    assert isinstance(world.platform.execute("acme", body), Pending)


def test_reader_authenticates_a_bearer_token(world: World) -> None:
    token = issue_token(world.keys["vendor"], audience="acme", now=world.clock.now)
    view = world.platform.reader("acme", token)
    assert view.member == "vendor"
    assert js(view.constitution())["consortium"] == "acme"
    # Wrong audience, expired, or signed by someone else: refused with the protocol's codes.
    other = issue_token(world.keys["vendor"], audience="globex", now=world.clock.now)
    with pytest.raises(ConsortiaError) as caught:
        world.platform.reader("acme", other)
    assert caught.value.code == "bad_request"
    world.clock.now += 1000
    with pytest.raises(ConsortiaError) as caught:
        world.platform.reader("acme", token)
    assert caught.value.code == "stale_request"
    forged = world.add_keys("vendor2")
    object.__setattr__(forged, "member_id", "vendor")
    with pytest.raises(ConsortiaError) as caught:
        world.platform.reader("acme", issue_token(forged, audience="acme", now=world.clock.now))
    assert caught.value.code == "bad_signature"


def test_reads_refuse_bad_keys_and_unknown_things(world: World) -> None:
    view = world.platform.member_view("acme", "telco")
    for bad in ["", "a/", "x" * 513, "tab\tkey"]:
        with pytest.raises(ConsortiaError) as caught:
            view.object(bad)
        assert caught.value.code == "bad_request"
    with pytest.raises(ConsortiaError) as caught:
        view.history("order/none")
    assert caught.value.code == "not_found"
    with pytest.raises(ConsortiaError) as caught:
        view.transaction("00" * 32)
    assert caught.value.code == "not_found"
    with pytest.raises(ConsortiaError) as caught:
        world.platform.member_view("nope", "telco")
    assert caught.value.code == "not_found"
    # the genesis is governance: every founder reads it
    genesis = world.platform.store.tx_by_seqno("acme", 0)
    assert genesis is not None
    assert view.transaction(genesis.txid)["seqno"] == 0
