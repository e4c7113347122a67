"""The SQLite store's audit scans (:class:`~consortia.ledger.store.AuditStore`).

What ``consortia ledger verify`` reads: one snapshot for a consistent view, SQLite's own
integrity check (and a whole number of pages), every consortium id any row is filed under,
and every row of every table a page at a time in primary-key order (keyset pagination, so
the lock is never held while the caller works on a row). Part of
:class:`~consortia.ledger.sqlite.SQLiteStore`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from consortia.errors import Unavailable
from consortia.ledger._sql_reads import CID_TABLES, SqlReads
from consortia.ledger._sqlite_file import SQLiteFile
from consortia.ledger._sqlite_rows import integer, text

__all__ = ["SQLiteAuditScans"]

_Row = TypeVar("_Row")
_PAGE = 1000


class SQLiteAuditScans(SqlReads, SQLiteFile):
    """The :class:`~consortia.ledger.store.AuditStore` scans over a :class:`SQLiteFile`."""

    def _read_on(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._reading()

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
        with self._reading() as db:
            found: set[str] = set()
            for table in CID_TABLES:
                query = f"SELECT DISTINCT cid FROM {table}"  # noqa: S608 - fixed names (CID_TABLES)
                found.update(text(r[0]) for r in db.execute(query))
        return found

    def merkle_node_count(self, cid: str) -> int:
        """How many Merkle node rows the consortium has."""
        with self._reading() as db:
            row = db.execute("SELECT COUNT(*) FROM merkle_nodes WHERE cid = ?", (cid,)).fetchone()
        return integer(row[0])

    def meta_names(self) -> list[str]:
        """The name of every platform-level value, sorted."""
        with self._reading() as db:
            return [text(r[0]) for r in db.execute("SELECT name FROM meta ORDER BY name")]
