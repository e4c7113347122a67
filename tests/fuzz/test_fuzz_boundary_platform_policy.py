"""Fuzz the platform policy's parser (setPlatformPolicy's params and ``gov/platform``)."""

from __future__ import annotations

from boundary_kit import (
    FAST,
    MEDIUM,
    json_values,
    only_consortia_errors,
    wild_objects,
    wild_scalars,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consortia._json import JSON
from consortia.governance.platform_policy import parse_platform_policy

_anything = json_values(wild_scalars) | wild_objects
_measurement = st.text("0123456789abcdefABCDEF", min_size=94, max_size=98) | wild_scalars
_tcb = st.fixed_dictionaries(
    {},
    optional={
        name: st.integers(-2, 258) | wild_scalars
        for name in ("bootloader", "tee", "snp", "microcode", "fmc", "sme")
    },
)
_policy = st.fixed_dictionaries(
    {},
    optional={
        "measurements": st.lists(_measurement, max_size=4) | wild_scalars,
        "min_tcb": st.none() | _tcb | wild_scalars,
        "allow_virtual": st.booleans() | wild_scalars,
        "allow_stop": wild_scalars,
    },
)


@settings(max_examples=MEDIUM, deadline=None)
@given(_policy | _anything)
@example({"measurements": [["x"]], "min_tcb": None, "allow_virtual": True})
@example({"measurements": [], "min_tcb": {"snp": [1]}, "allow_virtual": True})
def test_parse_platform_policy(value: JSON) -> None:
    with only_consortia_errors():
        parse_platform_policy(value)


@settings(max_examples=FAST, deadline=None)
@given(_policy)
def test_parse_platform_policy_round_trip(value: JSON) -> None:
    with only_consortia_errors():
        policy = parse_platform_policy(value)
        assert parse_platform_policy(policy.to_json()) == policy
