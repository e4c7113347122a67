"""Two TEP nodes on one PostgreSQL store: only the sequencer serves a consortium, and a node
that lost its lease can neither commit nor read stale state.

The nodes share the store and the node key (in a cluster, a joining node is handed the
node key; here the file is copied). Each test tries to get both nodes to serve at once.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from consortia import Committed, Platform
from consortia.errors import ConsortiaError, Unavailable
from pg_server import postgres_server_fixture, postgres_url_fixture  # noqa: F401 - fixtures
from world import FOUNDERS, World

LEASE = 0.6
CODE = 'def main(params):\n    put("order/" + params["id"], params)\n    return params["id"]\n'


def _second_node(world: World, tmp_path: Path, url: str) -> Platform:
    data = tmp_path / "node-b"
    data.mkdir()
    shutil.copy(world.data / "node.key", data / "node.key")  # handed over at join
    return Platform.open(
        data,
        operator_keys=[world.operator.verify_key],
        clock=world.clock,
        store=url,
        node="node-b",
        lease_s=LEASE,
    )


def _refused(submit: object) -> ConsortiaError:
    assert callable(submit)
    with pytest.raises(ConsortiaError) as caught:
        submit()
    return caught.value


def test_only_the_sequencer_serves_and_a_takeover_fences_the_old_one(
    tmp_path: Path, postgres_url: str
) -> None:
    a = World.open(tmp_path / "node-a", store=postgres_url, node="node-a", lease_s=LEASE)
    b = None
    try:
        a.create("acme", FOUNDERS)
        a.install("place", CODE)
        first = a.sign("telco", "place", {"id": "PO1"}, visible_to=["vendor"])
        assert isinstance(a.platform.execute("acme", first), Committed)
        b = _second_node(a, tmp_path, postgres_url)
        # While node a holds the lease, node b neither commits nor reads.
        second = a.sign("telco", "place", {"id": "PO2"})
        refusal = _refused(lambda: b.execute("acme", second))
        assert refusal.code == "unavailable" and "served by node" in refusal.message
        assert isinstance(_refused(lambda: b.member_view("acme", "vendor")), Unavailable)
        # Node a stops renewing (paused, cut off): past its lease node b takes over, reads
        # what a committed, answers a's earlier request with its first answer, and commits.
        time.sleep(LEASE + 0.3)
        assert b.member_view("acme", "vendor").object("order/PO1")["value"] == {"id": "PO1"}
        again = b.execute("acme", first)
        assert isinstance(again, Committed) and again.seqno is not None
        assert isinstance(b.execute("acme", second), Committed)
        # Node a wakes up: its lease is gone, so it refuses rather than serve stale state.
        third = a.sign("telco", "place", {"id": "PO3"})
        assert _refused(lambda: a.platform.execute("acme", third)).code == "unavailable"
        assert _refused(lambda: a.platform.member_view("acme", "vendor")).code == "unavailable"
        assert b.member_view("acme", "telco").object("order/PO2")["value"] == {"id": "PO2"}
        with pytest.raises(ConsortiaError):
            b.member_view("acme", "telco").object("order/PO3")
    finally:
        if b is not None:
            b.close()
        a.close()


def test_a_node_needs_a_postgres_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keeps its ledger in PostgreSQL"):
        Platform.open(tmp_path, node="node-a")
