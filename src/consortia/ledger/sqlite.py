"""The embedded store: one SQLite file in WAL mode, fully synchronous.

``synchronous=FULL`` makes every commit durable against power loss before :meth:`commit`
returns, which is what lets the engine answer only after an outcome is durable. Many
requests share one commit (group commit), which is what makes that affordable.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from consortia.errors import Unavailable
from consortia.ledger.store import (
    CommitBatch,
    ConsortiumRow,
    NameRow,
    NotificationRow,
    ProposalRow,
    TxRow,
    VersionRow,
)

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY, value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consortia (
    cid TEXT PRIMARY KEY, keyring BLOB NOT NULL, info BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transactions (
    cid TEXT NOT NULL, seqno INTEGER NOT NULL, txid TEXT NOT NULL,
    digest BLOB NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, seqno)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS transactions_txid ON transactions (cid, txid);
CREATE TABLE IF NOT EXISTS leaves (
    cid TEXT NOT NULL, seqno INTEGER NOT NULL, leaf_hash BLOB NOT NULL,
    PRIMARY KEY (cid, seqno)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    cid TEXT NOT NULL, name_hash BLOB NOT NULL, seqno INTEGER NOT NULL,
    txid TEXT NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, name_hash, seqno)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names (
    cid TEXT NOT NULL, name_hash BLOB NOT NULL, parent_hash BLOB NOT NULL,
    alive INTEGER NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, name_hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS names_parent ON names (cid, parent_hash, alive);
CREATE TABLE IF NOT EXISTS nonces (
    cid TEXT NOT NULL, nonce_hash BLOB NOT NULL, txid TEXT NOT NULL,
    PRIMARY KEY (cid, nonce_hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notifications (
    cid TEXT NOT NULL, member_hash BLOB NOT NULL, nid INTEGER NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, member_hash, nid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proposals (
    cid TEXT NOT NULL, pid_hash BLOB NOT NULL, is_open INTEGER NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, pid_hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS proposals_open ON proposals (cid, is_open);
"""

_TX_SELECT = (
    "SELECT t.seqno, t.txid, t.digest, l.leaf_hash, t.blob FROM transactions t "
    "JOIN leaves l ON l.cid = t.cid AND l.seqno = t.seqno WHERE "
)


class SQLiteStore:
    """:class:`consortia.ledger.store.Store` on one SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is exactly
            # one transaction and nothing commits behind our back.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            found = self._db.execute("PRAGMA user_version").fetchone()[0]
            if found == 0:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif found != SCHEMA_VERSION:
                raise Unavailable(
                    f"{self.path} has storage schema {found}; this build reads {SCHEMA_VERSION}"
                )
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open the store at {self.path}: {exc}") from None

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise Unavailable(f"storage read failed: {exc}") from None

    # -- platform ---------------------------------------------------------------------------

    def meta_get(self, name: str) -> bytes | None:
        """A platform-level value."""
        with self._reading() as db:
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def meta_put(self, name: str, value: bytes) -> None:
        """Set a platform-level value durably."""
        with self._reading() as db:
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def consortium(self, cid: str) -> ConsortiumRow | None:
        """The consortium row, if any."""
        with self._reading() as db:
            row = db.execute("SELECT keyring, info FROM consortia WHERE cid = ?", (cid,)).fetchone()
        return None if row is None else ConsortiumRow(cid, bytes(row[0]), bytes(row[1]))

    def consortia(self) -> list[str]:
        """Every consortium id, sorted."""
        with self._reading() as db:
            return [r[0] for r in db.execute("SELECT cid FROM consortia ORDER BY cid")]

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
                db.executemany(
                    "INSERT INTO transactions (cid, seqno, txid, digest, blob) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(cid, t.seqno, t.txid, t.digest, t.blob) for t in batch.txs],
                )
                db.executemany(
                    "INSERT INTO leaves (cid, seqno, leaf_hash) VALUES (?, ?, ?)",
                    [(cid, t.seqno, t.leaf_hash) for t in batch.txs],
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
        return 0 if row[0] is None else int(row[0]) + 1

    def _tx(self, query: str, args: tuple[object, ...]) -> TxRow | None:
        with self._reading() as db:
            row = db.execute(query, args).fetchone()
        if row is None:
            return None
        return TxRow(int(row[0]), str(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4]))

    def tx_by_txid(self, cid: str, txid: str) -> TxRow | None:
        """The committed transaction with this txid."""
        return self._tx(_TX_SELECT + "t.cid = ? AND t.txid = ?", (cid, txid))

    def tx_by_seqno(self, cid: str, seqno: int) -> TxRow | None:
        """The committed transaction at this seqno."""
        return self._tx(_TX_SELECT + "t.cid = ? AND t.seqno = ?", (cid, seqno))

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
        return VersionRow(name_hash, int(row[0]), str(row[1]), bytes(row[2]))

    def versions(self, cid: str, name_hash: bytes) -> list[VersionRow]:
        """Every version of a key, oldest first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT seqno, txid, blob FROM versions WHERE cid = ? AND name_hash = ? "
                "ORDER BY seqno",
                (cid, name_hash),
            ).fetchall()
        return [VersionRow(name_hash, int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def children(self, cid: str, parent_hash: bytes) -> list[NameRow]:
        """Live keys directly under a parent."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT name_hash, blob FROM names WHERE cid = ? AND parent_hash = ? AND alive = 1",
                (cid, parent_hash),
            ).fetchall()
        return [NameRow(bytes(r[0]), parent_hash, True, bytes(r[1])) for r in rows]

    def nonce(self, cid: str, nonce_hash: bytes) -> str | None:
        """The txid that used a nonce."""
        with self._reading() as db:
            row = db.execute(
                "SELECT txid FROM nonces WHERE cid = ? AND nonce_hash = ?", (cid, nonce_hash)
            ).fetchone()
        return None if row is None else str(row[0])

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
        return [NotificationRow(member_hash, int(r[0]), bytes(r[1])) for r in rows]

    def last_notification_id(self, cid: str, member_hash: bytes) -> int:
        """Newest queue id of a member (0 when empty)."""
        with self._reading() as db:
            row = db.execute(
                "SELECT MAX(nid) FROM notifications WHERE cid = ? AND member_hash = ?",
                (cid, member_hash),
            ).fetchone()
        return 0 if row[0] is None else int(row[0])

    def proposal(self, cid: str, pid_hash: bytes) -> ProposalRow | None:
        """A proposal by hashed id."""
        with self._reading() as db:
            row = db.execute(
                "SELECT is_open, blob FROM proposals WHERE cid = ? AND pid_hash = ?",
                (cid, pid_hash),
            ).fetchone()
        return None if row is None else ProposalRow(pid_hash, bool(row[0]), bytes(row[1]))

    def open_proposals(self, cid: str) -> list[ProposalRow]:
        """Every open proposal."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT pid_hash, blob FROM proposals WHERE cid = ? AND is_open = 1", (cid,)
            ).fetchall()
        return [ProposalRow(bytes(r[0]), True, bytes(r[1])) for r in rows]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
