"""Family 7, genesis: consortium creation (PROTOCOL.md section 8) by the operator key only,
each operator nonce used once (a reuse is ``replay``, also across a restart), and a creation
payload checked as strictly as any other request."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import nacl.signing
import pytest
from attack_kit import (
    JOSE,
    Member,
    World,
    b64d,
    b64e,
    canon,
    expect_error,
    expect_refused,
    nonce,
    now,
    sign,
    world_running,
)


@pytest.fixture(scope="module")
def w() -> Iterator[World]:
    with world_running(record=False) as world:
        yield world


def _post(w: World, body: str) -> httpx.Response:
    return w.http.post("/v1/consortia", content=body, headers=JOSE)


def _fresh(prefix: str) -> str:
    return f"{prefix}-{nonce()[:8]}"


def test_control_creation_is_201_and_retry_is_the_same(w: World) -> None:
    cid = _fresh("c")
    body = w.operator_jws(w.creation(cid, [Member("a")]))
    first = _post(w, body)
    assert first.status_code == 201, first.text
    assert first.json()["consortium"] == cid and first.json()["seqno"] == 0
    again = _post(w, body)
    assert (again.status_code, again.json()) == (201, first.json())


def test_reused_operator_nonce_for_another_consortium_is_replay(w: World) -> None:
    used = nonce()
    first = _post(w, w.operator_jws(w.creation(_fresh("c"), [Member("a")], nonce_=used)))
    assert first.status_code == 201, first.text
    second = _post(w, w.operator_jws(w.creation(_fresh("c"), [Member("a")], nonce_=used)))
    expect_error(second, 409, "replay")


def test_reused_operator_nonce_for_the_same_consortium_is_refused(w: World) -> None:
    used, cid = nonce(), _fresh("c")
    assert _post(w, w.operator_jws(w.creation(cid, [Member("a")], nonce_=used))).status_code == 201
    other = w.operator_jws(w.creation(cid, [Member("b")], nonce_=used, name="Other name"))
    expect_refused(_post(w, other), [400, 409], ["replay", "bad_request"])


def test_reused_nonce_of_the_acme_genesis_is_replay(w: World) -> None:
    # The module's own consortium was made through the wire; reuse its nonce after the fact.
    genesis = w.read("telco", "transactions/" + _genesis_txid(w))
    assert genesis.status_code == 200, genesis.text
    record = _record(genesis.json()["record"])
    used = _payload_of(record["request"])["nonce"]
    body = w.operator_jws(w.creation(_fresh("c"), [Member("a")], nonce_=used))
    expect_error(_post(w, body), 409, "replay")


def _genesis_txid(w: World) -> str:
    history = w.read("telco", "notifications")
    assert history.status_code == 200, history.text
    for note in history.json():
        if note.get("action") == "createConsortium":
            return str(note["txid"])
    raise AssertionError(f"no createConsortium notification: {history.text[:300]}")


def _record(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(b64d(text))
    return value


def _payload_of(jws: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(b64d(jws.split(".")[1]))
    return value


def _signed_by(
    key: Callable[[World], nacl.signing.SigningKey],
    kid: str = "operator",
    typ: str = "consortia-create",
) -> Callable[[World], str]:
    def build(w: World) -> str:
        header = {"alg": "EdDSA", "kid": kid, "typ": typ}
        return sign(header, canon(w.creation(_fresh("c"), [Member("a")])), key(w))

    return build


WRONG_SIGNER: dict[str, tuple[Callable[[World], str], int, str]] = {
    "stranger-key-kid-operator": (_signed_by(lambda w: Member("x").signing), 401, "bad_signature"),
    "member-key-kid-operator": (
        _signed_by(lambda w: w.members["telco"].signing),
        401,
        "bad_signature",
    ),
    "operator-key-kid-telco": (_signed_by(lambda w: w.operator, kid="telco"), 400, "bad_request"),
}


@pytest.mark.parametrize("case", sorted(WRONG_SIGNER))
def test_creation_by_anyone_but_the_operator_is_refused(w: World, case: str) -> None:
    build, status, code = WRONG_SIGNER[case]
    expect_error(_post(w, build(w)), status, code)


@pytest.mark.parametrize("typ", ["consortia-action", "JWT", "consortia-key-proof"])
def test_creation_with_another_typ_is_refused(w: World, typ: str) -> None:
    # protocol-notes: the operator's creation request uses typ "consortia-create".
    build = _signed_by(lambda w: w.operator, typ=typ)
    expect_error(_post(w, build(w)), 400, "bad_request", contains=["typ"])


def test_creation_forged_signature(w: World) -> None:
    head, body, _ = w.operator_jws(w.creation(_fresh("c"), [Member("a")])).split(".")
    forged = f"{head}.{body}.{b64e(bytes(64))}"
    expect_error(_post(w, forged), 401, "bad_signature")


@pytest.mark.parametrize("skew", [-400, 400])
def test_stale_creation_is_refused(w: World, skew: int) -> None:
    body = w.operator_jws(w.creation(_fresh("c"), [Member("a")], iat=now() + skew))
    expect_error(_post(w, body), 401, "stale_request")


def test_existing_consortium_with_fresh_nonce_is_refused(w: World) -> None:
    body = w.operator_jws(w.creation(w.cid, [Member("a")]))
    expect_error(_post(w, body), 400, "bad_request", contains=["exists"])


def _members(edit: Callable[[list[dict[str, Any]]], Any]) -> dict[str, Any]:
    founders = [Member("a").public_info(), Member("b").public_info()]
    return {"members": edit(founders)}


BAD_CREATIONS: dict[str, dict[str, Any]] = {
    "cid-path": {"consortium": "../etc"},
    "cid-empty": {"consortium": ""},
    "cid-number": {"consortium": 5},
    "name-empty": {"name": ""},
    "name-too-long": {"name": "n" * 201},
    "template-unknown": {"template": "nosuch"},
    "template-number": {"template": 1},
    "members-empty": {"members": []},
    "members-not-list": {"members": {"a": 1}},
    "member-not-object": {"members": ["a"]},
    "unknown-field": {"extra": True},
    "nonce-short": {"nonce": "short"},
    "iat-string": {"iat": "now"},
    "duplicate-founders": _members(lambda f: [f[0], f[0]]),
    "founder-private-key": _members(
        lambda f: [{**f[0], "signing_key": {**f[0]["signing_key"], "d": b64e(bytes(32))}}]
    ),
    "founder-small-order-encryption-key": _members(
        lambda f: [
            {**f[0], "encryption_key": {"kty": "OKP", "crv": "X25519", "x": b64e(bytes(32))}}
        ]
    ),
    "founder-wrong-curve": _members(
        lambda f: [{**f[0], "signing_key": {**f[0]["signing_key"], "crv": "X25519"}}]
    ),
    "founder-bad-id": _members(lambda f: [{**f[0], "id": "a b"}]),
    "founder-missing-keys": _members(lambda f: [{"id": "a"}]),
}


@pytest.mark.parametrize("case", sorted(BAD_CREATIONS))
def test_malformed_creation_is_refused(w: World, case: str) -> None:
    payload = w.creation(_fresh("c"), [Member("a")])
    payload.update(BAD_CREATIONS[case])
    _, _, message = expect_refused(
        _post(w, w.operator_jws(payload)),
        [400, 404, 422],
        ["bad_request", "action_failed", "not_found"],
    )
    assert message


def test_huge_integer_iat_in_creation_names_iat(w: World) -> None:
    text = canon(w.creation(_fresh("c"), [Member("a")])).replace(
        b'"iat":', b'"iat":' + b"7" * 5000 + b',"x":', 1
    )
    body = sign({"alg": "EdDSA", "kid": "operator", "typ": "consortia-create"}, text, w.operator)
    expect_error(_post(w, body), 400, "bad_request", contains=["iat"])


def test_operator_nonce_is_still_used_after_a_restart(w: World) -> None:
    used = nonce()
    first = _post(w, w.operator_jws(w.creation(_fresh("c"), [Member("a")], nonce_=used)))
    assert first.status_code == 201, first.text
    w.http.close()
    assert w.server.terminate(30) == 0
    w.server.start()
    w.http = w.server.client()
    again = _post(w, w.operator_jws(w.creation(_fresh("c"), [Member("a")], nonce_=used)))
    expect_error(again, 409, "replay")
