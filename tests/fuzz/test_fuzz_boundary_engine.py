"""Fuzz consortia.wire: unwrap_body and the action/operator payload checks."""

from __future__ import annotations

from boundary_kit import (
    MEDIUM,
    jose_like,
    json_values,
    member_keys,
    mutations,
    only_consortia_errors,
    signed,
    wild_objects,
    wild_scalars,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia._json import JSON
from consortia.identity.jwe import encrypt_compact
from consortia.wire import (
    ACTION_TYP,
    CREATE_TYP,
    parse_action_request,
    parse_operator_request,
    unwrap_body,
)

_SERVICE = member_keys("service").encryption
_ACTION: dict[str, JSON] = {
    "consortium": "c1",
    "member": "alice",
    "action": "placeOrder",
    "params": {"sku": "a"},
    "visible_to": ["alice", "bob"],
    "nonce": "n" * 16,
    "iat": 1_700_000_000,
}
_CREATE: dict[str, JSON] = {
    "consortium": "c1",
    "name": "C",
    "template": "telco",
    "members": [{"id": "alice"}],
    "nonce": "n" * 16,
    "iat": 1_700_000_000,
}
_VALID_ACTION = signed(_ACTION, typ=ACTION_TYP)
_VALID_JWE = encrypt_compact(_VALID_ACTION.encode("ascii"), _SERVICE.public_key)


def _all_parsers(body: str | bytes) -> None:
    with only_consortia_errors():
        jws = unwrap_body(body, _SERVICE)
        with only_consortia_errors():
            parse_action_request(jws, "c1")
        with only_consortia_errors():
            parse_operator_request(jws)


@settings(max_examples=MEDIUM, deadline=None)
@given(st.text() | st.binary() | jose_like | mutations(_VALID_ACTION) | mutations(_VALID_JWE))
def test_unwrap_body_random_and_mutated(body: str | bytes) -> None:
    _all_parsers(body)
    if isinstance(body, str):
        _all_parsers(body.encode("utf-8", "surrogatepass"))


def _fields(base: dict[str, JSON]) -> st.SearchStrategy[dict[str, JSON]]:
    return st.fixed_dictionaries(
        {}, optional={k: st.just(v) | json_values(wild_scalars) for k, v in base.items()}
    )


@settings(max_examples=MEDIUM, deadline=None)
@given(
    _fields(_ACTION) | _fields(_CREATE) | json_values(wild_scalars),
    wild_objects,
    st.sampled_from([ACTION_TYP, CREATE_TYP, None, "JWT"]),
    st.sampled_from(["alice", "operator"]),
    st.booleans(),
)
def test_signed_random_payloads(
    payload: JSON, extra: dict[str, JSON], typ: str | None, member: str, wrap: bool
) -> None:
    if isinstance(payload, dict) and extra and len(payload) % 2:
        payload = {**extra, **payload}
    token = signed(payload, member=member, typ=typ)
    _all_parsers(token)
    if wrap:
        _all_parsers(encrypt_compact(token.encode("ascii"), _SERVICE.public_key))


def test_valid_inputs_parse() -> None:
    """The seeds the mutations start from are valid, so the fuzzing reaches deep checks."""
    for body in (_VALID_ACTION, _VALID_JWE):
        assert parse_action_request(unwrap_body(body, _SERVICE), "c1").action == "placeOrder"
    create = signed(_CREATE, member="operator", typ=CREATE_TYP)
    assert parse_operator_request(unwrap_body(create, _SERVICE)).consortium == "c1"
