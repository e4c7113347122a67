"""What the insights are: the figures one viewer may see, and how they read.

Throughput, refusals and latency per action and member, requests over time buckets, vote
durations and misuse alerts, gathered in :class:`Insights` with each domain plug's section.
Also the small helpers the tables and charts share: bucket sizes and labels, quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from consortia._json import JSON
from consortia.analytics.insights.domain import DomainSection
from consortia.analytics.insights.viewer import Viewer

__all__ = [
    "BUCKETS",
    "OUTCOMES",
    "ActionFigures",
    "AlertRow",
    "Bucket",
    "Insights",
    "MemberFigures",
    "VoteDuration",
    "bucket_label",
    "pick_bucket",
    "quantile",
]

#: Time bucket sizes (seconds) tried in order; the first giving at most ~60 buckets wins.
BUCKETS = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
_MAX_BUCKETS = 60
#: Outcomes in the order tables and charts show them.
OUTCOMES = ("committed", "ok", "hidden", "pending", "refused", "failed")


@dataclass(frozen=True, slots=True)
class ActionFigures:
    """One action's (or read kind's) requests by outcome, refusal codes and latency."""

    action: str
    outcomes: Mapping[str, int]
    codes: Mapping[str, int]  # refusal/failure code -> count
    p50_ms: float
    p95_ms: float

    @property
    def total(self) -> int:
        """Requests of every outcome."""
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class MemberFigures:
    """One member's requests by outcome and refusal code (only members the viewer sees)."""

    member: str
    outcomes: Mapping[str, int]
    codes: Mapping[str, int]

    @property
    def total(self) -> int:
        """Requests of every outcome."""
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class Bucket:
    """Requests in one time bucket: per action (consortium-wide) and the viewer's own."""

    start: float
    by_action: Mapping[str, int]
    refused_by_code: Mapping[str, int]  # refused or failed, consortium-wide
    own: int  # the viewer's requests in this bucket


@dataclass(frozen=True, slots=True)
class VoteDuration:
    """One voted request: from pending to its decision (None while still open)."""

    action: str
    requester: str | None  # None when the viewer may not see who asked
    pending: float
    decided: float | None
    outcome: str  # "approved", "rejected", "failed", "open"

    @property
    def seconds(self) -> float | None:
        """How long the vote took; None while open."""
        return None if self.decided is None else self.decided - self.pending


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A misuse alert as stored by the detector."""

    time: float
    member: str
    rule: str
    score: float
    evidence: Mapping[str, JSON]


@dataclass(frozen=True, slots=True)
class Insights:
    """Everything one viewer may see of one consortium's analytics.

    A domain plug's figures are in its section: :meth:`domain` (or :attr:`domains`, by plug
    name) gives it; the pack that made it offers a typed accessor of its own.
    """

    consortium: str
    viewer: Viewer
    first: float | None  # time of the first and last event (None: no events)
    last: float | None
    bucket_s: int
    actions: list[ActionFigures]
    members: list[MemberFigures]  # every member if viewer.full, else the viewer only
    others: MemberFigures | None  # every member the viewer may not see, folded together
    timeline: list[Bucket]
    votes: list[VoteDuration]  # requester hidden unless the viewer sees that member
    domains: Mapping[str, DomainSection]  # plug name -> its section for this viewer
    alerts: list[AlertRow] | None  # None: the viewer is not among those alerted

    def domain(self, name: str) -> DomainSection:
        """The section of the plug called ``name``; KeyError when no such plug was registered."""
        try:
            return self.domains[name]
        except KeyError:
            raise KeyError(
                f"these insights have no {name!r} section: no plug of that name is registered"
            ) from None


def bucket_label(seconds: int) -> str:
    """``15 min``, ``hour``, ``6 h``, ``day``: a bucket size as a reader says it."""
    for size, one, unit in ((86400, "day", "d"), (3600, "hour", "h"), (60, "minute", "min")):
        if seconds % size == 0:
            return one if seconds == size else f"{seconds // size} {unit}"
    return f"{seconds} s"


def pick_bucket(first: float, last: float) -> int:
    """The smallest bucket size that shows the span in at most about 60 buckets."""
    span = max(last - first, 1.0)
    for size in BUCKETS:
        if span / size <= _MAX_BUCKETS:
            return size
    return BUCKETS[-1]


def quantile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1, linear interpolation) of ``values``; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
