"""Helpers every scenario suite shares (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["js", "storage_fingerprint"]


def js(value: object) -> Any:
    """Read a JSON answer in a test without narrowing every level by hand."""
    return value


def storage_fingerprint(db: Path) -> str:
    """Hash of every row of every table: equal fingerprints mean storage did not change."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256()
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in sorted(tables):
            for row in sorted(con.execute(f"SELECT * FROM {table}").fetchall()):  # noqa: S608
                digest.update(repr((table, row)).encode())
        return digest.hexdigest()
    finally:
        con.close()


#: The tests' fixed "now": 2027-01-15.
T0 = 1_800_000_000


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now
