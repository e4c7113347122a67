"""The engine suite's world (tests/world.py): a platform on disk, an operator, three founders.

Every test that takes ``world`` runs twice: on the embedded SQLite store and on PostgreSQL
(a throwaway server, tests/pg_server.py), so the two stores cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pg_server import postgres_server_fixture, postgres_url_fixture
from world import FOUNDERS, PlatformOptions, World, founded

__all__ = ["FOUNDERS", "World", "postgres_server_fixture", "postgres_url_fixture", "world"]


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    options = PlatformOptions()
    if request.param == "postgresql":
        options["store"] = request.getfixturevalue("postgres_url")
    yield from founded(tmp_path, **options)
