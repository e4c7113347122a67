"""The embedded store: one SQLite file in WAL mode, fully synchronous.

``synchronous=FULL`` makes every commit durable against power loss before :meth:`commit`
returns, which is what lets the engine answer only after an outcome is durable. Many
requests share one commit (group commit), which is what makes that affordable. A write
torn by a crash is never read back (see :mod:`consortia.ledger._sqlite_file`).

This module holds the :class:`~consortia.ledger.store.Store` side: platform values, the
commit of one batch in one transaction, and the point reads. Opening the file lives in
:mod:`~consortia.ledger._sqlite_file`, the audit scans in
:mod:`~consortia.ledger._sqlite_audit`, the schema and row readers in
:mod:`~consortia.ledger._sqlite_rows`.
"""

from __future__ import annotations

import sqlite3

from consortia.errors import Unavailable
from consortia.ledger._sqlite_audit import SQLiteAuditScans
from consortia.ledger._sqlite_rows import (
    SCHEMA_VERSION,
    blob,
    integer,
    text,
)
from consortia.ledger.store import (
    CommitBatch,
    ConsortiumRow,
    NameRow,
    ProposalRow,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]


class SQLiteStore(SQLiteAuditScans):
    """:class:`consortia.ledger.store.AuditStore` on one SQLite file (``":memory:"`` for tests).

    ``read_only=True`` opens an existing store without changing a byte of it (what
    ``consortia ledger verify`` does); it refuses a file that is not a Consortia store.
    """

    # -- platform ---------------------------------------------------------------------------

    def meta_put(self, name: str, value: bytes) -> None:
        """Set a platform-level value durably."""
        with self._reading() as db:
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def consortium(self, cid: str) -> ConsortiumRow | None:
        """The consortium row, if any."""
        with self._reading() as db:
            row = db.execute("SELECT keyring, info FROM consortia WHERE cid = ?", (cid,)).fetchone()
        return None if row is None else ConsortiumRow(cid, blob(row[0]), blob(row[1]))

    def rewrap_keyring(self, cid: str, keyring: bytes) -> None:
        """Replace a consortium's wrapped keyring durably (recovery under a new node key)."""
        with self._reading() as db:
            db.execute("UPDATE consortia SET keyring = ? WHERE cid = ?", (keyring, cid))

    def consortia(self) -> list[str]:
        """Every consortium id, sorted."""
        with self._reading() as db:
            return [text(r[0]) for r in db.execute("SELECT cid FROM consortia ORDER BY cid")]

    # -- commit -----------------------------------------------------------------------------

    def commit(self, cid: str, batch: CommitBatch) -> None:
        """Write the batch in one transaction; durable when this returns."""
        if not batch:
            return
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                if batch.consortium is not None:
                    c = batch.consortium
                    db.execute(
                        "INSERT INTO consortia (cid, keyring, info) VALUES (?, ?, ?)",
                        (c.cid, c.keyring, c.info),
                    )
                if batch.keyring is not None:
                    db.execute(
                        "UPDATE consortia SET keyring = ? WHERE cid = ?", (batch.keyring, cid)
                    )
                db.executemany(
                    "INSERT INTO transactions (cid, seqno, txid, digest, blob) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(cid, t.seqno, t.txid, t.digest, t.blob) for t in batch.txs],
                )
                db.executemany(
                    "INSERT INTO merkle_nodes (cid, level, idx, hash) VALUES (?, ?, ?, ?)",
                    [(cid, n.level, n.index, n.hash) for n in batch.nodes],
                )
                if batch.signed_root is not None:
                    r = batch.signed_root
                    db.execute(
                        "INSERT INTO signed_roots (cid, tree_size, previous, jws, mac) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (cid, r.tree_size, r.previous, r.jws, r.mac),
                    )
                db.executemany(
                    "INSERT INTO versions (cid, name_hash, seqno, txid, blob) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(cid, v.name_hash, v.seqno, v.txid, v.blob) for v in batch.versions],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO names (cid, name_hash, parent_hash, alive, blob) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(cid, n.name_hash, n.parent_hash, n.alive, n.blob) for n in batch.names],
                )
                db.executemany(
                    "INSERT INTO nonces (cid, nonce_hash, txid) VALUES (?, ?, ?)",
                    [(cid, n.nonce_hash, n.txid) for n in batch.nonces],
                )
                db.executemany(
                    "INSERT INTO notifications (cid, member_hash, nid, blob) VALUES (?, ?, ?, ?)",
                    [(cid, n.member_hash, n.nid, n.blob) for n in batch.notifications],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO proposals (cid, pid_hash, is_open, blob) "
                    "VALUES (?, ?, ?, ?)",
                    [(cid, p.pid_hash, p.is_open, p.blob) for p in batch.proposals],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                    list(batch.meta.items()),
                )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise Unavailable(f"commit failed, nothing was written: {exc}") from None

    # -- reads ------------------------------------------------------------------------------

    def tree_size(self, cid: str) -> int:
        """Next seqno."""
        with self._reading() as db:
            row = db.execute("SELECT MAX(seqno) FROM transactions WHERE cid = ?", (cid,)).fetchone()
        return 0 if row[0] is None else integer(row[0]) + 1

    def children(self, cid: str, parent_hash: bytes) -> list[NameRow]:
        """Live keys directly under a parent."""
        with self._reading() as db:
            # INDEXED BY: left to itself SQLite scans every name of the consortium through
            # the primary key (cid=?), so a list_keys cost grew with the whole state
            # (20 ms at 10^5 keys, 21 us with the index; bench/http_load.py, telco).
            rows = db.execute(
                "SELECT name_hash, blob FROM names INDEXED BY names_parent "
                "WHERE cid = ? AND parent_hash = ? AND alive = 1",
                (cid, parent_hash),
            ).fetchall()
        return [NameRow(blob(r[0]), parent_hash, True, blob(r[1])) for r in rows]

    def open_proposals(self, cid: str) -> list[ProposalRow]:
        """Every open proposal."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT pid_hash, blob FROM proposals WHERE cid = ? AND is_open = 1", (cid,)
            ).fetchall()
        return [ProposalRow(blob(r[0]), True, blob(r[1])) for r in rows]
