"""Governance: the constitution, permissions and voting (pure: no I/O, no clock)."""

from consortia.governance.constitution import (
    BASE_ACTIONS,
    GOVERNANCE_ACTIONS,
    ActionDefinition,
    Constitution,
    Member,
    MemberStatus,
    Permission,
    VotingSchema,
)
from consortia.governance.templates import DEFAULT_TEMPLATE, Template, default_constitution
from consortia.governance.voting import (
    Ballot,
    Decision,
    Proposal,
    ProposalStatus,
    Tally,
    electorate,
    may_vote,
    tally,
)

__all__ = [
    "BASE_ACTIONS",
    "DEFAULT_TEMPLATE",
    "GOVERNANCE_ACTIONS",
    "ActionDefinition",
    "Ballot",
    "Constitution",
    "Decision",
    "Member",
    "MemberStatus",
    "Permission",
    "Proposal",
    "ProposalStatus",
    "Tally",
    "Template",
    "VotingSchema",
    "default_constitution",
    "electorate",
    "may_vote",
    "tally",
]
