"""Family 1, authentication: signatures, kids, strangers, algorithms, segments, JWE variants,
replays, stale requests, consortium mismatches and forged bearer tokens, over HTTPS.

The client side imports nothing of the project (see attack_kit.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from attack_kit import (
    JOSE,
    Member,
    World,
    action_header,
    action_payload,
    auth,
    b64d,
    b64e,
    bearer,
    canon,
    expect_committed,
    expect_error,
    expect_refused,
    jwe,
    jwe_parts,
    nonce,
    now,
    sign,
    sign_action,
    sign_raw,
    token_claims,
    txid_of,
    world_running,
)


@pytest.fixture(scope="module")
def w() -> Iterator[World]:
    with world_running() as world:
        # A second consortium whose members have the same ids but their own keys.
        world.others["globex"] = {m: Member(m) for m in ("telco", "vendor")}
        created = world.create("globex", list(world.others["globex"].values()))
        assert created.status_code == 201, created.text
        yield world


def _good(w: World, member: str = "telco", **fields: Any) -> str:
    return sign_action(w.members[member], w.cid, w.record_action, {"order": nonce()}, **fields)


def _flip(text: str, index: int) -> str:
    raw = bytearray(b64d(text))
    raw[index] ^= 0x01
    return b64e(bytes(raw))


def _parts(jws: str) -> list[str]:
    return jws.split(".")


# -- controls --------------------------------------------------------------------------------


def test_control_signed_request_commits(w: World) -> None:
    expect_committed(w.post(_good(w)))


def test_control_certificate_fingerprint_is_pinned(w: World) -> None:
    assert w.server.fingerprint, "serve printed no fingerprint"
    assert w.server.peer_fingerprint() == w.server.fingerprint


# -- signatures ------------------------------------------------------------------------------


def _sig_flip(index: int) -> Callable[[World], str]:
    def build(w: World) -> str:
        head, body, sig = _parts(_good(w))
        return f"{head}.{body}.{_flip(sig, index)}"

    return build


def _spliced(w: World) -> str:
    head, body, _ = _parts(_good(w))
    return f"{head}.{body}.{_parts(_good(w))[2]}"


def _zero_sig(w: World) -> str:
    head, body, _ = _parts(_good(w))
    return f"{head}.{body}.{b64e(bytes(64))}"


def _payload_changed(w: World) -> str:
    head, body, sig = _parts(_good(w))
    payload = json.loads(b64d(body))
    payload["params"]["order"] = "changed-after-signing"
    return f"{head}.{b64e(canon(payload))}.{sig}"


def _header_changed(w: World) -> str:
    _, body, sig = _parts(_good(w))
    header = b64e(json.dumps({**action_header("telco"), "extra": 1}).encode())
    return f"{header}.{body}.{sig}"


def _embedded_jwk(w: World) -> str:
    # The attacker's own key in the header ("jwk" injection), signed by it, kid telco.
    mallory = Member("telco")
    header = {**action_header("telco"), "jwk": mallory.signing_jwk()}
    payload = action_payload("telco", w.cid, w.record_action, {"order": nonce()})
    return sign(header, canon(payload), mallory.signing)


SIGNATURES: dict[str, Callable[[World], str]] = {
    "flip-byte-0": _sig_flip(0),
    "flip-byte-31": _sig_flip(31),
    "flip-byte-63": _sig_flip(63),
    "spliced-from-other-request": _spliced,
    "all-zero": _zero_sig,
    "payload-changed": _payload_changed,
    "header-changed": _header_changed,
    "embedded-jwk-header": _embedded_jwk,
}


@pytest.mark.parametrize("case", sorted(SIGNATURES))
def test_bad_signature_is_refused(w: World, case: str) -> None:
    expect_error(w.post(SIGNATURES[case](w)), 401, "bad_signature")


# -- kids and strangers ------------------------------------------------------------------------


def test_kid_of_another_member_with_own_key(w: World) -> None:
    body = sign_action(
        w.members["vendor"], w.cid, w.record_action, {}, key=w.members["telco"].signing
    )
    expect_error(w.post(body), 401, "bad_signature")


def test_kid_differs_from_payload_member(w: World) -> None:
    body = sign_action(w.members["telco"], w.cid, w.record_action, {}, kid="vendor")
    expect_error(w.post(body), 400, "bad_request", contains=["kid"])


def test_unknown_kid_is_unknown_member(w: World) -> None:
    body = sign_action(Member("mallory"), w.cid, w.record_action, {"order": "x"})
    expect_error(w.post(body), 401, "unknown_member")


def test_stranger_key_for_existing_member(w: World) -> None:
    body = sign_action(w.members["telco"], w.cid, w.record_action, {}, key=Member("x").signing)
    expect_error(w.post(body), 401, "bad_signature")


def test_member_of_other_consortium_same_id(w: World) -> None:
    globex = w.others["globex"]
    body = sign_action(globex["telco"], w.cid, w.record_action, {"order": "x"})
    expect_error(w.post(body), 401, "bad_signature")


def _header_variant(header: dict[str, Any]) -> Callable[[World], str]:
    def build(w: World) -> str:
        payload = action_payload("telco", w.cid, w.record_action, {"order": nonce()})
        return sign(header, canon(payload), w.members["telco"].signing)

    return build


KIDS: dict[str, Callable[[World], str]] = {
    "kid-missing": _header_variant({"alg": "EdDSA", "typ": "consortia-action"}),
    "kid-number": _header_variant({"alg": "EdDSA", "kid": 7, "typ": "consortia-action"}),
    "kid-empty": _header_variant({"alg": "EdDSA", "kid": "", "typ": "consortia-action"}),
    "kid-list": _header_variant({"alg": "EdDSA", "kid": ["telco"], "typ": "consortia-action"}),
    "kid-path": _header_variant({"alg": "EdDSA", "kid": "../telco", "typ": "consortia-action"}),
}


@pytest.mark.parametrize("case", sorted(KIDS))
def test_malformed_kid_is_bad_request(w: World, case: str) -> None:
    expect_error(w.post(KIDS[case](w)), 400, "bad_request")


# -- algorithms and header fields ---------------------------------------------------------------


def _alg_none(with_signature: bool) -> Callable[[World], str]:
    def build(w: World) -> str:
        header = {"alg": "none", "kid": "telco", "typ": "consortia-action"}
        payload = action_payload("telco", w.cid, w.record_action, {"order": nonce()})
        text = f"{b64e(json.dumps(header).encode())}.{b64e(canon(payload))}"
        return f"{text}.{b64e(bytes(64))}" if with_signature else f"{text}."

    return build


def _hs256(secret: Callable[[World], bytes]) -> Callable[[World], str]:
    def build(w: World) -> str:
        header = {"alg": "HS256", "kid": "telco", "typ": "consortia-action"}
        payload = action_payload("telco", w.cid, w.record_action, {"order": nonce()})
        text = f"{b64e(json.dumps(header).encode())}.{b64e(canon(payload))}"
        mac = hmac.new(secret(w), text.encode(), hashlib.sha256).digest()
        return f"{text}.{b64e(mac)}"

    return build


def _alg(alg: Any) -> Callable[[World], str]:
    return _header_variant({"alg": alg, "kid": "telco", "typ": "consortia-action"})


def _typ(typ: Any) -> Callable[[World], str]:
    header: dict[str, Any] = {"alg": "EdDSA", "kid": "telco"}
    if typ is not None:
        header["typ"] = typ
    return _header_variant(header)


ALGS: dict[str, Callable[[World], str]] = {
    "none-empty-signature": _alg_none(False),
    "none-with-signature": _alg_none(True),
    "hs256-public-key-as-secret": _hs256(lambda w: bytes(w.members["telco"].signing.verify_key)),
    "hs256-jwk-x-as-secret": _hs256(lambda w: w.members["telco"].signing_jwk()["x"].encode()),
    "es256": _alg("ES256"),
    "rs256": _alg("RS256"),
    "lowercase-eddsa": _alg("eddsa"),
    "ed25519-name": _alg("Ed25519"),
    "alg-list": _alg(["EdDSA"]),
    "alg-missing": _header_variant({"kid": "telco", "typ": "consortia-action"}),
    "crit-b64": _header_variant(
        {"alg": "EdDSA", "kid": "telco", "typ": "consortia-action", "crit": ["b64"], "b64": False}
    ),
    "crit-unknown": _header_variant(
        {"alg": "EdDSA", "kid": "telco", "typ": "consortia-action", "crit": ["exp"], "exp": 1}
    ),
    "b64-false": _header_variant(
        {"alg": "EdDSA", "kid": "telco", "typ": "consortia-action", "b64": False}
    ),
    "typ-missing": _typ(None),
    "typ-jwt": _typ("JWT"),
    "typ-create": _typ("consortia-create"),
    "typ-number": _typ(1),
    "header-not-object": lambda w: sign_raw(b"[1]", canon({}), w.members["telco"].signing),
    "header-duplicate-alg": lambda w: sign_raw(
        b'{"alg":"none","alg":"EdDSA","kid":"telco","typ":"consortia-action"}',
        canon(action_payload("telco", w.cid, w.record_action, {})),
        w.members["telco"].signing,
    ),
}


@pytest.mark.parametrize("case", sorted(ALGS))
def test_algorithm_and_header_refused(w: World, case: str) -> None:
    expect_error(w.post(ALGS[case](w)), 400, "bad_request")


# -- segments and encodings ------------------------------------------------------------------


def _segments(edit: Callable[[list[str]], str]) -> Callable[[World], str]:
    return lambda w: edit(_parts(_good(w)))


SEGMENTS: dict[str, Callable[[World], str]] = {
    "one-part": _segments(lambda p: p[0]),
    "two-parts": _segments(lambda p: f"{p[0]}.{p[1]}"),
    "four-parts": _segments(lambda p: ".".join([*p, p[2]])),
    "six-parts": _segments(lambda p: ".".join(p + p)),
    "trailing-dot": _segments(lambda p: ".".join(p) + "."),
    "leading-dot": _segments(lambda p: "." + ".".join(p)),
    "empty-header": _segments(lambda p: f".{p[1]}.{p[2]}"),
    "empty-signature": _segments(lambda p: f"{p[0]}.{p[1]}."),
    "empty-payload": lambda w: sign_raw(
        json.dumps(action_header("telco")).encode(), b"", w.members["telco"].signing
    ),
    "padded-signature": _segments(lambda p: f"{p[0]}.{p[1]}.{p[2]}=="),
    "padded-payload": _segments(lambda p: f"{p[0]}.{p[1]}=.{p[2]}"),
    "standard-base64-chars": _segments(
        lambda p: (
            f"{p[0]}.{p[1]}.{p[2].replace('-', '+').replace('_', '/')}"
            if ("-" in p[2] or "_" in p[2])
            else f"{p[0]}.{p[1]}.+{p[2][1:]}"
        )
    ),
    "space-inside": _segments(lambda p: f"{p[0]}.{p[1][:10]} {p[1][10:]}.{p[2]}"),
    "newline-inside": _segments(lambda p: f"{p[0]}.{p[1][:10]}\n{p[1][10:]}.{p[2]}"),
    "signature-63-bytes": _segments(lambda p: f"{p[0]}.{p[1]}.{b64e(b64d(p[2])[:63])}"),
    "signature-65-bytes": _segments(lambda p: f"{p[0]}.{p[1]}.{b64e(b64d(p[2]) + b'x')}"),
    "signature-non-canonical-bits": _segments(
        lambda p: f"{p[0]}.{p[1]}.{p[2][:-1]}{chr(ord(p[2][-1]) ^ 1)}"
    ),
    "impossible-length": _segments(lambda p: f"{p[0]}.{p[1]}A.{p[2]}"),
    "non-ascii": _segments(lambda p: f"{p[0]}.{p[1]}é.{p[2]}"),
    "json-serialization": _segments(
        lambda p: json.dumps({"protected": p[0], "payload": p[1], "signature": p[2]})
    ),
    "jws-in-payload": lambda w: sign_raw(
        json.dumps(action_header("telco")).encode(), _good(w).encode(), w.members["telco"].signing
    ),
}


@pytest.mark.parametrize("case", sorted(SEGMENTS))
def test_malformed_compact_form_is_bad_request(w: World, case: str) -> None:
    expect_error(w.post(SEGMENTS[case](w).encode("utf-8")), 400, "bad_request")


# -- JWE -------------------------------------------------------------------------------------


def test_control_jwe_commits_and_names_the_inner_txid(w: World) -> None:
    inner = _good(w)
    answer = expect_committed(w.post(jwe(inner.encode(), w.service_x)))
    assert answer["txid"] == txid_of(inner)
    again = expect_committed(w.post(inner))  # the bare JWS is the same request: a retry
    assert (again["txid"], again["seqno"]) == (answer["txid"], answer["seqno"])


def test_control_jwe_with_apu_apv(w: World) -> None:
    expect_committed(w.post(jwe(_good(w).encode(), w.service_x, apu=b"Alice", apv=b"Bob")))


def _jwe_edit(edit: Callable[[World, list[str]], list[str]]) -> Callable[[World], str]:
    return lambda w: ".".join(edit(w, jwe_parts(_good(w).encode(), w.service_x)))


def _jwe_header(**extra: Any) -> Callable[[World], str]:
    return lambda w: jwe(_good(w).encode(), w.service_x, header_extra=extra)


def _reheader(change: dict[str, Any]) -> Callable[[World, list[str]], list[str]]:
    def edit(w: World, p: list[str]) -> list[str]:
        header = json.loads(b64d(p[0]))
        header.update(change)
        header = {k: v for k, v in header.items() if v is not None}
        return [b64e(json.dumps(header).encode()), *p[1:]]

    return edit


def _flip_part(index: int) -> Callable[[World, list[str]], list[str]]:
    def edit(w: World, p: list[str]) -> list[str]:
        p = list(p)
        p[index] = _flip(p[index], 0)
        return p

    return edit


JWE_BAD_REQUEST: dict[str, Callable[[World], str]] = {
    "header-not-base64": _jwe_edit(lambda w, p: ["***", *p[1:]]),
    "header-not-json": _jwe_edit(lambda w, p: [b64e(b"{nope"), *p[1:]]),
    "alg-dir": _jwe_header(alg="dir"),
    "alg-a256kw": _jwe_header(alg="ECDH-ES+A256KW"),
    "alg-rsa-oaep": _jwe_header(alg="RSA-OAEP"),
    "alg-none": _jwe_header(alg="none"),
    "enc-a128gcm": _jwe_header(enc="A128GCM"),
    "enc-cbc-hs512": _jwe_header(enc="A256CBC-HS512"),
    "zip-def": _jwe_header(zip="DEF"),
    "crit": _jwe_header(crit=["exp"], exp=1),
    "encrypted-key-not-empty": _jwe_edit(lambda w, p: [p[0], b64e(b"k" * 32), *p[2:]]),
    "epk-missing": _jwe_edit(_reheader({"epk": None})),
    "epk-ed25519": _jwe_edit(
        _reheader({"epk": {"kty": "OKP", "crv": "Ed25519", "x": b64e(bytes(range(32)))}})
    ),
    "epk-small-order": _jwe_edit(
        _reheader({"epk": {"kty": "OKP", "crv": "X25519", "x": b64e(bytes(32))}})
    ),
    "epk-short": _jwe_edit(_reheader({"epk": {"kty": "OKP", "crv": "X25519", "x": b64e(b"ab")}})),
    "epk-with-private-d": _jwe_edit(
        lambda w, p: _reheader({"epk": {**json.loads(b64d(p[0]))["epk"], "d": b64e(bytes(32))}})(
            w, p
        )
    ),
    "epk-not-object": _jwe_edit(_reheader({"epk": "x"})),
    "iv-11-bytes": _jwe_edit(lambda w, p: [*p[:2], b64e(b64d(p[2])[:11]), *p[3:]]),
    "tag-15-bytes": _jwe_edit(lambda w, p: [*p[:4], b64e(b64d(p[4])[:15])]),
    "iv-not-base64": _jwe_edit(lambda w, p: [*p[:2], "!!!!", *p[3:]]),
    "ciphertext-padded": _jwe_edit(lambda w, p: [*p[:3], p[3] + "=", p[4]]),
    "six-parts": _jwe_edit(lambda w, p: [*p, ""]),
    "plaintext-garbage": lambda w: jwe(b"garbage, not a JWS", w.service_x),
    "plaintext-nested-jwe": lambda w: jwe(
        jwe(_good(w).encode(), w.service_x).encode(), w.service_x
    ),
    "plaintext-empty": lambda w: jwe(b"", w.service_x),
}


@pytest.mark.parametrize("case", sorted(JWE_BAD_REQUEST))
def test_jwe_malformed_is_bad_request(w: World, case: str) -> None:
    expect_error(w.post(JWE_BAD_REQUEST[case](w)), 400, "bad_request")


JWE_UNDECRYPTABLE: dict[str, Callable[[World], str]] = {
    "tag-flipped": _jwe_edit(_flip_part(4)),
    "ciphertext-flipped": _jwe_edit(_flip_part(3)),
    "iv-flipped": _jwe_edit(_flip_part(2)),
    "header-re-encoded-with-kid": _jwe_edit(_reheader({"kid": "telco"})),
    "to-another-key": lambda w: jwe(_good(w).encode(), Member("x").encryption.public_key.encode()),
    "apu-in-header-not-in-kdf": _jwe_edit(_reheader({"apu": b64e(b"Alice")})),
}


@pytest.mark.parametrize("case", sorted(JWE_UNDECRYPTABLE))
def test_jwe_that_does_not_decrypt_is_bad_signature(w: World, case: str) -> None:
    expect_error(w.post(JWE_UNDECRYPTABLE[case](w)), 401, "bad_signature")


def test_jwe_wrapping_forged_jws_is_bad_signature(w: World) -> None:
    head, body, sig = _parts(_good(w))
    forged = f"{head}.{body}.{_flip(sig, 5)}"
    expect_error(w.post(jwe(forged.encode(), w.service_x)), 401, "bad_signature")


# -- replay ----------------------------------------------------------------------------------


def test_same_nonce_other_body_is_replay(w: World) -> None:
    used = nonce()
    expect_committed(w.post(_good(w, nonce_=used)))
    expect_error(w.post(_good(w, nonce_=used)), 409, "replay")


def test_same_nonce_other_action_is_replay(w: World) -> None:
    used = nonce()
    expect_committed(w.post(_good(w, nonce_=used)))
    vote = sign_action(
        w.members["telco"],
        w.cid,
        "voteFor",
        {"proposal": "0" * 64, "ballot": "approve"},
        nonce_=used,
    )
    expect_error(w.post(vote), 409, "replay")


@pytest.mark.parametrize("times", [1, 3])
def test_same_jws_again_gets_the_original_answer(w: World, times: int) -> None:
    body = _good(w)
    first = expect_committed(w.post(body))
    for _ in range(times):
        again = expect_committed(w.post(body))
        assert again == first


def test_retry_of_pending_request_is_the_same_proposal(w: World) -> None:
    body = sign_action(w.members["telco"], w.cid, "removeMember", {"id": "installer"})
    first = w.post(body)
    assert first.status_code == 202, first.text
    again = w.post(body)
    assert again.status_code == 202 and again.json() == first.json()
    vote = w.vote("vendor", first.json()["proposal"], "reject")
    assert vote.status_code == 200, vote.text


def test_same_nonce_other_member_is_not_replay(w: World) -> None:
    used = nonce()
    expect_committed(w.post(_good(w, "telco", nonce_=used)))
    expect_committed(w.post(_good(w, "vendor", nonce_=used)))


def test_request_for_acme_replayed_to_globex(w: World) -> None:
    body = _good(w)
    expect_committed(w.post(body))
    expect_error(w.post(body, cid="globex"), 400, "bad_request", contains=["consortium"])


# -- time ------------------------------------------------------------------------------------

STALE = {"minus-301": -301, "minus-400": -400, "plus-400": 400, "minus-a-day": -86400}


@pytest.mark.parametrize("case", sorted(STALE))
def test_stale_iat_is_refused(w: World, case: str) -> None:
    expect_error(w.post(_good(w, iat=now() + STALE[case])), 401, "stale_request")


@pytest.mark.parametrize("iat", [0, -1])
def test_ancient_iat_is_refused(w: World, iat: int) -> None:
    expect_refused(w.post(_good(w, iat=iat)), [400, 401], ["stale_request", "bad_request"])


ILL_TYPED_IAT: dict[str, Any] = {
    "string": "now",
    "numeric-string": "1700000000",
    "float": 1.7e9,
    "true": True,
    "null": None,
    "list": [1],
    "above-2-53": 2**53,
}


@pytest.mark.parametrize("case", sorted(ILL_TYPED_IAT))
def test_ill_typed_iat_is_bad_request(w: World, case: str) -> None:
    expect_error(w.post(_good(w, iat=ILL_TYPED_IAT[case])), 400, "bad_request", contains=["iat"])


@pytest.mark.parametrize("skew", [-200, 200])
def test_control_iat_inside_the_window_commits(w: World, skew: int) -> None:
    expect_committed(w.post(_good(w, iat=now() + skew)))


# -- member and consortium mismatches --------------------------------------------------------


def test_payload_consortium_differs_from_path(w: World) -> None:
    body = sign_action(w.members["telco"], "globex", w.record_action, {"order": "x"})
    expect_error(w.post(body), 400, "bad_request", contains=["consortium"])


def test_payload_consortium_case_differs(w: World) -> None:
    body = sign_action(w.members["telco"], w.cid.upper(), w.record_action, {"order": "x"})
    expect_error(w.post(body), 400, "bad_request")


def test_request_to_unknown_consortium_is_not_found(w: World) -> None:
    body = sign_action(w.members["telco"], "nosuch", w.record_action, {"order": "x"})
    expect_error(w.post(body, cid="nosuch"), 404, "not_found")


def test_globex_member_request_to_acme_path(w: World) -> None:
    globex = w.others["globex"]
    body = sign_action(
        globex["telco"], "globex", "voteFor", {"proposal": "0" * 64, "ballot": "approve"}
    )
    expect_error(w.post(body), 400, "bad_request", contains=["consortium"])


# -- bearer tokens ---------------------------------------------------------------------------


def _read_with(w: World, token: str) -> Any:
    return w.http.get(f"/v1/consortia/{w.cid}/constitution", headers=auth(token))


def test_control_token_reads(w: World) -> None:
    answer = _read_with(w, w.token("telco"))
    assert answer.status_code == 200 and "telco" in answer.text


class Rel(int):
    """A claim value relative to the clock when the token is built: ``now() + self``."""


def _claims(**change: Any) -> Callable[[World], str]:
    def build(w: World) -> str:
        claims = token_claims("telco", w.cid)
        as_float = change.pop("float_exp", False)
        claims.update({k: now() + v if isinstance(v, Rel) else v for k, v in change.items()})
        if as_float:
            claims["exp"] = float(claims["exp"])
        claims = {k: v for k, v in claims.items() if v is not None}
        return bearer(w.members["telco"], w.cid, claims=claims)

    return build


def _token_flip(w: World) -> str:
    head, body, sig = _parts(w.token("telco"))
    return f"{head}.{body}.{_flip(sig, 10)}"


def _token_none(w: World) -> str:
    header = b64e(json.dumps({"alg": "none", "kid": "telco", "typ": "JWT"}).encode())
    return f"{header}.{b64e(canon(token_claims('telco', w.cid)))}."


def _token_alg(alg: str) -> Callable[[World], str]:
    def build(w: World) -> str:
        header = {"alg": alg, "kid": "telco", "typ": "JWT"}
        text = f"{b64e(json.dumps(header).encode())}.{b64e(canon(token_claims('telco', w.cid)))}"
        secret = bytes(w.members["telco"].signing.verify_key)
        return f"{text}.{b64e(hmac.new(secret, text.encode(), hashlib.sha256).digest())}"

    return build


# A token whose signature does not verify with the named member's key gets the answer a
# non-member gets (unknown_member), so a guessed member id reveals nothing (protocol notes,
# "Reads without a token"); a token that is no valid JWT at all is bad_signature.
TOKENS_401: dict[str, tuple[Callable[[World], str], str]] = {
    "forged-signature": (_token_flip, "unknown_member"),
    "stranger-key-telco-kid": (
        lambda w: bearer(w.members["telco"], w.cid, key=Member("x").signing),
        "unknown_member",
    ),
    "other-member-kid-own-key": (
        lambda w: bearer(
            w.members["telco"],
            w.cid,
            kid="vendor",
            claims=token_claims("vendor", w.cid),
        ),
        "unknown_member",
    ),
    "expired": (_claims(iat=Rel(-700), exp=Rel(-400)), "stale_request"),
    "expired-past-leeway": (_claims(iat=Rel(-500), exp=Rel(-120)), "stale_request"),
    "issued-in-future": (_claims(iat=Rel(300), exp=Rel(600)), "stale_request"),
    "nbf-in-future": (_claims(nbf=Rel(300)), "stale_request"),
    "alg-hs256": (_token_alg("HS256"), "bad_signature"),
    "alg-none": (_token_none, "bad_signature"),
    "action-jws-as-token": (_good, "bad_signature"),
    "oversized-9k": (_claims(pad="x" * 9000), "bad_signature"),
    "not-a-jwt": (lambda w: "hello", "bad_signature"),
    "globex-member-token-for-acme": (
        lambda w: bearer(w.others["globex"]["telco"], w.cid),
        "unknown_member",
    ),
}


@pytest.mark.parametrize("case", sorted(TOKENS_401))
def test_bad_token_is_unauthorized(w: World, case: str) -> None:
    build, code = TOKENS_401[case]
    answer = _read_with(w, build(w))
    expect_error(answer, 401, code)
    assert "www-authenticate" in answer.headers


TOKENS_REFUSED: dict[str, Callable[[World], str]] = {
    "wrong-aud": lambda w: bearer(
        w.members["telco"], "globex", claims=token_claims("telco", "globex")
    ),
    "aud-number": _claims(aud=5),
    "exp-too-far": _claims(exp=Rel(601)),
    "exp-before-iat": _claims(exp=Rel(-10)),
    "iss-differs-from-kid": _claims(iss="vendor"),
    "jti-missing": _claims(jti=None),
    "jti-too-long": _claims(jti="j" * 300),
    "exp-missing": _claims(exp=None),
    "iat-missing": _claims(iat=None),
    "iat-string": _claims(iat="now"),
    "exp-float": _claims(exp=Rel(100), float_exp=True),
    "typ-action": lambda w: bearer(w.members["telco"], w.cid, typ="consortia-action"),
    "claims-not-object": lambda w: sign(
        {"alg": "EdDSA", "kid": "telco", "typ": "JWT"}, b"[1,2]", w.members["telco"].signing
    ),
    "claims-huge-iat": lambda w: sign_raw(
        b'{"alg":"EdDSA","kid":"telco","typ":"JWT"}',
        canon(token_claims("telco", w.cid)).replace(
            b'"iat":', b'"iat":' + b"9" * 5000 + b',"x":', 1
        ),
        w.members["telco"].signing,
    ),
}


@pytest.mark.parametrize("case", sorted(TOKENS_REFUSED))
def test_ill_formed_token_is_refused(w: World, case: str) -> None:
    answer = _read_with(w, TOKENS_REFUSED[case](w))
    expect_refused(answer, [400, 401], ["bad_request", "bad_signature", "stale_request"])
    assert "actions" not in answer.text


AUTH_HEADERS: dict[str, Callable[[World], dict[str, str]]] = {
    "missing": lambda w: {},
    "basic-scheme": lambda w: {"authorization": "Basic dGVsY286cGFzcw=="},
    "bearer-empty": lambda w: {"authorization": "Bearer"},
    "token-without-scheme": lambda w: {"authorization": w.token("telco")},
}


@pytest.mark.parametrize("case", sorted(AUTH_HEADERS))
def test_missing_or_malformed_authorization(w: World, case: str) -> None:
    answer = w.http.get(f"/v1/consortia/{w.cid}/constitution", headers=AUTH_HEADERS[case](w))
    expect_error(answer, 401, "bad_signature")
    assert answer.headers.get("www-authenticate", "").lower().startswith("bearer")


def test_token_for_acme_does_not_read_globex(w: World) -> None:
    answer = w.http.get("/v1/consortia/globex/constitution", headers=auth(w.token("telco")))
    expect_refused(answer, [400, 401], ["bad_request", "bad_signature", "unknown_member"])


def test_creation_as_plain_json_is_refused(w: World) -> None:
    answer = w.http.post(
        "/v1/consortia", content=json.dumps(w.creation("x1", [Member("a")])), headers=JOSE
    )
    expect_error(answer, 400, "bad_request")
