"""The stores' schema handling, commits, Merkle node rows, and proof cost on a large tree.

Every store-level test runs on both stores (the ``store_kind`` parameter): the embedded
SQLite file and PostgreSQL (a throwaway server, tests/pg_server.py). Tests that read the
SQLite file or its pragmas are SQLite-only; their PostgreSQL counterparts read the catalog.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from ledger_fixtures import T0, Ledger, WritingSandbox, _found
from psycopg import sql

from consortia import Committed, Platform, SigningKey
from consortia._json import JSONObject
from consortia.errors import Unavailable
from consortia.ledger.merkle import (
    MerkleFrontier,
    inclusion_proof,
    leaf_hash,
    leaf_input,
    verify_inclusion,
)
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.postgres import PostgresStore
from consortia.ledger.sqlite import SCHEMA_VERSION, SQLiteStore
from consortia.ledger.store import (
    AuditStore,
    CommitBatch,
    ConsortiumRow,
    NameRow,
    NodeRow,
    NonceRow,
    NotificationRow,
    ProposalRow,
    SignedRootRow,
    TxRow,
    VersionRow,
)
from pg_server import postgres_server_fixture, postgres_url_fixture  # noqa: F401 - fixtures

AnyStore = SQLiteStore | PostgresStore
#: Opens the test's store (again: the same file or database each call).
Opener = Callable[[], AnyStore]

STORES = ["sqlite", "postgresql"]


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def location(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The SQLite file, or a fresh PostgreSQL database's URL (the server starts only here)."""
    if store_kind == "sqlite":
        return str(tmp_path / "s.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def open_store(store_kind: str, location: str) -> Iterator[Opener]:
    opened: list[AnyStore] = []

    def make() -> AnyStore:
        store: AnyStore = (
            SQLiteStore(location) if store_kind == "sqlite" else PostgresStore(location)
        )
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Opener) -> AnyStore:
    return open_store()


def dump(store: AnyStore) -> list[object]:
    """Everything the store holds, read through the interface (store-agnostic)."""
    out: list[object] = [(n, store.meta_get(n)) for n in store.meta_names()]
    for cid in sorted(store.cids_in_use() | set(store.consortia())):
        out += [
            store.consortium(cid),
            store.tree_size(cid),
            store.merkle_node_count(cid),
            list(store.scan_txs(cid)),
            list(store.scan_signed_roots(cid)),
            list(store.scan_versions(cid)),
            list(store.scan_names(cid)),
            list(store.scan_nonces(cid)),
            list(store.scan_notifications(cid)),
            list(store.scan_proposals(cid)),
        ]
    return out


# -- SQLite only: these open the .sqlite file itself or read its pragmas -------------------


def test_a_new_store_gets_the_current_schema(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "s.sqlite").close()
    con = sqlite3.connect(tmp_path / "s.sqlite")
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    con.close()
    assert {"merkle_nodes", "signed_roots", "transactions"} <= tables
    assert "leaves" not in tables


def test_an_older_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE leaves (x); PRAGMA user_version = 1;")
    con.close()
    before = path.read_bytes()
    with pytest.raises(Unavailable) as caught:
        SQLiteStore(path)
    assert "schema 1" in caught.value.message
    assert "start from a new data directory" in caught.value.message
    assert path.read_bytes() == before


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (x)")
    con.close()
    with pytest.raises(Unavailable, match="not a Consortia store"):
        SQLiteStore(path)


def test_read_only_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="cannot open the store"):
        SQLiteStore(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(Unavailable, match="not a Consortia store"):
        SQLiteStore(tmp_path / "empty.sqlite", read_only=True)
    assert (tmp_path / "empty.sqlite").read_bytes() == b""


# -- PostgreSQL only: the same schema rules, read from the catalog --------------------------


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_postgres_a_new_database_gets_the_current_schema(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    PostgresStore(postgres_url).close()  # a second open finds it and changes nothing
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT version FROM store_schema").fetchall() == [(SCHEMA_VERSION,)]
        types: dict[str, str] = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'transactions'"
            ).fetchall()
        )
    assert types == {
        "cid": "text",
        "seqno": "bigint",
        "txid": "text",
        "digest": "bytea",
        "blob": "bytea",
    }
    assert {"merkle_nodes", "signed_roots", "transactions", "meta"} <= _tables(postgres_url)


