"""`consortia ledger verify` on a real ledger, and on copies tampered with in every way we know.

Each case copies a ledger a platform really wrote, damages the copy (a flipped byte in a
row, a deleted or moved row, a truncated or bit-flipped file), and requires exit 1 with the
first bad seqno where the damage belongs to one. The untouched copy must verify.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_fixtures import Ledger, build_ledger, copy_ledger, table_fingerprint

from consortia.cli import main
from consortia.engine.audit import LedgerDamaged, verify_ledger
from consortia.errors import ConsortiaError, Unavailable
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.sqlite import SQLiteStore


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    ledger = build_ledger(tmp_path_factory.mktemp("ledger"))
    ledger.close()  # checkpoints the WAL: the copy is one self-contained file
    return ledger


@pytest.fixture
def copy(original: Ledger, tmp_path: Path) -> Path:
    return copy_ledger(original.data, tmp_path / "copy")


def audit(data: Path) -> ConsortiaError | None:
    """The damage verify_ledger reports, or None when the ledger verifies."""
    try:
        store = SQLiteStore(data / "ledger.sqlite", read_only=True)
    except Unavailable as exc:  # not even a database any more (e.g. its header was hit)
        return exc
    try:
        verify_ledger(store, load_node_key(data / "node.key"))
    except LedgerDamaged as exc:
        return exc
    finally:
        store.close()
    return None


def cli(data: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["ledger", "verify", "--data", str(data)])
    out, err = capsys.readouterr()
    return code, out + err


def sql(data: Path, *statements: str, args: tuple[object, ...] = ()) -> None:
    con = sqlite3.connect(data / "ledger.sqlite", isolation_level=None)
    try:
        for statement in statements:
            con.execute(statement, args if "?" in statement else ())
    finally:
        con.close()


def flip(value: object) -> object:
    """One byte (or character, or unit) of a stored value changed."""
    if isinstance(value, bytes):
        changed = bytearray(value)
        changed[len(changed) // 2] ^= 0x01
        return bytes(changed)
    if isinstance(value, str):
        i = len(value) // 2
        return value[:i] + ("0" if value[i] != "0" else "1") + value[i + 1 :]
    assert isinstance(value, int)
    # One bit: the low one of a flag, a high one of a number (so no other row's key is hit).
    return value ^ 1 if value in (0, 1) else value ^ 64


def primary_key(con: sqlite3.Connection, table: str) -> list[str]:
    info = con.execute(f"PRAGMA table_info({table})").fetchall()
    return [row[1] for row in sorted(info, key=lambda row: row[5]) if row[5]]


# --- the good ledger ------------------------------------------------------------------------


def test_a_real_ledger_verifies(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (copy / "ledger.sqlite").read_bytes()
    code, out = cli(copy, capsys)
    assert code == 0, out
    assert "consortium 'acme': 10 transactions" in out
    assert "consortium 'globex': 8 transactions" in out
    assert "ledger OK: 2 consortia" in out
    # Verification opened the store read-only: not one byte changed.
    assert (copy / "ledger.sqlite").read_bytes() == before


def test_json_output_and_usage(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify", "--data", str(copy), "--json"]) == 0
    assert '"ok": true' in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        main(["ledger", "verify"])
    assert caught.value.code == 2


def test_a_directory_without_a_ledger_fails(
    tmp_path: Path, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(tmp_path, capsys)
    assert code == 1 and "no node key" in out
    (copy / "ledger.sqlite").unlink()
    code, out = cli(copy, capsys)
    assert code == 1 and "cannot open the store" in out
    assert not (copy / "ledger.sqlite").exists()  # and it created nothing


# --- one byte of one row ----------------------------------------------------------------------

# (table, column, WHERE clause picking the row, seqno the report must name or None)
FLIPS = [
    ("transactions", "blob", "cid = 'acme' AND seqno = 4", 4),
    ("transactions", "digest", "cid = 'acme' AND seqno = 3", 3),
    ("transactions", "txid", "cid = 'acme' AND seqno = 5", 5),
    ("transactions", "seqno", "cid = 'acme' AND seqno = 8", 8),
    ("merkle_nodes", "hash", "cid = 'acme' AND level = 0 AND idx = 6", 6),
    ("merkle_nodes", "hash", "cid = 'acme' AND level = 2 AND idx = 1", 7),
    ("merkle_nodes", "idx", "cid = 'acme' AND level = 1 AND idx = 2", 5),
    ("signed_roots", "jws", "cid = 'acme' AND tree_size = 7", 6),
    ("signed_roots", "tree_size", "cid = 'acme' AND tree_size = 7", 7),
    ("signed_roots", "previous", "cid = 'acme' AND tree_size = 8", 7),
    ("signed_roots", "mac", "cid = 'globex' AND tree_size = 3", 2),
    ("versions", "blob", "cid = 'acme' AND seqno = 4", 4),
    ("versions", "txid", "cid = 'acme' AND seqno = 5", 5),
    ("versions", "seqno", "cid = 'acme' AND seqno = 4", 4),
    ("names", "blob", "cid = 'acme'", None),
    ("names", "parent_hash", "cid = 'acme'", None),
    ("names", "alive", "cid = 'acme'", None),
    ("nonces", "nonce_hash", "cid = 'acme'", None),
    ("nonces", "txid", "cid = 'acme'", None),
    ("notifications", "blob", "cid = 'globex'", None),
    ("notifications", "nid", "cid = 'acme' AND nid = 2", None),
    ("proposals", "blob", "cid = 'acme'", None),
    ("proposals", "is_open", "cid = 'acme'", None),
    ("consortia", "keyring", "cid = 'acme'", None),
    ("consortia", "info", "cid = 'globex'", None),
    ("consortia", "cid", "cid = 'globex'", None),
    ("meta", "value", "name = 'service-keys'", None),
]


@pytest.mark.parametrize(("table", "column", "where", "seqno"), FLIPS)
def test_a_flipped_byte_in_any_column_is_detected(
    copy: Path, table: str, column: str, where: str, seqno: int | None
) -> None:
    con = sqlite3.connect(copy / "ledger.sqlite", isolation_level=None)
    try:
        keys = primary_key(con, table)
        picked = ", ".join([column, *keys])
        row = con.execute(f"SELECT {picked} FROM {table} WHERE {where} LIMIT 1").fetchone()  # noqa: S608
        assert row is not None, (table, where)
        match = " AND ".join(f"{k} = ?" for k in keys)
        changed = con.execute(
            f"UPDATE {table} SET {column} = ? WHERE {match}",  # noqa: S608
            (flip(row[0]), *row[1:]),
        ).rowcount
        assert changed == 1
    finally:
        con.close()
    damage = audit(copy)
    assert damage is not None, f"{table}.{column} flipped and not detected"
    if seqno is not None:
        assert isinstance(damage, LedgerDamaged) and damage.seqno == seqno, damage.message


def test_the_report_names_the_first_bad_seqno_and_why(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql(copy, "UPDATE transactions SET digest = zeroblob(32) WHERE cid = 'acme' AND seqno = 6")
    sql(copy, "UPDATE transactions SET digest = zeroblob(32) WHERE cid = 'acme' AND seqno = 8")
    code, out = cli(copy, capsys)
    assert code == 1
    assert "consortium 'acme': first bad seqno 6: record 6 does not match its digest" in out


# --- rows deleted, moved, reordered ---------------------------------------------------------

DELETIONS = [
    ("transactions", "cid = 'acme' AND seqno = 5", 5),
    ("transactions", "cid = 'acme' AND seqno = 9", 9),  # the newest: a signed root covers it
    ("merkle_nodes", "cid = 'acme' AND level = 0 AND idx = 2", 2),
    ("merkle_nodes", "cid = 'acme' AND level = 3 AND idx = 0", 7),
    ("signed_roots", "cid = 'acme' AND tree_size = 7", 7),  # the chain has a hole
    ("signed_roots", "cid = 'globex' AND tree_size = 8", 7),  # the newest
    ("versions", "cid = 'acme' AND seqno = 4", 4),
    ("versions", "cid = 'acme' AND seqno = 7", 7),  # a deletion's tombstone
    ("names", "cid = 'acme' AND alive = 0", None),
    ("nonces", "cid = 'globex'", None),
    ("notifications", "cid = 'acme' AND nid = 1", None),
    ("proposals", "cid = 'acme' AND is_open = 0", None),
    ("proposals", "cid = 'acme' AND is_open = 1", None),
    ("consortia", "cid = 'globex'", None),
    ("meta", "name = 'service-keys'", None),
]


@pytest.mark.parametrize(("table", "where", "seqno"), DELETIONS)
def test_a_deleted_row_is_detected(copy: Path, table: str, where: str, seqno: int | None) -> None:
    con = sqlite3.connect(copy / "ledger.sqlite", isolation_level=None)
    try:
        # One row only, even where the clause matches several.
        keys = con.execute(f"SELECT * FROM {table} WHERE {where} LIMIT 1").fetchone()  # noqa: S608
        assert keys is not None
        before = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
        columns = [d[1] for d in con.execute(f"PRAGMA table_info({table})")]
        match = " AND ".join(f"{c} IS ?" for c in columns)
        con.execute(f"DELETE FROM {table} WHERE {match}", keys)  # noqa: S608
        assert con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == before - 1  # noqa: S608
    finally:
        con.close()
    damage = audit(copy)
    assert damage is not None, f"a deleted {table} row was not detected"
    if seqno is not None:
        assert isinstance(damage, LedgerDamaged) and damage.seqno == seqno, damage.message


SWAPS: list[tuple[str, Callable[[Path], None], int | None]] = [
    (
        "two transactions trade seqnos",
        lambda d: sql(
            d,
            "UPDATE transactions SET seqno = -1 WHERE cid = 'acme' AND seqno = 3",
            "UPDATE transactions SET seqno = 3 WHERE cid = 'acme' AND seqno = 6",
            "UPDATE transactions SET seqno = 6 WHERE cid = 'acme' AND seqno = -1",
        ),
        3,
    ),
    (
        "two leaves trade places",
        lambda d: sql(
            d,
            "UPDATE merkle_nodes SET idx = -1 WHERE cid = 'acme' AND level = 0 AND idx = 1",
            "UPDATE merkle_nodes SET idx = 1 WHERE cid = 'acme' AND level = 0 AND idx = 2",
            "UPDATE merkle_nodes SET idx = 2 WHERE cid = 'acme' AND level = 0 AND idx = -1",
        ),
        1,
    ),
    (
        "two signed roots trade sizes",
        lambda d: sql(
            d,
            "UPDATE signed_roots SET tree_size = -1 WHERE cid = 'globex' AND tree_size = 4",
            "UPDATE signed_roots SET tree_size = 4 WHERE cid = 'globex' AND tree_size = 5",
            "UPDATE signed_roots SET tree_size = 5 WHERE cid = 'globex' AND tree_size = -1",
        ),
        3,
    ),
    (
        "two records trade blobs",
        lambda d: sql(
            d,
            "UPDATE transactions SET blob = (SELECT blob FROM transactions WHERE cid = 'acme' "
            "AND seqno = 5) WHERE cid = 'acme' AND seqno = 4",
        ),
        4,
    ),
    (
        "a record is moved to the other consortium",
        lambda d: sql(
            d,
            "UPDATE transactions SET blob = (SELECT blob FROM transactions WHERE cid = 'acme' "
            "AND seqno = 2) WHERE cid = 'globex' AND seqno = 2",
        ),
        2,
    ),
    (
        "two notifications trade ids",
        lambda d: sql(
            d,
            "UPDATE notifications SET nid = -1 WHERE cid = 'globex' AND nid = 1",
            "UPDATE notifications SET nid = 1 WHERE cid = 'globex' AND nid = 2",
            "UPDATE notifications SET nid = 2 WHERE cid = 'globex' AND nid = -1",
        ),
        None,
    ),
    (
        "a state version is moved under another key",
        lambda d: sql(
            d,
            "UPDATE versions SET name_hash = zeroblob(32) WHERE cid = 'acme' AND seqno = 3",
        ),
        3,
    ),
    (
        "a row is added",
        lambda d: sql(
            d,
            "INSERT INTO merkle_nodes SELECT cid, level, idx + 100, hash FROM merkle_nodes "
            "WHERE cid = 'acme' AND level = 0 AND idx = 0",
        ),
        None,
    ),
]


@pytest.mark.parametrize(("case", "damage", "seqno"), SWAPS, ids=[s[0] for s in SWAPS])
def test_reordered_or_moved_rows_are_detected(
    copy: Path, case: str, damage: Callable[[Path], None], seqno: int | None
) -> None:
    damage(copy)
    found = audit(copy)
    assert found is not None, case
    if seqno is not None:
        assert isinstance(found, LedgerDamaged) and found.seqno == seqno, found.message


# --- the file itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.0, 0.25, 0.5, 0.9, "page", "byte"])
def test_a_truncated_file_is_detected(
    copy: Path, keep: float | str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy / "ledger.sqlite"
    size = path.stat().st_size
    length = (
        {"page": size - 4096, "byte": size - 1}.get(str(keep)) if isinstance(keep, str) else None
    )
    with path.open("r+b") as handle:
        handle.truncate(int(size * float(keep)) if length is None else length)
    code, out = cli(copy, capsys)
    assert code == 1, out
    assert "Traceback" not in out


def test_random_flipped_bytes_in_the_file_are_detected(original: Ledger, tmp_path: Path) -> None:
    """Every flip that changes what the file holds fails verification.

    A flip in free space or page padding changes no row (the table fingerprint stays equal);
    there verification may pass, and must still not crash.
    """
    source = original.data / "ledger.sqlite"
    reference = table_fingerprint(source)
    data = source.read_bytes()
    rng = random.Random(4)  # fixed: a failure names a reproducible offset
    changed = 0
    for trial in range(60):
        target = copy_ledger(original.data, tmp_path / f"flip{trial}")
        offset = rng.randrange(len(data))
        damaged = bytearray(data)
        damaged[offset] ^= 1 << rng.randrange(8)
        (target / "ledger.sqlite").write_bytes(bytes(damaged))
        fingerprint = table_fingerprint(target / "ledger.sqlite")
        found = audit(target)
        if fingerprint != reference:
            changed += 1
            assert found is not None, f"flipped bit at offset {offset} not detected"
    assert changed >= 20  # the trials did hit the data, not only padding


def test_every_entry_has_a_kind(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # What build_ledger did: per consortium a creation, the vote that voted "record" in (a
    # ballot, and the amendment it decided in the same commit); in acme five requests and
    # the two ballots that rejected removeMember; in globex five requests.
    code, out = cli(copy, capsys)
    assert code == 0, out
    assert "'acme': 10 transactions (1 genesis, 5 request, 3 ballot, 1 voted, 0 alert)" in out
    assert "'globex': 8 transactions (1 genesis, 5 request, 1 ballot, 1 voted, 0 alert)" in out
    assert main(["ledger", "verify", "--data", str(copy), "--json", "--entries"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    entries, summary = lines[:-1], lines[-1]
    assert summary["ok"] is True
    for audit_doc in summary["consortia"]:
        mine = [e for e in entries if e["consortium"] == audit_doc["consortium"]]
        assert [e["seqno"] for e in mine] == list(range(audit_doc["tree_size"]))
        assert sum(audit_doc["kinds"].values()) == audit_doc["tree_size"]
        assert Counter(e["kind"] for e in mine) == Counter(
            {k: v for k, v in audit_doc["kinds"].items() if v}
        )
    # The listing names no action and no value: only where, which and what kind.
    assert all(set(e) == {"consortium", "seqno", "txid", "kind"} for e in entries)
    assert [e["kind"] for e in entries if e["consortium"] == "acme"][:3] == [
        "genesis",
        "ballot",
        "voted",
    ]
