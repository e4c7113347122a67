"""The ledger's Merkle tree: tree hash, inclusion proofs and the append-only frontier.

Implements RFC 9162 §2.1 (the tree of Certificate Transparency, same as RFC 6962): the tree
hash MTH of §2.1.1, inclusion proofs of §2.1.3.1 and their verification of §2.1.3.2, with the
leaf layout of PROTOCOL.md §6. Pure functions: no I/O, no clock.

A perfect subtree is named ``(level, index)``: the 2**level leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 is a single leaf. A store keeps these
nodes (``MerkleFrontier.append`` hands them out) and serves them back as ``get_node``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
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
]

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
SEQNO_BYTES = 8
TXID_BYTES = 32
DIGEST_BYTES = 32
HASH_BYTES = 32
LEAF_INPUT_BYTES = SEQNO_BYTES + TXID_BYTES + DIGEST_BYTES
EMPTY_ROOT = hashlib.sha256(b"").digest()

GetNode = Callable[[int, int], bytes]


class InclusionError(ValueError):
    """An inclusion proof does not prove that leaf at that index under that root."""


def leaf_input(seqno: int, txid: bytes, digest: bytes) -> bytes:
    """The leaf of PROTOCOL.md §6: seqno (8 bytes, big-endian) ‖ txid ‖ digest."""
    if not 0 <= seqno < 1 << (8 * SEQNO_BYTES):
        raise ValueError(f"seqno {seqno} does not fit in {SEQNO_BYTES} unsigned bytes")
    if len(txid) != TXID_BYTES:
        raise ValueError(f"txid has {len(txid)} bytes, expected {TXID_BYTES}")
    if len(digest) != DIGEST_BYTES:
        raise ValueError(f"digest has {len(digest)} bytes, expected {DIGEST_BYTES}")
    return seqno.to_bytes(SEQNO_BYTES, "big") + txid + digest


def leaf_hash(leaf_input: bytes) -> bytes:
    """SHA-256(0x00 ‖ leaf_input), the hash of a one-leaf tree (RFC 9162 §2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right), an interior node (RFC 9162 §2.1.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes, computed level by level (the reference, O(n))."""
    level = list(leaf_hashes)
    for value in level:
        _check_hash("leaf hash", value, ValueError)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        # Carrying an odd last node up unchanged splits exactly where RFC 9162 does: at the
        # largest power of two below the size, so the tree stays left-balanced.
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + level[len(level) - len(level) % 2 :]
    return level[0]


def inclusion_proof(index: int, tree_size: int, get_node: GetNode) -> list[bytes]:
    """PATH(index, D[tree_size]) of RFC 9162 §2.1.3.1, sibling hashes from the leaf upwards.

    ``get_node(level, i)`` returns the hash of a perfect subtree. It is called at most
    ``2 * (tree_size - 1).bit_length()`` times: once per proof hash, except for the one
    right-hand sibling that may be incomplete, whose hash is folded from the perfect
    subtrees that tile it (fewer than that sibling's height).
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is not below tree size {tree_size}")
    # Below level `inner` the paths to `index` and to the last leaf are apart, so every level
    # has a sibling (only the topmost one may be incomplete). From `inner` up both paths run
    # together along the right border, with a (left) sibling only where `index` has a one bit.
    inner = (index ^ (tree_size - 1)).bit_length()
    proof = []
    for level in range(inner):
        sibling = (index >> level) ^ 1
        if (sibling + 1) << level <= tree_size:
            proof.append(get_node(level, sibling))
        else:
            proof.append(_partial_root(sibling << level, tree_size, get_node))
    for level in range(inner, index.bit_length()):
        if (index >> level) & 1:
            proof.append(get_node(level, (index >> level) ^ 1))
    return proof


def root_from_proof(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes:
    """Fold an inclusion proof up to the root it implies (RFC 9162 §2.1.3.2, steps 1-4).

    Raises InclusionError if the index, the hash lengths or the proof length cannot fit.
    """
    if not 0 <= index < tree_size:
        raise InclusionError(f"leaf index {index} is not below tree size {tree_size}")
    _check_hash("leaf hash", leaf_hash, InclusionError)
    for position, value in enumerate(proof):
        _check_hash(f"proof hash {position}", value, InclusionError)
    expected = _proof_length(index, tree_size)
    if len(proof) != expected:
        raise InclusionError(
            f"proof has {len(proof)} hashes, expected {expected} for leaf {index} "
            f"of a tree of size {tree_size}"
        )
    # The RFC's loop without its `sn == 0` tests (steps 4a and 5): the length check makes them
    # redundant. Once fn == sn the path runs along the right border, where every sibling is on
    # the left, so the RFC's extra shifting there would only feed those tests.
    fn, sn = index, tree_size - 1
    result = leaf_hash
    for sibling in proof:
        on_the_left = fn & 1 == 1 or fn == sn
        result = node_hash(sibling, result) if on_the_left else node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return result


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` puts ``leaf_hash`` at ``index`` of the tree with ``root``.

    Raises InclusionError saying what did not match; returns None on success. The proof does
    not bind ``tree_size`` on its own: the caller must take it from the signed root.
    """
    _check_hash("root", root, InclusionError)
    computed = root_from_proof(leaf_hash, index, tree_size, proof)
    if computed != root:
        raise InclusionError(
            f"root mismatch: the proof for leaf {index} of a tree of size {tree_size} "
            f"leads to {computed.hex()}, expected {root.hex()}"
        )


class MerkleFrontier:
    """The compact range [0, size) of an append-only tree: one perfect subtree per one bit
    of ``size``, largest (leftmost) first. Appending is O(log n); so is the root."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_state(cls, size: int, hashes: Sequence[bytes]) -> MerkleFrontier:
        """Restore a frontier saved with ``to_state`` at ``size`` leaves."""
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a frontier of size {size} has {size.bit_count()} hashes, got {len(hashes)}"
            )
        for value in hashes:
            _check_hash("frontier hash", value, ValueError)
        frontier = cls()
        frontier._size = size
        frontier._hashes = list(hashes)
        return frontier

    @classmethod
    def restore(cls, size: int, get_node: GetNode) -> MerkleFrontier:
        """The frontier of a stored tree of ``size`` leaves, from ``size.bit_count()`` nodes.

        ``get_node(level, index)`` serves the perfect subtrees that ``append`` handed out;
        no leaf before the last subtree is read again.
        """
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        hashes = []
        begin = 0
        for level in reversed(range(size.bit_length())):
            if (size >> level) & 1:
                hashes.append(get_node(level, begin >> level))
                begin += 1 << level
        return cls.from_state(size, hashes)

    def copy(self) -> MerkleFrontier:
        """An independent frontier at the same size (appending to one leaves the other)."""
        return MerkleFrontier.from_state(self._size, self._hashes)

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def to_state(self) -> list[bytes]:
        """The frontier's hashes, largest subtree first, for ``from_state``."""
        return list(self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; return the ``(level, index, hash)`` subtrees it completes, leaf first."""
        _check_hash("leaf hash", leaf_hash, ValueError)
        index = self._size
        node = leaf_hash
        completed = [(0, index, node)]
        level = 0
        # A one bit of the old size at this level means a complete left sibling waits on top
        # of the frontier: merge with it and climb.
        while (index >> level) & 1:
            node = node_hash(self._hashes.pop(), node)
            level += 1
            completed.append((level, index >> level, node))
        self._hashes.append(node)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """MTH of the tree so far (the empty tree's root if no leaf was appended)."""
        return _fold_right(self._hashes) if self._hashes else EMPTY_ROOT


def perfect_subtree_count(tree_size: int) -> int:
    """How many perfect subtrees (leaves included) a tree of ``tree_size`` leaves has.

    That is how many nodes ``append`` hands out in total: ``tree_size >> level`` at each level.
    """
    if tree_size < 0:
        raise ValueError(f"tree size {tree_size} is negative")
    return 2 * tree_size - tree_size.bit_count()


def _proof_length(index: int, tree_size: int) -> int:
    inner = (index ^ (tree_size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _partial_root(begin: int, end: int, get_node: GetNode) -> bytes:
    """MTH of leaves [begin, end), ``begin`` aligned above end - begin, from perfect subtrees."""
    tiles = []
    count = end - begin
    for level in reversed(range(count.bit_length())):
        if (count >> level) & 1:
            tiles.append(get_node(level, begin >> level))
            begin += 1 << level
    return _fold_right(tiles)


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Join perfect subtrees of decreasing size, right to left, as MTH splits them."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _check_hash(name: str, value: bytes, error: type[ValueError]) -> None:
    if len(value) != HASH_BYTES:
        raise error(f"{name} has {len(value)} bytes, expected {HASH_BYTES}")
