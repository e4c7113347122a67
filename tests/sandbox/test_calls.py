"""call(): internal actions only, nested in the sandbox, cycles and depth refused."""

from __future__ import annotations

import pytest

from consortia._json import JSON, JSONObject
from consortia.errors import ActionFailed, BudgetExceeded, ScopeViolation, UnknownAction
from consortia.sandbox import ActionRuntime, Budget, MemoryHost

from .conftest import ASKED_FIRST, assert_still_serving, run

PRICE = """
def main(params):
    put("priced/" + params["sku"], True)
    return {"sku": params["sku"], "price": 10 * params["qty"], "by": caller()}
"""


def _double(params: JSONObject) -> JSON:
    value = params["n"]
    return value * 2 if isinstance(value, int) else None


def test_internal_starlark_and_builtin_calls(runtime: ActionRuntime) -> None:
    code = """
def main(params):
    priced = call("price", {"sku": "a", "qty": 3})
    doubled = call("double", {"n": priced["price"]})
    return [priced, doubled]
"""
    host = MemoryHost(internal={"price": PRICE}, builtins={"double": _double})
    assert run(runtime, code, {}, host) == [{"sku": "a", "price": 30, "by": "alice"}, 60]
    assert [entry[0] for entry in host.log] == [
        *ASKED_FIRST,
        "resolve_call",
        "put",
        "resolve_call",
        "call_builtin",
    ]
    assert host.log[-1] == ("call_builtin", ("double", {"n": 30}))


def test_calling_a_public_action_is_a_scope_violation(runtime: ActionRuntime) -> None:
    host = MemoryHost(public=["addMember"])
    code = 'def main(params):\n    call("addMember", {"id": "mallory"})\n'
    with pytest.raises(ScopeViolation, match="public action"):
        run(runtime, code, {}, host)
    assert runtime.compile("x", code).literal_calls == ("addMember",)
    assert host.writes == [] and host.notices == []
    assert_still_serving(runtime)


def test_calling_a_public_action_by_computed_name_is_refused_too(runtime: ActionRuntime) -> None:
    host = MemoryHost(public=["addMember"])
    code = 'def main(params):\n    call("add" + "Member", {})\n'
    assert runtime.compile("x", code).literal_calls == ()
    with pytest.raises(ScopeViolation):
        run(runtime, code, {}, host)


def test_unknown_action(runtime: ActionRuntime) -> None:
    with pytest.raises(UnknownAction):
        run(runtime, 'def main(params):\n    call("nope", {})\n')


CALLS_OTHER = 'def main(params):\n    return call("{target}", params)\n'


def test_cycles_are_scope_violations(runtime: ActionRuntime) -> None:
    host = MemoryHost(
        internal={
            "a": CALLS_OTHER.format(target="b"),
            "b": CALLS_OTHER.format(target="a"),
            "self": CALLS_OTHER.format(target="self"),
        }
    )
    with pytest.raises(ScopeViolation, match="call cycle test -> a -> b -> a"):
        run(runtime, CALLS_OTHER.format(target="a"), {}, host)
    with pytest.raises(ScopeViolation, match="call cycle self -> self"):
        run(runtime, CALLS_OTHER.format(target="self"), {}, host, name="self")
    assert host.writes == []
    assert_still_serving(runtime)


def test_call_depth_is_bounded(runtime: ActionRuntime) -> None:
    chain = {f"a{i}": CALLS_OTHER.format(target=f"a{i + 1}") for i in range(12)}
    chain["a12"] = "def main(params):\n    return params['depth']\n"
    host = MemoryHost(internal=chain)
    # a0 .. a12 is 12 calls below the top-level a0.
    with pytest.raises(ScopeViolation, match="calls nest deeper than 8 levels"):
        run(runtime, chain["a0"], {"depth": 12}, host, name="a0")
    deep_enough = Budget(max_call_depth=12)
    assert (
        run(runtime, chain["a0"], {"depth": 12}, MemoryHost(internal=chain), deep_enough, "a0")
        == 12
    )
    with pytest.raises(ScopeViolation):
        run(
            runtime,
            CALLS_OTHER.format(target="a12"),
            {},
            MemoryHost(internal=chain),
            Budget(max_call_depth=0),
        )


def test_a_nested_failure_names_the_inner_action(runtime: ActionRuntime) -> None:
    inner = "def main(params):\n    x = params['n']\n    return x // 0\n"
    host = MemoryHost(internal={"inner": inner})
    with pytest.raises(ActionFailed, match=r"in action 'inner' at line 3"):
        run(runtime, 'def main(params):\n    return call("inner", {"n": 1})\n', {}, host)
    host = MemoryHost(internal={"inner": 'def main(params):\n    fail("inner says no")\n'})
    with pytest.raises(ActionFailed, match=r"^inner says no$"):
        run(runtime, 'def main(params):\n    return call("inner", {})\n', {}, host)


def test_nested_actions_share_the_step_budget(runtime: ActionRuntime) -> None:
    spin = "def main(params):\n    for i in range(params['n']):\n        pass\n    return 1\n"
    host = MemoryHost(internal={"spin": spin})
    code = 'def main(params):\n    return [call("spin", {"n": 300000}) for _ in range(5)]\n'
    with pytest.raises(BudgetExceeded, match="steps"):
        run(runtime, code, {}, host, Budget(steps=1000, time_ms=10_000))


def test_a_broken_internal_action_fails_the_call(runtime: ActionRuntime) -> None:
    host = MemoryHost(internal={"broken": "def main(params)\n    return 1\n"})
    with pytest.raises(ActionFailed, match="broken: syntax error at line 1"):
        run(runtime, 'def main(params):\n    return call("broken", {})\n', {}, host)
    assert_still_serving(runtime)


class _CallsBack(MemoryHost):
    """A host whose builtin tries to re-enter the runtime that is running it."""

    def __init__(self, runtime: ActionRuntime) -> None:
        super().__init__(builtins={"reenter": self._reenter})
        self._runtime = runtime

    def _reenter(self, params: JSONObject) -> JSON:
        action = self._runtime.compile("inner", "def main(params):\n    return 1\n")
        return self._runtime.run(action, {}, MemoryHost())


def test_a_host_may_not_re_enter_the_runtime(runtime: ActionRuntime) -> None:
    host = _CallsBack(runtime)
    with pytest.raises(RuntimeError, match="not re-entrant"):
        run(runtime, 'def main(params):\n    return call("reenter", {})\n', {}, host)
    assert_still_serving(runtime)
