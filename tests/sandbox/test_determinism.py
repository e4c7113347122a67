"""Determinism: the same action, params and host answers give the same result, writes,
notices and host calls in any runtime and any process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortia._json import JSON, JSONObject
from consortia.errors import ConsortiaError
from consortia.sandbox import ActionRuntime, Budget, MemoryHost

ORDER = """
def main(params):
    totals = {}
    for line in params["lines"]:
        sku = line["sku"]
        totals[sku] = totals.get(sku, 0) + line["qty"] * line["price"]
    for sku in sorted(totals.keys(), reverse = True):
        total = totals[sku]
        put("totals/" + sku, {"total": total, "third": total / 3.0, "text": str(total)})
    seen = list_keys("totals/")
    if params["notify"]:
        notify(["bob"], {"skus": seen, "count": len(totals)})
    if params["strict"] and len(totals) > 3:
        fail("too many products: %d (%s)" % (len(totals), ", ".join(seen)))
    return {
        "totals": totals,
        "order": [k for k in totals],
        "hashes": [hash(k) for k in seen],
        "repr": repr(totals),
        "by": caller(),
        "at": now(),
        "mixed": {"b": 1, "a": 2, "c": [1.5, -0.0, 1e300 * 1e8 if False else 2.5]},
    }
"""

_lines = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.text(alphabet="abcdé/😀", min_size=1, max_size=4),
            "qty": st.integers(min_value=-1000, max_value=1000),
            "price": st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=64)
            | st.integers(min_value=-(10**6), max_value=10**6),
        }
    ),
    max_size=8,
)
PARAMS = st.fixed_dictionaries({"lines": _lines, "notify": st.booleans(), "strict": st.booleans()})


@pytest.fixture(scope="module")
def second_process_runtime() -> Iterator[ActionRuntime]:
    with ActionRuntime(isolation="process") as runtime:
        yield runtime


def outcome(runtime: ActionRuntime, params: JSONObject) -> tuple[object, ...]:
    host = MemoryHost(caller="bob", state={"totals/old": 1})
    action = runtime.compile("order", ORDER)
    result: JSON | tuple[str, str]
    try:
        # Only the deterministic limit may stop it: a wall-time limit on a loaded machine
        # could fire in one process and not in another.
        result = runtime.run(action, params, host, Budget(time_ms=30_000))
    except ConsortiaError as exc:
        result = (exc.code, exc.message)
    return result, host.log, host.writes, host.notices, host.state


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=PARAMS)
def test_same_inputs_same_everything(
    params: JSONObject,
    inline_runtime: ActionRuntime,
    process_runtime: ActionRuntime,
    second_process_runtime: ActionRuntime,
) -> None:
    first = outcome(inline_runtime, params)
    assert outcome(process_runtime, params) == first
    assert outcome(second_process_runtime, params) == first
    assert outcome(inline_runtime, params) == first


def test_key_order_entering_and_leaving_action_code(runtime: ActionRuntime) -> None:
    # Objects entering action code (params, get, call results) arrive with sorted keys, so
    # the order a client happened to send cannot change an outcome; dicts the action
    # builds keep their insertion order on the way out.
    code = 'def main(params):\n    return {"z": [k for k in params], "a": get("obj")}\n'
    host = MemoryHost(state={"obj": {"y": 1, "b": 2}})
    result = runtime.run(runtime.compile("o", code), {"y": 1, "b": 2, "é": 3, "B": 4}, host)
    assert result == {"z": ["B", "b", "y", "é"], "a": {"b": 2, "y": 1}}
    assert isinstance(result, dict)
    assert list(result) == ["z", "a"]
