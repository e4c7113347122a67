"""The SQLite store's audit scans (:class:`~consortia.ledger.store.AuditStore`).

What ``consortia ledger verify`` reads: one snapshot for a consistent view, SQLite's own
integrity check (and a whole number of pages), every consortium id any row is filed under,
and every row of every table a page at a time in primary-key order (keyset pagination, so
the lock is never held while the caller works on a row). Part of
:class:`~consortia.ledger.sqlite.SQLiteStore`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from consortia.errors import Unavailable
from consortia.ledger._sqlite_file import SQLiteFile
from consortia.ledger._sqlite_rows import blob, flag, integer, signed_root_row, text, tx_row
from consortia.ledger.store import (
    NameRow,
    NonceRow,
    NotificationRow,
    ProposalRow,
    SignedRootRow,
    TxRow,
    VersionRow,
)

__all__ = ["SQLiteAuditScans"]

_Row = TypeVar("_Row")
_PAGE = 1000


class SQLiteAuditScans(SQLiteFile):
    """The :class:`~consortia.ledger.store.AuditStore` scans over a :class:`SQLiteFile`."""

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