def test_postgres_an_other_schema_version_is_refused_and_left_alone(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url) as con:
        con.execute("UPDATE store_schema SET version = 1")
    with pytest.raises(Unavailable) as caught:
        PostgresStore(postgres_url)
    assert "schema 1" in caught.value.message
    assert "start from a new database" in caught.value.message
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT version FROM store_schema").fetchall() == [(1,)]


def test_postgres_tables_of_ours_without_a_version_are_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as con:
        con.execute("CREATE TABLE transactions (x integer)")
    with pytest.raises(Unavailable, match="not a Consortia store"):
        PostgresStore(postgres_url)
    assert _tables(postgres_url) == {"transactions"}


def test_postgres_read_only_creates_nothing(postgres_url: str) -> None:
    with pytest.raises(Unavailable, match="not a Consortia store"):
        PostgresStore(postgres_url, read_only=True)
    assert _tables(postgres_url) == set()
    PostgresStore(postgres_url).close()
    reader = PostgresStore(postgres_url, read_only=True)
    with pytest.raises(Unavailable, match="read-only"):
        reader.meta_put("x", b"y")
    with pytest.raises(Unavailable, match="nothing was written"):
        reader.commit("c", CommitBatch(meta={"x": b"y"}))
    assert reader.meta_names() == []
    reader.close()


