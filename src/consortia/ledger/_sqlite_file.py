"""The SQLite file under the store: opened in WAL mode, fully synchronous, schema checked.

``synchronous=FULL`` makes every commit durable against power loss before
:meth:`~consortia.ledger.sqlite.SQLiteStore.commit` returns, which is what lets the engine
answer only after an outcome is durable. A write torn by a crash is never read back:
SQLite's WAL frames are checksummed and a transaction counts only once its commit frame is
whole (tests/ledger/test_ledger_crash.py kills a writer hundreds of times to hold it to
that).

:class:`SQLiteFile` opens the file (read-only without changing a byte, or read-write with
the pragmas, creating the schema of :mod:`consortia.ledger._sqlite_rows` in an empty file),
refuses another schema or a foreign database, and serialises access to the one connection
(:meth:`~SQLiteFile._reading`). Part of :class:`~consortia.ledger.sqlite.SQLiteStore`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from consortia.errors import Unavailable
from consortia.ledger._sqlite_rows import SCHEMA, SCHEMA_VERSION

__all__ = ["SQLiteFile"]


class SQLiteFile:
    """One SQLite file (``":memory:"`` for tests) and its connection, behind one lock.

    ``read_only=True`` opens an existing store without changing a byte of it; it refuses a
    file that is not a Consortia store.
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

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
