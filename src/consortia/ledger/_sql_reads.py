"""The reads the SQLite and PostgreSQL stores share, written once.

Both stores speak DB-API over the same tables; they differ in the parameter mark (``?`` in
sqlite3, ``%s`` in psycopg), in how a connection is held (:meth:`SqlReads._read_on`) and in
a few statements tuned to one engine (``children``, the commit, the schema). The queries
here are written with ``?`` and turned into the store's mark once, so the two stores read
every row the same way and cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, TypeVar

from consortia.ledger._sqlite_rows import (
    TX_SELECT,
    blob,
    flag,
    integer,
    signed_root_row,
    text,
    tx_row,
)
from consortia.ledger.store import (
    NameRow,
    NonceRow,
    NotificationRow,
    ProposalRow,
    SignedRootRow,
    TxRow,
    VersionRow,
)

__all__ = ["CID_TABLES", "SqlReads"]

#: Every table that files rows under a consortium id (the audit's ``cids_in_use`` reads
#: them all).
CID_TABLES = (
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

_Row = TypeVar("_Row")
#: Rows per page of an audit scan.
_PAGE = 1000


@functools.lru_cache(maxsize=256)
def _marked(query: str, mark: str) -> str:
    return query if mark == "?" else query.replace("?", mark)


class SqlReads:
    """Row reads over ``self._read_on()`` (a connection, under the store's lock)."""

    #: The driver's parameter mark (sqlite3 ``?``; psycopg ``%s``).
    MARK: ClassVar[str] = "?"

    def _read_on(self) -> AbstractContextManager[Any]:
        """A connection to read on, under the store's lock (each store says how)."""
        raise NotImplementedError

    def _one(self, query: str, args: tuple[object, ...]) -> Any:
        with self._read_on() as db:
            return db.execute(_marked(query, self.MARK), args).fetchone()

    def _all(self, query: str, args: tuple[object, ...]) -> list[Any]:
        with self._read_on() as db:
            rows: list[Any] = db.execute(_marked(query, self.MARK), args).fetchall()
        return rows

    # -- platform and transactions -----------------------------------------------------------

    def meta_get(self, name: str) -> bytes | None:
        """A platform-level value."""
        row = self._one("SELECT value FROM meta WHERE name = ?", (name,))
        return None if row is None else blob(row[0])

    def tx_by_txid(self, cid: str, txid: str) -> TxRow | None:
        """The committed transaction with this txid."""
        row = self._one(TX_SELECT + "t.cid = ? AND t.txid = ?", (cid, txid))
        return None if row is None else tx_row(row)

    def tx_by_seqno(self, cid: str, seqno: int) -> TxRow | None:
        """The committed transaction at this seqno."""
        row = self._one(TX_SELECT + "t.cid = ? AND t.seqno = ?", (cid, seqno))
        return None if row is None else tx_row(row)

    def merkle_node(self, cid: str, level: int, index: int) -> bytes | None:
        """One perfect subtree's hash."""
        row = self._one(
            "SELECT hash FROM merkle_nodes WHERE cid = ? AND level = ? AND idx = ?",
            (cid, level, index),
        )
        return None if row is None else blob(row[0])

    def latest_signed_root(self, cid: str) -> SignedRootRow | None:
        """The signed root of the largest tree."""
        row = self._one(
            "SELECT tree_size, previous, jws, mac FROM signed_roots WHERE cid = ? "
            "ORDER BY tree_size DESC LIMIT 1",
            (cid,),
        )
        return None if row is None else signed_root_row(row)

    # -- state, nonces, queues, proposals ----------------------------------------------------

    def latest_version(self, cid: str, name_hash: bytes) -> VersionRow | None:
        """Newest version of a key."""
        row = self._one(
            "SELECT seqno, txid, blob FROM versions WHERE cid = ? AND name_hash = ? "
            "ORDER BY seqno DESC LIMIT 1",
            (cid, name_hash),
        )
        if row is None:
            return None
        return VersionRow(name_hash, integer(row[0]), text(row[1]), blob(row[2]))

    def versions(self, cid: str, name_hash: bytes) -> list[VersionRow]:
        """Every version of a key, oldest first."""
        rows = self._all(
            "SELECT seqno, txid, blob FROM versions WHERE cid = ? AND name_hash = ? ORDER BY seqno",
            (cid, name_hash),
        )
        return [VersionRow(name_hash, integer(r[0]), text(r[1]), blob(r[2])) for r in rows]

    def nonce(self, cid: str, nonce_hash: bytes) -> str | None:
        """The txid that used a nonce."""
        row = self._one(
            "SELECT txid FROM nonces WHERE cid = ? AND nonce_hash = ?", (cid, nonce_hash)
        )
        return None if row is None else text(row[0])

    def notifications(
        self, cid: str, member_hash: bytes, after: int, limit: int
    ) -> list[NotificationRow]:
        """A member's queue after an id."""
        rows = self._all(
            "SELECT nid, blob FROM notifications WHERE cid = ? AND member_hash = ? "
            "AND nid > ? ORDER BY nid LIMIT ?",
            (cid, member_hash, after, limit),
        )
        return [NotificationRow(member_hash, integer(r[0]), blob(r[1])) for r in rows]

    def last_notification_id(self, cid: str, member_hash: bytes) -> int:
        """Newest queue id of a member (0 when empty)."""
        row = self._one(
            "SELECT MAX(nid) FROM notifications WHERE cid = ? AND member_hash = ?",
            (cid, member_hash),
        )
        return 0 if row is None or row[0] is None else integer(row[0])

    def proposal(self, cid: str, pid_hash: bytes) -> ProposalRow | None:
        """A proposal by hashed id."""
        row = self._one(
            "SELECT is_open, blob FROM proposals WHERE cid = ? AND pid_hash = ?",
            (cid, pid_hash),
        )
        return None if row is None else ProposalRow(pid_hash, flag(row[0]), blob(row[1]))

    # -- audit scans (AuditStore) ------------------------------------------------------------

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
            rows = self._all(query, args)
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
