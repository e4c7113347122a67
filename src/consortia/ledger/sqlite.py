"""The embedded store: one SQLite file in WAL mode, fully synchronous.

``synchronous=FULL`` makes every commit durable against power loss before :meth:`commit`
returns, which is what lets the engine answer only after an outcome is durable. Many
requests share one commit (group commit), which is what makes that affordable. A write
torn by a crash is never read back: SQLite's WAL frames are checksummed and a transaction
counts only once its commit frame is whole (tests/ledger/test_ledger_crash.py kills a
writer hundreds of times to hold it to that).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from consortia.errors import Unavailable
from consortia.ledger._sqlite_rows import (
    SCHEMA,
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
    NonceRow,
    NotificationRow,
    ProposalRow,
    SignedRootRow,
    TxRow,
    VersionRow,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

_Row = TypeVar("_Row")
_PAGE = 1000


class SQLiteStore:
    """:class:`consortia.ledger.store.AuditStore` on one SQLite file (``":memory:"`` for tests).

    ``read_only=True`` opens an existing store without changing a byte of it (what
    ``consortia ledger verify`` does); it refuses a file that is not a Consortia store.
    """

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        try:
            if read_only:
                # mode=ro: never create the file, the schema or anything else.
                uri = Path(self.path).resolve().as_uri() + "?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False
                )
                if self._schema_is_missing():
                    raise self._not_ours()
                return
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is exactly
            # one transaction and nothing commits behind our back.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Checked before any PRAGMA below writes to the file: another schema stays as it is.
            missing = self._schema_is_missing()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if missing:
                self._create_schema()
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open the store at {self.path}: {exc}") from None

    def _schema_is_missing(self) -> bool:
        """True for an empty file; raises for another schema or a foreign database."""
        found = self._db.execute("PRAGMA user_version").fetchone()[0]
        if found == SCHEMA_VERSION:
            return False
        tables = self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if found == 0 and tables == 0:
            return True
        if found == 0:
            raise self._not_ours()
        raise Unavailable(
            f"{self.path} has storage schema {found}; this build reads schema "
            f"{SCHEMA_VERSION} and does not convert older development stores "
            "(schema 1 had no Merkle nodes or signed roots): start from a new data directory"
        )

    def _not_ours(self) -> Unavailable:
        return Unavailable(
            f"{self.path} is not a Consortia store (no schema version); "
            "point --data at the folder a platform created"
        )

    def _create_schema(self) -> None:
        # Schema and version in one transaction: a crash leaves an empty file or a complete
        # schema, never tables without a version. Re-checked inside it, since another
        # process may have created the schema meanwhile.
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise Unavailable(f"storage read failed: {exc}") from None
            except UnicodeDecodeError:
                # A TEXT column that is not UTF-8: the file was damaged, not our writes.
                raise Unavailable(
                    "storage holds a damaged row: text that is not UTF-8; "
                    "run `consortia ledger verify`"
                ) from None

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

    # -- audit scans (AuditStore) -----------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold one read transaction: a WAL reader then sees a single committed state."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
            except sqlite3.Error as exc:
                raise Unavailable(f"storage read failed: {exc}") from None
            try:
                yield
            finally:
                # The transaction only read. Ending it can fail on a damaged file; the reader
                # already has its answer (or its error), so that failure adds nothing.
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")

    def check_integrity(self) -> None:
        """SQLite's own structural check (pages, b-trees, indexes agree with tables)."""
        with self._reading() as db:
            rows = db.execute("PRAGMA integrity_check").fetchall()
        problems = [text(r[0]) for r in rows if r[0] != "ok"]
        if problems:
            raise Unavailable(f"{self.path} is damaged: {'; '.join(problems[:3])}")
        # SQLite reads a short last page as zeros, so a file cut inside the unused tail of its
        # last page (an overflow page's zero padding) passes the check above; SQLite itself
        # only ever writes whole pages.
        if self.path != ":memory:":
            with self._reading() as db:
                page = integer(db.execute("PRAGMA page_size").fetchone()[0])
            try:
                size = Path(self.path).stat().st_size
            except OSError as exc:
                raise Unavailable(f"cannot read {self.path}: {exc.strerror}") from None
            if size % page:
                raise Unavailable(
                    f"{self.path} is damaged: {size} bytes is no whole number of its "
                    f"{page}-byte pages (the file was cut or extended)"
                )

    def cids_in_use(self) -> set[str]:
        """Every consortium id any row of any table is filed under."""
        tables = (
            "consortia",
            "transactions",
            "merkle_nodes",
            "signed_roots",
            "versions",
            "names",
            "nonces",
            "notifications",
            "proposals",
        )
        with self._reading() as db:
            found: set[str] = set()
            for table in tables:
                query = f"SELECT DISTINCT cid FROM {table}"  # noqa: S608 - names fixed above
                found.update(text(r[0]) for r in db.execute(query))
        return found

    def merkle_node_count(self, cid: str) -> int:
        """How many Merkle node rows the consortium has."""
        with self._reading() as db:
            row = db.execute("SELECT COUNT(*) FROM merkle_nodes WHERE cid = ?", (cid,)).fetchone()
        return integer(row[0])

    def _scan(
        self,
        select: str,
        keys: Sequence[str],
        cid: str,
        make: Callable[[Sequence[Any]], _Row],
    ) -> Iterator[_Row]:
        """Yield rows in primary-key order, a page at a time (keyset pagination).

        ``select`` ends in a WHERE clause on ``cid``; the key columns are its last columns,
        so the lock is never held while the caller works on a row.
        """
        order = ", ".join(keys)
        after: tuple[Any, ...] | None = None
        while True:
            if after is None:
                query, args = f"{select} ORDER BY {order} LIMIT ?", (cid, _PAGE)
            else:
                marks = ", ".join("?" for _ in keys)
                query = f"{select} AND ({order}) > ({marks}) ORDER BY {order} LIMIT ?"
                args = (cid, *after, _PAGE)
            with self._reading() as db:
                rows = db.execute(query, args).fetchall()
            for row in rows:
                yield make(row)
            if len(rows) < _PAGE:
                return
            after = tuple(rows[-1][-len(keys) :])

    def scan_txs(self, cid: str) -> Iterator[TxRow]:
        """Every transaction, by seqno; ``leaf_hash`` is ``b""`` where its node is missing."""
        select = (
            "SELECT t.seqno, t.txid, t.digest, n.hash, t.blob, t.seqno FROM transactions t "
            "LEFT JOIN merkle_nodes n ON n.cid = t.cid AND n.level = 0 AND n.idx = t.seqno "
            "WHERE t.cid = ?"
        )
        return self._scan(select, ["t.seqno"], cid, tx_row)

    def meta_names(self) -> list[str]:
        """The name of every platform-level value, sorted."""
        with self._reading() as db:
            return [text(r[0]) for r in db.execute("SELECT name FROM meta ORDER BY name")]

    def scan_signed_roots(self, cid: str) -> Iterator[SignedRootRow]:
        """Every signed root, by tree size."""
        select = "SELECT tree_size, previous, jws, mac, tree_size FROM signed_roots WHERE cid = ?"
        return self._scan(select, ["tree_size"], cid, signed_root_row)

    def scan_versions(self, cid: str) -> Iterator[VersionRow]:
        """Every state version."""
        select = "SELECT txid, blob, name_hash, seqno FROM versions WHERE cid = ?"
        return self._scan(
            select,
            ["name_hash", "seqno"],
            cid,
            lambda r: VersionRow(blob(r[2]), integer(r[3]), text(r[0]), blob(r[1])),
        )

    def scan_names(self, cid: str) -> Iterator[NameRow]:
        """Every directory entry."""
        select = "SELECT parent_hash, alive, blob, name_hash FROM names WHERE cid = ?"
        return self._scan(
            select,
            ["name_hash"],
            cid,
            lambda r: NameRow(blob(r[3]), blob(r[0]), flag(r[1]), blob(r[2])),
        )

    def scan_nonces(self, cid: str) -> Iterator[NonceRow]:
        """Every used nonce."""
        select = "SELECT txid, nonce_hash FROM nonces WHERE cid = ?"
        return self._scan(select, ["nonce_hash"], cid, lambda r: NonceRow(blob(r[1]), text(r[0])))

    def scan_notifications(self, cid: str) -> Iterator[NotificationRow]:
        """Every queue entry, by member hash then id."""
        select = "SELECT blob, member_hash, nid FROM notifications WHERE cid = ?"
        return self._scan(
            select,
            ["member_hash", "nid"],
            cid,
            lambda r: NotificationRow(blob(r[1]), integer(r[2]), blob(r[0])),
        )

    def scan_proposals(self, cid: str) -> Iterator[ProposalRow]:
        """Every proposal."""
        select = "SELECT is_open, blob, pid_hash FROM proposals WHERE cid = ?"
        return self._scan(
            select,
            ["pid_hash"],
            cid,
            lambda r: ProposalRow(blob(r[2]), flag(r[0]), blob(r[1])),
        )

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
