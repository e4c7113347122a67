"""Insights over the analytics store, as the constitution lets one member see them.

The sink writes redacted events (and the detector its alerts) to DuckDB; this package reads
them back for one viewing member. What the viewer sees follows the analytics policy:

- a member named (by id or role) in ``insights_full`` sees every member's rows;
- any other member sees consortium-wide aggregates per action, and its own rows only:
  other members are folded into totals, never named;
- misuse alerts are shown to the members ``alert_to`` names, who are told of them anyway.

Figures: throughput, refusals and latency per action and member over time buckets; vote
durations (a ``pending`` event to the first committed/failed/refused event of the same
txid). Everything is computed from events alone: the ledger is never read.

Figures of a domain (a template pack's orders, stock, ...) come from a plug: a
:class:`DomainInsights` registered with :func:`register_domain` by whoever wires the
platform (the server's insights route, the ``consortia insights`` command). It names the
actions whose committed events (with their granted fields) it needs, turns them into a
:class:`DomainSection` for the viewer, and reads that section back from the document;
:meth:`Insights.domain` gives the section by plug name. Analytics knows no pack.

The modules, one concept each:

- :mod:`~consortia.analytics.insights.viewer`: who is looking and what they may see;
- :mod:`~consortia.analytics.insights.domain`: the domain plug protocol and its registry;
- :mod:`~consortia.analytics.insights.figures`: the figures (:class:`Insights`) and helpers;
- :mod:`~consortia.analytics.insights.query`: computing them from the DuckDB store;
- :mod:`~consortia.analytics.insights.document`: the JSON document and reading it back;
- :mod:`~consortia.analytics.insights.service`: insights of a running platform's sink.
"""

from consortia.analytics.insights.document import insights_from_json, insights_json
from consortia.analytics.insights.domain import (
    DomainEvent,
    DomainInsights,
    DomainSection,
    register_domain,
    registered_domains,
)
from consortia.analytics.insights.figures import (
    BUCKETS,
    OUTCOMES,
    ActionFigures,
    AlertRow,
    Bucket,
    Insights,
    MemberFigures,
    VoteDuration,
    bucket_label,
    pick_bucket,
    quantile,
)
from consortia.analytics.insights.query import compute_insights, open_store
from consortia.analytics.insights.service import QueryableStore, sink_insights
from consortia.analytics.insights.viewer import Viewer, viewer_for

__all__ = [
    "BUCKETS",
    "OUTCOMES",
    "ActionFigures",
    "AlertRow",
    "Bucket",
    "DomainEvent",
    "DomainInsights",
    "DomainSection",
    "Insights",
    "MemberFigures",
    "QueryableStore",
    "Viewer",
    "VoteDuration",
    "bucket_label",
    "compute_insights",
    "insights_from_json",
    "insights_json",
    "open_store",
    "pick_bucket",
    "quantile",
    "register_domain",
    "registered_domains",
    "sink_insights",
    "viewer_for",
]
