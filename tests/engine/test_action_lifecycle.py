"""Scenario: a Starlark action voted in at runtime, run, refused, replaced; hostile code."""

from __future__ import annotations

import pytest
from conftest import World

from consortia import Committed, Pending
from consortia._json import JSONObject
from consortia.errors import ConsortiaError
from testkit import js

V1 = """
def main(params):
    put("counter", (get("counter") or 0) + params["by"])
    return {"version": 1, "counter": get("counter")}
"""
V2 = """
def main(params):
    if params["by"] > 10:
        fail("steps above 10 need a change request")
    put("counter", (get("counter") or 0) + 2 * params["by"])
    return {"version": 2, "counter": get("counter")}
"""


def amend(world: World, code: str, permitted: tuple[str, ...], name: str = "bump") -> None:
    world.install(name, code, permitted)


def result_of(world: World, member: str) -> object:
    return [b for k, b in world.notes(member) if k == "result"][-1]


def test_voted_in_run_refused_replaced_without_restart(world: World) -> None:
    amend(world, V1, ("telco", "vendor"))
    assert isinstance(world.act("vendor", "bump", {"by": 5}, visible_to=["telco"]), Committed)
    assert result_of(world, "vendor") == {"version": 1, "counter": 5}
    # Not permitted: the installer.
    world.refused("permission_denied", world.sign("installer", "bump", {"by": 1}))
    # A later amendment replaces the code; the next run uses it, no restart.
    amend(world, V2, ("telco", "vendor", "installer"))
    assert isinstance(world.act("installer", "bump", {"by": 3}), Committed)
    assert result_of(world, "installer") == {"version": 2, "counter": 11}
    # The action's own validation refuses, and nothing changes.
    error = world.refused("action_failed", world.sign("installer", "bump", {"by": 11}))
    assert "change request" in error.message


def test_amendment_with_bad_code_is_refused_before_the_vote(world: World) -> None:
    params: JSONObject = {
        "name": "broken",
        "scope": "public",
        "language": "starlark",
        "code": "def main(params):\n    return = 1\n",
        "permissions": [{"member": "telco", "execute": True}],
        "voting": {"voters": "any", "majority": 1, "veto": []},
    }
    error = world.refused("action_failed", world.sign("telco", "amendConstitution", params))
    assert "line 2" in error.message
    params["code"] = 'def main(params):\n    return call("addMember", {})\n'
    world.refused("scope_violation", world.sign("telco", "amendConstitution", params))


LOOP = "def main(params):\n    for i in range(100000000):\n        pass\n"
DOUBLING = """
def main(params):
    s = "x"
    for i in range(40):
        s = s + s
    return len(s)
"""
HOSTILE = {
    "loop": (LOOP, "budget_exceeded"),
    "memory": (DOUBLING, "budget_exceeded"),
    "public_call": ('def main(params):\n    return call(params["a"], {})\n', "scope_violation"),
    "gov_write": ('def main(params):\n    put("gov/settings", {})\n', "scope_violation"),
    "non_json": ("def main(params):\n    return main\n", "action_failed"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_code_changes_nothing_and_the_platform_keeps_serving(
    world: World, case: str
) -> None:
    code, expected = HOSTILE[case]
    amend(world, code, ("telco",), name="hostile")
    amend(world, V1, ("telco",))
    before = world.fingerprint()
    with pytest.raises(ConsortiaError) as caught:
        world.act("telco", "hostile", {"a": "addMember"})
    assert caught.value.code == expected, caught.value
    assert world.fingerprint() == before
    assert isinstance(world.act("telco", "bump", {"by": 1}), Committed)
    assert js(result_of(world, "telco"))["counter"] == 1


def test_an_action_carries_its_own_voted_budget(world: World) -> None:
    work = (
        "def main(params):\n    n = 0\n    for i in range(200000):\n        n += i\n    return n\n"
    )
    params: JSONObject = {
        "name": "work",
        "scope": "public",
        "language": "starlark",
        "code": work,
        "permissions": [{"member": "telco", "execute": True}],
        "voting": {"voters": "any", "majority": 1, "veto": []},
        "budget": {"steps": 1000, "memory_bytes": 10**12},
    }
    error = world.refused("action_failed", world.sign("telco", "amendConstitution", params))
    assert "memory_bytes" in error.message
    amend(world, work, ("telco",), name="work")  # platform defaults: enough steps
    assert isinstance(world.act("telco", "work", {}), Committed)
    params["budget"] = {"steps": 2}  # the consortium votes a tighter limit for this action
    pending = world.act("telco", "amendConstitution", params)
    assert isinstance(pending, Pending)
    world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    shown = next(
        a
        for a in js(world.platform.member_view("acme", "vendor").constitution())["actions"]
        if a["name"] == "work"
    )
    assert shown["budget"] == {"steps": 2}
    world.refused("budget_exceeded", world.sign("telco", "work", {}))
