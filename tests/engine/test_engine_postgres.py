"""The engine on the PostgreSQL store: the same platform, its ledger in a database.

A first slice of the engine suite run on PostgreSQL (the store-level tests run on both
stores in tests/ledger/test_ledger_store.py): governance, a Starlark action with per-member
visibility, a restart that keeps state, nonces and receipts, and the ledger check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from consortia import Committed
from consortia.cli import main
from consortia.engine.audit import verify_ledger
from consortia.errors import ConsortiaError, NotFound
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.postgres import PostgresStore
from consortia.ledger.receipts import verify_receipt
from pg_server import postgres_server_fixture, postgres_url_fixture  # noqa: F401 - fixtures
from world import FOUNDERS, World

CODE = 'def main(params):\n    put("order/" + params["id"], params)\n    return params["id"]\n'


def test_the_platform_runs_on_postgres_and_survives_a_restart(
    tmp_path: Path, postgres_url: str
) -> None:
    world = World.open(tmp_path, store=postgres_url)
    try:
        world.create("acme", FOUNDERS)
        world.install("place", CODE)
        done = world.act("telco", "place", {"id": "PO1", "price": 1234}, visible_to=["vendor"])
        assert isinstance(done, Committed)
        replayed = world.sign("telco", "place", {"id": "PO2"}, nonce="n" * 16)
        assert isinstance(world.platform.execute("acme", replayed), Committed)

        world.reopen()  # a new platform on the same database and node key
        vendor = world.platform.member_view("acme", "vendor")
        assert vendor.object("order/PO1")["value"] == {"id": "PO1", "price": 1234}
        with pytest.raises(NotFound):
            world.platform.member_view("acme", "installer").object("order/PO1")
        again = world.sign("telco", "place", {"id": "PO3"}, nonce="n" * 16)
        with pytest.raises(ConsortiaError) as refused:
            world.platform.execute("acme", again)
        assert refused.value.code == "replay"
        service = world.platform.service.signing.verify_key
        receipt = verify_receipt(vendor.receipt(done.txid), service)
        assert receipt.seqno == done.seqno
        node_key = load_node_key(tmp_path / "node.key")
    finally:
        world.close()
    assert not (tmp_path / "ledger.sqlite").exists()  # the ledger is in PostgreSQL only
    store = PostgresStore(postgres_url, read_only=True)
    try:
        (audit,) = verify_ledger(store, node_key)
        assert audit.consortium == "acme" and audit.tree_size >= 5 and audit.signed_roots >= 1
    finally:
        store.close()
    # The operator's command does the same walk.
    assert main(["ledger", "verify", "--data", str(tmp_path), "--store", postgres_url]) == 0
