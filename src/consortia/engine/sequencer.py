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

Serving reads only at the sequencer keeps every cache coherent; forwarding requests to the
sequencer, and reads at the other nodes, are later steps.
"""

from __future__ import annotations

import time

from consortia.errors import Unavailable
from consortia.ledger.lease import Fenced, Lease
from consortia.ledger.postgres import PostgresStore

__all__ = ["DEFAULT_LEASE_S", "SequencerRole"]

#: Seconds a lease lasts; a node renews it when half has run.
DEFAULT_LEASE_S = 10.0


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

    def hold(self, cid: str) -> bool:
        """Make sure this node holds ``cid``'s lease; True when it was (re)taken with a new
        epoch, so the consortium must be read again from the store. Raises ``unavailable``
        while another node is its sequencer."""
        held = self._held.get(cid)
        if held is not None:
            lease, renew_by = held
            if time.monotonic() < renew_by:
                return False
            try:
                self._keep(self.store.renew_lease(lease, self.ttl_s))
                return False
            except Fenced:
                self.step_down(cid)
        taken = self.store.acquire_lease(cid, self.ttl_s)
        if taken is None:
            raise Unavailable(
                f"consortium {cid!r} is served by another node of this cluster (its "
                "sequencer holds the lease); send the request to that node, or retry here "
                "once its lease has expired"
            )
        self.store.fence(taken)
        self._keep(taken)
        return True

    def step_down(self, cid: str) -> None:
        """Forget ``cid``'s lease (it was taken over): serve it no more until retaken."""
        self._held.pop(cid, None)

    def _keep(self, lease: Lease) -> None:
        self._held[lease.cid] = (lease, time.monotonic() + self.ttl_s / 2)
