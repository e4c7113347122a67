"""Family 9, the sandbox: runaway Starlark voted in as actions (endless loops, huge
allocations, deep recursion) is refused as ``budget_exceeded`` with nothing changed, the
server keeps serving, and its log holds no Python traceback."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from attack_kit import (
    TRACEBACK,
    World,
    expect_committed,
    expect_error,
    nonce,
    sign_action,
    world_running,
)

RUNAWAY = {
    "loopForever": """
def main(params):
    n = 0
    for i in range(1000000000):
        n += i
    return n
""",
    "nestedLoops": """
def main(params):
    n = 0
    for i in range(100000):
        for j in range(100000):
            n += 1
    return n
""",
    "doubleString": """
def main(params):
    s = "a" * 1000
    for i in range(40):
        s = s + s
    return len(s)
""",
    "hugeList": """
def main(params):
    x = [0] * 500000000
    return len(x)
""",
    "growDict": """
def main(params):
    d = {}
    for i in range(100000000):
        d[str(i)] = i
    return len(d)
""",
    "deepRecursion": """
def f(n):
    return f(n + 1)

def main(params):
    return f(0)
""",
    "mutualRecursion": """
def main(params):
    fs = []
    def g(n):
        return fs[0](n + 1)
    fs.append(g)
    return g(0)
""",
    "putThenLoop": """
def main(params):
    put("runaway/" + params["id"], {"half": "done"})
    n = 0
    for i in range(1000000000):
        n += i
    return n
""",
}


@pytest.fixture(scope="module")
def w() -> Iterator[World]:
    with world_running() as world:
        for name, code in RUNAWAY.items():
            world.amend(name, code, voters=["telco", "vendor"])
        yield world


def _alive(w: World) -> None:
    assert w.http.get("/healthz").json() == {"status": "ok"}
    expect_committed(w.record("vendor", {"order": nonce()}))


@pytest.mark.parametrize("action", sorted(RUNAWAY))
def test_runaway_action_is_budget_exceeded_and_the_server_serves_on(w: World, action: str) -> None:
    answer = w.act("telco", action, {"id": nonce()})
    expect_error(answer, 422, "budget_exceeded")
    assert "Traceback" not in answer.text and 'File "' not in answer.text
    _alive(w)


def test_runaway_changes_nothing(w: World) -> None:
    marker = nonce()
    expect_error(w.act("telco", "putThenLoop", {"id": marker}), 422, "budget_exceeded")
    expect_error(w.read("telco", "object", {"key": f"runaway/{marker}"}), 404, "not_found")


def test_runaway_repeated_back_to_back(w: World) -> None:
    for action in ("hugeList", "loopForever", "hugeList"):
        expect_error(w.act("telco", action, {}), 422, "budget_exceeded")
    _alive(w)


def test_honest_request_alongside_a_runaway_commits(w: World) -> None:
    outcome: dict[str, httpx.Response] = {}

    def runaway() -> None:
        with w.server.client() as http:
            outcome["runaway"] = http.post(
                f"/v1/consortia/{w.cid}/actions",
                content=_signed(w, "hugeList"),
                headers={"content-type": "application/jose"},
            )

    thread = threading.Thread(target=runaway)
    thread.start()
    honest = w.record("installer", {"order": nonce()})
    thread.join(30)
    expect_committed(honest)
    expect_error(outcome["runaway"], 422, "budget_exceeded")


def _signed(w: World, action: str) -> str:
    return sign_action(w.members["telco"], w.cid, action, {})


def test_no_python_traceback_in_the_server_log(w: World) -> None:
    assert w.server.alive()
    output = w.server.output()
    assert TRACEBACK not in output, output[output.find(TRACEBACK) :][:800]
