"""`consortia ledger verify` finds the damage that only a commitment can show: rows deleted
from the end of a member's notification queue, and the recovery record and operator nonces
that live outside the consortium's tables.

A queue entry is AEAD-sealed, so it cannot be altered or forged without the keyring, but
the host can delete the newest one: the records (and, for entries queued after the newest
record, the keyed queue head) commit to every entry, and the ledger's records commit to the
recovery record their shares open.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from ledger_fixtures import Ledger, build_ledger, copy_ledger, open_platform

from consortia import Committed, MemberKeys, Pending
from consortia.cli import main
from consortia.engine.audit import LedgerDamaged, verify_ledger
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.sqlite import SQLiteStore


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """The shared scenario, then: globex admits a member by vote (new recovery shares) and
    opens one more proposal as its last batch, whose vote requests no record covers yet."""
    ledger = build_ledger(tmp_path_factory.mktemp("ledger"))
    ledger.keys["newcomer"] = MemberKeys.generate("newcomer")
    (pending,) = ledger.run(
        "globex",
        [ledger.act("globex", "supplier", "addMember", ledger.keys["newcomer"].public_info())],
    )
    assert isinstance(pending, Pending)
    for voter in ("telco", "customer"):
        (answer,) = ledger.run(
            "globex",
            [
                ledger.act(
                    "globex", voter, "voteFor", {"proposal": pending.proposal, "ballot": "approve"}
                )
            ],
        )
        if isinstance(answer, Committed) and answer.txid != pending.proposal:
            break
    (last,) = ledger.run(
        "globex", [ledger.act("globex", "telco", "removeMember", {"id": "customer"})]
    )
    assert isinstance(last, Pending)
    ledger.close()
    return ledger


@pytest.fixture
def copy(original: Ledger, tmp_path: Path) -> Path:
    return copy_ledger(original.data, tmp_path / "copy")


def damage(data: Path) -> LedgerDamaged | None:
    store = SQLiteStore(data / "ledger.sqlite", read_only=True)
    try:
        verify_ledger(store, load_node_key(data / "node.key"))
    except LedgerDamaged as exc:
        return exc
    finally:
        store.close()
    return None


def query(data: Path, statement: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(data / "ledger.sqlite", isolation_level=None)
    try:
        return list(con.execute(statement, args))
    finally:
        con.close()


def queues(data: Path) -> list[tuple[str, bytes, int]]:
    """(consortium, member hash, newest id) of every member's notification queue."""
    rows = query(
        data, "SELECT cid, member_hash, MAX(nid) FROM notifications GROUP BY cid, member_hash"
    )
    return [(str(c), bytes(m), int(n)) for c, m, n in rows]


