"""Sequencer leases and the commit fence, with two stores on one database as two nodes.

Each test tries to get two nodes to commit for one consortium: by waiting out a lease, by
renewing after a takeover, by racing for an expired lease, by pausing in a commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from consortia.errors import Unavailable
from consortia.ledger.lease import Fenced, Lease
from consortia.ledger.postgres import PostgresStore
from consortia.ledger.store import CommitBatch
from pg_server import postgres_server_fixture, postgres_url_fixture  # noqa: F401 - fixtures

CID = "acme"
TTL = 0.4


@pytest.fixture
def nodes(postgres_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    a = PostgresStore(postgres_url, node="node-a")
    b = PostgresStore(postgres_url, node="node-b")
    yield a, b
    a.close()
    b.close()


def _write(store: PostgresStore, name: str) -> None:
    store.commit(CID, CommitBatch(meta={name: b"x"}))


def _expire(lease: Lease) -> None:
    time.sleep(TTL + 0.2)


def test_a_lease_is_held_until_it_expires_then_taken_with_the_next_epoch(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    first = a.acquire_lease(CID, TTL)
    assert first is not None and first.epoch == 1
    assert b.acquire_lease(CID, TTL) is None  # held
    assert a.acquire_lease(CID, TTL) is None  # the holder renews, it does not retake
    _expire(first)
    second = b.acquire_lease(CID, TTL)
    assert second is not None and (second.epoch, second.holder) == (2, "node-b")
    with pytest.raises(ValueError, match="at most 3600"):
        a.acquire_lease(CID, 10_000)
    # A node commits only for a consortium whose lease it holds.
    with pytest.raises(Fenced, match="holds no sequencer lease"):
        _write(a, "never")


def test_the_old_sequencer_is_fenced_once_another_took_over(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    old = a.acquire_lease(CID, TTL)
    assert old is not None
    a.fence(old)
    _write(a, "by-a-1")
    _expire(old)  # node a is paused past its lease ...
    new = b.acquire_lease(CID, TTL)
    assert new is not None
    b.fence(new)
    _write(b, "by-b-1")
    # ... and wakes up: its commit is refused by the fence, and nothing of it is stored.
    with pytest.raises(Fenced, match="epoch 1, but the lease is now epoch 2 held by 'node-b'"):
        _write(a, "by-a-2")
    assert a.meta_get("by-a-2") is None and b.meta_get("by-b-1") == b"x"
    with pytest.raises(Fenced, match="taken over"):
        a.renew_lease(old, TTL)
    with pytest.raises(Fenced):
        _write(a, "by-a-3")  # and it stays down
    assert isinstance(Fenced("x"), Unavailable)  # clients retry elsewhere, as for unavailable


def test_renewal_keeps_the_epoch_while_no_one_took_over(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    lease = a.acquire_lease(CID, TTL)
    assert lease is not None
    a.fence(lease)
    for _ in range(3):
        time.sleep(TTL / 2)
        lease = a.renew_lease(lease, TTL)
        assert b.acquire_lease(CID, TTL) is None
    assert lease.epoch == 1
    _write(a, "still-a")
    # Expired, but nobody took over: renewing is still safe, and the epoch is the same.
    _expire(lease)
    assert a.renew_lease(lease, TTL).epoch == 1


def test_nodes_racing_for_an_expired_lease_never_both_commit(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    stores = {"node-a": a, "node-b": b}
    won: dict[str, Lease | None] = {}
    for round_ in range(12):
        start = threading.Barrier(2)

        def race(holder: str, start: threading.Barrier = start) -> None:
            start.wait()
            lease = stores[holder].acquire_lease(CID, TTL)
            won[holder] = lease
            if lease is not None:
                stores[holder].fence(lease)

        threads = [threading.Thread(target=race, args=(h,)) for h in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [h for h, lease in won.items() if lease is not None]
        assert len(winners) == 1, won
        epoch = won[winners[0]].epoch  # type: ignore[union-attr]
        assert epoch == round_ + 1
        committed = []
        for holder, store in stores.items():
            try:
                _write(store, f"r{round_}-{holder}")
                committed.append(holder)
            except Fenced:
                pass
        # Only the winner commits: the loser holds an older epoch, or no lease at all.
        assert committed == winners
        time.sleep(TTL + 0.1)


def test_a_store_outside_a_cluster_takes_no_lease(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        with pytest.raises(ValueError, match="only a cluster node"):
            store.acquire_lease(CID, TTL)
        _write(store, "single-node")  # no fence: the embedded-style single node commits
    finally:
        store.close()


def test_a_node_paused_inside_a_commit_cannot_block_a_takeover(
    postgres_url: str, nodes: tuple[PostgresStore, PostgresStore]
) -> None:
    a, b = nodes
    lease = a.acquire_lease(CID, TTL)
    assert lease is not None
    a.fence(lease)
    # Node a stops in the middle of a commit, holding the lease row's share lock (here: a
    # raw session of its own, paused after the fence check).
    paused = psycopg.connect(postgres_url)
    paused.execute("SET idle_in_transaction_session_timeout = '1s'")
    paused.execute("BEGIN")
    paused.execute("SELECT epoch FROM sequencer_leases WHERE cid = %s FOR SHARE", (CID,))
    time.sleep(TTL + 0.2)
    started = time.monotonic()
    new = b.acquire_lease(CID, TTL)  # waits for the lock, then takes over
    assert new is not None and new.epoch == 2
    assert time.monotonic() - started < 5.0
    with pytest.raises(psycopg.Error):
        paused.execute("COMMIT")  # the server ended the paused transaction
    paused.close()
