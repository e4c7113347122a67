"""Insights of a running platform, read from its own analytics sink.

The server's insights route answers from the sink the platform writes: flushed first, then
read through its backend under the lock the backend's writes take, so reading never makes the
sink drop a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from consortia.analytics.insights.document import insights_json
from consortia.analytics.insights.query import compute_insights
from consortia.analytics.insights.viewer import viewer_for
from consortia.errors import NotFound
from consortia.governance.constitution import Constitution

if TYPE_CHECKING:
    import duckdb

__all__ = ["QueryableStore", "sink_insights"]

T = TypeVar("T")


@runtime_checkable
class QueryableStore(Protocol):
    """A sink backend that can also be read, between its own writes (DuckDB's does)."""

    def query(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn`` on the store; ``unavailable`` when the store is busy elsewhere."""
        ...


def sink_insights(
    sink: object,
    constitution: Constitution,
    consortium: str,
    member: str,
    *,
    bucket_s: int | None = None,
    since: float | None = None,
    flush_timeout: float = 2.0,
) -> dict[str, Any]:
    """The insights document of ``member``, read from a running platform's own sink.

    Blocking (run it on a worker thread). The sink is flushed first, up to
    ``flush_timeout`` seconds, so the answer includes the requests just answered; then the
    store is read through the backend, under the lock its writes take, so reading never
    makes the sink drop a batch. NotFound when the sink keeps no store that can be read.
    """
    viewer = viewer_for(constitution, member)
    flush = getattr(sink, "flush", None)
    if callable(flush):
        flush(flush_timeout)
    backend = getattr(sink, "backend", None)
    if not isinstance(backend, QueryableStore):
        raise NotFound(
            "this platform's analytics sink keeps no store it can read back; insights need "
            "the embedded DuckDB store"
        )
    return backend.query(
        lambda con: insights_json(
            compute_insights(con, consortium, viewer, bucket_s=bucket_s, since=since)
        )
    )
