"""PostgreSQL replication and failover under the platform (docs/cluster.md).

The ledger is on a primary with a synchronous standby (tests/pg_replica.py); the platform is
given the multi-host URL with ``target_session_attrs=read-write``. Under load, the primary's
postmaster is SIGKILLed at a random moment and the standby promoted ``PROMOTE_DELAY``
seconds later (what a failover manager does once it has declared the primary dead), while
the load goes on. Then:

* every acknowledged request is in the promoted store exactly once, at the seqno it was
  acknowledged with, and nothing else is there but the unacknowledged requests that had
  committed all the same (the standby had the COMMIT, the answer was lost with the primary);
* the ledger verifies;
* an unacknowledged request sent again with the same signed body commits once, or gets its
  first outcome (same txid and seqno) if it had committed: never a duplicate.

The failover time (from the kill to the first commit answered after the promotion) and the
number of unacknowledged requests are printed (``pytest -s``) as one ``pg-failover:`` line.

Without its synchronous standby the primary does not answer a COMMIT: it waits, and
answers once the standby is back (the second test).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from consortia import Committed
from consortia.engine.audit import verify_ledger
from consortia.errors import ConsortiaError, Unavailable
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.postgres import PostgresStore
from consortia.wire import unwrap_body
from consortia.wire.outcomes import Outcome
from pg_replica import ReplicatedPostgres, replicated_postgres_fixture  # noqa: F401 - fixture
from world import FOUNDERS, World

CID = "acme"
CODE = 'def main(params):\n    put("order/" + params["id"], params)\n    return params["id"]\n'
#: Seconds from the kill of the primary to the promotion of the standby.
PROMOTE_DELAY = 0.5
#: Seconds a client waits after an ``unavailable`` answer before its next request.
BACKOFF = 0.02
#: The longest any wait of these tests may take (a bound, not a sleep).
DEADLINE = 20.0


@dataclass
class Sent:
    """One request of the load and what became of it."""

    body: str
    txid: str
    started: float
    ended: float = 0.0
    answer: Outcome | ConsortiaError | None = None
    #: Anything else the platform raised (the test fails on it).
    failure: str | None = None

    @property
    def acked(self) -> bool:
        return isinstance(self.answer, Committed)


class Load(threading.Thread):
    """Signed requests to the platform, one to three per group commit, until stopped."""

    def __init__(self, world: World, seed: int) -> None:
        super().__init__(name="failover-load", daemon=True)
        self.world = world
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def run(self) -> None:
        platform = self.world.platform
        service = platform.service.encryption
        number = 0
        while not self.stopping.is_set():
            batch = []
            for _ in range(self.rng.randint(1, 3)):
                body = self.world.sign("telco", "place", {"id": f"PO{number}"})
                batch.append(Sent(body, unwrap_body(body, service).txid, time.monotonic()))
                number += 1
            try:
                answers = platform.execute_batch(CID, [s.body for s in batch])
            except Exception as exc:  # noqa: BLE001 - recorded; the test fails on it
                answers = []
                for s in batch:
                    s.failure = type(exc).__name__
            ended = time.monotonic()
            with self._changed:
                for s, answer in zip(batch, answers, strict=False):
                    s.answer = answer
                for s in batch:
                    s.ended = ended
                self.sent.extend(batch)
                self._changed.notify_all()
            if not all(s.acked for s in batch):
                self.stopping.wait(BACKOFF)

    def wait_for(self, count: int, *, after: float = 0.0) -> None:
        """Block until ``count`` requests answered after ``after`` were acknowledged."""

        def enough() -> bool:
            return sum(1 for s in self.sent if s.acked and s.ended > after) >= count

        with self._changed:
            if not self._changed.wait_for(enough, timeout=DEADLINE):
                raise AssertionError(f"the load did not get {count} commits in {DEADLINE} s")

    def stop(self) -> list[Sent]:
        self.stopping.set()
        self.join(DEADLINE)
        assert not self.is_alive(), "the load is stuck in the platform"
        return self.sent


@dataclass
class Failover:
    """What one failover under load did (the figures of the ``pg-failover:`` line)."""

    seed: int
    killed: float
    promote_requested: float
    promoted: float
    sent: list[Sent] = field(default_factory=list)

    @property
    def acked(self) -> list[Sent]:
        return [s for s in self.sent if s.acked]

    @property
    def unacked(self) -> list[Sent]:
        return [s for s in self.sent if not s.acked]

    @property
    def in_flight(self) -> list[Sent]:
        """Unacknowledged requests submitted before the kill (answered after it)."""
        return [s for s in self.unacked if s.started < self.killed]

    @property
    def resolved(self) -> list[Sent]:
        """Requests in flight at the kill that were acknowledged after it: their COMMIT's
        outcome was looked up on the promoted standby (PostgresStore._committed_after_all)."""
        return [s for s in self.acked if s.started < self.killed < s.ended]

    @property
    def failover_s(self) -> float:
        """From the kill to the first commit answered after the promotion was asked for."""
        first = min(s.ended for s in self.acked if s.ended > self.promote_requested)
        return first - self.killed

    def line(self, committed_unacked: int) -> str:
        return (
            f"pg-failover: {self.failover_s:.3f} s from the kill of the primary to the first "
            f"commit after promotion (promotion asked {PROMOTE_DELAY} s after the kill, "
            f"took {self.promoted - self.promote_requested:.3f} s); "
            f"in flight at the kill: {len(self.resolved)} acknowledged after the failover, "
            f"{len(self.in_flight)} unacknowledged; "
            f"{len(self.unacked) - len(self.in_flight)} refused during the outage, "
            f"{committed_unacked} unacknowledged but committed; "
            f"{len(self.acked)} acknowledged, none lost (seed {self.seed})"
        )


def _store_counts(url: str) -> tuple[int, dict[str, int]]:
    """(rows of ``transactions``, txid -> seqno) of the consortium, read directly."""
    with psycopg.connect(url, autocommit=True) as con:
        rows = con.execute("SELECT txid, seqno FROM transactions WHERE cid = %s", (CID,)).fetchall()
    return len(rows), {str(txid): int(seqno) for txid, seqno in rows}


def _run_failover(world: World, replicated: ReplicatedPostgres, seed: int) -> Failover:
    """Load, kill the primary at a random moment, promote after PROMOTE_DELAY, load on."""
    rng = random.Random(seed)
    load = Load(world, seed)
    load.start()
    try:
        load.wait_for(rng.randint(10, 40))
        time.sleep(rng.uniform(0.0, 0.02))  # not always right after an answer
        killed = replicated.kill_primary()
        time.sleep(PROMOTE_DELAY)
        promote_requested = time.monotonic()
        replicated.promote()
        promoted = time.monotonic()
        load.wait_for(20, after=promote_requested)
    finally:
        sent = load.stop()
    return Failover(seed, killed, promote_requested, promoted, sent)


def test_failover_to_the_synchronous_standby_loses_no_acknowledged_commit(
    replicated: ReplicatedPostgres, tmp_path: Path
) -> None:
    world = World.open(tmp_path, store=replicated.url, analytics=False)
    try:
        world.create(CID, FOUNDERS)
        world.install("place", CODE)
        base, _ = _store_counts(replicated.url)
        seed = random.randrange(1 << 32)
        print(f"\npg-failover run, seed {seed}")  # shown with the output of a failed run
        run = _run_failover(world, replicated, seed)

        assert [s.failure for s in run.sent if s.failure] == []
        refusals = {s.answer.code for s in run.unacked if isinstance(s.answer, ConsortiaError)}
        assert refusals <= {"unavailable"}, refusals
        # The kill fell inside the load: a request was cut off, or resolved after it.
        assert run.unacked or run.resolved
        # Nothing commits between the kill and the promotion: the old primary is gone and
        # the standby takes no writes (the margin covers an answer already on its way).
        assert not [s for s in run.acked if run.killed + 0.2 < s.ended < run.promote_requested], (
            "a commit was acknowledged while there was no primary"
        )

        # The promoted standby is what the multi-host URL reaches now.
        promoted_url = replicated.standby.url(replicated.dbname)
        with psycopg.connect(replicated.url, autocommit=True) as con:
            assert con.info.port == replicated.standby.port
            assert con.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)

        # Every acknowledged txid is there once, at its acknowledged seqno; besides them
        # only unacknowledged requests that committed all the same.
        rows, stored = _store_counts(promoted_url)
        assert rows == len(stored)  # one row per txid
        acked = {s.txid: s.answer.seqno for s in run.acked if isinstance(s.answer, Committed)}
        assert len(acked) == len(run.acked)
        missing = {t: q for t, q in acked.items() if stored.get(t) != q}
        assert missing == {}, "acknowledged commits lost or moved by the failover"
        committed_unacked = {s.txid for s in run.unacked if s.txid in stored}
        assert rows == base + len(acked) + len(committed_unacked)

        node_key = load_node_key(tmp_path / "node.key")
        store = PostgresStore(promoted_url, read_only=True)
        try:
            (audit,) = verify_ledger(store, node_key)
            assert audit.consortium == CID and audit.tree_size == rows
            for s in run.acked[:: max(1, len(run.acked) // 10)]:  # through the store's lookup
                row = store.tx_by_txid(CID, s.txid)
                assert row is not None and isinstance(s.answer, Committed)
                assert row.seqno == s.answer.seqno
        finally:
            store.close()

        # The client sends every unacknowledged request again, same signed body: one that
        # committed gets its first outcome back, the others commit now; none twice.
        for s in run.unacked:
            again = world.platform.execute(CID, s.body)
            assert isinstance(again, Committed) and again.txid == s.txid
            if s.txid in committed_unacked:
                assert again.seqno == stored[s.txid]
        rows_after, stored_after = _store_counts(promoted_url)
        assert rows_after == len(stored_after) == base + len(acked) + len(run.unacked)
        assert all(stored_after[t] == q for t, q in stored.items())
        store = PostgresStore(promoted_url, read_only=True)
        try:
            (audit,) = verify_ledger(store, node_key)
            assert audit.tree_size == rows_after
        finally:
            store.close()
        print(f"\n{run.line(len(committed_unacked))}")
    finally:
        world.close()


def test_without_its_synchronous_standby_the_primary_does_not_answer_a_commit(
    replicated: ReplicatedPostgres, tmp_path: Path
) -> None:
    world = World.open(tmp_path, store=replicated.url, analytics=False)
    try:
        world.create(CID, FOUNDERS)
        world.install("place", CODE)
        replicated.stop_standby()
        body = world.sign("telco", "place", {"id": "PO1"})
        answers: list[Outcome | ConsortiaError] = []
        submit = threading.Thread(
            target=lambda: answers.extend(world.platform.execute_batch(CID, [body])),
            daemon=True,
        )
        submit.start()
        # The COMMIT is flushed on the primary and waits for the standby's flush.
        deadline = time.monotonic() + DEADLINE
        waiting = 0
        with psycopg.connect(replicated.primary.url(), autocommit=True) as con:
            while not waiting and time.monotonic() < deadline:
                row = con.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
                ).fetchone()
                waiting = 0 if row is None else int(row[0])
                time.sleep(0.02)
        assert waiting == 1, "no commit is waiting for the synchronous standby"
        submit.join(1.0)
        assert submit.is_alive() and answers == [], "a commit returned without its standby"
        replicated.start_standby()
        submit.join(DEADLINE)
        assert not submit.is_alive()
        (answer,) = answers
        assert isinstance(answer, Committed)
        # Acknowledged once flushed on the standby; readable there once replayed.
        standby_url = replicated.standby.url(replicated.dbname)
        deadline = time.monotonic() + DEADLINE
        while answer.txid not in _store_counts(standby_url)[1] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _store_counts(standby_url)[1].get(answer.txid) == answer.seqno
    finally:
        world.close()


def test_a_lost_commit_is_not_mistaken_for_the_one_that_reuses_its_transaction_id(
    replicated: ReplicatedPostgres,
) -> None:
    """A transaction id the dead primary gave out but never replicated is "in the future"
    for the promoted standby, which then gives it out again: the outcome of a COMMIT lost
    with the primary must not be read from that other transaction."""
    store = PostgresStore(replicated.url)
    try:
        lost = psycopg.connect(replicated.url, autocommit=True)
        lost.execute("BEGIN")
        row = lost.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert row is not None
        xid = str(row[0])
        replicated.kill_primary()
        lost.close()
        replicated.promote()
        with pytest.raises(Unavailable):
            store.tree_size(CID)  # the store's connection died with the primary
        assert store._db.closed
        # As in a COMMIT whose connection was lost (PostgresStore.commit passes its batch).
        mark = (CID, 0, "the-lost-batch")
        failure = psycopg.OperationalError("server closed the connection unexpectedly")
        started = time.monotonic()
        assert store._committed_after_all(xid, failure, mark) is False  # never seen here
        assert time.monotonic() - started < 1.0
        # The promoted standby hands the id out again, to a transaction that commits.
        with psycopg.connect(replicated.url, autocommit=True) as other:
            for _ in range(100):
                with other.transaction():
                    taken = other.execute("SELECT pg_current_xact_id()::text").fetchone()
                if taken == (xid,):
                    break
            status = other.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()
        assert status == ("committed",)
        store._db.close()  # lost again
        assert store._committed_after_all(xid, failure, mark) is False
    finally:
        store.close()
