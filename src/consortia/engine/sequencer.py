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

import logging
import time
from typing import TYPE_CHECKING

from consortia.errors import Unavailable
from consortia.ledger.lease import Fenced, Holder, Lease

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
        #: Consortium id -> (another node's holder row, local time until which it holds).
        self._elsewhere: dict[str, tuple[Holder, float]] = {}

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
        known = self._elsewhere.get(cid)
        if known is not None and time.monotonic() < known[1]:
            raise self._elsewhere_error(cid, known[0])
        taken = self.store.acquire_lease(cid, self.ttl_s)
        if taken is None:
            found = self.store.lease_holder(cid)
            if found is None or found.node == self.node or not found.live:
                # Released or expired in between: the next request tries to take it again.
                raise Unavailable(
                    f"the sequencer lease of consortium {cid!r} is changing hands; retry "
                    "with the same request"
                )
            # No node can take the lease before it expires: no need to ask again until then.
            self._elsewhere[cid] = (found, time.monotonic() + found.remaining_s)
            raise self._elsewhere_error(cid, found)
        self._elsewhere.pop(cid, None)
        self.store.fence(taken)
        self._keep(taken)
        return True

    @staticmethod
    def _elsewhere_error(cid: str, found: Holder) -> ServedElsewhere:
        return ServedElsewhere(
            f"consortium {cid!r} is served by node {found.node!r} of this cluster (its "
            "sequencer holds the lease); send the request to that node, or retry here once "
            "its lease has expired",
            node=found.node,
            url=found.url,
        )

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
