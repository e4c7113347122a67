"""Helpers every scenario suite shares (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortia import Platform, SigningKey
from consortia.governance.templates import DEFAULT_TEMPLATE, Template
from consortia.server.run import ServerConfig, ServerThread
from consortia.server.tls import certificate_fingerprint, ensure_self_signed
from consortia.telco import TELCO_TEMPLATE

__all__ = ["T0", "TEMPLATES", "Clock", "TLSServer", "js", "storage_fingerprint", "tls_server"]


def js(value: object) -> Any:
    """Read a JSON answer in a test without narrowing every level by hand."""
    return value


def storage_fingerprint(db: Path) -> str:
    """Hash of every row of every table: equal fingerprints mean storage did not change."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256()
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in sorted(tables):
            for row in sorted(con.execute(f"SELECT * FROM {table}").fetchall()):  # noqa: S608
                digest.update(repr((table, row)).encode())
        return digest.hexdigest()
    finally:
        con.close()


#: The tests' fixed "now": 2027-01-15.
T0 = 1_800_000_000


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


#: Both templates a platform offers in the served and Telco scenarios.
TEMPLATES: Mapping[str, Template] = {"default": DEFAULT_TEMPLATE, "telco": TELCO_TEMPLATE}


@dataclass(frozen=True)
class TLSServer:
    """A served platform: its URL, the certificate pin, the operator key, the platform."""

    url: str
    pin: str
    operator: SigningKey
    platform: Platform


@contextmanager
def tls_server(tmp: Path, *, store: str | None = None) -> Iterator[TLSServer]:
    """A platform offering the default and telco templates over TLS on a free loopback port
    (analytics on, as ``consortia serve`` runs it), stopped when the block ends; its ledger
    in the PostgreSQL database ``store`` if given."""
    cert, key, _ = ensure_self_signed(tmp, "127.0.0.1")
    operator = SigningKey.generate()
    platform = Platform.open(
        tmp / "tep", operator_keys=[operator.verify_key], templates=TEMPLATES, store=store
    )
    config = ServerConfig(port=0, tls=(cert, key), access_log=False, log_level="warning")
    thread = ServerThread(platform, config).start()
    try:
        yield TLSServer(thread.url, certificate_fingerprint(cert.read_bytes()), operator, platform)
    finally:
        thread.stop()
        platform.close()
