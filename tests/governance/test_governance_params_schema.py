"""Params schemas: what amendConstitution accepts as a schema, and what a refusal says."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.errors import ActionFailed, BadRequest
from consortia.governance.params_schema import check_schema, describe_params, validate_params
from testkit import js

ORDER: Any = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the order id"},
        "requestedCompletionDate": {"type": "string", "format": "date"},
        "devices": {
            "type": "array",
            "items": {"$ref": "#/$defs/device"},
            "description": "what to ship",
        },
        "mode": {"enum": ["pause", "autoCorrect"]},
    },
    "required": ["id", "devices"],
    "additionalProperties": False,
    "$defs": {
        "device": {
            "type": "object",
            "properties": {
                "part": {"type": "string", "pattern": "^[a-z]+-[0-9]+$", "description": "SKU"},
                "count": {"type": "integer", "minimum": 1},
            },
            "required": ["part"],
            "additionalProperties": False,
        }
    },
}


def _refusal(params: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        validate_params(check_schema(ORDER, what="s"), js(params), action="placeOrder")
    return caught.value.message


def test_a_refusal_names_each_wrong_path() -> None:
    validate_params(ORDER, {"id": "PO1", "devices": [{"part": "cpe-100"}]}, action="placeOrder")
    message = _refusal({})
    assert "params.id is required" in message and "params.devices is required" in message
    assert "consortia action show placeOrder" in message
    message = _refusal({"id": "PO1", "devices": [{}], "requestedCompletionDat": "2026-01-01"})
    assert "params.devices[0].part is required" in message
    assert "params: unknown field 'requestedCompletionDat'" in message
    assert "allowed: devices, id, mode, requestedCompletionDate" in message
    assert 'params.mode must be one of "pause", "autoCorrect"' in _refusal(
        {"id": "PO1", "devices": [], "mode": "later"}
    )
    assert "params.devices[0].count: 0 is less than the minimum of 1" in _refusal(
        {"id": "PO1", "devices": [{"part": "cpe-100", "count": 0}]}
    )
    assert "does not match" in _refusal({"id": "PO1", "devices": [{"part": "CPE 100"}]})
    assert "is not a 'date'" in _refusal(
        {"id": "PO1", "devices": [], "requestedCompletionDate": "2026-13-45"}
    )
    many = _refusal({"devices": [{}] * 9})
    assert "(and " in many and many.count("is required") == 5


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ([], "must be a JSON Schema object"),
        ({"type": "array"}, "type must be 'object'"),
        ({"type": "object", "properties": {"a": {"type": "strng"}}}, "not a valid JSON Schema"),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://evil.example/s.json"}}},
            "points outside the schema",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)"}}},
            "is not RE2 syntax",
        ),
        (
            {"type": "object", "patternProperties": {"^x": {}}, "additionalProperties": False},
            "patternProperties with additionalProperties",
        ),
        (
            {"type": "object", "description": "x" * (64 * 1024)},
            "larger than 65536 bytes",
        ),
    ],
)
def test_a_bad_schema_is_refused_at_amendment(schema: Any, fragment: str) -> None:
    with pytest.raises(ActionFailed, match=fragment):
        check_schema(js(schema), what="params.params_schema")


def test_patterns_cannot_make_validation_backtrack() -> None:
    # (a+)+$ takes exponential time in a backtracking engine on "aaaa…b"; RE2 is linear.
    schema: Any = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
    started = time.perf_counter()
    with pytest.raises(BadRequest, match="does not match"):
        validate_params(check_schema(schema, what="s"), {"s": "a" * 5000 + "b"}, action="x")
    assert time.perf_counter() - started < 2.0


def test_describe_lists_every_documented_field_with_its_type() -> None:
    rows = {path: (kind, required, text) for path, kind, required, text in describe_params(ORDER)}
    assert rows["id"] == ("string", True, "the order id")
    assert rows["devices"] == ("array of object", True, "what to ship")
    assert rows["devices[].part"] == ("string", True, "SKU")
    assert rows["devices[].count"][:2] == ("integer", False)
    assert rows["mode"][0] == 'one of "pause", "autoCorrect"'


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "devices", "mode", "x"]), st.integers() | st.text()))
def test_validation_refuses_or_accepts_but_never_raises_anything_else(params: Any) -> None:
    try:
        validate_params(ORDER, params, action="placeOrder")
    except BadRequest as exc:
        assert exc.code == "bad_request" and exc.message.startswith("params of 'placeOrder'")
