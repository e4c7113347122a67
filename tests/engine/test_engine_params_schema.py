"""A params schema voted with an action: requests that do not match are refused before
anything runs or is stored, the schema survives a restart, and a bad one is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consortia import Committed, Pending
from consortia._json import JSONObject
from testkit import js
from world import World

CODE = 'def main(params):\n    put("order/" + params["id"], params)\n    return params["id"]\n'
SCHEMA: Any = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "order id"},
        "requestedCompletionDate": {"type": "string", "format": "date"},
    },
    "required": ["id"],
    "additionalProperties": False,
}


def _definition(**extra: Any) -> JSONObject:
    definition: JSONObject = js(
        {
            "name": "placeOrder",
            "scope": "public",
            "language": "starlark",
            "code": CODE,
            "permissions": [{"member": "telco", "execute": True}],
            "voting": {"voters": "any", "majority": 1, "veto": []},
            **extra,
        }
    )
    return definition


def _proposer(world: World, params: JSONObject) -> Callable[[], object]:
    return lambda: world.act("telco", "amendConstitution", params)


def test_requests_are_checked_against_the_voted_schema(world: World) -> None:
    world.install("placeOrder", CODE, params_schema=SCHEMA)
    shown = world.platform.member_view("acme", "vendor").constitution()
    entry = next(a for a in js(shown)["actions"] if a["name"] == "placeOrder")
    assert entry["params_schema"] == SCHEMA
    dated: JSONObject = {"id": "PO1", "requestedCompletionDate": "2027-01-31"}
    ok = world.act("telco", "placeOrder", dated)
    assert isinstance(ok, Committed)
    # A typo'd field and a missing one: refused, naming the path, storage unchanged.
    typo = world.expect_refusal(
        "bad_request",
        lambda: world.act("telco", "placeOrder", {"id": "PO2", "requestedCompletionDat": "x"}),
    )
    assert "params: unknown field 'requestedCompletionDat'" in typo.message
    empty = world.expect_refusal("bad_request", lambda: world.act("telco", "placeOrder", {}))
    assert "params.id is required" in empty.message
    # The schema is part of the stored constitution: a restart keeps enforcing it.
    world.reopen()
    again = world.expect_refusal("bad_request", lambda: world.act("telco", "placeOrder", {}))
    assert again.message == empty.message


def test_a_voted_action_refuses_bad_params_before_any_proposal(world: World) -> None:
    voting: JSONObject = {"voters": "all", "majority": 2, "veto": []}
    world.install("placeOrder", CODE, params_schema=SCHEMA, voting=voting)
    refused = world.expect_refusal("bad_request", lambda: world.act("telco", "placeOrder", {}))
    assert "params.id is required" in refused.message
    assert isinstance(world.act("telco", "placeOrder", {"id": "PO1"}), Pending)


def test_a_bad_schema_is_refused_before_the_vote(world: World) -> None:
    for params, fragment in (
        (_definition(params_schema={"type": "object", "required": 3}), "not a valid JSON Schema"),
        (
            _definition(params_schema={"type": "object", "$ref": "file:///etc/passwd"}),
            "points outside the schema",
        ),
        (
            {
                **_definition(),
                "name": "addMember",
                "language": "builtin",
                "code": None,
                "params_schema": SCHEMA,
            },
            "params_schema applies to Starlark actions",
        ),
    ):
        refused = world.expect_refusal("action_failed", _proposer(world, params))
        assert fragment in refused.message
