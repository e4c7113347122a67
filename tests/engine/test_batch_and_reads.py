"""Group commit, a failing commit, and member-authenticated reads."""

from __future__ import annotations

import pytest
from conftest import World

from consortia import Committed, ConsortiaError, Pending
from consortia._json import JSONObject
from consortia.engine import consortium
from consortia.engine.consortium import GOV_MEMBERS
from consortia.errors import Unavailable
from consortia.identity.jwt import issue_token
from consortia.ledger.store import CommitBatch
from testkit import js


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
    before = world.fingerprint()
    real = world.platform.store
    world.platform.store = BrokenStore(real)  # type: ignore[assignment]
    world.platform.runtime("acme").store = world.platform.store
    with pytest.raises(ConsortiaError) as caught:
        world.platform.execute("acme", body)
    assert caught.value.code == "unavailable" and caught.value.txid is not None
    assert world.fingerprint() == before
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
    assert caught.value.code == "unknown_member"  # as for a guessed member id


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


class CountingStore:
    """Wraps a store and counts the latest-version lookups that reach it."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.lookups = 0

    def latest_version(self, cid: str, name_hash: bytes) -> object:
        self.lookups += 1
        return self.inner.latest_version(cid, name_hash)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def add_customer(world: World) -> None:
    pending = world.act("telco", "addMember", world.add_keys("customer").public_info())
    assert isinstance(pending, Pending)
    ballot: JSONObject = {"proposal": pending.proposal, "ballot": "approve"}
    assert isinstance(world.act("vendor", "voteFor", ballot), Committed)


def test_the_commit_that_writes_a_cached_key_replaces_its_version(world: World) -> None:
    runtime = world.platform.runtime("acme")
    key = GOV_MEMBERS + "customer"
    assert runtime.latest(key) is None  # cached: no such key yet
    counting = CountingStore(runtime.store)
    runtime.store = counting  # type: ignore[assignment]
    assert runtime.latest(key) is None and counting.lookups == 0  # served from the cache
    add_customer(world)
    version = runtime.latest(key)  # the commit put the version it wrote in the cache
    assert version is not None and isinstance(version.value, dict)
    assert version.value["id"] == "customer"
    assert counting.lookups == 0
    # ... and it is the very version storage holds, salt and all.
    row = counting.inner.latest_version("acme", runtime.name_hash(key))  # type: ignore[attr-defined]
    assert runtime.version_from_row(row) == version
    # The cached listing learnt the new member's key too, and agrees with storage.
    stored = counting.inner.children("acme", runtime.sealed.dir_hash(GOV_MEMBERS))  # type: ignore[attr-defined]
    assert key in runtime.list_keys(GOV_MEMBERS)
    assert runtime.list_keys(GOV_MEMBERS) == sorted(runtime.name_from_row(r) for r in stored)
    # The cached value is shared, so what an action gets is a copy it may change freely.
    assert world.platform.member_view("acme", "customer").constitution()["members"]


def test_the_version_cache_is_bounded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = world.platform.runtime("acme")
    monkeypatch.setattr(consortium, "LATEST_CACHE_ENTRIES", 3)
    for n in range(10):
        runtime.latest(f"nothing/{n}")
    assert [runtime.latest(f"nothing/{n}") for n in range(7, 10)] == [None] * 3
    counting = CountingStore(runtime.store)
    runtime.store = counting  # type: ignore[assignment]
    runtime.latest("nothing/7")
    assert counting.lookups == 0
    runtime.latest("nothing/0")  # evicted long ago
    assert counting.lookups == 1
    # A version stored in more bytes than the limit is read from storage every time.
    monkeypatch.setattr(consortium, "LATEST_CACHE_BLOB_BYTES", 0)
    member = GOV_MEMBERS + "vendor"
    runtime.forget_latest([member])
    assert runtime.latest(member) is not None and runtime.latest(member) is not None
    assert counting.lookups == 3
