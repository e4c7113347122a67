"""Family 2, input: malformed JSON, duplicate keys, NaN, deep nesting, lone surrogates, huge
integers (refused at parse, naming the path, signed or not, without touching the honest
requests of the same group commit), media types, body sizes and query parameters."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import nacl.signing
import pytest
from attack_kit import (
    JOSE,
    Member,
    World,
    action_header,
    action_payload,
    b64d,
    b64e,
    canon,
    expect_committed,
    expect_error,
    expect_refused,
    nonce,
    sign_action,
    sign_raw,
    world_running,
)

HUGE = "9" * 5000
#: A string value in the signed payload, and its JSON text, replaced by a raw literal.
MARK_VALUE = "@@HUGE@@"
MARK = f'"{MARK_VALUE}"'


@pytest.fixture(scope="module")
def w() -> Iterator[World]:
    with world_running() as world:
        yield world


def _payload(w: World, member: str = "telco", **over: Any) -> dict[str, Any]:
    payload = action_payload(member, w.cid, w.record_action, {"order": nonce()})
    payload.update(over)
    return payload


def _signed_bytes(
    w: World, text: bytes, *, member: str = "telco", key: nacl.signing.SigningKey | None = None
) -> str:
    header = json.dumps(action_header(member)).encode()
    return sign_raw(header, text, key or w.members[member].signing)


def _with_marker(payload: dict[str, Any], literal: str) -> bytes:
    text = canon(payload).decode()
    assert MARK in text
    return text.replace(MARK, literal, 1).encode()


def _forge(jws: str) -> str:
    """The same JWS with one bit of its signature flipped (still canonical base64url)."""
    head, body, sig = jws.split(".")
    raw = bytearray(b64d(sig))
    raw[7] ^= 0x40
    return f"{head}.{body}.{b64e(bytes(raw))}"


# -- huge integers ---------------------------------------------------------------------------

SIGNERS = ("valid", "bad-signature", "stranger")


def _huge_body(w: World, where: str, signer: str, literal: str = HUGE) -> str:
    member = "mallory" if signer == "stranger" else "telco"
    payload = _payload(w, member)
    if where == "params":
        payload["params"] = {"order": nonce(), "amount": MARK_VALUE}
    elif where == "params-nested":
        payload["params"] = {"order": nonce(), "a": {"b": [1, MARK_VALUE]}}
    elif where == "iat":
        payload["iat"] = MARK_VALUE
    elif where == "visible_to":
        payload["visible_to"] = [MARK_VALUE]
    elif where == "nonce":
        payload["nonce"] = MARK_VALUE
    elif where == "txref":
        payload["txref"] = MARK_VALUE
    key = Member("mallory").signing if signer == "stranger" else None
    body = _signed_bytes(w, _with_marker(payload, literal), member=member, key=key)
    return _forge(body) if signer == "bad-signature" else body


PATH_WORD = {
    "params": "params",
    "params-nested": "params",
    "iat": "iat",
    "visible_to": "visible_to",
    "nonce": "nonce",
    "txref": "txref",
}


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize("where", ["params", "iat"])
def test_5000_digit_integer_is_refused_at_parse_naming_the_path(
    w: World, where: str, signer: str
) -> None:
    answer = w.post(_huge_body(w, where, signer))
    expect_error(answer, 400, "bad_request", contains=[PATH_WORD[where]])
    assert len(answer.content) < 2000  # the message does not echo the digits


@pytest.mark.parametrize("where", ["params-nested", "visible_to", "nonce", "txref"])
def test_5000_digit_integer_elsewhere_names_its_path(w: World, where: str) -> None:
    expect_error(
        w.post(_huge_body(w, where, "valid")), 400, "bad_request", contains=[PATH_WORD[where]]
    )


LITERALS = {
    "negative-5000-digits": "-" + HUGE,
    "17-digits": "1" * 17,
    "2-pow-53": str(2**53),
    "minus-2-pow-53": str(-(2**53)),
    "float-overflow": "1e400",
    "float-huge-exponent": "1e999999999",
    "float-5000-digits": HUGE + ".5",
    "negative-zero-exponent-overflow": "-1E+400",
}


@pytest.mark.parametrize("case", sorted(LITERALS))
def test_out_of_range_numbers_in_params(w: World, case: str) -> None:
    body = _huge_body(w, "params", "valid", LITERALS[case])
    expect_error(w.post(body), 400, "bad_request", contains=["params"])


@pytest.mark.parametrize("literal", [str(2**53 - 1), str(-(2**53 - 1)), "1.5e300", "0.0"])
def test_control_largest_safe_numbers_commit(w: World, literal: str) -> None:
    expect_committed(w.post(_huge_body(w, "params", "valid", literal)))


def test_huge_integer_in_the_header_is_refused(w: World) -> None:
    header = b'{"alg":"EdDSA","kid":"telco","typ":"consortia-action","n":' + HUGE.encode() + b"}"
    body = sign_raw(header, canon(_payload(w)), w.members["telco"].signing)
    expect_error(w.post(body), 400, "bad_request", contains=["header"])


def test_poisoned_bodies_do_not_touch_honest_requests_in_the_same_commit(w: World) -> None:
    honest = [
        sign_action(w.members[m], w.cid, w.record_action, {"order": f"batch-{i}-{nonce()[:6]}"})
        for i, m in enumerate(["telco", "vendor", "installer"] * 20)
    ]
    poisoned = [
        *(_huge_body(w, "params", "valid") for _ in range(2)),
        *(_huge_body(w, "iat", "valid") for _ in range(2)),
        _huge_body(w, "params", "bad-signature"),
        _huge_body(w, "iat", "bad-signature"),
        _huge_body(w, "params-nested", "bad-signature"),
        _huge_body(w, "params", "stranger"),
        _huge_body(w, "iat", "stranger"),
        _huge_body(w, "params-nested", "stranger"),
    ]
    # Interleaved: one poisoned body after every six honest ones.
    bodies: list[tuple[str, bool]] = []
    for index, body in enumerate(honest):
        bodies.append((body, True))
        if index % 6 == 5:
            bodies.append((poisoned[index // 6], False))
    assert len(bodies) == 70
    barrier = threading.Barrier(len(bodies))

    def send(item: tuple[str, bool]) -> tuple[bool, int, str, str]:
        with w.server.client() as http:
            assert http.get("/healthz").status_code == 200  # connection open before the rush
            barrier.wait(30)
            answer = http.post(f"/v1/consortia/{w.cid}/actions", content=item[0], headers=JOSE)
            return item[1], answer.status_code, answer.text, item[0]

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        results = list(pool.map(send, bodies))
    honest_answers = [r for r in results if r[0]]
    poisoned_answers = [r for r in results if not r[0]]
    bad_honest = [(s, t[:200]) for _, s, t, _ in honest_answers if s != 200]
    assert not bad_honest, f"{len(bad_honest)} honest requests failed: {bad_honest[:5]}"
    seqnos = [json.loads(t)["seqno"] for _, _, t, _ in honest_answers]
    assert len(set(seqnos)) == len(honest)
    for _, status, text, _ in poisoned_answers:
        body = json.loads(text)
        assert status == 400 and body["error"]["code"] == "bad_request", text[:300]
        message = body["error"]["message"]
        assert "params" in message or "iat" in message, message


# -- malformed JSON --------------------------------------------------------------------------

MALFORMED: dict[str, Callable[[World], bytes]] = {
    "not-json": lambda w: b"not json",
    "truncated": lambda w: canon(_payload(w))[:-1],
    "trailing-garbage": lambda w: canon(_payload(w)) + b"x",
    "trailing-second-object": lambda w: canon(_payload(w)) + b"{}",
    "trailing-comma": lambda w: canon(_payload(w))[:-1] + b",}",
    "single-quotes": lambda w: canon(_payload(w)).replace(b'"', b"'"),
    "unquoted-keys": lambda w: canon(_payload(w)).replace(b'"iat"', b"iat"),
    "comment": lambda w: b"/*c*/" + canon(_payload(w)),
    "array": lambda w: b"[" + canon(_payload(w)) + b"]",
    "null": lambda w: b"null",
    "string": lambda w: b'"payload"',
    "number": lambda w: b"1",
    "empty-object": lambda w: b"{}",
    "whitespace": lambda w: b"   ",
    "byte-order-mark": lambda w: b"\xef\xbb\xbf" + canon(_payload(w)),
    "invalid-utf8": lambda w: canon(_payload(w)).replace(b'"params":{', b'"params":{"\xff":1,'),
    "utf8-encoded-surrogate": lambda w: canon(_payload(w)).replace(
        b'"params":{', b'"params":{"s":"\xed\xa0\x80",'
    ),
    "nul-byte": lambda w: canon(_payload(w)).replace(b'"params":{', b'"params":{"s":"\x00",'),
    "nan": lambda w: canon(_payload(w)).replace(b'"params":{', b'"params":{"n":NaN,'),
    "infinity": lambda w: canon(_payload(w)).replace(b'"params":{', b'"params":{"n":Infinity,'),
    "minus-infinity": lambda w: canon(_payload(w)).replace(
        b'"params":{', b'"params":{"n":-Infinity,'
    ),
    "nan-as-iat": lambda w: _with_marker(_payload(w, iat=MARK_VALUE), "NaN"),
    "leading-zero": lambda w: canon(_payload(w)).replace(b'"params":{', b'"params":{"n":012,'),
    "hex-number": lambda w: canon(_payload(w)).replace(b'"params":{', b'"params":{"n":0x10,'),
    "plus-sign": lambda w: canon(_payload(w)).replace(b'"params":{', b'"params":{"n":+1,'),
    "control-char-in-string": lambda w: canon(_payload(w)).replace(
        b'"params":{', b'"params":{"s":"a\nb",'
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_payload_json_is_bad_request(w: World, case: str) -> None:
    expect_error(w.post(_signed_bytes(w, MALFORMED[case](w))), 400, "bad_request")


DUPLICATES: dict[str, Callable[[World], bytes]] = {
    "iat-twice": lambda w: canon(_payload(w))[:-1] + b',"iat":1}',
    "consortium-twice-second-differs": lambda w: (
        canon(_payload(w))[:-1] + b',"consortium":"globex"}'
    ),
    "params-twice": lambda w: canon(_payload(w))[:-1] + b',"params":{}}',
    "inside-params": lambda w: canon(_payload(w)).replace(b'"params":{', b'"params":{"a":1,"a":2,'),
    "deep-inside-params": lambda w: canon(_payload(w)).replace(
        b'"params":{', b'"params":{"x":[{"k":1,"k":1}],'
    ),
    "member-twice": lambda w: canon(_payload(w))[:-1] + b',"member":"vendor"}',
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_keys_are_refused(w: World, case: str) -> None:
    expect_error(
        w.post(_signed_bytes(w, DUPLICATES[case](w))), 400, "bad_request", contains=["duplicate"]
    )


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [33, 40, 1000, 100_000])
def test_deep_nesting_is_refused(w: World, depth: int) -> None:
    payload = _payload(w)
    payload["params"] = {"deep": MARK_VALUE}
    text = canon(payload).replace(b'"@@HUGE@@"', b"[" * depth + b"1" + b"]" * depth)
    expect_error(w.post(_signed_bytes(w, text)), 400, "bad_request", contains=["deep"])


def test_deep_unbalanced_brackets_are_refused(w: World) -> None:
    expect_error(w.post(_signed_bytes(w, b"[" * 200_000)), 400, "bad_request")


def test_control_moderate_nesting_commits(w: World) -> None:
    payload = _payload(w)
    payload["params"] = {"order": nonce(), "deep": _nested(20)}
    expect_committed(w.post(_signed_bytes(w, canon(payload))))


SURROGATES: dict[str, bytes] = {
    "lone-high-in-value": b'"params":{"s":"\\ud800",',
    "lone-low-in-value": b'"params":{"s":"\\udfff",',
    "lone-in-key": b'"params":{"\\ud83d":1,',
    "reversed-pair": b'"params":{"s":"\\ude00\\ud83d",',
    "high-then-text": b'"params":{"s":"\\ud800abc",',
    "nested-lone": b'"params":{"l":[{"s":"\\udbff"}],',
}


@pytest.mark.parametrize("case", sorted(SURROGATES))
def test_lone_surrogates_are_refused(w: World, case: str) -> None:
    text = canon(_payload(w)).replace(b'"params":{', SURROGATES[case])
    expect_error(w.post(_signed_bytes(w, text)), 400, "bad_request", contains=["surrogate"])


def test_lone_surrogate_in_the_action_name_is_refused(w: World) -> None:
    text = canon(_payload(w)).replace(b'"action":"recordOrder"', b'"action":"record\\ud800"')
    expect_refused(w.post(_signed_bytes(w, text)), [400], ["bad_request"])


def test_control_valid_surrogate_pair_commits(w: World) -> None:
    text = canon(_payload(w)).replace(b'"params":{', b'"params":{"s":"\\ud83d\\ude00",')
    expect_committed(w.post(_signed_bytes(w, text)))


# -- fields ----------------------------------------------------------------------------------

REQUIRED = ("consortium", "member", "action", "params", "visible_to", "nonce", "iat")


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_field_is_named(w: World, field: str) -> None:
    payload = _payload(w)
    del payload[field]
    expect_error(w.post(_signed_bytes(w, canon(payload))), 400, "bad_request", contains=[field])


def test_unknown_field_is_named(w: World) -> None:
    body = _signed_bytes(w, canon(_payload(w, colour="blue")))
    expect_error(w.post(body), 400, "bad_request", contains=["colour"])


ILL_TYPED: dict[str, dict[str, Any]] = {
    "params-list": {"params": [1]},
    "params-string": {"params": "x"},
    "params-null": {"params": None},
    "visible_to-string": {"visible_to": "vendor"},
    "visible_to-bad-id": {"visible_to": ["a b"]},
    "visible_to-number": {"visible_to": [1]},
    "visible_to-257": {"visible_to": [f"m{i}" for i in range(257)]},
    "nonce-15-chars": {"nonce": "n" * 15},
    "nonce-65-chars": {"nonce": "n" * 65},
    "nonce-with-space": {"nonce": "nonce with spaces!"},
    "nonce-non-ascii": {"nonce": "nönce-nönce-nönce"},
    "nonce-number": {"nonce": 1234567890123456},
    "txref-129-chars": {"txref": "t" * 129},
    "txref-number": {"txref": 5},
    "action-empty": {"action": ""},
    "action-number": {"action": 5},
    "member-number": {"member": 5},
    "consortium-null": {"consortium": None},
}


@pytest.mark.parametrize("case", sorted(ILL_TYPED))
def test_ill_typed_field_is_bad_request(w: World, case: str) -> None:
    expect_error(
        w.post(_signed_bytes(w, canon(_payload(w, **ILL_TYPED[case])))), 400, "bad_request"
    )


def test_visible_to_unknown_member_is_refused(w: World) -> None:
    body = _signed_bytes(w, canon(_payload(w, visible_to=["nobody"])))
    expect_refused(w.post(body), [400, 422], ["bad_request", "action_failed"])


def test_unknown_action_is_404(w: World) -> None:
    body = _signed_bytes(w, canon(_payload(w, action="noSuchAction")))
    expect_error(w.post(body), 404, "unknown_action")


# -- media types and bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    "media",
    ["application/json", "text/plain", "application/jose+json", "multipart/form-data", None],
)
def test_wrong_content_type_is_refused(w: World, media: str | None) -> None:
    headers = {} if media is None else {"content-type": media}
    body = sign_action(w.members["telco"], w.cid, w.record_action, {"order": nonce()})
    expect_error(w.post(body, headers=headers), 400, "bad_request", contains=["application/jose"])


@pytest.mark.parametrize("media", ["application/jose; charset=utf-8", "Application/JOSE"])
def test_control_content_type_variants_accepted(w: World, media: str) -> None:
    body = sign_action(w.members["telco"], w.cid, w.record_action, {"order": nonce()})
    expect_committed(w.post(body, headers={"content-type": media}))


@pytest.mark.parametrize("body", [b"", b"  ", b"\r\n"])
def test_empty_body_is_refused(w: World, body: bytes) -> None:
    expect_error(w.post(body), 400, "bad_request")


def test_body_over_one_mib_is_refused(w: World) -> None:
    message = expect_error(w.post(b"a" * (1_048_576 + 1)), 400, "bad_request")
    assert "1048576" in message or "1 MiB" in message


def test_streamed_body_over_one_mib_is_refused(w: World) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"a" * 65536

    expect_error(w.post(chunks()), 400, "bad_request")


def test_signed_body_just_over_one_mib_is_refused(w: World) -> None:
    payload = _payload(w)
    payload["params"] = {"order": nonce(), "pad": "p" * 800_000}
    body = _signed_bytes(w, canon(payload))
    assert len(body) > 1_048_576
    expect_error(w.post(body), 400, "bad_request")


# -- query parameters and paths --------------------------------------------------------------

QUERIES: dict[str, tuple[str, str]] = {
    "constitution-unknown": ("constitution", "x=1"),
    "object-repeated-key": ("object", "key=a&key=b"),
    "object-no-key": ("object", ""),
    "object-extra": ("object", "key=a&extra=1"),
    "history-wrong-name": ("history", "keys=a"),
    "notifications-repeated-after": ("notifications", "after=1&after=2"),
    "notifications-unknown": ("notifications", "since=1"),
    "proposals-repeated": ("proposals", "status=open&status=open"),
    "proposals-status-bogus": ("proposals", "status=bogus"),
    "limit-0": ("notifications", "limit=0"),
    "limit-1001": ("notifications", "limit=1001"),
    "limit-negative": ("notifications", "limit=-1"),
    "limit-word": ("notifications", "limit=abc"),
    "limit-exponent": ("notifications", "limit=1e3"),
    "limit-empty": ("notifications", "limit="),
    "limit-huge": ("notifications", "limit=" + "9" * 5000),
    "after-negative": ("notifications", "after=-1"),
    "after-word": ("notifications", "after=abc"),
    "after-fraction": ("notifications", "after=1.5"),
    "after-20-digits": ("notifications", "after=" + "9" * 20),
    "after-plus": ("notifications", "after=%2B1"),
    "after-space": ("notifications", "after=%201"),
    "after-hex": ("notifications", "after=0x10"),
    "after-huge": ("notifications", "after=" + "9" * 5000),
}


@pytest.mark.parametrize("case", sorted(QUERIES))
def test_bad_query_is_bad_request(w: World, case: str) -> None:
    tail, query = QUERIES[case]
    url = f"/v1/consortia/{w.cid}/{tail}" + (f"?{query}" if query else "")
    answer = w.http.get(url, headers={"authorization": f"Bearer {w.token('telco')}"})
    expect_error(answer, 400, "bad_request")


def test_query_on_actions_is_refused(w: World) -> None:
    body = sign_action(w.members["telco"], w.cid, w.record_action, {"order": nonce()})
    answer = w.http.post(f"/v1/consortia/{w.cid}/actions?debug=1", content=body, headers=JOSE)
    expect_error(answer, 400, "bad_request")


def test_query_on_service_is_refused(w: World) -> None:
    expect_error(w.http.get("/v1/service?x=1"), 400, "bad_request")


@pytest.mark.parametrize("query", ["limit=1", "after=0", "limit=1000", "after=0&limit=5"])
def test_control_good_notification_queries(w: World, query: str) -> None:
    answer = w.http.get(
        f"/v1/consortia/{w.cid}/notifications?{query}",
        headers={"authorization": f"Bearer {w.token('telco')}"},
    )
    assert answer.status_code == 200 and isinstance(answer.json(), list), answer.text[:200]
    if "limit=1" in query.split("&"):
        assert len(answer.json()) == 1


PATHS: dict[str, tuple[str, str, int, str]] = {
    "txid-not-hex": ("GET", "transactions/xyz", 400, "bad_request"),
    "txid-uppercase": ("GET", "transactions/" + "A" * 64, 400, "bad_request"),
    "txid-63": ("GET", "transactions/" + "a" * 63, 400, "bad_request"),
    "txid-unknown": ("GET", "transactions/" + "a" * 64, 404, "not_found"),
    "receipt-unknown": ("GET", "transactions/" + "b" * 64 + "/receipt", 404, "not_found"),
    "proposal-not-hex": ("GET", "proposals/zz", 400, "bad_request"),
    "unknown-endpoint": ("GET", "secrets", 404, "not_found"),
    "get-on-actions": ("GET", "actions", 400, "bad_request"),
    "put-on-actions": ("PUT", "actions", 400, "bad_request"),
    "delete-on-object": ("DELETE", "object?key=a", 400, "bad_request"),
    "post-on-constitution": ("POST", "constitution", 400, "bad_request"),
}


@pytest.mark.parametrize("case", sorted(PATHS))
def test_bad_path_or_method_answers_json(w: World, case: str) -> None:
    method, tail, status, code = PATHS[case]
    answer = w.http.request(
        method,
        f"/v1/consortia/{w.cid}/{tail}",
        headers={"authorization": f"Bearer {w.token('telco')}"},
    )
    expect_error(answer, status, code)


@pytest.mark.parametrize("cid", ["a%20b", "..", "%00", "x" * 65])
def test_impossible_consortium_id_is_not_found(w: World, cid: str) -> None:
    answer = w.http.get(
        f"/v1/consortia/{cid}/constitution", headers={"authorization": f"Bearer {w.token('telco')}"}
    )
    expect_refused(answer, [404, 401], ["not_found", "unknown_member"])


def test_control_server_still_serves_after_the_input_family(w: World) -> None:
    expect_committed(w.record("vendor", {"order": nonce()}))
    assert isinstance(w.http, httpx.Client)
