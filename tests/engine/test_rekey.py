"""Scenario: ledger-secret rotation (issue 4): new records use the new secret, old ones stay
readable, the ledger verifies, and the recovery shares follow the new keyring."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia import Committed, Pending
from consortia._json import JSONObject
from consortia.engine.audit import verify_ledger
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.sqlite import SQLiteStore
from testkit import js
from world import World, founded

_SECRET_ID = struct.Struct(">BI")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """SQLite only (the conftest's world also runs on PostgreSQL): these tests open, copy or
    damage the ledger file itself."""
    yield from founded(tmp_path)


def secret_of(world: World, seqno: int) -> int:
    row = world.platform.store.tx_by_seqno("acme", seqno)
    assert row is not None
    return int(_SECRET_ID.unpack_from(row.blob)[1])


def test_rotation_is_voted_and_takes_effect_from_the_next_commit(world: World) -> None:
    amend: JSONObject = {
        "name": "note",
        "scope": "public",
        "language": "starlark",
        "code": 'def main(params):\n    put("note/" + params["n"], params["n"])\n',
        "permissions": [{"member": m, "execute": True} for m in ("telco", "vendor")],
        "voting": {"voters": "any", "majority": 1, "veto": []},
    }
    pending = world.act("telco", "amendConstitution", amend)
    assert isinstance(pending, Pending)
    world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    before = world.act("telco", "note", {"n": "before"}, visible_to=["vendor"])
    assert isinstance(before, Committed) and secret_of(world, before.seqno) == 1

    rotation = world.act("telco", "rotateLedgerSecret", {})
    assert isinstance(rotation, Pending)  # governance: a majority must agree
    decided = world.act(
        "installer", "voteFor", {"proposal": rotation.proposal, "ballot": "approve"}
    )
    assert isinstance(decided, Committed)

    after = world.act("vendor", "note", {"n": "after"}, visible_to=["telco"])
    assert isinstance(after, Committed) and secret_of(world, after.seqno) == 2
    # Old and new records and values read back, before and after a restart.
    for _ in range(2):
        view = world.platform.member_view("acme", "vendor")
        assert js(view.object("note/before"))["value"] == "before"
        assert js(view.object("note/after"))["value"] == "after"
        assert view.transaction(before.txid)["seqno"] == before.seqno
        world.reopen()
    world.platform.close()
    store = SQLiteStore(world.db, read_only=True)
    try:
        (audit,) = verify_ledger(store, load_node_key(world.data / "node.key"))
    finally:
        store.close()
    assert audit.consortium == "acme"
    world.reopen()
    # Recovery shares were re-issued with the rotation (a notice to every active member).
    shares = [
        b
        for k, b in world.notes("installer")
        if k == "notice" and js(b).get("event") == "recovery_share"
    ]
    assert len(shares) >= 2


def test_rotation_takes_no_parameters(world: World) -> None:
    world.refused("action_failed", world.sign("telco", "rotateLedgerSecret", {"now": True}))
