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
    TX_SELECT,
    blob,
    flag,
    integer,
    signed_root_row,
    text,
    tx_row,
)
from consortia.ledger.store import (
    CommitBatch,
    ConsortiumRow,
    NameRow,
    NotificationRow,
    ProposalRow,
    SignedRootRow,
    TxRow,
    VersionRow,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]


class SQLiteStore(SQLiteAuditScans):
    """:class:`consortia.ledger.store.AuditStore` on one SQLite file (``":memory:"`` for tests).

    ``read_only=True`` opens an existing store without changing a byte of it (what
    ``consortia ledger verify`` does); it refuses a file that is not a Consortia store.
    """

    # -- platform ---------------------------------------------------------------------------

    def meta_get(self, name: str) -> bytes | None:
        """A platform-level value."""
        with self._reading() as db:
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else blob(row[0])

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

    def _tx(self, query: str, args: tuple[object, ...]) -> TxRow | None:
        with self._reading() as db:
            row = db.execute(query, args).fetchone()
        return None if row is None else tx_row(row)

    def tx_by_txid(self, cid: str, txid: str) -> TxRow | None:
        """The committed transaction with this txid."""
        return self._tx(TX_SELECT + "t.cid = ? AND t.txid = ?", (cid, txid))

    def tx_by_seqno(self, cid: str, seqno: int) -> TxRow | None:
        """The committed transaction at this seqno."""
        return self._tx(TX_SELECT + "t.cid = ? AND t.seqno = ?", (cid, seqno))

    def merkle_node(self, cid: str, level: int, index: int) -> bytes | None:
        """One perfect subtree's hash."""
        with self._reading() as db:
            row = db.execute(
                "SELECT hash FROM merkle_nodes WHERE cid = ? AND level = ? AND idx = ?",
                (cid, level, index),
            ).fetchone()
        return None if row is None else blob(row[0])

    def latest_signed_root(self, cid: str) -> SignedRootRow | None:
        """The signed root of the largest tree."""
        with self._reading() as db:
            row = db.execute(
                "SELECT tree_size, previous, jws, mac FROM signed_roots WHERE cid = ? "
                "ORDER BY tree_size DESC LIMIT 1",
                (cid,),
            ).fetchone()
        return None if row is None else signed_root_row(row)

    def latest_version(self, cid: str, name_hash: bytes) -> VersionRow | None:
        """Newest version of a key."""
        with self._reading() as db:
            row = db.execute(
                "SELECT seqno, txid, blob FROM versions WHERE cid = ? AND name_hash = ? "
                "ORDER BY seqno DESC LIMIT 1",
                (cid, name_hash),
            ).fetchone()
        if row is None:
            return None
        return VersionRow(name_hash, integer(row[0]), text(row[1]), blob(row[2]))

    def versions(self, cid: str, name_hash: bytes) -> list[VersionRow]:
        """Every version of a key, oldest first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT seqno, txid, blob FROM versions WHERE cid = ? AND name_hash = ? "
                "ORDER BY seqno",
                (cid, name_hash),
            ).fetchall()
        return [VersionRow(name_hash, integer(r[0]), text(r[1]), blob(r[2])) for r in rows]

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

    def nonce(self, cid: str, nonce_hash: bytes) -> str | None:
        """The txid that used a nonce."""
        with self._reading() as db:
            row = db.execute(
                "SELECT txid FROM nonces WHERE cid = ? AND nonce_hash = ?", (cid, nonce_hash)
            ).fetchone()
        return None if row is None else text(row[0])

    def notifications(
        self, cid: str, member_hash: bytes, after: int, limit: int
    ) -> list[NotificationRow]:
        """A member's queue after an id."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT nid, blob FROM notifications WHERE cid = ? AND member_hash = ? "
                "AND nid > ? ORDER BY nid LIMIT ?",
                (cid, member_hash, after, limit),
            ).fetchall()
        return [NotificationRow(member_hash, integer(r[0]), blob(r[1])) for r in rows]

    def last_notification_id(self, cid: str, member_hash: bytes) -> int:
        """Newest queue id of a member (0 when empty)."""
        with self._reading() as db:
            row = db.execute(
                "SELECT MAX(nid) FROM notifications WHERE cid = ? AND member_hash = ?",
                (cid, member_hash),
            ).fetchone()
        return 0 if row[0] is None else integer(row[0])

    def proposal(self, cid: str, pid_hash: bytes) -> ProposalRow | None:
        """A proposal by hashed id."""
        with self._reading() as db:
            row = db.execute(
                "SELECT is_open, blob FROM proposals WHERE cid = ? AND pid_hash = ?",
                (cid, pid_hash),
            ).fetchone()
        return None if row is None else ProposalRow(pid_hash, flag(row[0]), blob(row[1]))

    def open_proposals(self, cid: str) -> list[ProposalRow]:
        """Every open proposal."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT pid_hash, blob FROM proposals WHERE cid = ? AND is_open = 1", (cid,)
            ).fetchall()
        return [ProposalRow(blob(r[0]), True, blob(r[1])) for r in rows]
