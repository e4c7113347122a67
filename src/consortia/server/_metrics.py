"""Prometheus metrics of the service, in one registry per app (so tests can run several).

``/metrics`` answers the operator only (docs/protocol-notes.md). Even so its labels name no
consortium and no action unless the operator opts in (``consortia serve --metrics-names``):
a consortium's id and its constitution's action names, with their volumes, are the
consortium's business. Without names, queue depth is labelled by an opaque lane number.
With names, labels stay bounded: ``action`` is named only for requests that authenticated
and reached an existing action (anything else is ``-``), and the consortium label names only
consortia that exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from consortia.analytics.sink import SinkStats
from consortia.sandbox.runtime import SandboxStats

__all__ = ["CONTENT_TYPE", "NAMED_OUTCOMES", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Outcomes after which the action name is one of the constitution's, safe as a label.
NAMED_OUTCOMES = frozenset(
    {
        "committed",
        "pending",
        "action_failed",
        "budget_exceeded",
        "scope_violation",
        "permission_denied",
        "not_public",
        "vote_rejected",
    }
)


class _AnalyticsCollector:
    """The analytics sink's own counters, read at scrape time (the sink keeps them)."""

    def __init__(self, source: Callable[[], SinkStats | None]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        stats = self._source()
        if stats is None:
            return []
        events = CounterMetricFamily(
            "consortia_analytics_events",
            "Analytics events by state: emitted by the engine, written by the sink's backend, "
            "dropped (buffer full or backend down)",
            labels=["state"],
        )
        events.add_metric(["emitted"], stats.emitted)
        events.add_metric(["written"], stats.written)
        events.add_metric(["dropped"], stats.dropped)
        queued = GaugeMetricFamily(
            "consortia_analytics_queued", "Analytics events waiting in the sink's buffer"
        )
        queued.add_metric([], stats.queued)
        alerts = CounterMetricFamily(
            "consortia_analytics_alerts", "Misuse alerts raised by the detector"
        )
        alerts.add_metric([], stats.alerts)
        return [events, queued, alerts]


class _SandboxCollector:
    """The action sandbox's counters, read at scrape time."""

    def __init__(self, source: Callable[[], SandboxStats | None]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        stats = self._source()
        if stats is None:
            return []
        families = []
        for name, text, value in (
            ("runs", "Runs of Starlark action code", stats.runs),
            (
                "round_trips",
                "Host requests that crossed the executor's pipe during runs (one round trip "
                "each; reads the executor's cache answered do not count)",
                stats.round_trips,
            ),
            ("restarts", "Executor processes replaced (budget exceeded, crash)", stats.restarts),
        ):
            family = CounterMetricFamily(f"consortia_sandbox_{name}", text)
            family.add_metric([], value)
            families.append(family)
        return families


class Metrics:
    """The counters, histograms and gauges ``/metrics`` exposes."""

    def __init__(
        self,
        *,
        analytics: Callable[[], SinkStats | None] | None = None,
        sandbox: Callable[[], SandboxStats | None] | None = None,
        names: bool = False,
    ) -> None:
        #: Whether labels may carry consortium ids and action names (the operator's opt-in).
        self.names = names
        self._lanes: dict[str, str] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        if analytics is not None:
            self.registry.register(_AnalyticsCollector(analytics))
        if sandbox is not None:
            self.registry.register(_SandboxCollector(sandbox))
        self.actions = Counter(
            "consortia_actions",
            "executeAction requests by action and outcome (committed, pending or error code)",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.http = Counter(
            "consortia_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "consortia_commit_seconds",
            "Duration of one group commit (execute_batch), seconds",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "consortia_batch_size",
            "Requests per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "consortia_queue_depth",
            "executeAction requests waiting for their consortium's next group commit",
            ["consortium"],
            registry=self.registry,
        )
        self.streams = Gauge(
            "consortia_sse_streams",
            "Open notification streams (SSE)",
            registry=self.registry,
        )

    def action(self, action: str | None, outcome: str) -> None:
        """Count one executeAction answer."""
        named = self.names and action is not None and outcome in NAMED_OUTCOMES
        label = action if named and action is not None else "-"
        self.actions.labels(label[:64], outcome).inc()

    def consortium_label(self, cid: str) -> str:
        """The consortium label: its id if names are on, else a lane number (by first use)."""
        if self.names:
            return cid
        return self._lanes.setdefault(cid, f"lane-{len(self._lanes) + 1}")

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