def test_postgres_an_unreachable_server_is_unavailable(postgres_url: str) -> None:
    with pytest.raises(Unavailable, match="cannot open the store"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")


def test_postgres_a_multi_host_conninfo_is_used_unchanged(postgres_url: str) -> None:
    # The first host refuses connections; libpq moves on to the second.
    url = postgres_url.replace("@127.0.0.1:", "@127.0.0.1:1,127.0.0.1:")
    store = PostgresStore(url)
    store.meta_put("k", b"v")
    assert store.meta_get("k") == b"v"
    store.close()


# -- both stores ----------------------------------------------------------------------------


def _leaf(seqno: int) -> tuple[str, bytes, bytes]:
    txid = hashlib.sha256(f"tx{seqno}".encode()).digest()
    digest = hashlib.sha256(f"record{seqno}".encode()).digest()
    return txid.hex(), digest, leaf_hash(leaf_input(seqno, txid, digest))


def fill(store: AnyStore, cid: str, size: int, chunk: int = 4096) -> MerkleFrontier:
    """Append ``size`` synthetic leaves straight through the store, as commit batches do."""
    frontier = MerkleFrontier()
    for start in range(0, size, chunk):
        batch = CommitBatch()
        for seqno in range(start, min(size, start + chunk)):
            txid, digest, leaf = _leaf(seqno)
            batch.txs.append(TxRow(seqno, txid, digest, leaf, b"-"))
            batch.nodes.extend(NodeRow(*n) for n in frontier.append(leaf))
        batch.signed_root = SignedRootRow(frontier.size, start, "-", b"-")
        store.commit(cid, batch)
    return frontier


def test_a_commit_that_fails_writes_no_node(store: AnyStore) -> None:
    fill(store, "c", 3)
    txid, digest, leaf = _leaf(3)
    clash = CommitBatch(
        txs=[TxRow(3, txid, digest, leaf, b"-")],
        nodes=[NodeRow(0, 3, leaf), NodeRow(0, 0, leaf)],  # (0, 0) exists: the batch fails
    )
    with pytest.raises(Unavailable, match="nothing was written"):
        store.commit("c", clash)
    assert store.tree_size("c") == 3
    assert store.merkle_node("c", 0, 3) is None


def full_batch(seqno: int, *, consortium: bool = True) -> CommitBatch:
    """A batch with a row of every kind (as a group commit of one transaction writes)."""
    txid, digest, leaf = _leaf(seqno)
    return CommitBatch(
        consortium=ConsortiumRow("c", b"\x00keyring", b"\xffinfo") if consortium else None,
        txs=[TxRow(seqno, txid, digest, leaf, b"\x00tx-blob\xff")],
        versions=[VersionRow(b"\x01name", seqno, txid, b"v" + bytes([seqno]))],
        names=[NameRow(b"\x01name", b"\x02parent", True, b"n" + bytes([seqno]))],
        nonces=[NonceRow(b"\x03nonce" + bytes([seqno]), txid)],
        notifications=[NotificationRow(b"\x04member", seqno + 1, b"q")],
        proposals=[ProposalRow(b"\x05pid", seqno == 0, b"p" + bytes([seqno]))],
        nodes=[NodeRow(0, seqno, leaf)],
        signed_root=SignedRootRow(seqno + 1, seqno, f"jws{seqno}", b"mac"),
        meta={"platform/x": b"\x00meta"},
    )


def test_a_commit_that_fails_late_leaves_the_store_unchanged(store: AnyStore) -> None:
    store.commit("c", full_batch(0))
    before = dump(store)
    # Everything new up to the meta row, then a seqno that is taken: the whole batch goes.
    late = full_batch(1, consortium=False)
    late.versions.append(VersionRow(b"\x01name", 0, "dup", b"again"))
    late.meta["platform/y"] = b"new"
    with pytest.raises(Unavailable, match="nothing was written"):
        store.commit("c", late)
    assert dump(store) == before
    # The store still works after the failure.
    store.commit("c", full_batch(1, consortium=False))
    assert store.tree_size("c") == 2


def test_every_row_reads_back_after_reopening(open_store: Opener) -> None:
    store = open_store()
    store.meta_put("b", b"\x00two")
    store.meta_put("a", b"one")
    store.meta_put("a", b"uno")
    store.commit("c", full_batch(0))
    second = full_batch(1, consortium=False)
    second.names.append(NameRow(b"\x06gone", b"\x02parent", False, b"dead"))
    second.keyring = b"rotated"
    store.commit("c", second)
    store.commit("c", CommitBatch())  # empty: nothing to do
    store.close()

    store = open_store()
    txid0, digest0, leaf0 = _leaf(0)
    txid1 = _leaf(1)[0]
    assert store.meta_get("a") == b"uno" and store.meta_get("missing") is None
    assert store.meta_names() == ["a", "b", "platform/x"]
    assert store.consortium("c") == ConsortiumRow("c", b"rotated", b"\xffinfo")
    assert store.consortium("other") is None
    assert store.consortia() == ["c"]
    assert store.tree_size("c") == 2 and store.tree_size("other") == 0
    tx = TxRow(0, txid0, digest0, leaf0, b"\x00tx-blob\xff")
    assert store.tx_by_seqno("c", 0) == tx == store.tx_by_txid("c", txid0)
    assert store.tx_by_seqno("c", 5) is None and store.tx_by_txid("c", "nope") is None
    assert store.merkle_node("c", 0, 0) == leaf0 and store.merkle_node("c", 1, 0) is None
    assert store.latest_signed_root("c") == SignedRootRow(2, 1, "jws1", b"mac")
    assert store.latest_signed_root("other") is None
    assert store.latest_version("c", b"\x01name") == VersionRow(b"\x01name", 1, txid1, b"v\x01")
    assert [v.seqno for v in store.versions("c", b"\x01name")] == [0, 1]
    assert store.latest_version("c", b"none") is None and store.versions("c", b"none") == []
    assert store.children("c", b"\x02parent") == [
        NameRow(b"\x01name", b"\x02parent", True, b"n\x01")
    ]
    assert store.nonce("c", b"\x03nonce\x00") == txid0 and store.nonce("c", b"x") is None
    queue = store.notifications("c", b"\x04member", 0, 10)
    assert [n.nid for n in queue] == [1, 2]
    assert [n.nid for n in store.notifications("c", b"\x04member", 1, 10)] == [2]
    assert [n.nid for n in store.notifications("c", b"\x04member", 0, 1)] == [1]
    assert store.last_notification_id("c", b"\x04member") == 2
    assert store.last_notification_id("c", b"nobody") == 0
    assert store.proposal("c", b"\x05pid") == ProposalRow(b"\x05pid", False, b"p\x01")
    assert store.proposal("c", b"none") is None
    assert store.open_proposals("c") == []
    # The audit side (both stores are AuditStores to the type checker, too).
    audit: AuditStore = store
    assert audit is store
    with store.snapshot():
        store.check_integrity()
        assert store.cids_in_use() == {"c"}
        assert store.merkle_node_count("c") == 2
        assert [t.seqno for t in store.scan_txs("c")] == [0, 1]
        assert [r.tree_size for r in store.scan_signed_roots("c")] == [1, 2]
        assert [(v.name_hash, v.seqno) for v in store.scan_versions("c")] == [
            (b"\x01name", 0),
            (b"\x01name", 1),
        ]
        assert [(n.name_hash, n.alive) for n in store.scan_names("c")] == [
            (b"\x01name", True),
            (b"\x06gone", False),
        ]
        assert len(list(store.scan_nonces("c"))) == 2
        assert [n.nid for n in store.scan_notifications("c")] == [1, 2]
        assert [p.is_open for p in store.scan_proposals("c")] == [False]
    store.rewrap_keyring("c", b"rewrapped")
    row = store.consortium("c")
    assert row is not None and row.keyring == b"rewrapped"


def test_scans_page_in_key_order(store: AnyStore) -> None:
    # More rows than one page (1000), keys whose byte order differs from insertion order.
    batch = CommitBatch(
        versions=[
            VersionRow(hashlib.sha256(bytes([n % 256, n // 256])).digest(), 0, "t", b"v")
            for n in range(2500)
        ]
    )
    store.commit("c", batch)
    scanned = [v.name_hash for v in store.scan_versions("c")]
    assert scanned == sorted(v.name_hash for v in batch.versions)


def test_consortia_sort_by_code_point(store: AnyStore) -> None:
    for cid in ["b", "B", "a", "_z", "é"]:
        store.commit(cid, CommitBatch(consortium=ConsortiumRow(cid, b"k", b"i")))
    assert store.consortia() == sorted(["b", "B", "a", "_z", "é"])


def test_commits_from_several_threads(store: AnyStore) -> None:
    errors: list[Exception] = []

    def lane(cid: str) -> None:
        try:
            fill(store, cid, 300, chunk=7)
            assert store.tree_size(cid) == 300
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=lane, args=(f"c{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.consortia() == [] and store.cids_in_use() == {"c0", "c1", "c2", "c3"}


def test_proofs_on_a_large_stored_tree_read_few_nodes(store: AnyStore) -> None:
    size = (1 << 16) + 3
    frontier = fill(store, "big", size)
    reads = [0]

    def get_node(level: int, index: int) -> bytes:
        reads[0] += 1
        value = store.merkle_node("big", level, index)
        assert value is not None
        return value

    restored = MerkleFrontier.restore(size, get_node)
    assert restored.root() == frontier.root() and reads[0] == size.bit_count()
    for seqno in (0, 1, 40_000, size - 2, size - 1):
        reads[0] = 0
        proof = inclusion_proof(seqno, size, get_node)
        assert reads[0] <= 2 * (size - 1).bit_length()
        row = store.tx_by_seqno("big", seqno)
        assert row is not None
        verify_inclusion(row.leaf_hash, seqno, size, proof, frontier.root())


# -- the ciphertext-only rule, against a real platform --------------------------------------

MARKER = "PLAINTEXT-MARKER-7f3a"


def _postgres_dump(url: str) -> bytes:
    """Every column of every row of every table, in COPY's text and binary forms."""
    out = bytearray()
    with psycopg.connect(url) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' ORDER BY table_name"
            ).fetchall()
        ]
        assert "transactions" in tables and "versions" in tables
        for table in tables:
            for form in (sql.SQL(""), sql.SQL("WITH (FORMAT binary)")):
                query = sql.SQL("COPY {} TO STDOUT {}").format(sql.Identifier(table), form)
                with con.cursor().copy(query) as copy:
                    for chunk in copy:
                        out += chunk
    return bytes(out)


def _sqlite_dump(path: Path) -> bytes:
    """The SQLite file and its WAL, byte for byte."""
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_storage_holds_no_plaintext(
    store_kind: str, open_store: Opener, location: str, tmp_path: Path
) -> None:
    operator = SigningKey.generate()
    store = open_store()
    platform = Platform(
        store,
        node_key=load_or_create_node_key(tmp_path / "node.key"),
        operator_keys=[operator.verify_key],
        sandbox=WritingSandbox(),
        clock=lambda: T0,
    )
    ledger = Ledger(tmp_path, operator, platform)
    _found(ledger, "acme", ["telco", "vendor"])
    write: JSONObject = {"key": f"order/{MARKER}", "value": {"note": MARKER}}
    answers = ledger.run(
        "acme",
        [
            ledger.act("acme", "telco", "record", {"writes": [write]}),
            ledger.act(
                "acme", "vendor", "record", {"writes": [{**write, "visible_to": ["telco"]}]}
            ),
        ],
    )
    assert all(isinstance(a, Committed) for a in answers)
    assert store.tree_size("acme") >= 4
    platform.close()  # closes the store too

    data = _sqlite_dump(Path(location)) if store_kind == "sqlite" else _postgres_dump(location)
    assert len(data) > 1000
    needle = MARKER.encode()
    for form in (needle, needle.hex().encode(), needle.hex().upper().encode()):
        assert form not in data
    assert b"order/" not in data
    assert b"acme" in data  # the dump does hold the rows (the consortium id is public)


# -- PostgreSQL only: a connection that dies inside the batch -------------------------------


def _kill_the_writer_on_signed_roots(url: str, trigger: str) -> None:
    """Install ``trigger`` (a CREATE ... TRIGGER die head) to end the inserting session."""
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(
            "CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
        )
        con.execute(sql.SQL(trigger + " FOR EACH ROW EXECUTE FUNCTION die()"))


def test_postgres_a_connection_killed_mid_batch_leaves_nothing(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    fill(store, "c", 3)
    before = dump(store)
    # Inserting a signed root ends the writer's own server process: the transactions and
    # nodes of the batch are written, its COMMIT never is.
    _kill_the_writer_on_signed_roots(
        postgres_url, "CREATE TRIGGER die BEFORE INSERT ON signed_roots"
    )
    batch = full_batch(3)
    batch.consortium = None
    with pytest.raises(Unavailable, match="nothing was written") as caught:
        store.commit("c", batch)
    assert "terminating connection" in caught.value.message
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("DROP TRIGGER die ON signed_roots")
        assert con.execute("SELECT COUNT(*) FROM transactions").fetchone() == (3,)
    # The next call opens a new connection and sees the store as it was.
    assert dump(store) == before
    store.commit("c", batch)
    assert store.tree_size("c") == 4
    store.close()


def test_postgres_a_connection_killed_during_commit_is_looked_up(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection lost in COMMIT itself: the store asks the server what became of it."""
    store = PostgresStore(postgres_url)
    looked_up: list[bool] = []
    lookup = store._committed_after_all

    def spy(xid: str, failure: psycopg.Error, mark: tuple[str, int, str] | None = None) -> bool:
        looked_up.append(lookup(xid, failure, mark))
        return looked_up[-1]

    monkeypatch.setattr(store, "_committed_after_all", spy)
    fill(store, "c", 3)
    before = dump(store)
    # A deferred constraint trigger runs inside COMMIT, before the commit record.
    _kill_the_writer_on_signed_roots(
        postgres_url,
        "CREATE CONSTRAINT TRIGGER die AFTER INSERT ON signed_roots DEFERRABLE INITIALLY DEFERRED",
    )
    batch = full_batch(3, consortium=False)
    with pytest.raises(Unavailable, match="nothing was written"):
        store.commit("c", batch)
    assert looked_up == [False]  # the server said: aborted
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("DROP TRIGGER die ON signed_roots")
    assert dump(store) == before
    store.commit("c", batch)
    assert store.tree_size("c") == 4
    # A transaction that did commit before its connection was lost is found committed.
    with psycopg.connect(postgres_url) as con:
        con.execute("INSERT INTO meta (name, value) VALUES ('probe', '')")
        row = con.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert row is not None
    store._db.close()  # as if lost: the lookup opens a new connection
    assert lookup(row[0], psycopg.OperationalError("connection lost")) is True
    store.close()
    with pytest.raises(Unavailable, match="is closed"):
        store.tree_size("c")
