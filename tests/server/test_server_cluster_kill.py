"""Three `consortia serve --node` processes on one PostgreSQL store, killed and paused under load.

Each test tries to break the cluster's promises: the sequencer is killed with SIGKILL at
random moments (50 times) or paused with SIGSTOP past its lease, while a member keeps
sending signed requests to whichever node answers, retrying the same body until it is
acknowledged. Afterwards every acknowledged transaction is in the ledger exactly once, at
the seqno its answer gave; a retry of an acknowledged body gets its original answer; no
txid is stored twice; ``consortia ledger verify`` passes. The takeover time after each
kill (from the SIGKILL to the next acknowledged commit) is printed, median and worst.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from consortia import MemberKeys, Platform, SigningKey, sign_action, sign_creation
from consortia.identity.keyfile import save_public_jwk
from consortia.server.tls import ensure_self_signed
from pg_server import (  # noqa: F401 - fixtures
    free_port,
    postgres_server_fixture,
    postgres_url_fixture,
)

#: Seconds a sequencer lease lasts in these tests (the longest a takeover should wait).
LEASE = 0.6
#: SIGKILLs of the sequencer in the kill test (the issue asks for at least 50).
KILLS = int(os.environ.get("CONSORTIA_CLUSTER_KILLS", "50"))
JOSE = {"content-type": "application/jose"}
FOUNDERS = ("telco", "vendor")
CID = "acme"
ORDER_CODE = """
def main(params):
    put("order/" + params["order"], {"n": params["n"]})
    notify(["vendor"], {"order": params["order"]})
    return params["order"]
