"""A node joins a running cluster with the operator's approval, and nothing else gets in.

`consortia node join` asks a running node with a throwaway key and waits; `consortia node
approve` (the operator) approves; the new node receives the node key and the cluster's TLS
files sealed to its key, writes them with mode 0600, and serves as a node of the cluster.
Each refusal is checked too: no operator token, another operator's token, an unknown or
already answered request, a bad key, a node that is no cluster node, a stranger opening
the sealed answer.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from server_harness import JOSE, Served

from consortia import Platform, SigningKey
from consortia.engine.datadir import TLS_CERT_FILE, TLS_KEY_FILE
from consortia.errors import BadSignature
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.keyfile import save_signing_key
from consortia.identity.keys import EncryptionKey
from consortia.ledger.nodekey import load_node_key
from consortia.server.run import ServerConfig, ServerThread
from consortia.server.tls import certificate_fingerprint, ensure_self_signed
from consortia.wire import sign_operator_token
from consortia.wire.join import open_join_bundle
from pg_server import postgres_server_fixture, postgres_url_fixture  # noqa: F401 - fixtures


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "consortia", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_node_joins_with_the_operators_approval(tmp_path: Path, postgres_url: str) -> None:
    operator = SigningKey.generate()
    save_signing_key(operator, tmp_path / "operator.jwk")
    (tmp_path / "a").mkdir()
    cert, key, _ = ensure_self_signed(tmp_path / "a", "127.0.0.1")
    pin = certificate_fingerprint(cert.read_bytes())
    a_platform = Platform.open(
        tmp_path / "a",
        operator_keys=[operator.verify_key],
        store=postgres_url,
        node="node-a",
        analytics=False,
    )
    a = ServerThread(a_platform, ServerConfig(port=0, tls=(cert, key), log_level="warning"))
    a.start()
    http = httpx.Client(base_url=a.url, verify=False, timeout=10)  # noqa: S501 - loopback test
    b_platform = None
    b = None
    try:
        s = Served(a.url, http, a_platform, operator, a)
        s.create()
        joined = tmp_path / "b"
        join = _cli(
            "node", "join", "--data", str(joined), "--node", "node-b", "--url", a.url,
            "--service-fingerprint", pin, "--wait", "60",
        )  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            for line in join.stderr or ():
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        asked = lines.get(timeout=30)
        assert "join request" in asked, asked
        jid = asked.split("join request ", 1)[1].split()[0]
        fingerprint = asked.rsplit("key fingerprint ", 1)[1].strip()
        # Nobody but an operator approves: no token, then another operator's key.
        path = f"/v1/cluster/joins/{jid}/approve"
        assert http.post(path).json()["error"]["code"] == "bad_signature"
        stranger = sign_operator_token(
            SigningKey.generate(), audience="cluster", now=int(time.time())
        )
        refused = http.post(path, headers={"authorization": f"Bearer {stranger}"})
        assert refused.status_code == 401
        assert not (joined / "node.key").exists()
        # The operator compares the fingerprint and approves.
        approve = _cli(
            "node", "approve", "--url", a.url, "--service-fingerprint", pin,
            "--operator-key", str(tmp_path / "operator.jwk"), jid,
        )  # fmt: skip
        out, err = approve.communicate(timeout=60)
        assert approve.returncode == 0, err
        assert fingerprint in out
        assert join.wait(timeout=60) == 0
        # The new node holds the cluster's secrets, readable by its owner only.
        assert load_node_key(joined / "node.key") == load_node_key(tmp_path / "a" / "node.key")
        assert (joined / TLS_CERT_FILE).read_bytes() == cert.read_bytes()
        assert (joined / TLS_KEY_FILE).read_bytes() == key.read_bytes()
        for name in ("node.key", TLS_KEY_FILE):
            assert os.stat(joined / name).st_mode & 0o077 == 0
        # The request was answered once and is gone.
        assert http.get(f"/v1/cluster/joins/{jid}").json()["error"]["code"] == "not_found"
        # And the new node serves: a write through it reaches the sequencer, node a.
        b_platform = Platform.open(
            joined,
            operator_keys=[operator.verify_key],
            store=postgres_url,
            node="node-b",
            analytics=False,
        )
        b = ServerThread(
            b_platform,
            ServerConfig(
                port=0, tls=(joined / TLS_CERT_FILE, joined / TLS_KEY_FILE), log_level="warning"
            ),
        ).start()
        via_b = httpx.post(
            f"{b.url}/v1/consortia/acme/actions",
            headers=JOSE,
            content=s.signed("telco", "sendNotifications", {"members": ["vendor"], "body": {}}),
            verify=False,  # noqa: S501 - loopback test
            timeout=10,
        )
        assert via_b.status_code in (200, 403), via_b.text  # answered by the sequencer
        assert "served by" not in via_b.text
    finally:
        http.close()
        for thread, platform in ((b, b_platform), (a, a_platform)):
            if thread is not None:
                thread.stop()
            if platform is not None:
                platform.close()


def test_join_requests_are_checked_and_the_answer_opens_for_the_joiner_only(
    tmp_path: Path, postgres_url: str
) -> None:
    operator = SigningKey.generate()
    platform = Platform.open(
        tmp_path / "a",
        operator_keys=[operator.verify_key],
        store=postgres_url,
        node="node-a",
        analytics=False,
    )
    thread = ServerThread(platform, ServerConfig(port=0, log_level="warning")).start()
    try:
        with httpx.Client(base_url=thread.url, timeout=10) as http:
            for bad in (
                {"node": "node-b"},
                {"node": "node b", "key": b64url_encode(bytes(32))},
                {"node": "node-b", "key": "not base64url!"},
                {"node": "node-b", "key": b64url_encode(b"short")},
            ):
                answer = http.post("/v1/cluster/joins", json=bad)
                assert answer.json()["error"]["code"] == "bad_request", bad
            assert http.get("/v1/cluster/joins/nope").json()["error"]["code"] == "not_found"
            joiner = EncryptionKey.generate()
            asked = http.post(
                "/v1/cluster/joins",
                json={"node": "node-b", "key": b64url_encode(joiner.public_key.raw)},
            ).json()
            assert http.get(f"/v1/cluster/joins/{asked['id']}").json()["state"] == "pending"
            token = sign_operator_token(operator, audience="cluster", now=int(time.time()))
            auth = {"authorization": f"Bearer {token}"}
            assert http.post(f"/v1/cluster/joins/{asked['id']}/approve", headers=auth).is_success
            sealed = b64url_decode(
                http.get(f"/v1/cluster/joins/{asked['id']}").json()["sealed"], what="sealed"
            )
            with pytest.raises(BadSignature):
                open_join_bundle(sealed, EncryptionKey.generate())
            bundle = open_join_bundle(sealed, joiner)
            assert bundle.node_key == load_node_key(tmp_path / "a" / "node.key")
            assert bundle.tls_cert is None  # plain HTTP: no TLS files to hand over
            assert "node_key" not in repr(bundle) and bundle.node_key.hex() not in repr(bundle)
    finally:
        thread.stop()
        platform.close()
    # A platform that is no cluster node has no join desk.
    alone = Platform.open(tmp_path / "alone", analytics=False)
    single = ServerThread(alone, ServerConfig(port=0, log_level="warning")).start()
    try:
        answer = httpx.post(f"{single.url}/v1/cluster/joins", json={}, timeout=10)
        assert answer.json()["error"]["code"] == "not_found"
    finally:
        single.stop()
        alone.close()
