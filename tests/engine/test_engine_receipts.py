"""The engine's side of the verifiable ledger: nodes and a signed root per commit batch, a
frontier restored from O(log n) reads, and nothing of a failed commit left behind."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia import Committed, ConsortiaError, Pending, Platform
from consortia.engine.audit import verify_ledger
from consortia.errors import Unavailable
from consortia.identity.keys import VerifyKey
from consortia.ledger.merkle import MerkleFrontier, perfect_subtree_count
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.receipts import parse_signed_root, verify_receipt
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import CommitBatch
from world import World, founded


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """SQLite only (the conftest's world also runs on PostgreSQL): these tests open, copy or
    damage the ledger file itself."""
    yield from founded(tmp_path)


def signed_roots(world: World) -> list[tuple[int, int]]:
    con = sqlite3.connect(f"file:{world.db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT tree_size, previous FROM signed_roots WHERE cid = ? ORDER BY tree_size",
            (world.cid,),
        ).fetchall()
    finally:
        con.close()
    return [(int(a), int(b)) for a, b in rows]


def vote_in_customer(world: World) -> tuple[Pending, Committed]:
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info())
    assert isinstance(pending, Pending)
    done = world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    assert isinstance(done, Committed)
    return pending, done


def test_each_commit_batch_stores_its_nodes_and_one_signed_root(world: World) -> None:
    assert signed_roots(world) == [(1, 0)]  # the genesis
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info())
    assert isinstance(pending, Pending)
    assert signed_roots(world) == [(1, 0)]  # a proposal adds no leaf, so no new root
    world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    # The ballot and the resumed request: two leaves, one batch, one signed root.
    assert signed_roots(world) == [(1, 0), (3, 1)]
    store = world.platform.store
    assert isinstance(store, SQLiteStore)
    assert store.merkle_node_count("acme") == perfect_subtree_count(3)
    latest = store.latest_signed_root("acme")
    assert latest is not None
    signed = parse_signed_root(latest.jws)
    assert (signed.tree_size, signed.iat) == (3, world.clock.now)
    assert signed.root == world.platform.runtime("acme").frontier.root()


def test_receipts_survive_a_restart_and_follow_the_newest_root(world: World) -> None:
    _, done = vote_in_customer(world)
    key = VerifyKey.from_jwk(world.platform.service_info()["service_key"])
    before = world.platform.member_view("acme", "installer").receipt(done.txid)
    world.reopen()
    after = world.platform.member_view("acme", "installer").receipt(done.txid)
    assert after == before  # same tree, same signed root
    assert verify_receipt(after, key).seqno == done.seqno
    # One more batch: an old transaction's receipt now proves it in the larger tree.
    world.clock.now += 1
    ballot = add_partner(world)
    newer = world.platform.member_view("acme", "customer").receipt(done.txid)
    assert verify_receipt(newer, key).tree_size == ballot.seqno + 2  # ballot, resumed request


def add_partner(world: World) -> Committed:
    """Vote a new member in: one batch of two leaves; returns the deciding ballot."""
    keys = world.add_keys(f"partner{len(world.keys)}")
    pending = world.act("telco", "addMember", keys.public_info())
    assert isinstance(pending, Pending)
    done = world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    assert isinstance(done, Committed)
    return done


class BrokenStore:
    """Wraps a store; its commits fail (a full disk, say)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def commit(self, cid: str, batch: CommitBatch) -> None:
        raise Unavailable("disk full")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class CountingStore:
    """Wraps a store and counts the reads a start-up or a receipt makes."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: object, **kwargs: object) -> object:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attribute(*args, **kwargs)

        return counted


def test_start_up_restores_the_frontier_without_reading_old_leaves(world: World) -> None:
    for _ in range(3):
        add_partner(world)
    size = world.platform.store.tree_size("acme")
    expected = world.platform.runtime("acme").frontier.to_state()
    world.platform.close()
    store = SQLiteStore(world.db)
    counting = CountingStore(store)
    platform = Platform(
        counting,  # type: ignore[arg-type]
        node_key=load_node_key(world.data / "node.key"),
        operator_keys=[world.operator.verify_key],
        clock=world.clock,
    )
    runtime = platform.runtime("acme")
    assert runtime.frontier.size == size
    assert runtime.frontier.to_state() == expected
    assert counting.calls.get("merkle_node", 0) == size.bit_count()
    assert "tx_by_seqno" not in counting.calls and "scan_txs" not in counting.calls
    # A receipt costs O(log n) node reads as well.
    counting.calls.clear()
    txid = store.tx_by_seqno("acme", 1)
    assert txid is not None
    platform.member_view("acme", "telco").receipt(txid.txid)
    assert counting.calls["merkle_node"] <= 2 * (size - 1).bit_length()
    platform.close()
    world.platform = platform


def test_a_failed_commit_leaves_frontier_and_roots_untouched(world: World) -> None:
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info())
    assert isinstance(pending, Pending)
    runtime = world.platform.runtime("acme")
    frontier_before = runtime.frontier.to_state()
    real = world.platform.store
    world.platform.store = BrokenStore(real)  # type: ignore[assignment]
    runtime.store = world.platform.store
    ballot = world.sign("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    with pytest.raises(ConsortiaError) as caught:
        world.platform.execute("acme", ballot)
    assert caught.value.code == "unavailable"
    assert runtime.frontier.to_state() == frontier_before
    world.platform.store = real
    runtime.store = real
    done = world.platform.execute("acme", ballot)
    assert isinstance(done, Committed) and done.seqno == 1
    assert signed_roots(world) == [(1, 0), (3, 1)]
    world.platform.close()
    store = SQLiteStore(world.db, read_only=True)
    try:
        (audit,) = verify_ledger(store, load_node_key(world.data / "node.key"))
    finally:
        store.close()
    assert audit.tree_size == 3
    rebuilt = MerkleFrontier.from_state(runtime.frontier.size, runtime.frontier.to_state())
    assert audit.root == rebuilt.root().hex()
    world.reopen()


def test_the_platform_never_hands_out_a_receipt_from_damaged_storage(world: World) -> None:
    _, done = vote_in_customer(world)
    view = world.platform.member_view("acme", "telco")
    view.receipt(done.txid)
    con = sqlite3.connect(world.db, isolation_level=None)
    try:
        con.execute(
            "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE cid = 'acme' AND level = 0 "
            "AND idx = 0"
        )
    finally:
        con.close()
    with pytest.raises(ConsortiaError) as caught:
        view.receipt(done.txid)
    assert caught.value.code == "unavailable"
    assert "inconsistent" in caught.value.message
