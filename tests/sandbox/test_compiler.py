"""compile(): syntax and structure errors are refused with positions, at submission time."""

from __future__ import annotations

import re

import pytest

from consortia.errors import ActionFailed
from consortia.sandbox import MAX_CODE_CHARS, ActionRuntime, CompiledAction, MemoryHost
from consortia.sandbox.compiler import MAX_NESTING, code_hash

from .conftest import assert_still_serving, run

OK = "def main(params):\n    return params\n"


def refusal(runtime: ActionRuntime, code: str) -> str:
    with pytest.raises(ActionFailed) as caught:
        runtime.compile("act", code)
    assert caught.value.code == "action_failed"
    return caught.value.message


def test_compile_returns_a_compiled_action(runtime: ActionRuntime) -> None:
    action = runtime.compile("echo", OK)
    assert action == CompiledAction("echo", code_hash(OK), OK, ())
    assert re.fullmatch(r"[0-9a-f]{64}", action.code_hash)
    assert runtime.run(action, {"a": [1, 2.5, None]}, MemoryHost()) == {"a": [1, 2.5, None]}


@pytest.mark.parametrize(
    ("code", "position"),
    [
        ("def main(params)\n    return 1\n", "line 1, column 17"),
        ("def main(params):\n    x = (1 +\n", "line 2"),
        ("def main(params):\n    return 1\n  x = 2\n", "line 3"),
        ("def main(params):\n    while True:\n        pass\n", "line 2, column 5"),
        ("def main(params):\n    return f'{params}'\n", "line 2"),
    ],
)
def test_syntax_errors_name_line_and_column(
    runtime: ActionRuntime, code: str, position: str
) -> None:
    message = refusal(runtime, code)
    assert message.startswith("act: ")
    assert position in message


def test_unknown_names_are_refused_at_compile_time_with_position(runtime: ActionRuntime) -> None:
    message = refusal(runtime, "def main(params):\n    return print('hi')\n")
    assert "`print` not found" in message
    assert "line 2, column 12" in message


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("X = 1\n", "no `def main(params):`"),
        ("def main():\n    return 1\n", "exactly one parameter"),
        ("def main(params, extra):\n    return 1\n", "exactly one parameter"),
        ("def main(p):\n    return 1\n", "exactly one parameter"),
        ("def main(*params):\n    return 1\n", "exactly one parameter"),
        ("def main(params=None):\n    return 1\n", "exactly one parameter"),
        ("main = 3\n", "main must be a function"),
        (OK + "if True:\n    X = 1\n", "top-level `if`"),
        (OK + "for i in range(3):\n    pass\n", "top-level `for`"),
        (OK + "main(1)\n", "top-level `expr`"),
        (OK + "X = [1] * 10\n", "must be a constant"),
        (OK + "X = len('abc')\n", "must be a constant"),
        (OK + "def f(x = len('a')):\n    return x\n", "default value must be a constant"),
        (OK + "X += 1\n", "top-level `augassign`"),
        (OK + "get = 1\n", "`get` is a host function"),
        (OK + "def put(a, b):\n    return 1\n", "`put` is a host function"),
        (OK + "consortia__x = 1\n", "reserved"),
        ("def main(params):\n    consortia__entry = 1\n    return 1\n", "reserved"),
    ],
)
def test_structure_rules(runtime: ActionRuntime, code: str, expected: str) -> None:
    message = refusal(runtime, code)
    assert expected in message
    assert re.search(r"line \d+, column \d+", message)


def test_constants_docstring_and_helpers_are_allowed(runtime: ActionRuntime) -> None:
    code = '''"""Order helpers."""
LIMIT = 3
STATES = ("new", "done")
TABLE = {"a": [1, -2, 3.5], "b": None, "c": True}

def helper(x, scale = LIMIT):
    return x * scale

def main(params):
    return {"v": helper(params["n"]), "states": STATES, "table": TABLE}
'''
    result = run(runtime, code, {"n": 2})
    assert result == {
        "v": 6,
        "states": ["new", "done"],
        "table": {"a": [1, -2, 3.5], "b": None, "c": True},
    }


def test_literal_calls_are_listed_in_source_order(runtime: ActionRuntime) -> None:
    code = """
def helper(params):
    return call("second", {}) + call(action = "third", params = {})

def main(params):
    name = "dynamic"
    call("first", {})
    call(name, {})
    call("second", {})
    return helper(params)
"""
    action = runtime.compile("act", code)
    assert action.literal_calls == ("second", "third", "first")


def test_size_and_nesting_limits() -> None:
    # Pure structure checks: the same in both modes, no need for an executor.
    with ActionRuntime(isolation="inline") as runtime:
        assert "the limit is" in refusal(runtime, OK + "#" * MAX_CODE_CHARS)
        chain = "def main(params):\n    return " + "1+" * (MAX_NESTING + 10) + "1\n"
        assert f"deeper than {MAX_NESTING}" in refusal(runtime, chain)
        huge = "def main(params):\n    return " + "(" * 100_000 + ")" * 100_000 + "\n"
        refusal(runtime, huge)  # would overflow starlark-rust's parser: refused before it
        assert "NUL" in refusal(runtime, OK + "\x00")
        assert_still_serving(runtime)


def test_compile_is_cached_by_code_hash(runtime: ActionRuntime) -> None:
    first = runtime.compile("one", OK)
    second = runtime.compile("two", OK)
    assert first.code_hash == second.code_hash
    assert (first.name, second.name) == ("one", "two")


def test_a_hand_made_compiled_action_is_checked_before_it_runs(runtime: ActionRuntime) -> None:
    forged = CompiledAction("forged", code_hash("X = 1\n"), "X = 1\n", ())
    with pytest.raises(ActionFailed, match="no `def main"):
        runtime.run(forged, {}, MemoryHost())
    mismatched = CompiledAction("mismatch", "0" * 64, OK, ())
    with pytest.raises(ActionFailed, match="code_hash does not match"):
        runtime.run(mismatched, {}, MemoryHost())


@pytest.mark.parametrize(
    "code",
    [
        "def main(params):\n    return len('x' * 2000000000)\n",
        "def main(params):\n    return len(('x',) * (1 << 28))\n",
    ],
)
def test_constant_folding_bombs_are_contained_at_compile_time(
    process_runtime: ActionRuntime, code: str
) -> None:
    # starlark-rust folds constant expressions while compiling, so compiling hostile code is
    # itself hostile: in process isolation it happens in the executor, under its limits.
    message = refusal(process_runtime, code)
    assert "compiling" in message
    assert_still_serving(process_runtime)
