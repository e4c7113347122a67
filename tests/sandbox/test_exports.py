"""The sandbox's public face is small and pinned."""

from __future__ import annotations

from consortia import sandbox


def test_public_names() -> None:
    assert sorted(sandbox.__all__) == [
        "ActionRuntime",
        "Budget",
        "BuiltinTarget",
        "CallTarget",
        "CompiledAction",
        "HOST_FUNCTIONS",
        "Host",
        "Isolation",
        "MAX_CODE_CHARS",
        "MemoryHost",
        "StarlarkTarget",
    ]
    for name in sandbox.__all__:
        assert getattr(sandbox, name) is not None


def test_host_functions_are_those_of_protocol_section_7() -> None:
    assert sandbox.HOST_FUNCTIONS == (
        "caller",
        "txid",
        "now",
        "visible_to",
        "members",
        "get",
        "exists",
        "put",
        "delete",
        "list_keys",
        "notify",
        "call",
    )


def test_budget_defaults_and_validation() -> None:
    budget = sandbox.Budget()
    assert (budget.steps, budget.time_ms, budget.max_call_depth) == (1_000, 1_000, 8)
    assert budget.memory_bytes == 256 * 2**20
    assert sandbox.Budget.from_wire(budget.to_wire()) == budget
    for bad in ({"steps": 0}, {"time_ms": -1}, {"max_call_depth": -1}, {"steps": True}):
        try:
            sandbox.Budget(**bad)
        except ValueError:
            continue
        raise AssertionError(f"Budget accepted {bad}")
