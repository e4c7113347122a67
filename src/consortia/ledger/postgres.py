"""The PostgreSQL store: the same :class:`~consortia.ledger.store.AuditStore` on a server.

A second implementation of the interface :class:`~consortia.ledger.sqlite.SQLiteStore`
implements, with the same rule: the server sees only opaque encrypted blobs, keyed hashes,
sequence numbers, txids and digests (BYTEA and BIGINT columns, and TEXT for the consortium
id, txids and the signed-root JWS, as in SQLite).

Durability: :meth:`PostgresStore.commit` writes one batch (a group commit) in one
transaction and returns only after PostgreSQL reports the COMMIT done. The session runs
with ``synchronous_commit`` on (it is switched on when the server default is ``off``), so a
returned commit is flushed to the server's WAL; the server itself must run with
``fsync=on``. A failed commit raises :class:`~consortia.errors.Unavailable` and leaves
nothing: the transaction is rolled back, or never committed when the connection died.

Thread-safety: **one connection guarded by one re-entrant lock**, like the SQLite store.
The engine calls the store from one lane per consortium; each call (a read, or a whole
commit) holds the lock, so transactions never interleave on the connection. This
serialises storage calls of different consortia, as SQLite does; a pool is a later step.
A broken connection (the server restarted, a network cut) is replaced on the next call;
the call that saw it fails with ``Unavailable``.

The connection string is passed to libpq unchanged (a URL or ``key=value`` string, with
several hosts and ``target_session_attrs`` if wanted). Every value goes to the server as a
query parameter; table names come from fixed identifiers (:mod:`psycopg.sql`).

The schema is created if absent (``CREATE TABLE IF NOT EXISTS``, under an advisory lock so
two processes starting at once do not race) with one row in ``store_schema`` giving its
version; a database holding another version, or tables of ours without a version, is
refused, as the SQLite store refuses such a file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from consortia.errors import Unavailable
from consortia.ledger._sql_reads import CID_TABLES, SqlReads
from consortia.ledger._sqlite_rows import (
    SCHEMA_VERSION,
    blob,
    integer,
    text,
)
from consortia.ledger.lease import (
    LEASE_MIGRATION,
    LEASE_SCHEMA,
    NODES_SCHEMA,
    Fenced,
    Holder,
    Lease,
    LiveNode,
    acquire,
    break_stalled,
    check_fence,
    heartbeat,
    holder,
    node_session_name,
    release,
    renew,
)
from consortia.ledger.store import (
    CommitBatch,
    ConsortiumRow,
    NameRow,
    ProposalRow,
)

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

_Row = TypeVar("_Row")
_PAGE = 1000
#: pg_advisory_xact_lock key serialising schema creation (any fixed 64-bit number).
_SCHEMA_LOCK = 0x436F6E736F727469  # "Consorti"
#: Looking up the outcome of a COMMIT whose connection was lost: tries, and seconds between.
_OUTCOME_TRIES = 20
_OUTCOME_WAIT = 0.25
#: A cluster node session's longest pause inside a transaction, or statement, before the
#: server aborts it (at most; a shorter lease shortens it, see PostgresStore.fence).
_IDLE_LIMIT_MS = 5000

_CID_TABLES = CID_TABLES
#: ``sequencer_leases`` (consortia.ledger.lease) is a cluster's, not a consortium's data.
_TABLES = ("store_schema", "meta", *_CID_TABLES, "sequencer_leases")

# The statements of the schema, run in order; the same tables and keys as the SQLite
# schema (consortia.ledger._sqlite_rows.SCHEMA), in PostgreSQL's types.
_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS store_schema (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        version INTEGER NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL)",
    """CREATE TABLE IF NOT EXISTS consortia (
        cid TEXT PRIMARY KEY, keyring BYTEA NOT NULL, info BYTEA NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS transactions (
        cid TEXT NOT NULL, seqno BIGINT NOT NULL, txid TEXT NOT NULL,
        digest BYTEA NOT NULL, blob BYTEA NOT NULL,
        PRIMARY KEY (cid, seqno))""",
    "CREATE UNIQUE INDEX IF NOT EXISTS transactions_txid ON transactions (cid, txid)",
    """CREATE TABLE IF NOT EXISTS merkle_nodes (
        cid TEXT NOT NULL, level INTEGER NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL,
        PRIMARY KEY (cid, level, idx))""",
    """CREATE TABLE IF NOT EXISTS signed_roots (
        cid TEXT NOT NULL, tree_size BIGINT NOT NULL, previous BIGINT NOT NULL,
        jws TEXT NOT NULL, mac BYTEA NOT NULL,
        PRIMARY KEY (cid, tree_size))""",
    """CREATE TABLE IF NOT EXISTS versions (
        cid TEXT NOT NULL, name_hash BYTEA NOT NULL, seqno BIGINT NOT NULL,
        txid TEXT NOT NULL, blob BYTEA NOT NULL,
        PRIMARY KEY (cid, name_hash, seqno))""",
    """CREATE TABLE IF NOT EXISTS names (
        cid TEXT NOT NULL, name_hash BYTEA NOT NULL, parent_hash BYTEA NOT NULL,
        alive BOOLEAN NOT NULL, blob BYTEA NOT NULL,
        PRIMARY KEY (cid, name_hash))""",
    "CREATE INDEX IF NOT EXISTS names_parent ON names (cid, parent_hash) WHERE alive",
    """CREATE TABLE IF NOT EXISTS nonces (
        cid TEXT NOT NULL, nonce_hash BYTEA NOT NULL, txid TEXT NOT NULL,
        PRIMARY KEY (cid, nonce_hash))""",
    """CREATE TABLE IF NOT EXISTS notifications (
        cid TEXT NOT NULL, member_hash BYTEA NOT NULL, nid BIGINT NOT NULL,
        blob BYTEA NOT NULL,
        PRIMARY KEY (cid, member_hash, nid))""",
    """CREATE TABLE IF NOT EXISTS proposals (
        cid TEXT NOT NULL, pid_hash BYTEA NOT NULL, is_open BOOLEAN NOT NULL,
        blob BYTEA NOT NULL,
        PRIMARY KEY (cid, pid_hash))""",
    "CREATE INDEX IF NOT EXISTS proposals_open ON proposals (cid) WHERE is_open",
    LEASE_SCHEMA,
)

_TX_SELECT = (
    "SELECT t.seqno, t.txid, t.digest, n.hash, t.blob FROM transactions t "
    "JOIN merkle_nodes n ON n.cid = t.cid AND n.level = 0 AND n.idx = t.seqno WHERE "
)

_INSERTS: dict[str, str] = {
    "consortium": "INSERT INTO consortia (cid, keyring, info) VALUES (%s, %s, %s)",
    "keyring": "UPDATE consortia SET keyring = %s WHERE cid = %s",
    "txs": "INSERT INTO transactions (cid, seqno, txid, digest, blob) VALUES (%s, %s, %s, %s, %s)",
    "nodes": "INSERT INTO merkle_nodes (cid, level, idx, hash) VALUES (%s, %s, %s, %s)",
    "signed_root": (
        "INSERT INTO signed_roots (cid, tree_size, previous, jws, mac) VALUES (%s, %s, %s, %s, %s)"
    ),
    "versions": (
        "INSERT INTO versions (cid, name_hash, seqno, txid, blob) VALUES (%s, %s, %s, %s, %s)"
    ),
    "names": (
        "INSERT INTO names (cid, name_hash, parent_hash, alive, blob) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (cid, name_hash) DO UPDATE SET parent_hash = EXCLUDED.parent_hash, "
        "alive = EXCLUDED.alive, blob = EXCLUDED.blob"
    ),
    "nonces": "INSERT INTO nonces (cid, nonce_hash, txid) VALUES (%s, %s, %s)",
    "notifications": (
        "INSERT INTO notifications (cid, member_hash, nid, blob) VALUES (%s, %s, %s, %s)"
    ),
    "proposals": (
        "INSERT INTO proposals (cid, pid_hash, is_open, blob) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (cid, pid_hash) DO UPDATE SET is_open = EXCLUDED.is_open, blob = EXCLUDED.blob"
    ),
    "meta": (
        "INSERT INTO meta (name, value) VALUES (%s, %s) "
        "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"
    ),
}


def _describe(conninfo: str) -> str:
    """Where the store is, for messages: database and host(s), never a password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "the PostgreSQL store"
    db = params.get("dbname") or "(default database)"
    host = params.get("host") or params.get("hostaddr") or "(default host)"
    return f"PostgreSQL database {db} on {host}"


class PostgresStore(SqlReads):
    """:class:`consortia.ledger.store.AuditStore` on a PostgreSQL database.

    ``conninfo`` is any libpq connection string. ``read_only=True`` opens an existing store
    without writing anything (every transaction of the session is READ ONLY) and refuses a
    database that holds no Consortia schema.
    """

    MARK = "%s"  # psycopg's parameter mark, for the shared reads (SqlReads)

    def _read_on(self) -> AbstractContextManager[psycopg.Connection[tuple[Any, ...]]]:
        return self._reading()

    def __init__(
        self,
        conninfo: str,
        *,
        read_only: bool = False,
        node: str | None = None,
        node_url: str = "",
    ) -> None:
        self._conninfo = conninfo
        self.read_only = read_only
        #: A cluster node's id: it then commits only for consortia whose lease it holds.
        self.node = node
        #: Where that node takes requests (written into the leases it takes; may be set
        #: once the server is bound).
        self.node_url = node_url
        #: A cluster node session's longest pause in a transaction or statement (see fence).
        self._limit_ms = _IDLE_LIMIT_MS
        self.path = _describe(conninfo)
        self._lock = threading.RLock()
        self._closed = False
        #: Consortium id -> the lease epoch its commits must still hold (a cluster node's).
        self._fences: dict[str, int] = {}
        try:
            self._db = self._connect()
            if not self._schema_is_current():
                if read_only:
                    raise self._not_ours()
                self._create_schema()
            elif not read_only:
                self._db.execute(LEASE_MIGRATION)
            if not read_only:
                self._db.execute(NODES_SCHEMA)
        except psycopg.Error as exc:
            with suppress(AttributeError, psycopg.Error):
                self._db.close()
            raise Unavailable(f"cannot open the store at {self.path}: {_brief(exc)}") from None
        except Unavailable:
            with suppress(AttributeError, psycopg.Error):
                self._db.close()
            raise

    # -- connection and schema ---------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        # autocommit: a read is its own statement; a commit is an explicit BEGIN ... COMMIT,
        # so a batch is exactly one transaction and nothing commits behind our back.
        # A cluster node's sessions carry its id, so that a node taking over an expired
        # lease can end the old holder's stalled transaction (lease.break_stalled).
        extra: dict[str, Any] = {}
        if self.node is not None:
            extra["application_name"] = node_session_name(self.node)
        db = psycopg.connect(self._conninfo, autocommit=True, **extra)
        try:
            row = db.execute("SHOW synchronous_commit").fetchone()
            if row is None or row[0] == "off":
                db.execute("SET synchronous_commit TO on")
            if self.read_only:
                db.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            if self.node is not None:
                self._limit_session(db)
        except BaseException:
            db.close()
            raise
        return db

    def _limit_session(self, db: psycopg.Connection[tuple[Any, ...]]) -> None:
        # Every session of a cluster node, also one opened again after a broken one.
        for setting in ("idle_in_transaction_session_timeout", "statement_timeout"):
            db.execute("SELECT set_config(%s, %s, false)", (setting, f"{self._limit_ms}ms"))

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The connection, replaced first if the last one broke (call under the lock)."""
        if self._db.closed:
            if self._closed:
                raise Unavailable(f"the store at {self.path} is closed")
            self._db = self._connect()
        return self._db

    def _schema_is_current(self) -> bool:
        """True for our schema; False for none of our tables; raises otherwise."""
        db = self._db
        present = {
            text(r[0])
            for r in db.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
                (list(_TABLES),),
            )
        }
        if not present:
            return False
        if "store_schema" not in present:
            raise self._not_ours()
        row = db.execute("SELECT version FROM store_schema").fetchone()
        if row is None:
            # A schema creation that never committed leaves no tables; this is not ours.
            raise self._not_ours()
        found = integer(row[0])
        if found != SCHEMA_VERSION:
            raise Unavailable(
                f"{self.path} has storage schema {found}; this build reads schema "
                f"{SCHEMA_VERSION} and does not convert other stores: start from a new database"
            )
        if present != set(_TABLES):
            missing = ", ".join(sorted(set(_TABLES) - present))
            raise Unavailable(f"{self.path} is damaged: tables missing: {missing}")
        return True

    def _not_ours(self) -> Unavailable:
        return Unavailable(
            f"{self.path} is not a Consortia store (tables without a schema version); "
            "point the store at a database a platform created, or an empty one"
        )

    def _create_schema(self) -> None:
        # Schema and version in one transaction (PostgreSQL DDL is transactional): a crash
        # leaves no table or a complete schema. The advisory lock makes a second process
        # wait, then find the schema done.
        db = self._db
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(
                "INSERT INTO store_schema (version) VALUES (%s) ON CONFLICT DO NOTHING",
                (SCHEMA_VERSION,),
            )
        if not self._schema_is_current():
            raise self._not_ours()

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        with self._lock:
            try:
                yield self._connection()
            except psycopg.Error as exc:
                raise Unavailable(f"storage read failed: {_brief(exc)}") from None

    def close(self) -> None:
        """Close the connection (a transaction still open is rolled back by the server)."""
        with self._lock:
            self._closed = True
            self._db.close()

    # -- platform ---------------------------------------------------------------------------

    def meta_put(self, name: str, value: bytes) -> None:
        """Set a platform-level value durably (one autocommitted statement)."""
        with self._reading() as db:
            db.execute(_INSERTS["meta"], (name, value))

    def consortium(self, cid: str) -> ConsortiumRow | None:
        """The consortium row, if any."""
        with self._reading() as db:
            row = db.execute(
                "SELECT keyring, info FROM consortia WHERE cid = %s", (cid,)
            ).fetchone()
        return None if row is None else ConsortiumRow(cid, blob(row[0]), blob(row[1]))

    def rewrap_keyring(self, cid: str, keyring: bytes) -> None:
        """Replace a consortium's wrapped keyring durably (recovery under a new node key)."""
        with self._reading() as db:
            db.execute(_INSERTS["keyring"], (keyring, cid))

    def consortia(self) -> list[str]:
        """Every consortium id, sorted by code point (as SQLite's BINARY collation)."""
        with self._reading() as db:
            rows = db.execute('SELECT cid FROM consortia ORDER BY cid COLLATE "C"').fetchall()
        return [text(r[0]) for r in rows]

    # -- commit -----------------------------------------------------------------------------

    def commit(self, cid: str, batch: CommitBatch) -> None:
        """Write the batch in one transaction; durable when this returns.

        Raises ``Unavailable`` when anything fails; nothing of the batch is then stored.
        When the connection is lost during the COMMIT itself, the outcome is looked up on a
        new connection (``pg_xact_status``): a batch that did commit returns normally, one
        whose outcome cannot be learnt raises ``Unavailable`` saying it is unknown.
        """
        if not batch:
            return
        with self._lock:
            xid: str | None = None
            mark: tuple[str, int, str] | None = None
            try:
                db = self._connection()
                if db.info.transaction_status != TransactionStatus.IDLE:
                    # A snapshot() of this thread is open: SQLite refuses this too.
                    raise Unavailable("commit failed, nothing was written: a read is open")
                db.execute("BEGIN")
                try:
                    with db.cursor() as cur:
                        epoch = self._fences.get(cid)
                        if epoch is not None:
                            check_fence(cur, cid, epoch)
                        elif self.node is not None:
                            raise Fenced(
                                f"node {self.node!r} holds no sequencer lease for consortium "
                                f"{cid!r}; nothing was written"
                            )
                        row = cur.execute("SELECT pg_current_xact_id()::text").fetchone()
                        self._write(cur, cid, batch)
                except BaseException:
                    with suppress(psycopg.Error):
                        db.execute("ROLLBACK")
                    raise
                xid = None if row is None else text(row[0])
                first = batch.txs[0] if batch.txs else None
                mark = None if first is None else (cid, first.seqno, first.txid)
                db.execute("COMMIT")
            except psycopg.Error as exc:
                if xid is not None and self._committed_after_all(xid, exc, mark):
                    return
                raise Unavailable(f"commit failed, nothing was written: {_brief(exc)}") from None

    # -- the sequencer lease (a cluster's; consortia.ledger.lease) ---------------------------

    def acquire_lease(self, cid: str, ttl_s: float) -> Lease | None:
        """Take ``cid``'s sequencer lease for this node with the next epoch, if it is free
        or expired; None while a lease holds (see :func:`consortia.ledger.lease.acquire`)."""
        if self.node is None:
            raise ValueError("only a cluster node (PostgresStore(..., node=ID)) takes leases")
        with self._lock:
            try:
                db = self._connection()
                try:
                    return acquire(db, cid, self.node, ttl_s, self.node_url)
                except psycopg.errors.LockNotAvailable:
                    # The old holder, past its lease, still holds the row in a transaction
                    # it does not finish (paused mid-commit): end that session, then take.
                    if not break_stalled(db, cid):
                        raise
                    return acquire(db, cid, self.node, ttl_s, self.node_url)
            except psycopg.Error as exc:
                raise Unavailable(f"cannot take the lease of {cid!r}: {_brief(exc)}") from None

    def heartbeat(self, ttl_s: float) -> list[LiveNode]:
        """Say this node is alive (at :attr:`node_url`); the nodes alive within ``ttl_s``."""
        if self.node is None:
            raise ValueError("only a cluster node (PostgresStore(..., node=ID)) has a heartbeat")
        with self._lock:
            try:
                return heartbeat(self._connection(), self.node, self.node_url, ttl_s)
            except psycopg.Error as exc:
                raise Unavailable(f"cannot record this node's heartbeat: {_brief(exc)}") from None

    def release_lease(self, lease: Lease) -> None:
        """Give ``lease`` up now (see :func:`consortia.ledger.lease.release`)."""
        with self._lock:
            try:
                release(self._connection(), lease)
            except psycopg.Error as exc:
                raise Unavailable(
                    f"cannot release the lease of {lease.cid!r}: {_brief(exc)}"
                ) from None
            self._fences.pop(lease.cid, None)

    def lease_holder(self, cid: str) -> Holder | None:
        """Who holds (or last held) ``cid``'s sequencer lease; None if none ever did."""
        with self._lock:
            try:
                return holder(self._connection(), cid)
            except psycopg.Error as exc:
                raise Unavailable(f"cannot read the lease of {cid!r}: {_brief(exc)}") from None

    def renew_lease(self, lease: Lease, ttl_s: float) -> Lease:
        """Extend ``lease``; :class:`~consortia.ledger.lease.Fenced` once it was taken over
        (the fence is then raised for this store's commits too)."""
        with self._lock:
            try:
                return renew(self._connection(), lease, ttl_s)
            except Fenced:
                self._fences[lease.cid] = lease.epoch  # every later commit is refused too
                raise
            except psycopg.Error as exc:
                raise Unavailable(
                    f"cannot renew the lease of {lease.cid!r}: {_brief(exc)}"
                ) from None

    def fence(self, lease: Lease, ttl_s: float | None = None) -> None:
        """From now on, commit for ``lease.cid`` only while ``lease.epoch`` holds its lease.

        The session also gets ``idle_in_transaction_session_timeout`` and
        ``statement_timeout`` (one lease of ``ttl_s``, between 1 and 5 s): a node paused in
        the middle of a commit, between two statements or in the middle of sending one,
        holds the lease row's lock, and so delays a takeover, for that long at most. A
        commit's statements take milliseconds; one paused longer fails and is retried.
        """
        if ttl_s is not None:
            self._limit_ms = int(min(max(ttl_s, 1.0) * 1000, _IDLE_LIMIT_MS))
        with self._lock:
            try:
                self._limit_session(self._connection())
            except psycopg.Error as exc:
                raise Unavailable(f"cannot fence {lease.cid!r}: {_brief(exc)}") from None
            self._fences[lease.cid] = lease.epoch

    def _committed_after_all(
        self, xid: str, failure: psycopg.Error, mark: tuple[str, int, str] | None = None
    ) -> bool:
        """Whether transaction ``xid``, whose COMMIT failed with ``failure``, committed.

        An error answer on a live connection means it did not. A lost connection leaves the
        outcome with the server: ask it on a new connection, waiting a little while the old
        server process finishes. Raises when the outcome cannot be learnt.

        The new connection may reach another server: a standby promoted after the primary
        died (a multi-host conninfo). Transaction ids are not unique across a failover: an
        id the old primary gave out but never replicated is "in the future" for the promoted
        standby, which then hands it out again, and ``pg_xact_status`` reports that other
        transaction's outcome. So an id this server never gave out is an answer (the batch
        did not commit here), and a "committed" is believed only when the first transaction
        row of the batch being committed (``mark``: cid, seqno, txid) is there under its txid.
        """
        if not self._db.closed:
            return False
        for attempt in range(_OUTCOME_TRIES):
            if attempt:
                time.sleep(_OUTCOME_WAIT)
            try:
                db = self._connection()
                if db.info.parameter_status("in_hot_standby") == "on":
                    continue  # a standby (a conninfo without read-write): not its to say
                try:
                    row = db.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()
                except psycopg.errors.InvalidParameterValue:
                    return False  # "transaction ID ... is in the future": not seen here
                status = None if row is None else row[0]
                if status == "in progress":
                    continue
                if status == "committed" and mark is not None:
                    cid, seqno, txid = mark
                    found = db.execute(
                        "SELECT txid FROM transactions WHERE cid = %s AND seqno = %s",
                        (cid, seqno),
                    ).fetchone()
                    return found is not None and found[0] == txid
            except psycopg.Error:
                continue
            if status == "committed":
                return True
            if status == "aborted":
                return False
            break
        raise Unavailable(
            "commit outcome unknown: the connection was lost during COMMIT "
            f"({_brief(failure)}) and the server could not say whether it committed; "
            "restart the platform to read the store as it is"
        ) from None

    @staticmethod
    def _write(cur: psycopg.Cursor[tuple[Any, ...]], cid: str, batch: CommitBatch) -> None:
        def many(kind: str, rows: Sequence[tuple[object, ...]]) -> None:
            if rows:
                cur.executemany(_INSERTS[kind], rows)

        if batch.consortium is not None:
            c = batch.consortium
            cur.execute(_INSERTS["consortium"], (c.cid, c.keyring, c.info))
        if batch.keyring is not None:
            cur.execute(_INSERTS["keyring"], (batch.keyring, cid))
        many("txs", [(cid, t.seqno, t.txid, t.digest, t.blob) for t in batch.txs])
        many("nodes", [(cid, n.level, n.index, n.hash) for n in batch.nodes])
        if batch.signed_root is not None:
            r = batch.signed_root
            cur.execute(_INSERTS["signed_root"], (cid, r.tree_size, r.previous, r.jws, r.mac))
        many("versions", [(cid, v.name_hash, v.seqno, v.txid, v.blob) for v in batch.versions])
        many("names", [(cid, n.name_hash, n.parent_hash, n.alive, n.blob) for n in batch.names])
        many("nonces", [(cid, n.nonce_hash, n.txid) for n in batch.nonces])
        many(
            "notifications",
            [(cid, n.member_hash, n.nid, n.blob) for n in batch.notifications],
        )
        many("proposals", [(cid, p.pid_hash, p.is_open, p.blob) for p in batch.proposals])
        many("meta", list(batch.meta.items()))

    # -- reads ------------------------------------------------------------------------------

    def tree_size(self, cid: str) -> int:
        """Next seqno."""
        with self._reading() as db:
            row = db.execute(
                "SELECT MAX(seqno) FROM transactions WHERE cid = %s", (cid,)
            ).fetchone()
        return 0 if row is None or row[0] is None else integer(row[0]) + 1

    def children(self, cid: str, parent_hash: bytes) -> list[NameRow]:
        """Live keys directly under a parent (the partial index names_parent serves this)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT name_hash, blob FROM names WHERE cid = %s AND parent_hash = %s AND alive",
                (cid, parent_hash),
            ).fetchall()
        return [NameRow(blob(r[0]), parent_hash, True, blob(r[1])) for r in rows]

    def open_proposals(self, cid: str) -> list[ProposalRow]:
        """Every open proposal."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT pid_hash, blob FROM proposals WHERE cid = %s AND is_open", (cid,)
            ).fetchall()
        return [ProposalRow(blob(r[0]), True, blob(r[1])) for r in rows]

    # -- audit (AuditStore) -----------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold one REPEATABLE READ, READ ONLY transaction: every read sees one state."""
        with self._lock:
            try:
                db = self._connection()
                db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            except psycopg.Error as exc:
                raise Unavailable(f"storage read failed: {_brief(exc)}") from None
            try:
                yield
            finally:
                # The transaction only read; a failure to end it adds nothing.
                with suppress(psycopg.Error):
                    db.execute("ROLLBACK")

    def check_integrity(self) -> None:
        """The schema is whole (every table, the version row).

        PostgreSQL checks its own pages (checksums, if the cluster has them) and has no
        structural check like SQLite's ``integrity_check`` without the amcheck extension;
        the row-level checks of ``consortia ledger verify`` are what finds tampering.
        """
        with self._reading():
            self._schema_is_current()

    def cids_in_use(self) -> set[str]:
        """Every consortium id any row of any table is filed under."""
        found: set[str] = set()
        with self._reading() as db:
            for table in _CID_TABLES:
                query = sql.SQL("SELECT DISTINCT cid FROM {}").format(sql.Identifier(table))
                found.update(text(r[0]) for r in db.execute(query))
        return found

    def merkle_node_count(self, cid: str) -> int:
        """How many Merkle node rows the consortium has."""
        with self._reading() as db:
            row = db.execute("SELECT COUNT(*) FROM merkle_nodes WHERE cid = %s", (cid,)).fetchone()
        return 0 if row is None else integer(row[0])

    def meta_names(self) -> list[str]:
        """The name of every platform-level value, sorted by code point."""
        with self._reading() as db:
            rows = db.execute('SELECT name FROM meta ORDER BY name COLLATE "C"').fetchall()
        return [text(r[0]) for r in rows]


def _brief(exc: psycopg.Error) -> str:
    """The server's message (first line) and SQLSTATE, never the query's parameters.

    The primary message of a constraint violation names the constraint, not the key
    (that is in the DETAIL, which is left out).
    """
    primary = exc.diag.message_primary
    lines = str(exc).splitlines()
    message = primary or (lines[0] if lines else type(exc).__name__)
    return f"{message} [{exc.sqlstate}]" if exc.sqlstate else message
