"""consortia.ledger.merkle against a naive RFC 9162 implementation, known vectors and properties."""

from __future__ import annotations

import bisect
import hashlib
import importlib.util
import json
import struct
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.ledger import merkle
from consortia.ledger.merkle import (
    EMPTY_ROOT,
    LEAF_INPUT_BYTES,
    LEAF_PREFIX,
    NODE_PREFIX,
    SEQNO_BYTES,
    InclusionError,
    MerkleFrontier,
    inclusion_proof,
    leaf_hash,
    leaf_input,
    node_hash,
    root_from_proof,
    root_of,
    verify_inclusion,
)

VECTORS_DIR = Path(__file__).parent.parent / "vectors"

# --- A naive reference: RFC 9162 §2.1.1 and §2.1.3.1 as written, on hashlib directly. ---------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    """k of RFC 9162: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(entries: Sequence[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + entries[0])
    k = _split(n)
    return _sha256(b"\x01" + naive_mth(entries[:k]) + naive_mth(entries[k:]))


def naive_path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*naive_path(m, entries[:k]), naive_mth(entries[k:])]
    return [*naive_path(m - k, entries[k:]), naive_mth(entries[:k])]


def naive_sides(m: int, n: int) -> list[bool]:
    """For each hash of PATH(m, D[n]), bottom-up: is that sibling on the left?"""
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*naive_sides(m, k), False]
    return [*naive_sides(m - k, n - k), True]


def naive_verify(leaf: bytes, m: int, n: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 step by step."""
    if m >= n:
        return False
    fn, sn, r = m, n - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _sha256(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def entry(seqno: int) -> bytes:
    """The leaf data of the vectors file, built without the module under test."""
    txid = _sha256(f"tx{seqno}".encode())
    digest = _sha256(f"record{seqno}".encode())
    return struct.pack(">Q", seqno) + txid + digest


ENTRIES = [entry(i) for i in range(80)]
LEAVES = [leaf_hash(e) for e in ENTRIES]


@cache
def built_tree(size: int) -> tuple[dict[tuple[int, int], bytes], bytes]:
    """The node store filled only from ``append`` outputs, and the frontier's root."""
    frontier = MerkleFrontier()
    nodes: dict[tuple[int, int], bytes] = {}
    for seqno in range(size):
        for level, index, value in frontier.append(leaf_hash(entry(seqno))):
            nodes[level, index] = value
    return nodes, frontier.root()


def counting(nodes: dict[tuple[int, int], bytes]) -> tuple[Callable[[int, int], bytes], list[int]]:
    calls = [0]

    def get_node(level: int, index: int) -> bytes:
        calls[0] += 1
        return nodes[level, index]

    return get_node, calls


def flip(value: bytes, position: int, mask: int) -> bytes:
    changed = bytearray(value)
    changed[position % len(value)] ^= mask
    return bytes(changed)


# --- Layout and primitives. -------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert set(merkle.__all__) == {
        "DIGEST_BYTES",
        "EMPTY_ROOT",
        "HASH_BYTES",
        "LEAF_INPUT_BYTES",
        "LEAF_PREFIX",
        "NODE_PREFIX",
        "SEQNO_BYTES",
        "TXID_BYTES",
        "InclusionError",
        "MerkleFrontier",
        "inclusion_proof",
        "leaf_hash",
        "leaf_input",
        "node_hash",
        "perfect_subtree_count",
        "root_from_proof",
        "root_of",
        "verify_inclusion",
    }


def test_leaf_input_layout() -> None:
    txid, digest = _sha256(b"t"), _sha256(b"d")
    data = leaf_input(0x0102030405060708, txid, digest)
    assert data == bytes.fromhex("0102030405060708") + txid + digest
    assert len(data) == LEAF_INPUT_BYTES == 72
    assert leaf_input(2**64 - 1, txid, digest)[:SEQNO_BYTES] == b"\xff" * 8
    assert leaf_input(7, _sha256(b"tx7"), _sha256(b"record7")) == entry(7)


