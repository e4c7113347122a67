"""Fuzz consortia.governance parsing: constitution pieces and the analytics policy."""

from __future__ import annotations

from boundary_kit import (
    FAST,
    MEDIUM,
    json_values,
    member_keys,
    only_consortia_errors,
    wild_objects,
    wild_scalars,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consortia._json import JSON
from consortia.governance.analytics_policy import parse_analytics_policy
from consortia.governance.parse import (
    parse_action_definition,
    parse_action_name,
    parse_budget,
    parse_member,
    parse_permissions,
    parse_voting,
)

_ALICE = member_keys("alice")
_anything = json_values(wild_scalars) | wild_objects
_ids = st.sampled_from(["alice", "bob", "", "-x", "a" * 65]) | wild_scalars
_permission = st.fixed_dictionaries(
    {},
    optional={
        "member": _ids,
        "execute": st.booleans() | wild_scalars,
        "valid_from": st.integers(-5, 10) | wild_scalars,
        "valid_to": st.integers(-5, 10) | wild_scalars,
        "other": wild_scalars,
    },
)
_voting = st.fixed_dictionaries(
    {},
    optional={
        "voters": st.sampled_from(["any", "all"]) | st.lists(_ids, max_size=3) | wild_scalars,
        "majority": st.integers(-1, 4) | wild_scalars,
        "veto": st.none() | st.lists(_ids, max_size=3) | wild_scalars,
    },
)
_budget = st.none() | st.dictionaries(
    st.sampled_from(["max_steps", "max_call_depth", "max_memory", "bogus"]) | st.text(max_size=8),
    st.integers(-1, 2**40) | wild_scalars,
    max_size=3,
)
_definition = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["placeOrder", "1bad", ""]) | wild_scalars,
        "scope": st.sampled_from(["public", "internal"]) | _anything,
        "language": st.sampled_from(["builtin", "starlark"]) | wild_scalars,
        "code": st.just("def main(ctx):\n    return 1\n") | wild_scalars,
        "permissions": st.lists(_permission, max_size=3) | _anything,
        "voting": _voting | _anything,
        "replace_self": wild_scalars,
        "budget": _budget | _anything,
    },
)
_member = st.fixed_dictionaries(
    {},
    optional={
        "id": _ids,
        "signing_key": st.just(dict(_ALICE.signing.public_jwk())) | _anything,
        "encryption_key": st.just(dict(_ALICE.encryption.public_jwk())) | _anything,
        "info": wild_objects | wild_scalars,
        "status": st.sampled_from(["active", "suspended", "removed"]) | _anything,
    },
)
_names = st.lists(st.sampled_from(["alice", "auditor", "bad name", ""]) | wild_scalars, max_size=4)
_policy = st.fixed_dictionaries(
    {},
    optional={
        "grants": st.dictionaries(
            st.sampled_from(["placeOrder", "1x"]) | st.text(max_size=6),
            st.lists(st.sampled_from(["sku", "a.b", "bad field!"]) | wild_scalars, max_size=3)
            | wild_scalars,
            max_size=3,
        )
        | _anything,
        "insights_full": _names | _anything,
        "alert_to": st.just("all") | _names | _anything,
        "suspend_on_alert": st.booleans() | wild_scalars,
        "object_types": _names | _anything,
        "other": wild_scalars,
    },
)


@settings(max_examples=MEDIUM, deadline=None)
@given(_definition | _anything)
@example({"name": "a", "scope": [], "language": "builtin", "permissions": [], "voting": {}})
def test_parse_action_definition(value: JSON) -> None:
    with only_consortia_errors():
        parse_action_definition(value)


@settings(max_examples=MEDIUM, deadline=None)
@given(st.lists(_permission, max_size=4) | _anything, _voting | _anything, _budget | _anything)
def test_parse_permissions_voting_budget(permissions: JSON, voting: JSON, budget: JSON) -> None:
    with only_consortia_errors():
        parse_permissions(permissions)
    with only_consortia_errors():
        parse_voting(voting)
    with only_consortia_errors():
        parse_budget(budget)
    with only_consortia_errors():
        parse_action_name(voting, what="name")


@settings(max_examples=MEDIUM, deadline=None)
@given(_member | _anything)
@example({**dict.fromkeys(("id", "signing_key", "encryption_key"), "x"), "status": [1]})
def test_parse_member(value: JSON) -> None:
    with only_consortia_errors():
        parse_member(value)


@settings(max_examples=MEDIUM, deadline=None)
@given(_policy | _anything)
@example({"grants": {}, "insights_full": [], "alert_to": [[]], "suspend_on_alert": False})
@example({"grants": {}, "insights_full": [[]], "alert_to": "all", "suspend_on_alert": False})
def test_parse_analytics_policy(value: JSON) -> None:
    with only_consortia_errors():
        parse_analytics_policy(value)


@settings(max_examples=FAST, deadline=None)
@given(_policy)
def test_parse_analytics_policy_round_trip(value: JSON) -> None:
    with only_consortia_errors():
        policy = parse_analytics_policy(value)
        assert parse_analytics_policy(policy.to_json()) == policy
