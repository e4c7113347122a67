"""Family 10, crash durability: the server is killed with SIGKILL under a write load three
times and restarted on the same data; every acknowledged (200) transaction stays readable by
its submitter with the seqno it was acknowledged with, and a retry of the same JWS gets the
same answer. The ledger verifies offline afterwards."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from attack_kit import (
    CONSORTIA,
    JOSE,
    World,
    expect_committed,
    nonce,
    sign_action,
    txid_of,
    world_running,
)

ROUNDS = 3
WRITERS = ("telco", "vendor", "installer", "telco")


@dataclass
class Ack:
    member: str
    jws: str
    txid: str
    seqno: int


@dataclass
class Round:
    acked: list[Ack] = field(default_factory=list)
    unacked: list[tuple[str, str]] = field(default_factory=list)
    fingerprint: str = ""


@dataclass
class Crashes:
    world: World
    rounds: list[Round]
    first_fingerprint: str


def _writer(w: World, member: str, url: str, stop: threading.Event, out: Round) -> None:
    with httpx.Client(base_url=url, verify=w.server.ssl_context(), timeout=10) as http:
        while not stop.is_set():
            body = sign_action(w.members[member], w.cid, w.record_action, {"order": nonce()})
            try:
                answer = http.post(f"/v1/consortia/{w.cid}/actions", content=body, headers=JOSE)
            except httpx.HTTPError:
                out.unacked.append((member, body))
                return
            if answer.status_code == 200:
                data = answer.json()
                out.acked.append(Ack(member, body, data["txid"], data["seqno"]))
            else:
                out.unacked.append((member, body))


@pytest.fixture(scope="module")
def crashes() -> Iterator[Crashes]:
    with world_running() as w:
        first = w.server.fingerprint
        rounds: list[Round] = []
        for _ in range(ROUNDS):
            current = Round()
            stop = threading.Event()
            threads = [
                threading.Thread(target=_writer, args=(w, m, w.server.url, stop, current))
                for m in WRITERS
            ]
            for thread in threads:
                thread.start()
            time.sleep(0.8)
            w.server.kill()  # SIGKILL, mid-load
            stop.set()
            for thread in threads:
                thread.join(15)
            w.http.close()
            w.server.start()
            w.http = w.server.client()
            current.fingerprint = w.server.peer_fingerprint()
            rounds.append(current)
        yield Crashes(w, rounds, first)


def test_each_round_acknowledged_writes_before_the_kill(crashes: Crashes) -> None:
    assert [len(r.acked) >= 5 for r in crashes.rounds] == [True] * ROUNDS, [
        len(r.acked) for r in crashes.rounds
    ]
    assert all(r.unacked for r in crashes.rounds), "the kill interrupted no request"


@pytest.mark.parametrize("index", range(ROUNDS))
def test_every_acknowledged_txid_is_readable_by_its_submitter(crashes: Crashes, index: int) -> None:
    w = crashes.world
    missing = []
    for ack in crashes.rounds[index].acked:
        answer = w.read(ack.member, f"transactions/{ack.txid}")
        if answer.status_code != 200 or answer.json()["seqno"] != ack.seqno:
            missing.append((ack.txid[:12], ack.seqno, answer.status_code, answer.text[:80]))
    assert not missing, f"{len(missing)} acknowledged transactions lost: {missing[:5]}"


@pytest.mark.parametrize("index", range(ROUNDS))
def test_retry_of_an_acknowledged_jws_gets_the_same_seqno(crashes: Crashes, index: int) -> None:
    w = crashes.world
    for ack in crashes.rounds[index].acked:
        again = expect_committed(w.post(ack.jws))
        assert (again["txid"], again["seqno"]) == (ack.txid, ack.seqno)


def test_acknowledged_seqnos_are_unique(crashes: Crashes) -> None:
    seqnos = [a.seqno for r in crashes.rounds for a in r.acked]
    assert len(seqnos) == len(set(seqnos))


def test_interrupted_requests_are_safe_to_retry(crashes: Crashes) -> None:
    w = crashes.world
    seen: dict[str, int] = {}
    for current in crashes.rounds:
        for _member, body in current.unacked:
            answer = expect_committed(w.post(body))
            assert seen.setdefault(answer["txid"], answer["seqno"]) == answer["seqno"]
            again = expect_committed(w.post(body))
            assert again == answer


def test_certificate_survives_the_crashes(crashes: Crashes) -> None:
    assert [r.fingerprint for r in crashes.rounds] == [crashes.first_fingerprint] * ROUNDS


def test_ledger_verifies_offline_after_the_crashes(crashes: Crashes) -> None:
    w = crashes.world
    w.http.close()
    assert w.server.terminate(30) == 0
    command = [str(CONSORTIA), "ledger", "verify", "--data", str(w.server.data)]
    verified = subprocess.run(  # noqa: S603 - our own venv's entry point
        [*command, "--entries", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # Every entry is accounted for: the creation, the vote that brought the campaign's action
    # in (a ballot and the amendment it decided), and requests the writers sent, whether their
    # answer came (acknowledged) or was cut by the kill (retried above, same txid).
    *lines, _summary = verified.stdout.splitlines()
    entries = [json.loads(line) for line in lines]
    mine = [e for e in entries if e["consortium"] == w.cid]
    sent = {a.txid for r in crashes.rounds for a in r.acked}
    sent |= {txid_of(body) for r in crashes.rounds for _, body in r.unacked}
    kinds = Counter(e["kind"] for e in mine if e["txid"] not in sent)
    assert kinds == Counter({"genesis": 1, "ballot": 1, "voted": 1}), kinds
    assert {e["kind"] for e in mine if e["txid"] in sent} == {"request"}
