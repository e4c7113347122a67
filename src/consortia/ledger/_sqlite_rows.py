"""The SQLite store's schema and strict row readers (see :mod:`consortia.ledger.sqlite`).

Kept apart so the store module holds only the store. The readers turn a column value of the
wrong type (a damaged file can hold one) into a clear ``unavailable``, never a TypeError
deep in the engine or a silently coerced value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consortia.errors import Unavailable
from consortia.ledger.store import SignedRootRow, TxRow

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "TX_SELECT",
    "blob",
    "flag",
    "integer",
    "signed_root_row",
    "text",
    "tx_row",
]

#: 2 added the Merkle nodes and signed roots (and folded the leaves into the nodes).
SCHEMA_VERSION = 2


SCHEMA = """
CREATE TABLE meta (
    name TEXT PRIMARY KEY, value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE consortia (
    cid TEXT PRIMARY KEY, keyring BLOB NOT NULL, info BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE transactions (
    cid TEXT NOT NULL, seqno INTEGER NOT NULL, txid TEXT NOT NULL,
    digest BLOB NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, seqno)
) WITHOUT ROWID;
CREATE UNIQUE INDEX transactions_txid ON transactions (cid, txid);
CREATE TABLE merkle_nodes (
    cid TEXT NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (cid, level, idx)
) WITHOUT ROWID;
CREATE TABLE signed_roots (
    cid TEXT NOT NULL, tree_size INTEGER NOT NULL, previous INTEGER NOT NULL,
    jws TEXT NOT NULL, mac BLOB NOT NULL,
    PRIMARY KEY (cid, tree_size)
) WITHOUT ROWID;
CREATE TABLE versions (
    cid TEXT NOT NULL, name_hash BLOB NOT NULL, seqno INTEGER NOT NULL,
    txid TEXT NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, name_hash, seqno)
) WITHOUT ROWID;
CREATE TABLE names (
    cid TEXT NOT NULL, name_hash BLOB NOT NULL, parent_hash BLOB NOT NULL,
    alive INTEGER NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, name_hash)
) WITHOUT ROWID;
CREATE INDEX names_parent ON names (cid, parent_hash, alive);
CREATE TABLE nonces (
    cid TEXT NOT NULL, nonce_hash BLOB NOT NULL, txid TEXT NOT NULL,
    PRIMARY KEY (cid, nonce_hash)
) WITHOUT ROWID;
CREATE TABLE notifications (
    cid TEXT NOT NULL, member_hash BLOB NOT NULL, nid INTEGER NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, member_hash, nid)
) WITHOUT ROWID;
CREATE TABLE proposals (
    cid TEXT NOT NULL, pid_hash BLOB NOT NULL, is_open INTEGER NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (cid, pid_hash)
) WITHOUT ROWID;
CREATE INDEX proposals_open ON proposals (cid, is_open);
"""

_TX_COLUMNS = "SELECT t.seqno, t.txid, t.digest, n.hash, t.blob FROM transactions t "
TX_SELECT = (
    _TX_COLUMNS + "JOIN merkle_nodes n ON n.cid = t.cid AND n.level = 0 AND n.idx = t.seqno WHERE "
)


def _damaged(expected: str, value: object) -> Unavailable:
    return Unavailable(
        f"storage holds a damaged row: expected {expected}, found {type(value).__name__}; "
        "run `consortia ledger verify`"
    )


def blob(value: object) -> bytes:
    """A BLOB column."""
    if not isinstance(value, bytes):
        raise _damaged("a blob", value)
    return value


def integer(value: object) -> int:
    """An INTEGER column."""
    if not isinstance(value, int):
        raise _damaged("an integer", value)
    return value


def text(value: object) -> str:
    """A TEXT column."""
    if not isinstance(value, str):
        raise _damaged("text", value)
    return value


def flag(value: object) -> bool:
    """A 0/1 column."""
    if value not in (0, 1) or not isinstance(value, int):
        raise _damaged("0 or 1", value)
    return value == 1


def signed_root_row(row: Sequence[Any]) -> SignedRootRow:
    """tree_size, previous, jws, mac."""
    return SignedRootRow(integer(row[0]), integer(row[1]), text(row[2]), blob(row[3]))


def tx_row(row: Sequence[Any]) -> TxRow:
    """seqno, txid, digest, leaf hash (NULL when its node row is missing), blob."""
    leaf = b"" if row[3] is None else blob(row[3])
    return TxRow(integer(row[0]), text(row[1]), blob(row[2]), leaf, blob(row[4]))
