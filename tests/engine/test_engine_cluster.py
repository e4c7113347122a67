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
from consortia.engine.sequencer import ServedElsewhere, _rank
from consortia.errors import ConsortiaError, Unavailable
from pg_server import postgres_server_fixture, postgres_url_fixture  # noqa: F401 - fixtures
from world import FOUNDERS, World

LEASE = 0.6
CODE = 'def main(params):\n    put("order/" + params["id"], params)\n    return params["id"]\n'


def _second_node(world: World, tmp_path: Path, url: str, node: str = "node-b") -> Platform:
    data = tmp_path / node
    data.mkdir()
    shutil.copy(world.data / "node.key", data / "node.key")  # handed over at join
    return Platform.open(
        data,
        operator_keys=[world.operator.verify_key],
        clock=world.clock,
        store=url,
        node=node,
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


def _server_of(cid: str, nodes: dict[str, Platform]) -> str:
    """Ask every node for ``cid`` (twice: a holder hands over on its first ask); the one
    that serves it, after checking that every other one names it."""
    for _ in range(2):
        served = []
        named = set()
        for name, platform in nodes.items():
            try:
                platform.runtime(cid)
                served.append(name)
            except ServedElsewhere as exc:
                named.add(exc.node)
        if len(served) == 1 and named <= set(served):
            return served[0]
    raise AssertionError(f"{cid}: served by {served}, others name {named}")


def test_consortia_spread_over_the_live_nodes_and_move_only_when_a_node_goes(
    tmp_path: Path, postgres_url: str
) -> None:
    a = World.open(tmp_path / "node-a", store=postgres_url, node="node-a", lease_s=LEASE)
    others: list[Platform] = []
    try:
        cids = [f"c{i}" for i in range(12)]
        for cid in cids:
            a.create(cid, FOUNDERS)  # the creating node holds each lease at first
        others = [_second_node(a, tmp_path, postgres_url, n) for n in ("node-b", "node-c")]
        nodes = {"node-a": a.platform, "node-b": others[0], "node-c": others[1]}
        for name, platform in nodes.items():
            platform.advertise(f"https://{name}.invalid")
        # Every node alive for a whole lease: then holders hand over at their next renewal.
        deadline = time.monotonic() + LEASE * 1.5
        while time.monotonic() < deadline:
            for platform in nodes.values():
                platform.heartbeat()
            time.sleep(LEASE / 4)
        time.sleep(LEASE / 2)  # every lease is due for renewal
        placed = {cid: _server_of(cid, nodes) for cid in cids}
        expected = {cid: max(nodes, key=lambda n: _rank(cid, n)) for cid in cids}
        assert placed == expected
        assert set(placed.values()) == set(nodes)  # every node sequences some
        # Node c goes: past a lease its consortia move to a and b, and only those move.
        nodes["node-c"].close()
        others.pop()
        del nodes["node-c"]
        deadline = time.monotonic() + LEASE * 1.5
        while time.monotonic() < deadline:
            for platform in nodes.values():
                platform.heartbeat()
            time.sleep(LEASE / 4)
        moved = {cid: _server_of(cid, nodes) for cid in cids}
        for cid in cids:
            if placed[cid] != "node-c":
                assert moved[cid] == placed[cid]
            else:
                assert moved[cid] == max(nodes, key=lambda n: _rank(cid, n))
        # What c committed is there for its successors.
        committed = a.platform.runtime if moved["c0"] == "node-a" else others[0].runtime
        assert committed("c0").next_seqno >= 1
    finally:
        for platform in others:
            platform.close()
        a.close()
