"""The engine suite's world (tests/world.py): a platform on disk, an operator, three founders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from world import FOUNDERS, World

__all__ = ["FOUNDERS", "World", "world"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World.open(tmp_path)
    w.create("acme", FOUNDERS)
    yield w
    w.close()
