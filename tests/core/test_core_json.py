"""Strict JSON parsing and canonical bytes (consortia._json)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia._json import (
    JSON,
    MAX_DEPTH,
    _nesting_depth,
    canonical,
    check_value,
    copy_json,
    loads_strict,
)
from consortia.errors import BadRequest, ConsortiaError

_SAFE = 2**53 - 1
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-_SAFE, _SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_canonical_is_rfc8785(value: JSON) -> None:
    """The fast path never differs from the reference JCS encoder."""
    assert canonical(value) == rfc8785.dumps(value)


tricky_text = st.text(alphabet='.eE+-0123456789"\\/truefalsnIfiyNa \u2028\x00', max_size=12)
tricky = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-_SAFE, _SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(tricky)
def test_canonical_tells_floats_from_look_alike_strings(value: JSON) -> None:
    """Strings full of digits, dots, exponents, quotes, escapes and literal names never make
    the fast path mistake a value for one with (or without) a float."""
    assert canonical(value) == rfc8785.dumps(value)


def test_canonical_handles_keys_that_sort_differently_in_utf16() -> None:
    value: JSON = {"\U0001f600": 1, "\ufb01": 2}
    assert canonical(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (b"\xff", "UTF-8"),
        ('{"a":1,"a":2}', "duplicate"),
        ("NaN", "NaN"),
        ("[1e400]", "finite"),
        ("9007199254740993", "2**53"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "deeper"),
        ("{", "not valid JSON"),
        ('"\\ud800"', "surrogate"),
        ('{"\\udfff": 1}', "surrogate"),
        ("\ufeff[1]", "byte order mark"),
        ("\ufeff[1]".encode(), "byte order mark"),
        ('[1] {"extra": 1}', "Extra data"),
        # Past 4,300 digits Python's int() raises inside the decoder; refused first, with a path.
        ('{"p":[0,' + "9" * 5000 + "]}", "JSON.p[1]: an integer of 5000 digits"),
        ('{"iat":-' + "1" * 4301 + "}", "JSON.iat: an integer of 4301 digits"),
        ("12345678901234567", "17 digits"),
    ],
)
def test_loads_strict_refuses(text: str | bytes, fragment: str) -> None:
    with pytest.raises(ConsortiaError) as caught:
        loads_strict(text)
    assert caught.value.code == "bad_request"
    assert fragment in caught.value.message


def test_loads_strict_accepts_depth_limit_and_brackets_in_strings() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_strict(deep) is not None
    assert loads_strict('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == {"a": "[" * 37}


def reference_loads(text: str) -> JSON:
    """The rules spelled out the slow way: walk every bracket, check every value with paths."""
    if _nesting_depth(text) > MAX_DEPTH:
        raise BadRequest(f"JSON nests deeper than {MAX_DEPTH} levels")

    def pairs(items: list[tuple[str, JSON]]) -> dict[str, JSON]:
        obj: dict[str, JSON] = {}
        for key, item in items:
            if key in obj:
                raise BadRequest(f"duplicate JSON object key {key!r}")
            obj[key] = item
        return obj

    def constant(name: str) -> JSON:
        raise BadRequest(f"{name} is not valid JSON; send a finite number")

    try:
        value: JSON = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"JSON is not valid JSON: {exc.msg} at position {exc.pos}") from None
    return check_value(value, what="JSON")


# JSON text built from pieces that sit on each rule's edge.
leaf_texts = st.sampled_from(
    [
        "0",
        "-0",
        "1.5",
        "1e400",
        "-1e400",
        "9007199254740991",
        "9007199254740992",
        "-9007199254740993",
        "NaN",
        "Infinity",
        "true",
        "null",
        '"a"',
        '"\\ud800"',
        '"\\uDC00x"',
        '"\\\\ud800"',
        '"\\u00e9"',
        '"\\ud83d\\ude00"',
        '"[[{"',
        "1.0",
        "[]",
        "{}",
    ]
)
key_texts = st.sampled_from(['"k"', '"j"', '"\\ud800"', '"\\\\ud800"', '"k"'])
json_texts = st.recursive(
    leaf_texts,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
        | st.lists(st.tuples(key_texts, inner), max_size=4).map(
            lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
        )
    ),
    max_leaves=25,
)


def outcome(parse: Callable[[], JSON]) -> tuple[str, object]:
    try:
        return ("ok", parse())
    except BadRequest as exc:
        return ("refused", exc.message)


@settings(max_examples=600, deadline=None)
@given(json_texts, st.integers(0, 40))
def test_loads_strict_decides_and_explains_exactly_as_the_full_walk(text: str, wrap: int) -> None:
    text = "[" * wrap + text + "]" * wrap
    expected = outcome(lambda: reference_loads(text))
    assert outcome(lambda: loads_strict(text)) == expected
    assert outcome(lambda: loads_strict(text.encode())) == expected


def test_a_lone_surrogate_in_str_input_is_refused_without_an_escape() -> None:
    with pytest.raises(BadRequest, match="lone UTF-16 surrogate"):
        loads_strict('["\ud800"]')


def containers(value: object) -> list[object]:
    found: list[object] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)
    return found


@settings(max_examples=200, deadline=None)
@given(values)
def test_copy_json_is_equal_and_shares_no_container(value: JSON) -> None:
    copied = copy_json(value)
    assert copied == value
    assert not {id(c) for c in containers(copied)} & {id(c) for c in containers(value)}
