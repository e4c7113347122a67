"""The domain plug: how a template pack adds its own figures to the insights.

Analytics knows no pack. A pack's :class:`DomainInsights` names the actions whose committed
events (with their granted fields) it needs, turns them into a :class:`DomainSection` for
the viewer, and reads that section back from the insights document; the section's keys sit
at the top level of the document, before ``alerts``.

A plug takes part once it is registered with :func:`register_domain`. Nothing registers
itself on import: the places that wire a platform (the server's insights route, the
``consortia insights`` command) register the plugs of the packs they serve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from consortia._json import JSON
from consortia.analytics.insights.viewer import Viewer

__all__ = [
    "DomainEvent",
    "DomainInsights",
    "DomainSection",
    "register_domain",
    "registered_domains",
]


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """A committed action as a domain plug sees it: when, what, who, granted fields."""

    time: float
    action: str
    member: str | None
    fields: Mapping[str, JSON]


class DomainSection(Protocol):
    """A plug's figures for one viewer: what it adds to the insights document."""

    def to_json(self) -> dict[str, Any]:
        """The section's top-level keys of the document, with derived figures spelt out."""
        ...


class DomainInsights(Protocol):
    """A template pack's insights plug (see the module docstring)."""

    @property
    def name(self) -> str:
        """The key of its section in :attr:`~consortia.analytics.insights.Insights.domains`."""
        ...

    @property
    def actions(self) -> tuple[str, ...]:
        """The actions whose committed events (and granted fields) it needs."""
        ...

    def compute(self, events: Sequence[DomainEvent], viewer: Viewer) -> DomainSection:
        """Its figures from those events (oldest first), as ``viewer`` may see them."""
        ...

    def from_json(self, doc: Mapping[str, Any]) -> DomainSection:
        """Its section read back from a whole insights document.

        A wrong shape raises KeyError, TypeError or ValueError (answered as bad_request).
        """
        ...


_DOMAINS: dict[str, DomainInsights] = {}


def register_domain(plug: DomainInsights) -> None:
    """Add ``plug`` to every insights computed or read from now on (same name: replaced)."""
    _DOMAINS[plug.name] = plug


def registered_domains() -> tuple[DomainInsights, ...]:
    """The plugs registered so far, in registration order."""
    return tuple(_DOMAINS.values())
