"""The host functions of PROTOCOL.md section 7, and the JSON-only value boundary.

Every test runs in both isolation modes (the ``runtime`` fixture): they must agree.
"""

from __future__ import annotations

import re

import pytest

from consortia._json import JSON, JSONObject
from consortia.errors import ActionFailed, NotFound, ScopeViolation
from consortia.sandbox import ActionRuntime, MemoryHost
from consortia.sandbox.memory import Notice, Write

from .conftest import ASKED_FIRST, run


def test_every_host_function(runtime: ActionRuntime) -> None:
    code = """
def main(params):
    put("orders/1", {"state": "new", "lines": [1, 2]})
    put("orders/2", params, visible_to = ["bob"])
    put("orders/2/items", [])
    delete("tmp")
    notify(["bob", "carol"], {"order": "1"})
    return {
        "caller": caller(),
        "txid": txid(),
        "now": now(),
        "visible_to": visible_to(),
        "members": members(),
        "order": get("orders/1"),
        "missing": get("orders/9"),
        "exists": [exists("orders/1"), exists("orders/9")],
        "keys": list_keys("orders/"),
    }
"""
    host = MemoryHost(caller="bob", visible_to=["carol"], state={"tmp": 1})
    result = run(runtime, code, {"n": 1}, host)
    assert result == {
        "caller": "bob",
        "txid": "00" * 16,
        "now": 1_700_000_000,
        "visible_to": ["carol"],
        "members": ["alice", "bob", "carol"],
        "order": {"state": "new", "lines": [1, 2]},
        "missing": None,
        "exists": [True, False],
        "keys": ["orders/1", "orders/2"],
    }
    assert host.writes == [
        Write("orders/1", {"state": "new", "lines": [1, 2]}, None),
        Write("orders/2", {"n": 1}, ("bob",)),
        Write("orders/2/items", [], None),
        Write("tmp", None, None, deleted=True),
    ]
    assert host.notices == [Notice(("bob", "carol"), {"order": "1"})]


def test_constant_host_answers_are_asked_once_per_run(runtime: ActionRuntime) -> None:
    code = """
def main(params):
    return [caller(), caller(), now(), now(), txid(), visible_to(), visible_to()]
"""
    host = MemoryHost()
    run(runtime, code, {}, host)
    # Asked once, before the run starts (they travel with it), however often the code asks.
    assert [entry[0] for entry in host.log] == ASKED_FIRST


def test_values_returned_by_get_are_copies(runtime: ActionRuntime) -> None:
    code = """
def main(params):
    order = get("order")
    order["state"] = "hacked"
    order["lines"].append(99)
    again = get("order")
    return [order["state"], again["state"], len(again["lines"])]
"""
    host = MemoryHost(state={"order": {"state": "new", "lines": [1]}})
    assert run(runtime, code, {}, host) == ["hacked", "new", 1]
    assert host.state["order"] == {"state": "new", "lines": [1]}
    assert host.writes == []


def test_params_and_results_round_trip_json(runtime: ActionRuntime) -> None:
    params: JSONObject = {
        "s": 'é😀\n"',
        "i": -(2**53 - 1),
        "j": 2**53 - 1,
        "f": 0.1,
        "g": -0.0,
        "big": 1e308,
        "b": [True, False, None],
        "nested": {"a": {"b": {"c": []}}},
        "empty": {},
    }
    assert run(runtime, "def main(params):\n    return params\n", params) == params


def test_main_may_return_none_and_tuples_become_lists(runtime: ActionRuntime) -> None:
    assert run(runtime, "def main(params):\n    pass\n") is None
    assert run(runtime, "def main(params):\n    return (1, (2, 3))\n") == [1, [2, 3]]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("float('nan')", "put value: nan is not a finite number"),
        ("float('-inf')", "put value: -inf is not a finite number"),
        ("{'a': [1, 1e308 * 10]}", 'put value["a"][1]: +inf is not a finite number'),
        ("{1: 'x'}", "put value: key 1 (int) is not a string"),
        ("{'ok': {True: 1}}", 'put value["ok"]: key True (bool) is not a string'),
        ("[9007199254740992]", "put value[0]: integer 9007199254740992 is outside"),
        ("{'f': main}", 'put value["f"]: function is not a JSON value'),
        ("range(3)", "put value: range is not a JSON value"),
        (
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "nests deeper than 32",
        ),
    ],
)
def test_non_json_values_are_refused_with_their_path(
    runtime: ActionRuntime, expression: str, expected: str
) -> None:
    host = MemoryHost()
    code = f"def main(params):\n    put('k', {expression})\n"
    with pytest.raises(ActionFailed) as caught:
        run(runtime, code, {}, host)
    assert expected in caught.value.message
    assert "line 2" in caught.value.message
    assert host.writes == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("notify(['bob'], {'x': float('nan')})", 'notify body["x"]: nan'),
        ("notify('bob', {})", "notify: members must be a list of member ids, not string"),
        ("notify([1], {})", "must hold member ids (strings), found int"),
        ("call('helper', {'x': {1: 2}})", 'call params["x"]: key 1 (int)'),
        ("call('helper', [])", "call: params must be a dict, not list"),
        ("get(1)", "get: key must be a string, not int"),
        ("put(None, 1)", "put: key must be a string, not NoneType"),
        ("put('k', 1, visible_to = 'bob')", "put: visible_to must be a list of member ids"),
        ("list_keys(['a/'])", "list_keys: prefix must be a string, not list"),
        ("return float('nan')", "result: nan is not a finite number"),
        ("return [main]", "result[0]: function is not a JSON value"),
    ],
)
def test_bad_host_arguments_are_action_failed(
    runtime: ActionRuntime, statement: str, expected: str
) -> None:
    host = MemoryHost(internal={"helper": "def main(params):\n    return 1\n"})
    with pytest.raises(ActionFailed) as caught:
        run(runtime, f"def main(params):\n    {statement}\n", {}, host)
    assert expected in caught.value.message
    assert host.writes == [] and host.notices == []


