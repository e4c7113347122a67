"""Who is looking at the insights, and what the constitution's analytics policy lets them see.

A member named (by id or role) in ``insights_full`` sees every member's rows; any other
member sees its own rows and consortium-wide totals. Misuse alerts are shown to the members
``alert_to`` names.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortia.errors import NotFound
from consortia.governance.constitution import Constitution

__all__ = ["Viewer", "viewer_for"]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking, and what the analytics policy lets them see."""

    member: str
    full: bool = False  # in insights_full: sees every member's rows
    alerts: bool = True  # in alert_to: sees misuse alerts

    def sees(self, member: str | None) -> bool:
        """Whether rows of ``member`` may be shown to this viewer by name."""
        return self.full or member == self.member


def viewer_for(constitution: Constitution, member: str) -> Viewer:
    """The viewer for ``member`` under the constitution's analytics policy.

    Raises NotFound when ``member`` is not a member of the consortium.
    """
    if member not in constitution.members:
        raise NotFound(f"{member!r} is not a member of this consortium; insights are per member")
    roles = constitution.roles_of(member)
    policy = constitution.analytics
    return Viewer(member, policy.sees_full(member, roles), policy.alerted(member, roles))
