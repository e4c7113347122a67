"""The writer that tests/ledger/test_ledger_crash.py kills: ``python crash_writer.py DIR SEED``.

It opens a platform on DIR (creating the node key, the store and the consortium "crash" on
first start), prints ``ready``, then submits signed requests in group commits forever. Each
batch proposes ``updatePermissions`` (a governance action that needs a 2-of-3 vote) and votes
it through in the same batch, so one commit holds proposals, ballots, resumed requests,
state writes, nonces, notifications, Merkle nodes and a signed root. Only after
``execute_batch`` returned (the commit is durable) does it print ``ack <txid>`` for every
transaction that batch committed, one flushed line each.

Keys come from fixed seeds, so every restart signs as the same operator and members.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from pathlib import Path

from consortia import Committed, ConsortiaError, MemberKeys, Pending, Platform, SigningKey
from consortia._json import JSONObject
from consortia.identity.jws import txid_of
from consortia.identity.keys import EncryptionKey
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.sqlite import SQLiteStore
from consortia.wire import sign_action, sign_creation

CONSORTIUM = "crash"
FOUNDERS = ("telco", "vendor", "installer")


def _seed(name: str) -> bytes:
    return hashlib.sha256(f"crash test key: {name}".encode()).digest()


OPERATOR = SigningKey(_seed("operator"))
KEYS = {
    m: MemberKeys(m, SigningKey(_seed(m + "/sign")), EncryptionKey(_seed(m + "/box")))
    for m in FOUNDERS
}


def say(line: str) -> None:
    """One line, flushed: the test reads it even if we die right after."""
    print(line, flush=True)


def open_platform(data: Path) -> Platform:
    """The platform, built as Platform.open does, without an action sandbox."""
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Platform(
        SQLiteStore(data / "ledger.sqlite"),
        node_key=load_or_create_node_key(data / "node.key"),
        operator_keys=[OPERATOR.verify_key],
    )


def ensure_consortium(platform: Platform) -> None:
    """Create the consortium unless a previous run committed it."""
    if CONSORTIUM in platform.consortia():
        return
    created = platform.create_consortium(
        sign_creation(
            OPERATOR,
            consortium=CONSORTIUM,
            name="crash test",
            members=[KEYS[m].public_info() for m in FOUNDERS],
            now=int(time.time()),
        )
    )
    say(f"ack {created.txid}")


def one_batch(platform: Platform, rng: random.Random) -> None:
    """Propose and approve a few permission updates in one group commit; ack what committed."""
    now = int(time.time())
    bodies: list[str] = []
    proposals: list[str] = []
    params: JSONObject = {
        "action": "refreshTrustKeys",
        "permissions": [{"member": m, "execute": True} for m in FOUNDERS],
    }
    for _ in range(rng.randint(1, 6)):
        propose = sign_action(
            KEYS["telco"], consortium=CONSORTIUM, action="updatePermissions", params=params, now=now
        )
        pid = txid_of(propose)
        vote = sign_action(
            KEYS["vendor"],
            consortium=CONSORTIUM,
            action="voteFor",
            params={"proposal": pid, "ballot": "approve"},
            now=now,
        )
        bodies += [propose, vote]
        proposals.append(pid)
    answers = platform.execute_batch(CONSORTIUM, bodies)
    for answer in answers:
        if isinstance(answer, ConsortiaError):
            say(f"error {answer.code}: {answer.message}")
            sys.exit(3)
    pairs = zip(answers[::2], answers[1::2], strict=True)
    for pid, (proposed, ballot) in zip(proposals, pairs, strict=True):
        if not isinstance(proposed, Pending) or not isinstance(ballot, Committed):
            say(f"error unexpected answers {proposed!r} {ballot!r}")
            sys.exit(3)
        say(f"ack {ballot.txid}")
        say(f"ack {pid}")  # the approved request, resumed in the ballot's commit


def main() -> None:
    """Open, announce readiness, write until killed."""
    data = Path(sys.argv[1])
    rng = random.Random(int(sys.argv[2]))
    platform = open_platform(data)
    ensure_consortium(platform)
    say("ready")
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    batches = 0
    while limit is None or batches < limit:
        one_batch(platform, rng)
        batches += 1
    platform.close()


if __name__ == "__main__":
    main()