@pytest.mark.parametrize(
    ("seqno", "txid_len", "digest_len", "message"),
    [
        (-1, 32, 32, "seqno -1"),
        (2**64, 32, 32, "seqno 18446744073709551616"),
        (0, 31, 32, "txid has 31 bytes, expected 32"),
        (0, 32, 33, "digest has 33 bytes, expected 32"),
    ],
)
def test_leaf_input_rejects(seqno: int, txid_len: int, digest_len: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        leaf_input(seqno, b"t" * txid_len, b"d" * digest_len)


def test_prefixes_separate_leaves_from_nodes() -> None:
    assert (LEAF_PREFIX, NODE_PREFIX) == (b"\x00", b"\x01")
    left, right = _sha256(b"l"), _sha256(b"r")
    assert node_hash(left, right) == _sha256(b"\x01" + left + right)
    assert leaf_hash(left + right) == _sha256(b"\x00" + left + right)
    assert leaf_hash(left + right) != node_hash(left, right)


def test_empty_tree() -> None:
    expected = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert root_of([]) == EMPTY_ROOT == expected == naive_mth([])
    assert MerkleFrontier().root() == expected
    assert MerkleFrontier().size == 0


def test_root_of_rejects_a_short_leaf_hash() -> None:
    with pytest.raises(ValueError, match="leaf hash has 31 bytes"):
        root_of([LEAVES[0], LEAVES[1][:31]])


# --- Known vectors of the Certificate Transparency test suite (RFC 6962 reference tests). ---

CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
CT_PROOF_0_OF_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_ct_roots(size: int) -> None:
    expected = bytes.fromhex(CT_ROOTS[size])
    assert naive_mth(CT_LEAVES[:size]) == expected
    assert root_of([leaf_hash(data) for data in CT_LEAVES[:size]]) == expected
    frontier = MerkleFrontier()
    for data in CT_LEAVES[:size]:
        frontier.append(leaf_hash(data))
    assert frontier.root() == expected


def test_ct_inclusion_proof() -> None:
    frontier = MerkleFrontier()
    nodes = {}
    for data in CT_LEAVES:
        for level, index, value in frontier.append(leaf_hash(data)):
            nodes[level, index] = value
    proof = inclusion_proof(0, 8, lambda level, index: nodes[level, index])
    assert [value.hex() for value in proof] == CT_PROOF_0_OF_8
    assert proof == naive_path(0, CT_LEAVES)
    verify_inclusion(leaf_hash(b""), 0, 8, proof, bytes.fromhex(CT_ROOTS[8]))


# --- Cross-check with the naive implementation, every size 1..65 and every index. ----------


@pytest.mark.parametrize("size", range(1, 66))
def test_roots_and_every_proof_match_naive(size: int) -> None:
    expected_root = naive_mth(ENTRIES[:size])
    nodes, frontier_root = built_tree(size)
    assert root_of(LEAVES[:size]) == expected_root
    assert frontier_root == expected_root
    for index in range(size):
        get_node, calls = counting(nodes)
        proof = inclusion_proof(index, size, get_node)
        assert proof == naive_path(index, ENTRIES[:size])
        assert calls[0] <= 2 * (size - 1).bit_length()
        verify_inclusion(LEAVES[index], index, size, proof, expected_root)
        assert root_from_proof(LEAVES[index], index, size, proof) == expected_root


def accepts(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except InclusionError:
        return False
    return True


@pytest.mark.parametrize("size", range(1, 34))
def test_verify_agrees_with_the_rfc_algorithm(size: int) -> None:
    nodes, root = built_tree(size)
    for index in range(size):
        proof = inclusion_proof(index, size, lambda level, i: nodes[level, i])
        variants = [proof, proof[:-1], [*proof, root], [*proof, root, root]]
        for claimed_size in {1, index, index + 1, size - 1, size, size + 1, 2 * size, 70} - {0}:
            for claimed_index in {0, index, index ^ 1, size - 1, size}:
                for variant in variants:
                    leaf = LEAVES[index]
                    expected = naive_verify(leaf, claimed_index, claimed_size, variant, root)
                    assert accepts(leaf, claimed_index, claimed_size, variant, root) == expected


def test_frontier_nodes_and_roots_match_naive() -> None:
    frontier = MerkleFrontier()
    seen: set[tuple[int, int]] = set()
    for size in range(1, 66):
        completed = frontier.append(LEAVES[size - 1])
        assert frontier.size == size
        assert frontier.root() == naive_mth(ENTRIES[:size])
        assert [level for level, _, _ in completed] == list(range(len(completed)))
        for level, index, value in completed:
            begin, end = index << level, (index + 1) << level
            assert end == size, "an append completes only subtrees ending at the new leaf"
            assert value == naive_mth(ENTRIES[begin:end])
            assert (level, index) not in seen
            seen.add((level, index))
    every_perfect_subtree = {(level, index) for level in range(7) for index in range(65 >> level)}
    assert seen == every_perfect_subtree


@pytest.mark.parametrize("size", range(66))
def test_frontier_state_round_trip(size: int) -> None:
    original = MerkleFrontier()
    for leaf in LEAVES[:size]:
        original.append(leaf)
    state = original.to_state()
    assert len(state) == size.bit_count()
    restored = MerkleFrontier.from_state(size, state)
    assert (restored.size, restored.root()) == (original.size, original.root())
    for leaf in LEAVES[size : size + 12]:
        assert restored.append(leaf) == original.append(leaf)
        assert restored.root() == original.root()


def test_to_state_is_a_copy() -> None:
    frontier = MerkleFrontier()
    frontier.append(LEAVES[0])
    frontier.to_state().clear()
    assert frontier.root() == LEAVES[0]


@pytest.mark.parametrize(
    ("size", "hashes", "message"),
    [
        (-1, [], "tree size -1 is negative"),
        (3, [LEAVES[0]], "a frontier of size 3 has 2 hashes, got 1"),
        (0, [LEAVES[0]], "a frontier of size 0 has 0 hashes, got 1"),
        (2, [LEAVES[0][:16]], "frontier hash has 16 bytes, expected 32"),
    ],
)
def test_from_state_rejects(size: int, hashes: list[bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MerkleFrontier.from_state(size, hashes)


def test_append_rejects_a_short_leaf_hash() -> None:
    frontier = MerkleFrontier()
    with pytest.raises(ValueError, match="leaf hash has 33 bytes"):
        frontier.append(LEAVES[0] + b"\x00")
    assert frontier.size == 0


@pytest.mark.parametrize(("index", "size"), [(-1, 4), (4, 4), (0, 0)])
def test_inclusion_proof_rejects_an_index_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="not below tree size"):
        inclusion_proof(index, size, lambda level, index: b"")


# --- Verification says what did not match. -----------------------------------------------------


def test_verify_messages() -> None:
    nodes, root = built_tree(5)
    proof = inclusion_proof(1, 5, lambda level, index: nodes[level, index])
    with pytest.raises(InclusionError, match="leaf index 5 is not below tree size 5"):
        verify_inclusion(LEAVES[1], 5, 5, proof, root)
    with pytest.raises(InclusionError, match="proof has 2 hashes, expected 3 for leaf 1"):
        verify_inclusion(LEAVES[1], 1, 5, proof[:2], root)
    with pytest.raises(InclusionError, match="proof hash 1 has 31 bytes, expected 32"):
        verify_inclusion(LEAVES[1], 1, 5, [proof[0], proof[1][:31], proof[2]], root)
    with pytest.raises(InclusionError, match="leaf hash has 0 bytes"):
        verify_inclusion(b"", 1, 5, proof, root)
    with pytest.raises(InclusionError, match="root has 33 bytes"):
        verify_inclusion(LEAVES[1], 1, 5, proof, root + b"\x00")
    with pytest.raises(InclusionError, match=f"root mismatch: .* expected {LEAVES[0].hex()}"):
        verify_inclusion(LEAVES[1], 1, 5, proof, LEAVES[0])
    assert issubclass(InclusionError, ValueError)


# --- Properties. -----------------------------------------------------------------------------


@st.composite
def leaf_in_tree(draw: st.DrawFn, min_size: int = 1) -> tuple[int, int]:
    size = draw(st.integers(min_value=min_size, max_value=300))
    return draw(st.integers(min_value=0, max_value=size - 1)), size


def proof_for(index: int, size: int) -> tuple[bytes, list[bytes], bytes]:
    nodes, root = built_tree(size)
    return nodes[0, index], inclusion_proof(index, size, lambda lv, i: nodes[lv, i]), root


@given(leaf_in_tree())
def test_every_proof_verifies(case: tuple[int, int]) -> None:
    index, size = case
    leaf, proof, root = proof_for(index, size)
    assert leaf == leaf_hash(entry(index))
    verify_inclusion(leaf, index, size, proof, root)
    assert len(proof) == len(naive_sides(index, size))


@given(leaf_in_tree(min_size=2), st.data())
def test_a_flipped_byte_in_the_proof_fails(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    leaf, proof, root = proof_for(index, size)
    which = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    proof[which] = flip(proof[which], data.draw(st.integers(0, 31)), data.draw(st.integers(1, 255)))
    with pytest.raises(InclusionError, match="root mismatch"):
        verify_inclusion(leaf, index, size, proof, root)


@given(leaf_in_tree(), st.integers(0, 31), st.integers(1, 255), st.booleans())
def test_a_flipped_byte_in_the_leaf_or_root_fails(
    case: tuple[int, int], position: int, mask: int, in_root: bool
) -> None:
    index, size = case
    leaf, proof, root = proof_for(index, size)
    if in_root:
        root = flip(root, position, mask)
    else:
        leaf = flip(leaf, position, mask)
    with pytest.raises(InclusionError, match="root mismatch"):
        verify_inclusion(leaf, index, size, proof, root)


@given(leaf_in_tree(min_size=2), st.data())
def test_a_wrong_index_fails(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    leaf, proof, root = proof_for(index, size)
    other = data.draw(st.integers(0, size + 64).filter(lambda i: i != index))
    with pytest.raises(InclusionError):
        verify_inclusion(leaf, other, size, proof, root)


@given(leaf_in_tree(), st.integers(1, 400))
def test_a_wrong_size_fails_unless_the_path_has_the_same_shape(
    case: tuple[int, int], other: int
) -> None:
    # RFC 9162 proofs do not commit to the tree size: (index, size') with the same left/right
    # pattern folds to the same root. That is why a receipt's size comes from the signed root.
    index, size = case
    leaf, proof, root = proof_for(index, size)
    if other == size:
        return
    if index < other and naive_sides(index, other) == naive_sides(index, size):
        verify_inclusion(leaf, index, other, proof, root)
    else:
        with pytest.raises(InclusionError):
            verify_inclusion(leaf, index, other, proof, root)


def test_a_size_sharing_the_path_shape_exists() -> None:
    # Leaf 0 of 3 and of 4: siblings right, right. The proof alone cannot tell them apart.
    assert naive_sides(0, 3) == naive_sides(0, 4)
    leaf, proof, root = proof_for(0, 3)
    verify_inclusion(leaf, 0, 4, proof, root)


@given(leaf_in_tree(), st.booleans())
def test_a_shortened_or_lengthened_proof_fails(case: tuple[int, int], longer: bool) -> None:
    index, size = case
    leaf, proof, root = proof_for(index, size)
    if not proof and not longer:
        return
    changed = [*proof, root] if longer else proof[:-1]
    with pytest.raises(InclusionError, match=f"proof has {len(changed)} hashes"):
        verify_inclusion(leaf, index, size, changed, root)


# --- O(log n) node reads on a big tree. -----------------------------------------------------

BIG = 2**20 + 3


class SparseTree:
    """Perfect-subtree hashes of a huge tree whose leaves are all alike except a few marked ones,
    so that any node costs at most O(log n) hashes to compute, memoized."""

    def __init__(self, size: int, marked: set[int]) -> None:
        self.size = size
        self.marked = sorted(marked)
        self.calls = 0
        self.plain = [leaf_hash(b"plain")]
        for _ in range(size.bit_length()):
            self.plain.append(node_hash(self.plain[-1], self.plain[-1]))
        self.memo: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        begin, end = index << level, (index + 1) << level
        assert begin >= 0 and end <= self.size, f"node ({level}, {index}) is outside the tree"
        position = bisect.bisect_left(self.marked, begin)
        if position == len(self.marked) or self.marked[position] >= end:
            return self.plain[level]
        if level == 0:
            return leaf_hash(b"marked" + index.to_bytes(8, "big"))
        if (level, index) not in self.memo:
            left, right = self.node(level - 1, 2 * index), self.node(level - 1, 2 * index + 1)
            self.memo[level, index] = node_hash(left, right)
        return self.memo[level, index]

    def get_node(self, level: int, index: int) -> bytes:
        self.calls += 1
        return self.node(level, index)

    def mth(self, begin: int, end: int) -> bytes:
        """MTH of leaves [begin, end) by the RFC's recursion down to perfect subtrees."""
        count = end - begin
        if count & (count - 1) == 0:
            level = count.bit_length() - 1
            return self.node(level, begin >> level)
        k = _split(count)
        return node_hash(self.mth(begin, begin + k), self.mth(begin + k, end))


@pytest.mark.parametrize("index", [0, 1, 2**19, 777_777, 2**20 - 1, 2**20, 2**20 + 2])
def test_proof_on_a_big_tree_reads_few_nodes(index: int) -> None:
    tree = SparseTree(BIG, {0, index, 2**19 + 5, 999_999, BIG - 1})
    proof = inclusion_proof(index, BIG, tree.get_node)
    assert tree.calls <= 2 * (BIG - 1).bit_length()  # 42 for 2**20 + 3 leaves
    assert len(proof) == len(naive_sides(index, BIG))
    verify_inclusion(tree.node(0, index), index, BIG, proof, tree.mth(0, BIG))


# --- The shared vectors file. ------------------------------------------------------------------


def load_generator() -> Callable[[], str]:
    spec = importlib.util.spec_from_file_location(
        "generate_merkle", VECTORS_DIR / "generate_merkle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render: Callable[[], str] = module.render
    return render


def test_vectors_file_is_reproduced_byte_for_byte() -> None:
    on_disk = (VECTORS_DIR / "merkle.json").read_bytes()
    assert load_generator()().encode("utf-8") == on_disk


def test_vectors_file_verifies_against_the_naive_tree() -> None:
    vectors = json.loads((VECTORS_DIR / "merkle.json").read_text(encoding="utf-8"))
    trees = vectors["trees"]
    assert [tree["tree_size"] for tree in trees] == [1, 2, 3, 5, 8, 13, 100]
    for tree in trees:
        size = tree["tree_size"]
        entries = [entry(i) for i in range(size)]
        root = bytes.fromhex(tree["root"])
        assert root == naive_mth(entries)
        assert {item["seqno"] for item in tree["entries"]} >= {0, size - 1}
        for item in tree["entries"]:
            seqno = item["seqno"]
            data = leaf_input(seqno, bytes.fromhex(item["txid"]), bytes.fromhex(item["digest"]))
            assert data.hex() == item["leaf_input"] == entries[seqno].hex()
            assert leaf_hash(data).hex() == item["leaf_hash"]
            proof = [bytes.fromhex(value) for value in item["proof"]]
            assert proof == naive_path(seqno, entries)
            verify_inclusion(leaf_hash(data), seqno, size, proof, root)
