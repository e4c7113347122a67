"""Bearer tokens (PROTOCOL.md section 4): claims, and every edge of the validity window."""

from __future__ import annotations

import json

import pytest

from consortia.errors import BadRequest, BadSignature, StaleRequest
from consortia.identity import (
    MemberKeys,
    b64url_decode,
    issue_token,
    read_token,
    sign_compact,
    verify_token,
)
from consortia.identity.jwt import MAX_LIFETIME

NOW = 1_700_000_000
ALICE = MemberKeys.generate("alice")
BOB = MemberKeys.generate("bob")


def _verify(token: str, *, now: int = NOW, audience: str = "telco", leeway: int = 60) -> object:
    parsed = read_token(token)
    return verify_token(parsed, ALICE.signing.verify_key, audience=audience, now=now, leeway=leeway)


def _custom(claims: dict[str, object], *, kid: str = "alice", typ: str | None = "JWT") -> str:
    return sign_compact(json.dumps(claims).encode(), ALICE.signing, kid=kid, typ=typ)


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": "alice",
        "aud": "telco",
        "iat": NOW,
        "exp": NOW + 300,
        "jti": "j-1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_valid_token() -> None:
    token = issue_token(ALICE, audience="telco", now=NOW, jti="abc")
    assert _verify(token) == {
        "iss": "alice",
        "aud": "telco",
        "iat": NOW,
        "exp": NOW + 300,
        "jti": "abc",
    }
    parsed = read_token(token)
    assert parsed.kid == "alice"
    assert parsed.typ == "JWT"


def test_random_jti() -> None:
    first = b64url_decode(issue_token(ALICE, audience="t", now=NOW).split(".")[1], what="p")
    second = b64url_decode(issue_token(ALICE, audience="t", now=NOW).split(".")[1], what="p")
    jti = json.loads(first)["jti"]
    assert len(jti) == 32
    assert int(jti, 16) >= 0
    assert jti != json.loads(second)["jti"]


def test_wrong_key_is_bad_signature() -> None:
    token = issue_token(BOB, audience="telco", now=NOW)
    with pytest.raises(BadSignature):
        verify_token(read_token(token), ALICE.signing.verify_key, audience="telco", now=NOW)


def test_wrong_audience() -> None:
    token = issue_token(ALICE, audience="other", now=NOW)
    with pytest.raises(BadRequest, match="audience 'other', not 'telco'"):
        _verify(token)


def test_audience_array() -> None:
    assert _verify(_custom(_claims(aud=["x", "telco"]))) is not None
    with pytest.raises(BadRequest):
        _verify(_custom(_claims(aud=["x", "y"])))
    with pytest.raises(BadRequest):
        _verify(_custom(_claims(aud=[])))
    with pytest.raises(BadRequest):
        _verify(_custom(_claims(aud=7)))


def test_iss_must_equal_kid() -> None:
    with pytest.raises(BadRequest, match="does not match header 'kid'"):
        _verify(_custom(_claims(iss="bob")))


@pytest.mark.parametrize(
    ("now", "valid"),
    [
        (NOW, True),
        (NOW + 300 + 59, True),  # last second inside exp + leeway
        (NOW + 300 + 60, False),  # now >= exp + leeway: expired
        (NOW + 10_000, False),
        (NOW - 60, True),  # iat == now + leeway: just valid
        (NOW - 61, False),  # iat > now + leeway: not yet valid
    ],
)
def test_validity_window_edges(now: int, valid: bool) -> None:
    token = issue_token(ALICE, audience="telco", now=NOW)
    if valid:
        assert _verify(token, now=now) is not None
    else:
        with pytest.raises(StaleRequest):
            _verify(token, now=now)


def test_zero_leeway_edges() -> None:
    token = issue_token(ALICE, audience="telco", now=NOW, lifetime=10)
    assert _verify(token, now=NOW + 9, leeway=0) is not None
    with pytest.raises(StaleRequest, match="expired"):
        _verify(token, now=NOW + 10, leeway=0)
    with pytest.raises(StaleRequest, match="not valid yet"):
        _verify(token, now=NOW - 1, leeway=0)
    with pytest.raises(BadRequest, match="leeway"):
        _verify(token, leeway=-1)


def test_nbf_respected() -> None:
    with pytest.raises(StaleRequest, match="not valid before"):
        _verify(_custom(_claims(nbf=NOW + 61)))
    assert _verify(_custom(_claims(nbf=NOW + 60))) is not None


def test_lifetime_limits_on_issue() -> None:
    assert _verify(issue_token(ALICE, audience="telco", now=NOW, lifetime=MAX_LIFETIME))
    with pytest.raises(BadRequest, match="exceeds the maximum of 600"):
        issue_token(ALICE, audience="telco", now=NOW, lifetime=601)
    for bad in (0, -5, True):
        with pytest.raises(BadRequest, match="positive integer"):
            issue_token(ALICE, audience="telco", now=NOW, lifetime=bad)


def test_lifetime_limits_on_verify() -> None:
    assert _verify(_custom(_claims(exp=NOW + 600))) is not None
    with pytest.raises(BadRequest, match="maximum is 600"):
        _verify(_custom(_claims(exp=NOW + 601)))
    with pytest.raises(BadRequest, match="must be after 'iat'"):
        _verify(_custom(_claims(exp=NOW)))


@pytest.mark.parametrize(
    "changes",
    [
        {"iat": str(NOW)},
        {"iat": float(NOW)},
        {"iat": True},
        {"iat": None},
        {"exp": None},
        {"exp": [NOW]},
        {"iss": None},
        {"iss": 5},
        {"aud": None},
        {"jti": None},
        {"jti": ""},
        {"jti": 12},
        {"jti": "x" * 257},
        {"nbf": "soon"},
    ],
)
def test_ill_typed_claims(changes: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        _verify(_custom(_claims(**changes)))


def test_claims_must_be_an_object() -> None:
    token = sign_compact(b"[1,2]", ALICE.signing, kid="alice", typ="JWT")
    with pytest.raises(BadRequest, match="JSON object"):
        _verify(token)
    token = sign_compact(b"not json", ALICE.signing, kid="alice", typ="JWT")
    with pytest.raises(BadRequest, match="not valid JSON"):
        _verify(token)


def test_typ() -> None:
    assert _verify(_custom(_claims(), typ=None)) is not None
    assert _verify(_custom(_claims(), typ="jwt")) is not None
    assert _verify(_custom(_claims(), typ="application/jwt")) is not None
    # A signed action must never double as a bearer token.
    with pytest.raises(BadRequest, match="'typ' must be 'JWT'"):
        read_token(_custom(_claims(), typ="consortia-action"))


def test_read_token_is_strict() -> None:
    with pytest.raises(BadRequest):
        read_token("not.a.token")
    with pytest.raises(BadRequest, match="limit"):
        read_token("a" * 10_000)
