"""A cluster node's sequencer role: it serves a consortium only while it holds its lease.

Several TEP nodes share one PostgreSQL store (``Platform.open(..., store=URL, node=ID)``).
For each consortium one node is the sequencer: the holder of its lease
(:mod:`consortia.ledger.lease`). Before a node reads or commits for a consortium, it
holds the lease: renews it when half of it has run, takes it when it is free or expired,
and otherwise refuses with ``unavailable`` (the request belongs at the current sequencer).
Taking a lease, with its new epoch, fences the store's commits for that consortium and
makes the platform reload the consortium from the store, since another node may have
committed since this one last served it. A node that finds its lease taken over steps
down: it forgets the consortium's cached state and the lease, and refuses until it can
take the lease again.

Serving reads only at the sequencer keeps every cache coherent. A node that is not the
sequencer refuses with :class:`ServedElsewhere`, which names the holder and the URL it
advertised; the HTTP server forwards the request there (:mod:`consortia.server._forward`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING

from consortia.errors import Unavailable
from consortia.ledger.lease import Fenced, Holder, Lease, LiveNode

if TYPE_CHECKING:  # annotations only: the PostgreSQL driver loads with the store
    from consortia.ledger.postgres import PostgresStore

__all__ = ["DEFAULT_LEASE_S", "SequencerRole", "ServedElsewhere"]

log = logging.getLogger("consortia.engine")

#: Seconds a lease lasts; a node renews it when half has run.
DEFAULT_LEASE_S = 10.0


class ServedElsewhere(Unavailable):
    """Another node of the cluster is this consortium's sequencer: send the request to it
    (``url``, empty when it advertised none)."""

    def __init__(self, message: str, *, node: str, url: str, txid: str | None = None) -> None:
        super().__init__(message, txid=txid)
        self.node = node
        self.url = url


def _rank(cid: str, node: str) -> bytes:
    """Rendezvous hashing: the node with the highest rank for a consortium sequences it."""
    return hashlib.sha256(f"{cid}\x00{node}".encode()).digest()


def _served_elsewhere(cid: str, node: str, url: str, why: str) -> ServedElsewhere:
    return ServedElsewhere(
        f"consortium {cid!r} is served by node {node!r} of this cluster ({why}); send the "
        "request to that node, or retry here",
        node=node,
        url=url,
    )


def _held_elsewhere(cid: str, found: Holder) -> ServedElsewhere:
    return _served_elsewhere(cid, found.node, found.url, "its sequencer holds the lease")


class SequencerRole:
    """The leases one node holds, and what it does to keep or lose them."""

    def __init__(self, store: PostgresStore, *, ttl_s: float = DEFAULT_LEASE_S) -> None:
        if store.node is None:
            raise ValueError("a sequencer role needs a cluster node's store (node=ID)")
        self.store = store
        self.node = store.node
        self.ttl_s = ttl_s
        #: Consortium id -> (lease, local monotonic time by which to renew it).
        self._held: dict[str, tuple[Lease, float]] = {}
        #: Consortium id -> (another node's holder row, local time until which to believe it).
        self._elsewhere: dict[str, tuple[Holder, float]] = {}
        #: The nodes alive at the last heartbeat, and the local time of the next one.
        self._live: list[LiveNode] = []
        self._beat_by = 0.0

    # -- spreading the consortia over the live nodes ------------------------------------------

    def heartbeat(self) -> list[LiveNode]:
        """Say this node is alive and learn which others are (every half lease: the
        server calls it on a timer, and :meth:`hold` when it is due)."""
        self._live = self.store.heartbeat(self.ttl_s)
        self._beat_by = time.monotonic() + self.ttl_s / 2
        return self._live

    def preferred(self, cid: str) -> LiveNode | None:
        """The live node that should sequence ``cid`` (rendezvous hashing over the live
        nodes: each consortium has its own order of the nodes, so the consortia spread
        evenly and a node's loss moves only its own); None when no heartbeat is known."""
        if time.monotonic() >= self._beat_by:
            try:
                self.heartbeat()
            except Unavailable:
                return None  # no view of the cluster now: take what comes, as before
        if not self._live:
            return None
        return max(self._live, key=lambda n: _rank(cid, n.node))

    def _defer_to(self, cid: str) -> LiveNode | None:
        """Another live node that should take ``cid``'s free lease, if any."""
        best = self.preferred(cid)
        if best is None or best.node == self.node or not best.url:
            return None
        return best

    def _hand_over_to(self, cid: str) -> LiveNode | None:
        """While holding ``cid``: the preferred node to give it to, once that node has been
        alive for a whole lease (so a node that flaps does not pull consortia back and
        forth)."""
        best = self._defer_to(cid)
        if best is None or best.alive_s < self.ttl_s:
            return None
        return best

    # -- the lease ----------------------------------------------------------------------------

    def hold(self, cid: str, *, spread: bool = True) -> bool:
        """Make sure this node holds ``cid``'s lease; True when it was (re)taken with a new
        epoch, so the consortium must be read again from the store. Raises ``unavailable``
        while another node is its sequencer, and (``spread``) while the lease is free but
        another live node should take it (:meth:`preferred`)."""
        held = self._held.get(cid)
        if held is not None:
            lease, renew_by = held
            if time.monotonic() < renew_by:
                return False
            try:
                lease = self.store.renew_lease(lease, self.ttl_s)
            except Fenced:
                self.step_down(cid)
            else:
                successor = self._hand_over_to(cid)
                if successor is None:
                    self._keep(lease)
                    return False
                # Between two batches (the caller holds the consortium's lock): nothing of
                # this node's is in flight for it.
                self.store.release_lease(lease)
                self._held.pop(cid, None)
                log.info("node %r hands consortium %r over to %r", self.node, cid, successor.node)
                raise _served_elsewhere(cid, successor.node, successor.url, "handed over to it")
        known = self._elsewhere.get(cid)
        if known is not None and time.monotonic() < known[1]:
            raise _held_elsewhere(cid, known[0])
        self._refuse_if_held_elsewhere(cid)
        successor = self._defer_to(cid) if spread else None
        if successor is not None:
            raise _served_elsewhere(
                cid, successor.node, successor.url, "the consortia are spread over the live nodes"
            )
        taken = self.store.acquire_lease(cid, self.ttl_s)
        if taken is None:
            self._refuse_if_held_elsewhere(cid)  # another node took it in between
            # Released or expired in between: the next request tries to take it again.
            raise Unavailable(
                f"the sequencer lease of consortium {cid!r} is changing hands; retry with the "
                "same request"
            )
        self._elsewhere.pop(cid, None)
        self.store.fence(taken, self.ttl_s)
        self._keep(taken)
        return True

    def _refuse_if_held_elsewhere(self, cid: str) -> None:
        """Raise :class:`ServedElsewhere` while another node holds ``cid``'s live lease
        (remembered for a moment only: the holder may hand the consortium over early)."""
        found = self.store.lease_holder(cid)
        if found is not None and found.node != self.node and found.live:
            until = time.monotonic() + min(found.remaining_s, self.ttl_s / 4)
            self._elsewhere[cid] = (found, until)
            raise _held_elsewhere(cid, found)

    def step_down(self, cid: str) -> None:
        """Forget ``cid``'s lease (it was taken over): serve it no more until retaken."""
        if self._held.pop(cid, None) is not None:
            log.warning(
                "node %r lost the sequencer lease of consortium %r to another node; it steps "
                "down and passes the consortium's requests on",
                self.node,
                cid,
            )

    def _keep(self, lease: Lease) -> None:
        self._held[lease.cid] = (lease, time.monotonic() + self.ttl_s / 2)
