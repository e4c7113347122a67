"""The SQLite store's schema handling, Merkle node rows, and proof cost on a large tree."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from consortia.errors import Unavailable
from consortia.ledger.merkle import (
    MerkleFrontier,
    inclusion_proof,
    leaf_hash,
    leaf_input,
    verify_inclusion,
)
from consortia.ledger.sqlite import SCHEMA_VERSION, SQLiteStore
from consortia.ledger.store import CommitBatch, NodeRow, SignedRootRow, TxRow


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


def _leaf(seqno: int) -> tuple[str, bytes, bytes]:
    txid = hashlib.sha256(f"tx{seqno}".encode()).digest()
    digest = hashlib.sha256(f"record{seqno}".encode()).digest()
    return txid.hex(), digest, leaf_hash(leaf_input(seqno, txid, digest))


def fill(store: SQLiteStore, cid: str, size: int, chunk: int = 4096) -> MerkleFrontier:
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


def test_a_commit_that_fails_writes_no_node(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
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
    store.close()


def test_proofs_on_a_large_stored_tree_read_few_nodes(tmp_path: Path) -> None:
    size = (1 << 16) + 3
    store = SQLiteStore(tmp_path / "big.sqlite")
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
    store.close()
