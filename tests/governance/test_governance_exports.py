"""The public face of consortia.governance is pinned: the engine codes against these names."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from consortia import governance
from consortia.governance import constitution, parse, templates, voting

EXPECTED = {
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
}
MODULES = (constitution, parse, templates, voting)


def test_all_is_pinned() -> None:
    assert set(governance.__all__) == EXPECTED
    assert len(governance.__all__) == len(EXPECTED)


def test_every_name_exists_and_is_documented() -> None:
    for name in governance.__all__:
        value = getattr(governance, name)
        assert value.__doc__, f"{name} has no docstring"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_module_all_lists_its_public_functions_and_classes(module: ModuleType) -> None:
    declared = set(module.__all__)
    assert all(hasattr(module, name) for name in declared)
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    }
    assert defined <= declared, f"missing from {module.__name__}.__all__: {defined - declared}"


def test_package_names_come_from_module_all() -> None:
    for name in governance.__all__:
        home = next(
            m for m in MODULES if hasattr(m, name) and getattr(m, name) is getattr(governance, name)
        )
        assert name in home.__all__, f"{name} is exported by the package but not by {home.__name__}"