def test_the_scenario_verifies_and_says_what_waits_for_a_record(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", "verify", "--data", str(copy)]) == 0
    out = capsys.readouterr().out
    globex = next(line for line in out.splitlines() if "'globex'" in line)
    # The vote requests of the open proposal: one to each of the proposer's three peers.
    assert "(3 awaiting the next record)" in globex, globex
    assert "recovery record of epoch " in globex and "older build" not in out
    assert "recovery record of epoch 0" not in globex  # re-issued when the newcomer joined


def test_deleting_the_newest_notification_of_any_queue_is_detected(
    original: Ledger, tmp_path: Path
) -> None:
    found = queues(original.data)
    assert len(found) >= 7  # three members in acme, four in globex
    for n, (cid, member_hash, nid) in enumerate(found):
        target = copy_ledger(original.data, tmp_path / f"q{n}")
        query(
            target,
            "DELETE FROM notifications WHERE cid = ? AND member_hash = ? AND nid = ?",
            (cid, member_hash, nid),
        )
        problem = damage(target)
        assert problem is not None, f"the newest entry of a {cid} queue deleted unnoticed"
        assert problem.consortium == cid
        assert "notification queue entries" in problem.message, problem.message


def test_deleting_a_whole_queue_tail_is_detected(copy: Path) -> None:
    """Every entry a member received since the last record, and the one before."""
    cid, member_hash, nid = next(q for q in queues(copy) if q[0] == "acme")
    query(
        copy,
        "DELETE FROM notifications WHERE cid = ? AND member_hash = ? AND nid >= ?",
        (cid, member_hash, nid - 1),
    )
    assert damage(copy) is not None


def test_an_entry_copied_to_the_end_of_a_queue_is_detected(copy: Path) -> None:
    cid, member_hash, nid = queues(copy)[0]
    query(
        copy,
        "INSERT INTO notifications (cid, member_hash, nid, blob) SELECT cid, member_hash, ?, blob "
        "FROM notifications WHERE cid = ? AND member_hash = ? AND nid = ?",
        (nid + 1, cid, member_hash, nid),
    )
    assert damage(copy) is not None


def test_the_queue_head_is_checked(copy: Path) -> None:
    """globex's last batch only opened a proposal: its queue head commits to the entries."""
    (head,) = query(copy, "SELECT value FROM meta WHERE name = 'queue/globex'")
    doc = json.loads(bytes(head[0]))
    assert doc["entries"] == 3
    query(copy, "DELETE FROM meta WHERE name = 'queue/globex'")
    problem = damage(copy)
    assert problem is not None and "no queue head commits to them" in problem.message


def test_a_queue_head_that_claims_fewer_entries_is_detected(copy: Path) -> None:
    (head,) = query(copy, "SELECT value FROM meta WHERE name = 'queue/globex'")
    doc = json.loads(bytes(head[0]))
    doc["entries"] = 1
    query(
        copy, "UPDATE meta SET value = ? WHERE name = 'queue/globex'", (json.dumps(doc).encode(),)
    )
    problem = damage(copy)
    assert problem is not None and "queue head was altered" in problem.message


def recovery(copy: Path, cid: str) -> tuple[int, bytes]:
    (pointer,) = query(copy, "SELECT value FROM meta WHERE name = ?", (f"recovery/{cid}",))
    epoch = int(bytes(pointer[0]))
    (record,) = query(copy, "SELECT value FROM meta WHERE name = ?", (f"recovery/{cid}/{epoch}",))
    return epoch, bytes(record[0])


def test_a_deleted_recovery_pointer_is_detected(copy: Path) -> None:
    epoch, _ = recovery(copy, "globex")
    query(copy, "DELETE FROM meta WHERE name = 'recovery/globex'")
    problem = damage(copy)
    assert problem is not None and problem.seqno == epoch, problem
    assert "names none" in problem.message


def test_a_recovery_pointer_moved_back_is_detected(copy: Path) -> None:
    """Back to the withdrawn epoch 0: the shares members hold now would open nothing."""
    query(copy, "UPDATE meta SET value = ? WHERE name = 'recovery/globex'", (b"0",))
    problem = damage(copy)
    assert problem is not None and "names epoch 0" in problem.message, problem


@pytest.mark.parametrize("field", ["holders", "keyring", "threshold"])
def test_an_altered_recovery_record_is_detected(copy: Path, field: str) -> None:
    epoch, stored = recovery(copy, "acme")
    doc = json.loads(stored)
    if field == "holders":
        first = sorted(doc["holders"])[0]
        doc["holders"][first] = "00" * 32
    elif field == "keyring":
        doc["keyring"] = doc["keyring"][:-2] + ("00" if doc["keyring"][-2:] != "00" else "11")
    else:
        doc["threshold"] = 1
    changed = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    query(copy, "UPDATE meta SET value = ? WHERE name = ?", (changed, f"recovery/acme/{epoch}"))
    problem = damage(copy)
    assert problem is not None and problem.consortium == "acme"
    assert "not the one the ledger committed to" in problem.message, problem.message


def test_a_withdrawn_recovery_record_is_detected(copy: Path) -> None:
    epoch, _ = recovery(copy, "acme")
    query(copy, "UPDATE meta SET value = x'' WHERE name = ?", (f"recovery/acme/{epoch}",))
    problem = damage(copy)
    assert problem is not None and "is missing" in problem.message


def test_a_deleted_operator_nonce_is_detected(copy: Path) -> None:
    """The platform-wide mark that refuses a replayed creation request."""
    names = query(copy, "SELECT name FROM meta WHERE name LIKE 'operator-nonce/%'")
    assert len(names) == 2
    query(copy, "DELETE FROM meta WHERE name = ?", (names[0][0],))
    problem = damage(copy)
    assert problem is not None and problem.seqno == 0
    assert "operator nonce" in problem.message


def test_after_a_restart_the_next_record_commits_to_what_waited(
    original: Ledger, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The entries queued before the restart are found again in storage, not forgotten."""
    again = Ledger(copy, original.operator, open_platform(copy, original.operator))
    again.keys = original.keys
    (done,) = again.run(
        "globex",
        [again.act("globex", "supplier", "record", {"writes": [{"key": "k", "value": 1}]})],
    )
    assert isinstance(done, Committed)
    again.close()
    assert main(["ledger", "verify", "--data", str(copy)]) == 0
    assert "awaiting" not in capsys.readouterr().out
    # And now the record, not the head, covers them: deleting one is still found.
    cid, member_hash, nid = next(q for q in queues(copy) if q[0] == "globex")
    query(
        copy,
        "DELETE FROM notifications WHERE cid = ? AND member_hash = ? AND nid = ?",
        (cid, member_hash, nid),
    )
    problem = damage(copy)
    assert problem is not None and problem.seqno is not None


@pytest.mark.parametrize(
    "rename",
    [
        ("queue/globex", "queue/globey"),  # a head for no consortium
        ("queue/acme", "qveue/acme"),  # a value no build writes
        ("recovery/acme/0", "recovery/acmf/0"),  # acme's withdrawn record, moved away
    ],
)
def test_a_platform_value_renamed_is_detected(copy: Path, rename: tuple[str, str]) -> None:
    """Even one that no check reads any more (a stale queue head, a withdrawn record)."""
    query(copy, "UPDATE meta SET name = ? WHERE name = ?", (rename[1], rename[0]))
    problem = damage(copy)
    assert problem is not None and rename[1] in problem.message, problem


def test_a_damaged_service_key_backup_is_detected(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_key = copy.parent / "operator.key"
    assert main(["keygen", "--member", "operator", "--out", str(operator_key)]) == 0
    assert main(["recovery", "backup", "--data", str(copy), "--to", str(operator_key)]) == 0
    capsys.readouterr()
    assert damage(copy) is None
    query(
        copy,
        "UPDATE meta SET value = substr(value, 1, length(value) - 4) "
        "WHERE name = 'recovery-service-backup'",
    )
    problem = damage(copy)
    assert problem is not None and "service-key backup" in problem.message
