"""The embedded analytics set-up a platform gets by default: DuckDB, watched by the detector.

Kept here, not in the engine, so that the engine knows only the :class:`EventSink`
interface, and the choice of backend and detector stays with the analytics package.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from consortia.analytics.events import Alert, Event
from consortia.analytics.sink import BufferedSink, Observer

__all__ = ["LINGER", "LazyDetector", "default_sink"]

#: Seconds the sink's thread waits after an event for more to batch with it.
LINGER = 1.0


class LazyDetector:
    """The misuse detector, created on the sink's thread at the first event.

    Its model library takes over a second to import; a platform that serves no request, or a
    CLI command that opens one briefly, should not pay that.
    """

    def __init__(self) -> None:
        self._observe: Observer | None = None

    def __repr__(self) -> str:
        return f"LazyDetector(loaded={self._observe is not None})"

    def prepare(self) -> Observer:
        """Load the detector now if not yet (the sink's thread calls it as a server starts)."""
        if self._observe is None:
            from consortia.analytics.detector import MisuseDetector

            self._observe = MisuseDetector().observe
        return self._observe

    def __call__(self, event: Event) -> Iterable[Alert]:
        """Show ``event`` to the detector (loading it first if needed)."""
        return self.prepare()(event)


def default_sink(store_file: Path) -> BufferedSink:
    """A bounded-buffer sink writing to the DuckDB file ``store_file``, with the detector."""
    # Imported here: DuckDB costs start-up time only when the sink is on.
    from consortia.analytics.duckdb_sink import DuckDBBackend

    # A one-second linger: each batch opens and closes the file (about 45 ms, so readers can
    # get in between); batching a second of events keeps that a small share of a core.
    return BufferedSink(DuckDBBackend(store_file), observers=[LazyDetector()], linger=LINGER)
