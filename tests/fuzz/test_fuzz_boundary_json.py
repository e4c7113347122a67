"""Fuzz consortia._json.loads_strict: succeed or raise BadRequest, for any text or bytes."""

from __future__ import annotations

import json

from boundary_kit import MEDIUM, json_values, mutations, only_consortia_errors, wild_scalars
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia._json import MAX_DEPTH, check_value, loads_strict
from consortia.errors import BadRequest

_tricky = [
    "[" * 100_000,
    "{" * 50 + "}" * 50,
    '{"a":' * 40 + "1" + "}" * 40,
    "1" * 5000,
    "-" + "9" * 5000,
    "1e99999",
    "-1e400",
    "NaN",
    "[Infinity]",
    "-Infinity",
    '{"a":1,"a":2}',
    '"\\ud800"',
    '{"\\udc00":1}',
    '"\ud800"',
    "\ufeff{}",
    "",
    " ",
    '"\\u00"',
    "[1,]",
    '{"a"}',
    "0" * 20 + ".5",
    "9007199254740992",
    "1.5e308" + "0" * 10,
]


def _parse(data: str | bytes) -> None:
    with only_consortia_errors():
        value = loads_strict(data)
        # Whatever was accepted satisfies the platform's rules.
        check_value(value)


@settings(max_examples=MEDIUM, deadline=None)
@given(st.text())
def test_loads_strict_random_text(text: str) -> None:
    _parse(text)


@settings(max_examples=MEDIUM, deadline=None)
@given(st.binary())
def test_loads_strict_random_bytes(data: bytes) -> None:
    _parse(data)


@settings(max_examples=MEDIUM, deadline=None)
@given(st.sampled_from(_tricky), st.booleans())
def test_loads_strict_tricky_inputs(text: str, as_bytes: bool) -> None:
    _parse(text.encode("utf-8", "surrogatepass") if as_bytes else text)


@settings(max_examples=MEDIUM, deadline=None)
@given(json_values(wild_scalars), st.booleans())
def test_loads_strict_serialized_values(value: object, as_bytes: bool) -> None:
    text = json.dumps(value)
    _parse(text.encode("utf-8", "surrogatepass") if as_bytes else text)


@settings(max_examples=MEDIUM, deadline=None)
@given(json_values(wild_scalars).map(json.dumps).flatmap(mutations))
def test_loads_strict_mutated_values(text: str) -> None:
    _parse(text)
    _parse(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=40, deadline=None)
@given(st.integers(MAX_DEPTH - 2, 3000), st.sampled_from(["[", '{"k":']), st.booleans())
def test_loads_strict_deep_nesting(depth: int, opener: str, close: bool) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "0" + (closer * depth if close else "")
    if depth > MAX_DEPTH:
        try:
            loads_strict(text)
        except BadRequest:
            return
        raise AssertionError(f"nesting of {depth} accepted")
    _parse(text)


@settings(max_examples=40, deadline=None)
@given(st.integers(17, 20_000), st.booleans())
def test_loads_strict_huge_integers(digits: int, negative: bool) -> None:
    text = ("-" if negative else "") + "7" * digits
    for data in (text, f"[{text}]", f'{{"n":{text}}}'):
        try:
            loads_strict(data)
        except BadRequest:
            continue
        raise AssertionError(f"{digits}-digit integer accepted")
