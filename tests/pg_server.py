"""A throwaway PostgreSQL server for the tests that need one (the PostgreSQL store's).

:func:`postgres_server` runs ``initdb`` into a fresh temporary directory, starts the server
on a free loopback port (its unix socket inside that directory, trust authentication for
local connections only, ``fsync=on`` and ``synchronous_commit=on`` so commits are as durable
as in production) and always stops it (``pg_ctl stop -m fast``) and removes the directory,
even when a test fails. :meth:`PostgresServer.new_database` gives each test a database of
its own.

initdb refuses to run as root: as root, the server runs as the ``postgres`` user (Debian's
package creates it) through ``runuser``, in a directory chowned to it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

__all__ = [
    "PostgresServer",
    "find_bindir",
    "free_port",
    "postgres_server",
    "postgres_server_fixture",
    "postgres_url_fixture",
    "storage_fingerprint_pg",
]

_BINARIES = ("initdb", "pg_ctl", "postgres")
_SUPERUSER = "postgres"
_MISSING = (
    "the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed; "
    "install Debian's postgresql package (apt-get install postgresql) to run these tests"
)


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: Debian's, else from PATH."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found is not None:
        candidates.append(Path(found).resolve().parent)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in _BINARIES):
            return bindir
    return None


def free_port() -> int:
    """A loopback TCP port free right now (for a server about to bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running throwaway server; ``url(dbname)`` is a libpq conninfo for one database."""

    root: Path
    bindir: Path
    port: int
    as_user: str | None
    _names: Iterator[int] = field(default_factory=itertools.count)
    #: Extra ``postgresql.conf`` settings (name -> value, written as given: quote strings).
    settings: Mapping[str, str] = field(default_factory=dict)
    #: Extra ``pg_hba.conf`` lines, after the trusted local ones.
    hba: str = ""

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def url(self, dbname: str = "postgres") -> str:
        """A TCP conninfo URL (loopback) for ``dbname``."""
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the server's user; raise with its output if it fails."""
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        done = subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
            command, capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): {done.stdout}{done.stderr}"
                f"{self._log_tail()}"
            )
        return done

    def _log_tail(self) -> str:
        with suppress(OSError):
            return "\nserver log:\n" + (self.root / "server.log").read_text()[-4000:]
        return ""

    def new_database(self) -> str:
        """Create a fresh, empty database and return its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def start(self) -> None:
        self.run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",  # only initdb's own flush: the running server has fsync on
        )
        # Local connections only: the unix socket and loopback TCP, trusted.
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n" + self.hba
        )
        self.configure()
        self.launch()

    def configure(self) -> None:
        """Append this server's settings to ``postgresql.conf`` (later lines win: a data
        directory copied from another server, e.g. by ``pg_basebackup``, gets its own)."""
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# tests/pg_server.py\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "full_page_writes = on\n"
                "max_connections = 100\n"
            )
            conf.writelines(f"{name} = {value}\n" for name, value in self.settings.items())

    def launch(self) -> None:
        """Start the server on its data directory and wait until it takes connections."""
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server (fast shutdown; immediate if that fails)."""
        if not (self.data / "postmaster.pid").exists():
            return
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextmanager
def postgres_server(
    *, settings: Mapping[str, str] | None = None, hba: str = "", initdb: bool = True
) -> Iterator[PostgresServer]:
    """A started server in a fresh temporary directory, stopped and removed afterwards.

    ``settings`` and ``hba`` are added to its configuration (see :class:`PostgresServer`).
    With ``initdb=False`` the server is neither created nor started: the caller fills
    ``data`` (e.g. with ``pg_basebackup``), then calls ``configure()`` and ``launch()``.

    Raises RuntimeError with the message to install Debian's postgresql package when the
    binaries are absent.
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(_MISSING)
    as_user = None
    root = Path(tempfile.mkdtemp(prefix="consortia-pg-"))
    try:
        if os.geteuid() == 0:
            as_user = _SUPERUSER
            entry = pwd.getpwnam(as_user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        (root / "sock").mkdir()
        if as_user is not None:
            os.chown(root / "sock", entry.pw_uid, entry.pw_gid)
        server = PostgresServer(
            root, bindir, free_port(), as_user, settings=dict(settings or {}), hba=hba
        )
        try:
            if initdb:
                server.start()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- pytest fixtures ``postgres`` and ``postgres_url``: import both functions into a test
# module to use them; the server starts only when a test asks for ``postgres_url``.


@pytest.fixture(scope="session", name="postgres")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (started on first use, stopped and removed after)."""
    if find_bindir() is None:
        pytest.fail(
            "the PostgreSQL store tests need a PostgreSQL server: install Debian's "
            "postgresql package (apt-get install postgresql); initdb, pg_ctl and postgres "
            "were found neither in /usr/lib/postgresql/*/bin nor on PATH"
        )
    with postgres_server() as server:
        yield server


@pytest.fixture(name="postgres_url")
def postgres_url_fixture(postgres: PostgresServer) -> str:
    """The conninfo URL of a fresh, empty database on the session's server."""
    return postgres.new_database()


def storage_fingerprint_pg(url: str) -> str:
    """Hash of every row of every table of the database at ``url``, as
    ``testkit.storage_fingerprint`` is for a SQLite file: equal means nothing changed."""
    digest = hashlib.sha256()
    with psycopg.connect(url, autocommit=True) as con:
        tables = [
            str(r[0])
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
        ]
        for table in sorted(tables):
            rows = con.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
            for row in sorted(repr(tuple(r)) for r in rows.fetchall()):
                digest.update(f"{table}:{row}".encode())
    return digest.hexdigest()
