"""A throwaway PostgreSQL primary with a synchronous standby, for the failover tests.

:func:`replicated_postgres` starts a primary (tests/pg_server.py's server, with
``wal_level = replica``, ``synchronous_standby_names = 'standby1'``, ``synchronous_commit =
on`` and a trusted loopback ``replication`` entry in ``pg_hba.conf``) and a standby cloned
from it by ``pg_basebackup -R`` whose ``primary_conninfo`` carries
``application_name=standby1``; it returns once ``pg_stat_replication`` shows the standby
``sync``: from then on a COMMIT on the primary returns only after the standby flushed it.

:attr:`ReplicatedPostgres.url` is the multi-host URL a platform is given
(``target_session_attrs=read-write``: libpq tries both hosts and keeps the one that takes
writes). :meth:`~ReplicatedPostgres.kill_primary` SIGKILLs the primary's postmaster (its
children notice and exit, as on a crash); :meth:`~ReplicatedPostgres.promote` runs
``pg_ctl promote -w`` on the standby. Everything is stopped and removed afterwards, a killed
primary's leftover processes included, even when the test fails.

The standby runs with ``synchronous_standby_names = ''``: once promoted it is a primary
without a standby of its own, and would otherwise wait for ever for a ``standby1`` that
will never connect (in production the failover manager rewrites that setting).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from pg_server import PostgresServer, find_bindir, postgres_server

__all__ = ["ReplicatedPostgres", "replicated_postgres", "replicated_postgres_fixture"]

STANDBY_NAME = "standby1"
_MISSING = (
    "the replication tests need the PostgreSQL server binaries (initdb, pg_ctl, postgres, "
    "pg_basebackup): install Debian's postgresql package (apt-get install postgresql)"
)
_PRIMARY_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "4",
    "wal_keep_size": "'64MB'",
    "synchronous_standby_names": f"'{STANDBY_NAME}'",
    "synchronous_commit": "on",
    "hot_standby": "on",
    "wal_sender_timeout": "'5s'",
}
_REPLICATION_HBA = "local replication all trust\nhost replication all 127.0.0.1/32 trust\n"
#: Seconds to wait for the standby to become the synchronous one, or a promotion to end.
_WAIT = 30.0


def _children(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ReplicatedPostgres:
    """A primary, its synchronous standby and one database on them."""

    primary: PostgresServer
    standby: PostgresServer
    dbname: str
    #: The killed postmaster's children (they exit on their own; killed at teardown if not).
    _orphans: list[int] = field(default_factory=list)
    killed: bool = False

    @property
    def url(self) -> str:
        """The multi-host URL: whichever of the two takes writes, 2 s per connection try."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return (
            f"postgresql://postgres@{hosts}/{self.dbname}"
            "?target_session_attrs=read-write&connect_timeout=2"
        )

    def wait_sync(self, timeout: float = _WAIT) -> None:
        """Return once the primary reports the standby as its synchronous standby."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            with psycopg.connect(self.primary.url(), autocommit=True) as con:
                row = con.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (STANDBY_NAME,),
                ).fetchone()
            state = None if row is None else row[0]
            if state == "sync":
                return
            time.sleep(0.05)
        raise RuntimeError(f"the standby is not synchronous after {timeout} s (state {state})")

    def postmaster_pid(self) -> int:
        """The primary's postmaster pid (the first line of ``postmaster.pid``)."""
        return int((self.primary.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def kill_primary(self) -> float:
        """SIGKILL the primary's postmaster; the ``time.monotonic()`` of the kill."""
        pid = self.postmaster_pid()
        self._orphans = _children(pid)
        self.killed = True
        os.kill(pid, signal.SIGKILL)
        return time.monotonic()

    def promote(self) -> None:
        """Promote the standby (``pg_ctl promote -w``: returns once it takes writes)."""
        self.standby.run("pg_ctl", "-D", str(self.standby.data), "-w", "-t", "60", "promote")

    def stop_standby(self) -> None:
        """Stop the standby (fast shutdown); :meth:`start_standby` starts it again."""
        self.standby.stop()

    def start_standby(self) -> None:
        self.standby.launch()

    def _bury_primary(self) -> None:
        """After :meth:`kill_primary`: kill what is left of the old primary, and remove its
        stale ``postmaster.pid`` so the server's stop has nothing to do."""
        if not self.killed:
            return
        deadline = time.monotonic() + 5.0
        while any(_alive(p) for p in self._orphans) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self._orphans:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with suppress(FileNotFoundError):
            (self.primary.data / "postmaster.pid").unlink()


@contextmanager
def replicated_postgres() -> Iterator[ReplicatedPostgres]:
    """A primary and its synchronous standby, stopped and removed afterwards.

    Raises RuntimeError saying what to install when the PostgreSQL binaries are absent.
    """
    bindir = find_bindir()
    if bindir is None or not (bindir / "pg_basebackup").is_file():
        raise RuntimeError(_MISSING)
    with ExitStack() as stack:
        primary = stack.enter_context(
            postgres_server(settings=_PRIMARY_SETTINGS, hba=_REPLICATION_HBA)
        )
        # Entered after the primary, so left before it: the standby stops first.
        standby = stack.enter_context(
            postgres_server(settings={"synchronous_standby_names": "''"}, initdb=False)
        )
        conninfo = (
            f"host=127.0.0.1 port={primary.port} user=postgres application_name={STANDBY_NAME}"
        )
        standby.run(
            "pg_basebackup", "-D", str(standby.data), "-d", conninfo, "-R",
            "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        standby.configure()
        # -R wrote primary_conninfo into postgresql.auto.conf (read last); say the name
        # there too, whatever this pg_basebackup copied from the conninfo.
        with (standby.data / "postgresql.auto.conf").open("a") as auto:
            auto.write(f"primary_conninfo = '{conninfo}'\n")
        standby.launch()
        pair = ReplicatedPostgres(primary, standby, dbname="")
        stack.callback(pair._bury_primary)  # runs before the primary's stop
        pair.wait_sync()
        pair.dbname = primary.new_database().rsplit("/", 1)[1]
        yield pair


@pytest.fixture(name="replicated")
def replicated_postgres_fixture() -> Iterator[ReplicatedPostgres]:
    """A fresh primary + synchronous standby for one test (a failover uses it up)."""
    if find_bindir() is None:
        pytest.skip(_MISSING)
    with replicated_postgres() as pair:
        yield pair