def test_fail_gives_exactly_the_authors_message(runtime: ActionRuntime) -> None:
    code = 'def main(params):\n    fail("order " + params["id"] + " is closed")\n'
    with pytest.raises(ActionFailed) as caught:
        run(runtime, code, {"id": "7"})
    assert caught.value.message == "order 7 is closed"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("return 1 // 0", "Floor division by zero"),
        ("return {}['missing']", 'Key `"missing"` was not found'),
        ("return 'a' + 1", "Operation `+` not supported for types `string` and `int`"),
        ("return [1][5]", "Index `5` is out of bound"),
        ("return params.x", "has no attribute `x`"),
        ("return int('x')", "int"),
    ],
)
def test_runtime_errors_are_action_failed_without_internals(
    runtime: ActionRuntime, body: str, expected: str
) -> None:
    with pytest.raises(ActionFailed) as caught:
        code = f"def helper(params):\n    {body}\n\ndef main(params):\n    return helper(params)\n"
        run(runtime, code, {})
    message = caught.value.message
    assert expected in message
    # starlark-rust may inline a small helper into its call site: either line is right.
    assert re.search(r"in action 'test' at line [25], column \d+", message)
    for leak in ("Traceback", "consortia.star", "site-packages", "/work/", ".py", "-->"):
        assert leak not in message


def test_host_errors_keep_their_code(runtime: ActionRuntime) -> None:
    host = MemoryHost()
    with pytest.raises(ScopeViolation, match=r"key '\$secret' is reserved"):
        run(runtime, "def main(params):\n    put('$secret', 1)\n", {}, host)
    with pytest.raises(ActionFailed, match="must end with '/'"):
        run(runtime, "def main(params):\n    return list_keys('orders')\n", {}, host)
    assert host.writes == []


class _Explodes(MemoryHost):
    """A host whose reads fail the way the engine's might."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def get(self, key: str) -> JSON:
        raise self.error


def test_the_hosts_own_exception_object_comes_back(runtime: ActionRuntime) -> None:
    error = NotFound("no such thing")
    with pytest.raises(NotFound) as caught:
        run(runtime, "def main(params):\n    return get('x')\n", {}, _Explodes(error))
    assert caught.value is error


def test_a_platform_fault_in_the_host_is_not_disguised(runtime: ActionRuntime) -> None:
    # Not the action's fault: the engine must see its own exception, not action_failed.
    error = RuntimeError("database is locked")
    with pytest.raises(RuntimeError) as caught:
        run(runtime, "def main(params):\n    return get('x')\n", {}, _Explodes(error))
    assert caught.value is error


def test_no_print_and_no_python_reachable(runtime: ActionRuntime) -> None:
    # Starlark's standard library only: no print (no stdout), no json, no struct, no set.
    for name in ("print", "json", "struct", "set", "open", "__import__", "eval", "exec"):
        with pytest.raises(ActionFailed, match=f"`{name}` not found"):
            runtime.compile("probe", f"def main(params):\n    return {name}\n")


# -- held-back writes: the host sees the same calls, in program order ------------------------


def test_writes_are_seen_by_later_reads_and_by_callees(runtime: ActionRuntime) -> None:
    callee = 'def main(params):\n    return get("k")\n'
    code = """
def main(params):
    put("k", 1)
    first = get("k")
    put("k", 2)
    return [first, call("reader", {}), exists("k")]
"""
    host = MemoryHost(internal={"reader": callee})
    assert run(runtime, code, {}, host) == [1, 2, True]
    assert [entry[0] for entry in host.log] == [
        *ASKED_FIRST,
        "put",
        "get",
        "put",
        "resolve_call",
        "get",
        "exists",
    ]


def test_many_writes_arrive_in_order(runtime: ActionRuntime) -> None:
    code = """
def main(params):
    for i in range(600):
        put("k/" + str(i), i)
    notify(["bob"], {"done": True})
    delete("k/0")
"""
    host = MemoryHost()
    run(runtime, code, {}, host)
    assert [write.key for write in host.writes] == [f"k/{i}" for i in range(600)] + ["k/0"]
    assert host.writes[-1].deleted
    assert [entry[0] for entry in host.log][-2:] == ["notify", "delete"]


@pytest.mark.parametrize(
    "after",
    [
        "return 1 // 0",
        "fail('later')",
        "return get('other')",
        "return call('reader', {})",
        "for i in range(2147483647):\n        pass",
        "return None",
    ],
)
def test_a_refused_write_fails_the_run_even_when_something_fails_later(
    runtime: ActionRuntime, after: str
) -> None:
    host = MemoryHost(internal={"reader": "def main(params):\n    return 1\n"})
    writes = "    put('ok', 1)\n    put('$reserved', 2)\n    put('never', 3)\n"
    code = f"def main(params):\n{writes}    {after}\n"
    with pytest.raises(ScopeViolation, match="reserved"):
        run(runtime, code, {}, host)
    # Nothing after the refused write reached the host.
    assert [entry[0] for entry in host.log] == [*ASKED_FIRST, "put", "put"]
