"""Family 5, what the host shows: ``/metrics`` for the operator only and without consortium
or action names, logs without query-string keys or parameter values, and a data directory
(ledger, analytics) without object-key segments, parameter values or nonces in clear.

The server runs with its defaults: analytics on, no access-log flag, no metrics flags.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import httpx
import pytest
from attack_kit import (
    TRACEBACK,
    Member,
    World,
    auth,
    bearer,
    canon,
    expect_committed,
    expect_error,
    expect_refused,
    nonce,
    now,
    sign,
    token_claims,
    world_running,
)

CID = "zephyrcorp"
ACTION = "placeSecretBid"
KEY_SEGMENT = "acme-bid"
QUERY_SEGMENT = "secret-acme-bid"
PARAM_MARKER = "param-value-marker-Q7Z"
LOT = "lot-7391"
NONCE_MARKER = "nonce-marker-0123456789abcdef"


@dataclass
class Leaky:
    world: World
    tokens: list[str] = field(default_factory=list)
    stopped_with: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    events: int = 0
    object_types: list[str] = field(default_factory=list)


def _traffic(w: World, leaky: Leaky) -> None:
    for index in range(3):
        params = {"key": f"{KEY_SEGMENT}/{LOT}-{index}", "price": PARAM_MARKER, "lot": LOT}
        expect_committed(w.record("telco", params, visible_to=["vendor"]))
    expect_committed(
        w.record("vendor", {"key": f"{KEY_SEGMENT}/x", "note": PARAM_MARKER}, nonce_=NONCE_MARKER)
    )
    # A refused request carrying the markers too (bad signature: its params never leave).
    bad = w.members["telco"]
    forged = Member("telco", signing=Member("x").signing, encryption=bad.encryption)
    answer = w.record("telco", {"key": f"{KEY_SEGMENT}/f", "p": PARAM_MARKER}, key=forged.signing)
    expect_error(answer, 401, "bad_signature")
    for reader in ("telco", "vendor", "installer"):
        token = w.token(reader)
        leaky.tokens.append(token)
        for path in ("object", "history"):
            for key in (f"{QUERY_SEGMENT}/{LOT}", f"{KEY_SEGMENT}/{LOT}-0"):
                got = w.http.get(
                    f"/v1/consortia/{CID}/{path}", params={"key": key}, headers=auth(token)
                )
                assert got.status_code in (200, 404), got.text
    # Unauthenticated and malformed reads with the key in the query string as well.
    assert w.http.get(f"/v1/consortia/{CID}/object?key={QUERY_SEGMENT}/a").status_code == 401
    assert w.http.get(f"/v1/consortia/{CID}/object?key={QUERY_SEGMENT}/a&x=1").status_code == 400
    assert w.http.get(f"/nowhere?key={QUERY_SEGMENT}/b").status_code == 404


@pytest.fixture(scope="module")
def leaky() -> Iterator[Leaky]:
    with world_running((), cid=CID, record_action=ACTION) as w:
        state = Leaky(w)
        _traffic(w, state)
        yield state


def _operator_token(w: World, **change: Any) -> str:
    claims = token_claims("operator", "metrics")
    claims.update(change)
    claims = {k: v for k, v in claims.items() if v is not None}
    return sign({"alg": "EdDSA", "kid": "operator", "typ": "JWT"}, canon(claims), w.operator)


def _metrics(w: World, headers: dict[str, str]) -> httpx.Response:
    return w.http.get("/metrics", headers=headers)


# -- /metrics ---------------------------------------------------------------------------------


def test_metrics_without_token_is_401(leaky: Leaky) -> None:
    answer = _metrics(leaky.world, {})
    expect_error(answer, 401, "bad_signature")


def test_metrics_with_operator_token_shows_no_names(leaky: Leaky) -> None:
    w = leaky.world
    answer = _metrics(w, auth(_operator_token(w)))
    assert answer.status_code == 200, answer.text[:300]
    text = answer.text
    assert "consortia_actions" in text and "consortia_http_requests" in text
    for name in (CID, ACTION, "amendConstitution", "voteFor", "telco", "vendor", KEY_SEGMENT):
        assert name not in text, f"/metrics names {name!r}"


BAD_OPERATOR_TOKENS: dict[str, Any] = {
    "member-token-aud-metrics": lambda w: bearer(
        w.members["telco"], "metrics", claims=token_claims("telco", "metrics")
    ),
    "member-key-kid-operator": lambda w: bearer(
        w.members["telco"], "metrics", kid="operator", claims=token_claims("operator", "metrics")
    ),
    "stranger-key-kid-operator": lambda w: bearer(
        Member("x"), "metrics", kid="operator", claims=token_claims("operator", "metrics")
    ),
    "aud-consortium": lambda w: _operator_token(w, aud=CID),
    "aud-missing": lambda w: _operator_token(w, aud=None),
    "exp-too-far": lambda w: _operator_token(w, exp=now() + 601),
    "expired": lambda w: _operator_token(w, iat=now() - 1000, exp=now() - 500),
    "iss-telco": lambda w: _operator_token(w, iss="telco"),
    "jti-missing": lambda w: _operator_token(w, jti=None),
    "creation-jws-as-token": lambda w: w.operator_jws(w.creation("x", [Member("a")])),
    "garbage": lambda w: "garbage",
}


@pytest.mark.parametrize("case", sorted(BAD_OPERATOR_TOKENS))
def test_metrics_refuses_other_tokens(leaky: Leaky, case: str) -> None:
    w = leaky.world
    answer = _metrics(w, auth(BAD_OPERATOR_TOKENS[case](w)))
    expect_refused(answer, [400, 401], ["bad_signature", "bad_request", "stale_request"])
    assert "consortia_actions" not in answer.text


def test_metrics_refuses_query_parameters(leaky: Leaky) -> None:
    w = leaky.world
    answer = w.http.get("/metrics?name=x", headers=auth(_operator_token(w)))
    expect_error(answer, 400, "bad_request")


# -- logs -------------------------------------------------------------------------------------

LOG_MARKERS = {
    "query-key": QUERY_SEGMENT,
    "key-segment": KEY_SEGMENT,
    "param-value": PARAM_MARKER,
    "lot": LOT,
    "nonce": NONCE_MARKER,
}


@pytest.mark.parametrize("case", sorted(LOG_MARKERS))
def test_logs_hold_no_keys_or_params(leaky: Leaky, case: str) -> None:
    output = leaky.world.server.output()
    assert "consortia: serving" in output  # the log is the right one
    assert LOG_MARKERS[case] not in output, f"server output holds {LOG_MARKERS[case]!r}"


def test_logs_hold_no_bearer_tokens(leaky: Leaky) -> None:
    output = leaky.world.server.output()
    for token in leaky.tokens:
        assert token.split(".")[2] not in output
    assert TRACEBACK not in output


# -- the data directory, after a graceful stop (analytics flushed) ---------------------------


@pytest.fixture(scope="module")
def stopped(leaky: Leaky) -> Leaky:
    w = leaky.world
    w.http.close()
    leaky.stopped_with = w.server.terminate(30)
    for path in sorted(w.server.data.rglob("*")):
        if path.is_file():
            leaky.files[str(path.relative_to(w.server.data))] = path.read_bytes()
    analytics = w.server.data / "analytics.duckdb"
    if analytics.exists():
        with duckdb.connect(str(analytics), read_only=True) as db:
            row = db.execute("SELECT count(*) FROM events").fetchone()
            leaky.events = int(row[0]) if row else 0
            types = db.execute(
                "SELECT DISTINCT object_type FROM events WHERE object_type IS NOT NULL"
            ).fetchall()
            leaky.object_types = [str(t[0]) for t in types]
    return leaky


def test_server_stopped_cleanly_and_analytics_were_written(stopped: Leaky) -> None:
    assert stopped.stopped_with == 0
    assert "ledger.sqlite" in stopped.files and "analytics.duckdb" in stopped.files
    assert stopped.events >= 10, f"only {stopped.events} analytics events were written"


def test_analytics_object_types_are_hashed(stopped: Leaky) -> None:
    assert stopped.object_types, "no event carries an object type"
    for object_type in stopped.object_types:
        assert KEY_SEGMENT not in object_type and QUERY_SEGMENT not in object_type
    assert any(t.startswith("#") for t in stopped.object_types), stopped.object_types


DATA_MARKERS = {
    "key-segment": KEY_SEGMENT,
    "query-key-segment": QUERY_SEGMENT,
    "param-value": PARAM_MARKER,
    "lot": LOT,
    "nonce": NONCE_MARKER,
}


@pytest.mark.parametrize("case", sorted(DATA_MARKERS))
def test_data_dir_holds_no_marker_in_clear(stopped: Leaky, case: str) -> None:
    marker = DATA_MARKERS[case].encode()
    holders = [name for name, data in stopped.files.items() if marker in data]
    assert not holders, f"{marker!r} in clear in {holders}"
    utf16 = DATA_MARKERS[case].encode("utf-16-le")
    assert not [name for name, data in stopped.files.items() if utf16 in data]


def test_stderr_has_no_traceback_after_stop(stopped: Leaky) -> None:
    assert TRACEBACK not in stopped.world.server.stderr()
    assert nonce() not in stopped.world.server.output()  # a trivially absent string: sanity
