"""A platform with an analytics sink the test can see into, and members that sign requests.

The sink is the real :class:`BufferedSink` (thread, bounded queue) over a backend of the
test's choice: the in-memory one for assertions on events, or DuckDB on disk for the
"nothing leaves unless granted" checks that grep the file.
"""

from __future__ import annotations

import time
from pathlib import Path

from consortia.analytics import Event
from consortia.analytics.sink import BufferedSink, MemoryBackend, SinkBackend
from world import FOUNDERS, World

__all__ = ["FOUNDERS", "RECORD_CODE", "AnalyticsWorld", "make_world", "wait_for"]

#: A Starlark action that writes one object named by its params (and echoes a secret).
RECORD_CODE = """
def main(params):
    key = params["kind"] + "/" + params["id"]
    put(key, {"note": params["note"], "by": caller()})
    return {"key": key}
"""


class AnalyticsWorld(World):
    """The engine's world (tests/world.py) with the platform's sink in view; ``events()``
    waits for the sink and returns what it wrote."""

    @property
    def sink(self) -> BufferedSink:
        sink = self.platform.analytics
        assert isinstance(sink, BufferedSink)
        return sink

    @property
    def backend(self) -> SinkBackend:
        return self.sink.backend

    def events(self) -> list[Event]:
        """Every event written so far (after the sink drained)."""
        assert self.sink.flush(10.0), "the sink did not drain"
        assert isinstance(self.backend, MemoryBackend)
        return list(self.backend.events)

    def add_record_action(self) -> None:
        """Vote in ``record`` (Starlark, no vote needed to run), executable by every founder."""
        self.vote_through(
            "telco",
            "amendConstitution",
            {
                "name": "record",
                "scope": "public",
                "language": "starlark",
                "code": RECORD_CODE,
                "permissions": [{"member": m, "execute": True} for m in FOUNDERS],
                "voting": {"voters": "any", "majority": 1, "veto": []},
            },
        )


def make_world(
    tmp: Path, backend: SinkBackend | None = None, *, capacity: int = 50_000
) -> AnalyticsWorld:
    """A platform whose sink writes to ``backend`` (memory by default), consortium ``acme``."""
    sink = BufferedSink(backend or MemoryBackend(), linger=0.0, capacity=capacity)
    world = AnalyticsWorld.open(tmp, analytics=sink)
    world.create("acme", FOUNDERS)
    return world


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    """Poll ``predicate()`` until true (threads at work); fail after ``timeout`` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
