"""Sequencer leases and fencing in PostgreSQL: one node commits for a consortium at a time.

In a cluster every consortium has one sequencer: the node holding its lease, a row of
``sequencer_leases`` (consortium id, holder, epoch, expiry, and the URL at which the holder
takes requests, so the other nodes can forward to it). A node takes an expired (or
never held) lease with the next epoch; the holder renews it before it expires. Every commit
of a fenced store first reads the lease row ``FOR SHARE`` inside the commit's own
transaction and goes on only if the epoch is still the one it was fenced with. So a node
that was paused or cut off past its lease, while another took over, can never commit after
it: a takeover raises the epoch, and a takeover waits for a commit in flight to finish
(the share lock), never the other way round.

Expiry runs on the database's clock (``clock_timestamp()``), not on the nodes': a node
whose clock is off cannot stretch its lease. Holder names and URLs are node ids and
addresses, not secrets; a node that forwards to a URL read here still checks that the
server it reaches holds the cluster's TLS identity (:mod:`consortia.server._forward`), so a
changed row can misdirect a request but not read or answer it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consortia.errors import Unavailable

if TYPE_CHECKING:  # annotations only: importing this module needs no PostgreSQL driver
    import psycopg

__all__ = [
    "LEASE_MIGRATION",
    "LEASE_SCHEMA",
    "NODES_SCHEMA",
    "Fenced",
    "Holder",
    "Lease",
    "LiveNode",
    "acquire",
    "break_stalled",
    "check_fence",
    "heartbeat",
    "holder",
    "node_session_name",
    "release",
    "renew",
]

#: The lease table (created with the store's schema).
LEASE_SCHEMA = """CREATE TABLE IF NOT EXISTS sequencer_leases (
    cid TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL, url TEXT NOT NULL DEFAULT '')"""
#: Brings a lease table made before the ``url`` column up to date (run at every open).
LEASE_MIGRATION = (
    "ALTER TABLE sequencer_leases ADD COLUMN IF NOT EXISTS url TEXT NOT NULL DEFAULT ''"
)

#: The nodes of a cluster as they last said they are alive (made at every open).
NODES_SCHEMA = """CREATE TABLE IF NOT EXISTS cluster_nodes (
    node TEXT PRIMARY KEY, url TEXT NOT NULL, since DOUBLE PRECISION NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL)"""

# A node alive again after a silence longer than %s (its last ``ttl``) starts a new ``since``.
_HEARTBEAT = """INSERT INTO cluster_nodes AS n (node, url, since, seen_at)
    VALUES (%s, %s, extract(epoch from clock_timestamp()), extract(epoch from clock_timestamp()))
    ON CONFLICT (node) DO UPDATE SET url = EXCLUDED.url, seen_at = EXCLUDED.seen_at,
        since = CASE WHEN n.seen_at < EXCLUDED.seen_at - %s THEN EXCLUDED.seen_at
            ELSE n.since END"""

_LIVE = """SELECT node, url, extract(epoch from clock_timestamp()) - since FROM cluster_nodes
    WHERE seen_at > extract(epoch from clock_timestamp()) - %s ORDER BY node"""

_RELEASE = """UPDATE sequencer_leases SET expires_at = extract(epoch from clock_timestamp()) - 0.001
    WHERE cid = %s AND holder = %s AND epoch = %s"""

# Times are the database's: extract(epoch from clock_timestamp()), in seconds.
_ACQUIRE = """INSERT INTO sequencer_leases AS l (cid, holder, epoch, expires_at, url)
    VALUES (%s, %s, 1, extract(epoch from clock_timestamp()) + %s, %s)
    ON CONFLICT (cid) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1,
        expires_at = EXCLUDED.expires_at, url = EXCLUDED.url
    WHERE l.expires_at < extract(epoch from clock_timestamp())
    RETURNING epoch, expires_at"""

_RENEW = """UPDATE sequencer_leases SET expires_at = extract(epoch from clock_timestamp()) + %s
    WHERE cid = %s AND holder = %s AND epoch = %s RETURNING expires_at"""

# Taking or renewing a lease waits this long at most for the lease row: a holder paused in
# the middle of a commit holds its share lock until the server aborts that session (see
# PostgresStore.fence), and a node must not wait for that with its store locked.
_LOCK_WAIT = "SET LOCAL lock_timeout = '1s'"

# The sessions, in transactions, of the holder of an expired lease (not this session).
_STALLED = """SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a, sequencer_leases l
    WHERE l.cid = %s AND l.expires_at < extract(epoch from clock_timestamp())
        AND a.application_name = 'consortia-node:' || l.holder
        AND a.datname = current_database() AND a.xact_start IS NOT NULL
        AND a.pid <> pg_backend_pid()"""

_CHECK = "SELECT epoch, holder FROM sequencer_leases WHERE cid = %s FOR SHARE"

_HOLDER = """SELECT holder, url, epoch, expires_at - extract(epoch from clock_timestamp())
    FROM sequencer_leases WHERE cid = %s"""


class Fenced(Unavailable):
    """This node's lease was taken over (a higher epoch): it must not commit; retry at the
    consortium's current sequencer."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A node's hold on one consortium's sequencer role, valid until ``expires_at``
    (seconds, the database's clock)."""

    cid: str
    holder: str
    epoch: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a consortium's lease as last read: its node id, the URL it takes requests
    at ('' if it gave none), the epoch, and the seconds left (negative once expired)."""

    node: str
    url: str
    epoch: int
    remaining_s: float

    @property
    def live(self) -> bool:
        """Whether the lease had not expired when read."""
        return self.remaining_s > 0


@dataclass(frozen=True, slots=True)
class LiveNode:
    """A node that said it is alive within the last lease: its id, its URL, and for how
    many seconds it has been alive without a break."""

    node: str
    url: str
    alive_s: float


def _ttl(seconds: float) -> float:
    if not 0 < seconds <= 3600:
        raise ValueError(f"a lease lasts more than 0 and at most 3600 s, not {seconds}")
    return float(seconds)


def acquire(
    db: psycopg.Connection[tuple[Any, ...]], cid: str, holder: str, ttl_s: float, url: str = ""
) -> Lease | None:
    """Take ``cid``'s lease for ``holder`` (reachable at ``url``) with the next epoch, if
    nobody holds it now; None while another (or this) holder's lease has not expired
    (renew it instead)."""
    with db.transaction():
        db.execute(_LOCK_WAIT)
        row = db.execute(_ACQUIRE, (cid, holder, _ttl(ttl_s), url)).fetchone()
    if row is None:
        return None
    return Lease(cid, holder, int(row[0]), float(row[1]))


def renew(db: psycopg.Connection[tuple[Any, ...]], lease: Lease, ttl_s: float) -> Lease:
    """Extend ``lease`` (same epoch); :class:`Fenced` when another node has taken over."""
    with db.transaction():
        db.execute(_LOCK_WAIT)
        row = db.execute(_RENEW, (_ttl(ttl_s), lease.cid, lease.holder, lease.epoch)).fetchone()
    if row is None:
        raise Fenced(
            f"the sequencer lease of consortium {lease.cid!r} (epoch {lease.epoch}) was taken "
            "over by another node; this node must stop committing for it"
        )
    return Lease(lease.cid, lease.holder, lease.epoch, float(row[0]))


def check_fence(cur: psycopg.Cursor[tuple[Any, ...]], cid: str, epoch: int) -> None:
    """Inside a commit's transaction: go on only if ``epoch`` still holds ``cid``'s lease
    (the row stays share-locked, so no takeover completes before this commit does)."""
    row = cur.execute(_CHECK, (cid,)).fetchone()
    if row is None or int(row[0]) != epoch:
        now = "no lease" if row is None else f"epoch {row[0]} held by {row[1]!r}"
        raise Fenced(
            f"commit refused by the fence: this node commits for consortium {cid!r} under "
            f"epoch {epoch}, but the lease is now {now}; nothing was written"
        )


def holder(db: psycopg.Connection[tuple[Any, ...]], cid: str) -> Holder | None:
    """Who holds (or last held) ``cid``'s lease; None if it never had one."""
    row = db.execute(_HOLDER, (cid,)).fetchone()
    if row is None:
        return None
    return Holder(str(row[0]), str(row[1]), int(row[2]), float(row[3]))


def heartbeat(
    db: psycopg.Connection[tuple[Any, ...]], node: str, url: str, ttl_s: float
) -> list[LiveNode]:
    """Say ``node`` (at ``url``) is alive; the nodes alive within the last ``ttl_s``."""
    ttl = _ttl(ttl_s)
    with db.transaction():
        db.execute(_HEARTBEAT, (node, url, ttl))
        rows = db.execute(_LIVE, (ttl,)).fetchall()
    return [LiveNode(str(r[0]), str(r[1]), float(r[2])) for r in rows]


def release(db: psycopg.Connection[tuple[Any, ...]], lease: Lease) -> None:
    """Give ``lease`` up at once (it expires now), so that another node may take it."""
    with db.transaction():
        db.execute(_RELEASE, (lease.cid, lease.holder, lease.epoch))


def node_session_name(node: str) -> str:
    """The ``application_name`` of a cluster node's database sessions."""
    return f"consortia-node:{node}"


def break_stalled(db: psycopg.Connection[tuple[Any, ...]], cid: str) -> bool:
    """End the transactions of ``cid``'s expired holder (a node paused in the middle of a
    commit keeps the lease row locked while its session waits for it); True if one was.

    Safe because the lease expired: the holder may not commit for it any more without
    renewing, which its own lost session makes it do on a new one, where the fence decides.
    """
    rows = db.execute(_STALLED, (cid,)).fetchall()
    return any(bool(r[0]) for r in rows)
