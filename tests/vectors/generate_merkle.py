"""Write tests/vectors/merkle.json: ``python tests/vectors/generate_merkle.py``.

Ledger, server, SDK and CLI tests read that file; tests/ledger/test_merkle.py checks that this
script reproduces it byte for byte and that every proof in it verifies.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from consortia.ledger.merkle import MerkleFrontier, inclusion_proof, leaf_hash, leaf_input

VECTORS_PATH = Path(__file__).with_name("merkle.json")
TREE_SIZES = (1, 2, 3, 5, 8, 13, 100)


def txid_of(seqno: int) -> bytes:
    """The synthetic txid of leaf ``seqno``: SHA-256 of the UTF-8 text ``tx{seqno}``."""
    return hashlib.sha256(f"tx{seqno}".encode()).digest()


def digest_of(seqno: int) -> bytes:
    """The synthetic record digest of leaf ``seqno``: SHA-256 of ``record{seqno}``."""
    return hashlib.sha256(f"record{seqno}".encode()).digest()


def proof_indices(tree_size: int) -> list[int]:
    """The leaves whose proofs the file holds: both ends and the middle."""
    wanted = {0, 1, tree_size // 2, tree_size - 2, tree_size - 1}
    return sorted(i for i in wanted if 0 <= i < tree_size)


def tree_vector(tree_size: int) -> dict[str, object]:
    """One tree: its size, root and a few entries with their inclusion proofs."""
    frontier = MerkleFrontier()
    nodes: dict[tuple[int, int], bytes] = {}
    for seqno in range(tree_size):
        leaf = leaf_hash(leaf_input(seqno, txid_of(seqno), digest_of(seqno)))
        for level, index, value in frontier.append(leaf):
            nodes[level, index] = value

    def get_node(level: int, index: int) -> bytes:
        return nodes[level, index]

    entries = []
    for seqno in proof_indices(tree_size):
        data = leaf_input(seqno, txid_of(seqno), digest_of(seqno))
        proof = inclusion_proof(seqno, tree_size, get_node)
        entries.append(
            {
                "seqno": seqno,
                "txid": txid_of(seqno).hex(),
                "digest": digest_of(seqno).hex(),
                "leaf_input": data.hex(),
                "leaf_hash": leaf_hash(data).hex(),
                "proof": [value.hex() for value in proof],
            }
        )
    return {"tree_size": tree_size, "root": frontier.root().hex(), "entries": entries}


def render() -> str:
    """The exact text of merkle.json."""
    vectors = {
        "description": (
            "Ledger Merkle tree vectors (PROTOCOL.md section 6, RFC 9162 section 2.1). "
            "Leaf seqno has txid = SHA-256(utf8('tx' + seqno)) and "
            "digest = SHA-256(utf8('record' + seqno)), seqno in decimal; "
            "leaf_input = seqno (8 bytes big-endian) || txid || digest. "
            "Hashes are lowercase hex; proofs list sibling hashes from the leaf upwards. "
            "Regenerate with: python tests/vectors/generate_merkle.py"
        ),
        "trees": [tree_vector(size) for size in TREE_SIZES],
    }
    return json.dumps(vectors, indent=2) + "\n"


def main() -> None:
    """Rewrite merkle.json next to this script."""
    VECTORS_PATH.write_text(render(), encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
