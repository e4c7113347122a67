"""Fixtures for the sandbox tests: one runtime per isolation mode, shared per session.

The process runtime is shared because starting an executor costs about 0.3 s; every test
that breaks it checks that it recovers, which is the point ("the runtime keeps serving").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consortia._json import JSON, JSONObject
from consortia.sandbox import ActionRuntime, Budget, MemoryHost

#: An action every hostile test runs afterwards, to show the runtime still serves.
HEALTHY = """
def main(params):
    put("health/" + params["id"], {"ok": True})
    return {"ok": get("health/" + params["id"])["ok"], "caller": caller()}
"""


#: The host calls every run makes before the action starts: their answers travel with the
#: run, so reading them costs action code no round trip to the host.
ASKED_FIRST = ["caller", "txid", "now", "visible_to"]


@pytest.fixture(scope="session")
def process_runtime() -> Iterator[ActionRuntime]:
    with ActionRuntime(isolation="process") as runtime:
        yield runtime


@pytest.fixture(scope="session")
def inline_runtime() -> Iterator[ActionRuntime]:
    with ActionRuntime(isolation="inline") as runtime:
        yield runtime


@pytest.fixture(params=["inline", "process"])
def runtime(
    request: pytest.FixtureRequest,
    inline_runtime: ActionRuntime,
    process_runtime: ActionRuntime,
) -> ActionRuntime:
    """Each semantic test runs in both isolation modes: they must agree."""
    return inline_runtime if request.param == "inline" else process_runtime


def run(
    runtime: ActionRuntime,
    code: str,
    params: JSONObject | None = None,
    host: MemoryHost | None = None,
    budget: Budget | None = None,
    name: str = "test",
) -> JSON:
    """Compile and run ``code`` once."""
    action = runtime.compile(name, code)
    return runtime.run(action, params or {}, host or MemoryHost(), budget)


def assert_still_serving(runtime: ActionRuntime) -> None:
    """A normal action still runs, and its writes and reads work."""
    host = MemoryHost(caller="bob")
    assert run(runtime, HEALTHY, {"id": "x"}, host) == {"ok": True, "caller": "bob"}
    assert [write.key for write in host.writes] == ["health/x"]