"""


@dataclass
class Node:
    """One `consortia serve --node` process, restartable on the same port."""

    name: str
    data: Path
    port: int
    argv: list[str]
    proc: subprocess.Popen[str] | None = None
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(  # noqa: S603
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines, proc = self.lines, self.proc

        def pump() -> None:
            for line in proc.stdout or ():
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                assert proc.poll() is None, f"node {self.name} exited {proc.returncode}"
                continue
            if line.startswith("consortia: serving "):
                return
        raise AssertionError(f"node {self.name} did not start within {timeout} s")

    def said(self, text: str, timeout: float) -> bool:
        """Whether the node printed a line holding ``text`` (waiting up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self.lines.get(timeout=0.2):
                    return True
            except queue.Empty:
                continue
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Cluster:
    url: str
    nodes: list[Node]
    keys: dict[str, MemberKeys]
    http: httpx.Client

    def holder(self) -> Node | None:
        with psycopg.connect(self.url, autocommit=True) as db:
            row = db.execute(
                "SELECT holder FROM sequencer_leases WHERE cid = %s AND expires_at > "
                "extract(epoch from clock_timestamp())",
                (CID,),
            ).fetchone()
        return next((n for n in self.nodes if row is not None and n.name == row[0]), None)

    def sign(self, member: str, params: dict[str, object], **kw: object) -> str:
        return sign_action(
            self.keys[member],
            consortium=CID,
            action="recordOrder",
            params=params,  # type: ignore[arg-type]
            now=int(time.time()),
            **kw,  # type: ignore[arg-type]
        )

    def install_order_action(self) -> None:
        """Vote in the action the load runs (one approval decides)."""
        amend = {
            "name": "recordOrder",
            "scope": "public",
            "language": "starlark",
            "code": ORDER_CODE,
            "permissions": [{"member": m, "execute": True} for m in self.keys],
            "voting": {"voters": "any", "majority": 1, "veto": []},
        }
        body = sign_action(
            self.keys["telco"],
            consortium=CID,
            action="amendConstitution",
            params=amend,  # type: ignore[arg-type]
            now=int(time.time()),
        )
        pending = self.http.post(
            f"{self.nodes[0].url}/v1/consortia/{CID}/actions", headers=JOSE, content=body
        )
        assert pending.status_code == 202, pending.text
        vote = sign_action(
            self.keys["vendor"],
            consortium=CID,
            action="voteFor",
            params={"proposal": pending.json()["proposal"], "ballot": "approve"},
            now=int(time.time()),
        )
        self.submit(vote)

    def submit(self, body: str, give_up_s: float = 30.0) -> dict[str, object]:
        """Send ``body`` to live nodes until one acknowledges it (the same body each time)."""
        deadline = time.monotonic() + give_up_s
        while time.monotonic() < deadline:
            live = [n for n in self.nodes if n.alive()]
            node = random.choice(live or self.nodes)
            try:
                answer = self.http.post(
                    f"{node.url}/v1/consortia/{CID}/actions", headers=JOSE, content=body
                )
            except httpx.HTTPError:
                time.sleep(0.02)
                continue
            if answer.status_code == 200:
                found: dict[str, object] = answer.json()
                return found
            assert answer.status_code == 503, answer.text  # nothing but "retry" is allowed
            time.sleep(0.02)
        raise AssertionError(f"a request was not acknowledged within {give_up_s} s")


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    operator = SigningKey.generate()
    save_public_jwk(tmp_path / "operator.pub.jwk", operator.public_jwk())
    (tmp_path / "tls").mkdir()
    cert, key, _ = ensure_self_signed(tmp_path / "tls", "127.0.0.1")
    # The first node's folder makes the node key; the others are handed it (copied here).
    first = tmp_path / "n1"
    Platform.open(first, store=postgres_url, analytics=False).close()
    nodes: list[Node] = []
    for i in (1, 2, 3):
        data = tmp_path / f"n{i}"
        data.mkdir(exist_ok=True)
        if i > 1:
            (data / "node.key").write_bytes((first / "node.key").read_bytes())
            (data / "node.key").chmod(0o600)
        port = free_port()
        argv = [
            sys.executable, "-m", "consortia", "serve", "--data", str(data),
            "--store", postgres_url, "--node", f"n{i}", "--port", str(port),
            "--lease-s", str(LEASE), "--tls-cert", str(cert), "--tls-key", str(key),
            "--operator-key", str(tmp_path / "operator.pub.jwk"), "--no-analytics",
            "--log-level", "warning",
        ]  # fmt: skip
        nodes.append(Node(f"n{i}", data, port, argv))
    http = httpx.Client(timeout=httpx.Timeout(2, read=3), verify=False)  # noqa: S501 - loopback test
    try:
        for node in nodes:
            node.start()
        keys = {m: MemberKeys.generate(m) for m in FOUNDERS}
        creation = sign_creation(
            operator,
            consortium=CID,
            name="Acme",
            now=int(time.time()),
            members=[k.public_info() for k in keys.values()],
        )
        made = http.post(f"{nodes[0].url}/v1/consortia", headers=JOSE, content=creation)
        assert made.status_code == 201, made.text
        found = Cluster(postgres_url, nodes, keys, http)
        found.install_order_action()
        yield found
    finally:
        http.close()
        for node in nodes:
            node.stop()


class Load:
    """A member sending signed requests, each retried until acknowledged, in a thread."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.acked: dict[str, tuple[int, str]] = {}  # txid -> (seqno, body)
        self.ack_times: list[float] = []
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                body = self.cluster.sign("telco", {"order": f"O-{n % 200}", "n": n})
                answer = self.cluster.submit(body)
                self.acked[str(answer["txid"])] = (int(str(answer["seqno"])), body)
                self.ack_times.append(time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            self.failure = exc

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)

    def first_ack_after(self, t0: float, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.failure is None, self.failure
            later = [t for t in self.ack_times[-50:] if t > t0]
            if later:
                return later[0] - t0
            time.sleep(0.01)
        raise AssertionError(f"no commit within {timeout} s of the sequencer's loss")


def _check_ledger(cluster: Cluster, load: Load, data: Path) -> None:
    assert load.failure is None, load.failure
    with psycopg.connect(cluster.url, autocommit=True) as db:
        stored: dict[str, int] = dict(
            db.execute("SELECT txid, seqno FROM transactions WHERE cid = %s", (CID,)).fetchall()
        )
        twice = db.execute(
            "SELECT txid FROM transactions GROUP BY cid, txid HAVING count(*) > 1"
        ).fetchall()
    assert twice == []
    for txid, (seqno, _) in load.acked.items():
        assert stored.get(txid) == seqno, (
            f"acknowledged {txid[:12]} at {seqno}, stored {stored.get(txid)}"
        )
    # Retries of acknowledged bodies, at any node, get the original answer.
    for txid, (seqno, body) in random.sample(sorted(load.acked.items()), min(20, len(load.acked))):
        again = cluster.submit(body)
        assert (again["txid"], again["seqno"]) == (txid, seqno)
    verified = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "consortia", "ledger", "verify", "--data", str(data),
         "--store", cluster.url, "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_sigkill_the_sequencer_50_times_under_load(cluster: Cluster) -> None:
    takeovers: list[float] = []
    with Load(cluster) as load:
        load.first_ack_after(0.0)
        for _ in range(KILLS):
            victim = cluster.holder()
            while victim is None:
                time.sleep(0.01)
                victim = cluster.holder()
            time.sleep(random.uniform(0, LEASE / 2))
            victim.signal(signal.SIGKILL)
            t0 = time.monotonic()
            restart = threading.Thread(target=victim.start)
            restart.start()
            takeovers.append(load.first_ack_after(t0))
            restart.join()
    _check_ledger(cluster, load, cluster.nodes[0].data)
    print(
        f"cluster-kill: {len(takeovers)} SIGKILLs of the sequencer, lease {LEASE} s; "
        f"takeover (kill to next acknowledged commit) median "
        f"{statistics.median(takeovers) * 1000:.0f} ms, worst {max(takeovers) * 1000:.0f} ms; "
        f"{len(load.acked)} acknowledged, each stored once"
    )
    # No takeover may wait much past a lease (plus a restart-free retry's delay).
    assert max(takeovers) < LEASE + 5.0


def test_sigstop_the_sequencer_past_its_lease_then_sigcont(cluster: Cluster) -> None:
    with Load(cluster) as load:
        load.first_ack_after(0.0)
        for _ in range(3):
            paused = cluster.holder()
            while paused is None:
                time.sleep(0.01)
                paused = cluster.holder()
            time.sleep(random.uniform(0, LEASE / 2))
            paused.signal(signal.SIGSTOP)
            # Another node takes the lease over (a higher epoch) and commits.
            deadline = time.monotonic() + 20
            while cluster.holder() in (None, paused) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert cluster.holder() not in (None, paused)
            load.first_ack_after(time.monotonic())
            paused.signal(signal.SIGCONT)
            # The old sequencer steps down: what it is sent now is committed elsewhere.
            body = cluster.sign("vendor", {"order": "after-sigcont", "n": 0})
            direct = cluster.http.post(
                f"{paused.url}/v1/consortia/{CID}/actions", headers=JOSE, content=body
            )
            assert direct.status_code in (200, 503), direct.text
            assert paused.said("lost the sequencer lease", timeout=10)
            answer = cluster.submit(body)
            load.acked[str(answer["txid"])] = (int(str(answer["seqno"])), body)
    _check_ledger(cluster, load, cluster.nodes[0].data)
    assert len(load.acked) > 10  # the load went on throughout
