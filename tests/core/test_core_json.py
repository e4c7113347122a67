"""Strict JSON parsing and canonical bytes (consortia._json)."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia._json import JSON, MAX_DEPTH, canonical, loads_strict
from consortia.errors import ConsortiaError

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
