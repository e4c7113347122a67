"""Two TEP nodes serving over HTTPS on one PostgreSQL store: a member may talk to either.

The node that does not sequence a consortium passes its requests on to the one that does
(writes, batches, reads, notification streams, the memberships list); a request travels
one hop at most, and only to a server holding the cluster's TLS certificate. When the
sequencer stops, the other node takes the lease over and serves everything itself,
including the original answer to a retried request.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from server_harness import JOSE, Served

from consortia import Platform, SigningKey
from consortia.identity.jwt import issue_token
from consortia.server import Limits
from consortia.server._forward import FORWARDED_BY
from consortia.server.run import ServerConfig, ServerThread
from consortia.server.tls import ensure_self_signed
from pg_server import postgres_server_fixture, postgres_url_fixture  # noqa: F401 - fixtures

LEASE = 1.0


@contextmanager
def _node(
    data: Path, node: str, url: str, operator: SigningKey, tls: tuple[Path, Path]
) -> Iterator[tuple[Platform, ServerThread]]:
    platform = Platform.open(
        data,
        operator_keys=[operator.verify_key],
        store=url,
        node=node,
        lease_s=LEASE,
        analytics=False,
    )
    config = ServerConfig(port=0, tls=tls, limits=Limits(), access_log=False, log_level="warning")
    thread = ServerThread(platform, config).start()
    try:
        yield platform, thread
    finally:
        thread.stop()
        platform.close()


def _tls(folder: Path) -> tuple[Path, Path]:
    folder.mkdir()
    cert, key, _ = ensure_self_signed(folder, "127.0.0.1")
    return cert, key


def _client(thread: ServerThread) -> httpx.Client:
    return httpx.Client(base_url=thread.url, timeout=httpx.Timeout(10, read=20), verify=False)  # noqa: S501


def test_either_node_serves_a_member_and_the_other_takes_over(
    tmp_path: Path, postgres_url: str
) -> None:
    operator = SigningKey.generate()
    cert, key = _tls(tmp_path / "tls")
    with ExitStack() as stack, ExitStack() as a_stop:
        a_platform, a = a_stop.enter_context(
            _node(tmp_path / "a", "node-a", postgres_url, operator, (cert, key))
        )
        http_a = a_stop.enter_context(_client(a))
        s = Served(a.url, http_a, a_platform, operator, a)
        s.create()
        s.vote_in_order_action()
        # The second node gets the node key (a joining node is handed it; copied here).
        (tmp_path / "b").mkdir()
        shutil.copy(tmp_path / "a" / "node.key", tmp_path / "b" / "node.key")
        _, b = stack.enter_context(
            _node(tmp_path / "b", "node-b", postgres_url, operator, (cert, key))
        )
        http_b = stack.enter_context(_client(b))
        via_b = Served(b.url, http_b, a_platform, operator, b, keys=s.keys)

        # A write sent to node b is committed by node a, the sequencer, and answered as such.
        body = s.signed("vendor", "recordOrder", {"order": "O-1", "status": "shipped"})
        first = http_b.post("/v1/consortia/acme/actions", headers=JOSE, content=body)
        assert first.status_code == 200, first.text
        seqno = first.json()["seqno"]
        assert a_platform.runtime("acme").next_seqno == seqno + 1
        # Reads, batches and the memberships list through node b too.
        direct = s.read("vendor", "object", key="order/O-1")
        assert direct.status_code == 200, direct.text
        assert via_b.read("vendor", "object", key="order/O-1").json() == direct.json()
        batch = {"requests": [s.signed("telco", "recordOrder", {"order": "O-2", "status": "x"})]}
        answer = http_b.post(
            "/v1/consortia/acme/actions/batch",
            headers={"content-type": "application/json"},
            content=json.dumps(batch),
        )
        assert answer.status_code == 200 and answer.json()["answers"][0]["http"] == 200
        token = issue_token(s.keys["vendor"], audience="consortia", now=int(time.time()))
        listed = http_b.get("/v1/consortia", headers={"authorization": f"Bearer {token}"})
        assert [e["consortium"] for e in listed.json()] == ["acme"]
        # A notification stream opened at node b carries what node a commits.
        before = via_b.read("installer", "notifications").json()
        headers = {**s.auth("installer"), "accept": "text/event-stream"}
        acted: list[httpx.Response] = []
        with http_b.stream(
            "GET", "/v1/consortia/acme/notifications", headers=headers, timeout=10
        ) as stream:
            events = (json.loads(x[6:]) for x in stream.iter_lines() if x.startswith("data: "))
            backlog = [next(events) for _ in before]
            assert [e["id"] for e in backlog] == [e["id"] for e in before]
            worker = threading.Thread(
                target=lambda: acted.append(
                    s.act(
                        "telco",
                        "recordOrder",
                        {"order": "O-3", "status": "y"},
                        visible_to=["installer"],
                    )
                )
            )
            worker.start()
            live = next(events)
            worker.join()
        assert acted[0].status_code == 200, acted[0].text
        assert live["id"] == before[-1]["id"] + 1 and live["action"] == "recordOrder"

        # One hop at most: a passed-on request that meets another non-sequencer is refused.
        again = http_b.post(
            "/v1/consortia/acme/actions",
            headers={**JOSE, FORWARDED_BY: "node-x"},
            content=s.signed("telco", "recordOrder", {"order": "O-4", "status": "z"}),
        )
        assert again.status_code == 503
        assert "served by node 'node-a'" in again.json()["error"]["message"]

        # Node a stops: node b takes the lease once it expires and serves it all itself,
        # including the original answer to a retry of what node a committed.
        a_stop.close()
        deadline = time.monotonic() + 10 * LEASE
        while True:
            retry = http_b.post("/v1/consortia/acme/actions", headers=JOSE, content=body)
            if retry.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert retry.status_code == 200, retry.text
        assert retry.json()["seqno"] == seqno
        fresh = via_b.act("installer", "recordOrder", {"order": "O-5", "status": "ok"})
        assert fresh.status_code == 200 and fresh.json()["seqno"] > seqno


def test_a_node_forwards_only_to_the_cluster_certificate(tmp_path: Path, postgres_url: str) -> None:
    """A lease row pointing at a server with another certificate gets no request through."""
    operator = SigningKey.generate()
    cert, key = _tls(tmp_path / "tls")
    other_cert, other_key = _tls(tmp_path / "other")
    with ExitStack() as stack:
        a_platform, a = stack.enter_context(
            _node(tmp_path / "a", "node-a", postgres_url, operator, (other_cert, other_key))
        )
        http_a = stack.enter_context(_client(a))
        s = Served(a.url, http_a, a_platform, operator, a)
        s.create()
        (tmp_path / "b").mkdir()
        shutil.copy(tmp_path / "a" / "node.key", tmp_path / "b" / "node.key")
        _, b = stack.enter_context(
            _node(tmp_path / "b", "node-b", postgres_url, operator, (cert, key))
        )
        http_b = stack.enter_context(_client(b))
        answer = http_b.post(
            "/v1/consortia/acme/actions",
            headers=JOSE,
            content=s.signed("telco", "sendNotifications", {"members": ["telco"], "body": {}}),
        )
        assert answer.status_code == 503
        assert "does not answer now" in answer.json()["error"]["message"]
        assert a_platform.runtime("acme").next_seqno == 1  # only the genesis: nothing got by


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
