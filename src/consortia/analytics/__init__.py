"""Analytics: the approved sink, insights and misuse detection (the ML loopback).

The engine emits one redacted :class:`Event` per request into an :class:`EventSink`; the
embedded :class:`BufferedSink` carries them off the commit path to a backend (DuckDB by
default, :mod:`consortia.analytics.duckdb_sink`) and shows them to the misuse detector,
whose :class:`Alert` objects go back to the platform (docs/analytics.md).
"""

from consortia.analytics.events import Alert, Event, EventSink
from consortia.analytics.sink import BufferedSink, MemoryBackend, SinkBackend, SinkStats

__all__ = [
    "Alert",
    "BufferedSink",
    "Event",
    "EventSink",
    "MemoryBackend",
    "SinkBackend",
    "SinkStats",
]
