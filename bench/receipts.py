"""Receipt cost against ledger size: ``make bench`` (or ``python bench/receipts.py``).

For each size, a platform gets a real consortium, then synthetic leaves are appended
straight through the store as commit batches would write them (transaction rows, Merkle
nodes, a signed root per batch) instead of executing millions of actions. The platform is
then restarted, and the script times what matters once a ledger is large: restoring the
frontier at start-up, building a receipt (``MemberView.receipt``), and verifying it offline
(``verify_receipt``), counting the storage reads each receipt makes.

Usage: python bench/receipts.py [SIZE ...]   (default: 1000 1000000)
"""

from __future__ import annotations

import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from consortia import MemberKeys, Platform, SigningKey
from consortia.identity.keys import VerifyKey
from consortia.ledger.merkle import leaf_hash, leaf_input
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.receipts import sign_root, verify_receipt
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import CommitBatch, NodeRow, SignedRootRow, TxRow
from consortia.wire import sign_creation

CID = "bench"
CHUNK = 10_000
SAMPLES = 2_000


class CountingStore(SQLiteStore):
    """The SQLite store, counting Merkle node reads."""

    node_reads = 0

    def merkle_node(self, cid: str, level: int, index: int) -> bytes | None:
        """Count, then read."""
        self.node_reads += 1
        return super().merkle_node(cid, level, index)


def open_platform(data: Path, operator: SigningKey) -> Platform:
    """A platform on ``data`` whose store counts node reads."""
    return Platform(
        CountingStore(data / "ledger.sqlite"),
        node_key=load_or_create_node_key(data / "node.key"),
        operator_keys=[operator.verify_key],
    )


def txid_of(seqno: int) -> str:
    """A synthetic txid."""
    return hashlib.sha256(f"bench tx {seqno}".encode()).hexdigest()


def build(data: Path, size: int) -> SigningKey:
    """A consortium whose ledger holds ``size`` leaves (the genesis and synthetic ones)."""
    operator = SigningKey.generate()
    platform = open_platform(data, operator)
    founders = [MemberKeys.generate(m) for m in ("telco", "vendor")]
    platform.create_consortium(
        sign_creation(
            operator,
            consortium=CID,
            name="bench",
            members=[k.public_info() for k in founders],
            now=int(time.time()),
        )
    )
    runtime = platform.runtime(CID)
    frontier = runtime.frontier
    for start in range(1, size, CHUNK):
        batch = CommitBatch()
        previous = frontier.size
        for seqno in range(start, min(size, start + CHUNK)):
            txid = txid_of(seqno)
            digest = hashlib.sha256(txid.encode()).digest()
            leaf = leaf_hash(leaf_input(seqno, bytes.fromhex(txid), digest))
            batch.txs.append(TxRow(seqno, txid, digest, leaf, b"synthetic"))
            batch.nodes.extend(NodeRow(*node) for node in frontier.append(leaf))
        jws = sign_root(
            runtime.service_key,
            consortium=CID,
            tree_size=frontier.size,
            root=frontier.root(),
            iat=int(time.time()),
        )
        mac = runtime.signed_root_mac(frontier.size, previous, jws)
        batch.signed_root = SignedRootRow(frontier.size, previous, jws, mac)
        platform.store.commit(CID, batch)
    platform.close()
    return operator


def measure(size: int) -> dict[str, float]:
    """Build a ledger of ``size`` leaves, restart on it, time receipts and verification."""
    with tempfile.TemporaryDirectory(prefix="consortia-bench-") as tmp:
        data = Path(tmp)
        began = time.perf_counter()
        operator = build(data, size)
        built = time.perf_counter() - began

        store = CountingStore(data / "ledger.sqlite")
        platform = Platform(
            store,
            node_key=load_or_create_node_key(data / "node.key"),
            operator_keys=[operator.verify_key],
        )
        began = time.perf_counter()
        platform.runtime(CID)
        restore_ms = (time.perf_counter() - began) * 1000
        restore_reads = store.node_reads

        view = platform.member_view(CID, "telco")
        key = VerifyKey.from_jwk(platform.service_info()["service_key"])
        rng = random.Random(size)  # noqa: S311 - picks sample leaves, not keys
        txids = [txid_of(rng.randrange(1, size)) for _ in range(SAMPLES)]
        generate: list[float] = []
        verify: list[float] = []
        reads: list[int] = []
        proof_lengths: list[int] = []
        for txid in txids:
            store.node_reads = 0
            t0 = time.perf_counter()
            receipt = view.receipt(txid)
            t1 = time.perf_counter()
            verify_receipt(receipt, key)
            t2 = time.perf_counter()
            generate.append(t1 - t0)
            verify.append(t2 - t1)
            reads.append(store.node_reads)
            proof = receipt["proof"]
            proof_lengths.append(len(proof) if isinstance(proof, list) else 0)
        platform.close()
    return {
        "build_s": built,
        "restore_ms": restore_ms,
        "restore_reads": restore_reads,
        "gen_us": statistics.median(generate) * 1e6,
        "verify_us": statistics.median(verify) * 1e6,
        "reads": max(reads),
        "proof": statistics.mean(proof_lengths),
    }


def main() -> None:
    """Print one line per ledger size."""
    sizes = [int(a) for a in sys.argv[1:]] or [1_000, 1_000_000]
    print(
        f"{'leaves':>10} {'build':>8} {'start-up':>9} {'receipt':>10} {'verify':>9} "
        f"{'node reads':>11} {'proof':>6}"
    )
    for size in sizes:
        r = measure(size)
        print(
            f"{size:>10,} {r['build_s']:>7.1f}s {r['restore_ms']:>7.2f}ms "
            f"{r['gen_us']:>8.0f}µs {r['verify_us']:>7.0f}µs "
            f"{r['reads']:>6.0f} max {r['proof']:>6.1f}",
            flush=True,
        )
    print(
        f"(median of {SAMPLES} random receipts per size; start-up = restoring the frontier "
        "and the constitution; node reads = Merkle node rows read per receipt, at most)"
    )


if __name__ == "__main__":
    main()
