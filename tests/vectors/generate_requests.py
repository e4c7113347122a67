"""Write tests/vectors/requests.json: ``python tests/vectors/generate_requests.py``.

Signed executeAction bodies (PROTOCOL.md section 2) from member keys derived from fixed
seeds, with fixed nonces and ``iat`` (Ed25519 signatures are deterministic), so this script
reproduces the file byte for byte; tests/engine/test_wire_vectors.py checks that it does.
Valid bodies carry the fields the engine parses from them and the answer a fresh consortium
gives; invalid ones the stable error code, its HTTP status and whether the answer names a
txid. The engine, server, SDK and CLI tests all read the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from consortia._json import JSON, JSONObject, canonical
from consortia.errors import HTTP_STATUS
from consortia.identity._b64 import b64url_encode
from consortia.identity.jws import txid_of
from consortia.identity.keys import EncryptionKey, MemberKeys, SigningKey
from consortia.wire import ACTION_TYP, sign_action

__all__ = ["CONSORTIUM", "IAT", "VECTORS_PATH", "member_keys", "render"]

VECTORS_PATH = Path(__file__).with_name("requests.json")
CONSORTIUM = "vectors"
#: The platform clock the answers hold for (testkit's T0, 2027-01-15).
IAT = 1_800_000_000
FOUNDERS = ("alice", "bob")
#: Members the requests name: founders, a non-member and two members-to-be.
MEMBERS = ("alice", "bob", "carol", "dave", "erin")


def _seed(label: str) -> bytes:
    """A public test seed: SHA-256 of a fixed label (these keys protect nothing)."""
    return hashlib.sha256(f"consortia test vectors: {label}".encode()).digest()


def member_keys(member: str) -> MemberKeys:
    """The fixed keys of ``member``: signing and encryption keys from public seeds."""
    return MemberKeys(
        member,
        SigningKey(_seed(f"{member} signing key")),
        EncryptionKey(_seed(f"{member} encryption key")),
    )


def nonce(label: str) -> str:
    """A fixed 32-character nonce."""
    return hashlib.sha256(f"nonce {label}".encode()).hexdigest()[:32]


def _b64_json(value: JSON) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _jws(header: JSONObject, payload: bytes, key: SigningKey) -> str:
    """A compact JWS with any header, signed by ``key`` (for headers sign_compact refuses)."""
    signing_input = f"{_b64_json(header)}.{b64url_encode(payload)}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode('ascii')))}"


def _payload(member: str, action: str, params: JSON, label: str, **extra: JSON) -> JSONObject:
    payload: JSONObject = {
        "consortium": CONSORTIUM,
        "member": member,
        "action": action,
        "params": params,
        "visible_to": [],
        "nonce": nonce(label),
        "iat": IAT,
    }
    payload.update(extra)
    return payload


def _signed(payload: JSONObject, key: SigningKey, **header: JSON) -> str:
    member = payload.get("member")
    base: JSONObject = {"alg": "EdDSA", "kid": member, "typ": ACTION_TYP}
    base.update(header)
    return _jws({k: v for k, v in base.items() if v is not None}, canonical(payload), key)


def _add_member(member: str) -> JSONObject:
    info = member_keys(member).public_info()
    return {**info, "info": {"name": member.title()}}


def valid_cases() -> list[JSONObject]:
    """Bodies the engine accepts, in the order they are to be submitted."""
    alice, bob = member_keys("alice"), member_keys("bob")
    add_dave = sign_action(
        alice,
        consortium=CONSORTIUM,
        action="addMember",
        params=_add_member("dave"),
        now=IAT,
        nonce=nonce("add dave"),
    )
    cases: list[tuple[str, str, JSONObject, int, JSONObject]] = []
    cases.append(
        (
            "addMember by a founder: a proposal",
            add_dave,
            {"nonce": nonce("add dave"), "iat": IAT, "visible_to": [], "txref": None},
            202,
            {"status": "pending", "proposal": txid_of(add_dave)},
        )
    )
    vote = sign_action(
        bob,
        consortium=CONSORTIUM,
        action="voteFor",
        params={"proposal": txid_of(add_dave), "ballot": "approve"},
        now=IAT - 300,
        txref="bob-vote-1",
        visible_to=["alice", "alice"],
        nonce=nonce("bob votes"),
    )
    cases.append(
        (
            "voteFor with txref, a repeated visible_to and iat at the window's edge (-300 s)",
            vote,
            {"nonce": nonce("bob votes"), "iat": IAT - 300, "visible_to": ["alice"]},
            200,
            {"status": "committed", "seqno": 1},
        )
    )
    add_erin = sign_action(
        alice,
        consortium=CONSORTIUM,
        action="addMember",
        params=_add_member("erin"),
        now=IAT + 300,
        visible_to=["bob"],
        txref="r" * 128,
        nonce="n" * 64,
    )
    cases.append(
        (
            "txref of 128 characters, nonce of 64, iat at the window's edge (+300 s)",
            add_erin + "\r\n",
            {"nonce": "n" * 64, "iat": IAT + 300, "visible_to": ["bob"], "txref": "r" * 128},
            202,
            {"status": "pending", "proposal": txid_of(add_erin)},
        )
    )
    out: list[JSONObject] = []
    for name, body, fields, status, answer in cases:
        jws = body.strip()
        payload = json.loads(_decode(jws.split(".")[1]))
        expected: JSONObject = {
            "member": payload["member"],
            "action": payload["action"],
            "params": payload["params"],
            "txref": payload.get("txref"),
            **fields,
            "txid": txid_of(jws),
        }
        out.append(
            {
                "name": name,
                "body": body,
                "expect": expected,
                "status": status,
                "answer": {**answer, "txid": txid_of(jws)},
            }
        )
    return out


def _decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def invalid_cases() -> list[JSONObject]:
    """Bodies the engine refuses: the code, and whether the error names the txid."""
    alice = member_keys("alice")
    carol = member_keys("carol")
    good = _payload("alice", "voteFor", {"proposal": "0" * 64, "ballot": "approve"}, "bad")
    good_jws = _signed(good, alice.signing)
    head, body, signature = good_jws.split(".")

    def signed(label: str, **changes: JSON) -> str:
        payload = {**good, "nonce": nonce(label), **changes}
        return _signed({k: v for k, v in payload.items() if v is not None}, alice.signing)

    def header(label: str, **changes: JSON) -> str:
        return _signed({**good, "nonce": nonce(label)}, alice.signing, **changes)

    def raw(label: str, payload: bytes) -> str:
        return _jws({"alg": "EdDSA", "kid": "alice", "typ": ACTION_TYP}, payload, alice.signing)

    replayed = _payload("alice", "voteFor", {"proposal": "1" * 64, "ballot": "reject"}, "add dave")
    without_params = {k: v for k, v in good.items() if k != "params"}
    cases: list[tuple[str, str, str, bool]] = [
        ("not a JWS: two parts", f"{head}.{body}", "bad_request", False),
        ("empty parts", "..", "bad_request", False),
        ("header not base64url", f"{head}!.{body}.{signature}", "bad_request", False),
        ("payload with '=' padding", f"{head}.{body}=.{signature}", "bad_request", False),
        (
            "signature truncated to 63 bytes",
            f"{head}.{body}.{signature[:-2]}",
            "bad_request",
            False,
        ),
        ("typ JWT", header("typ JWT", typ="JWT"), "bad_request", True),
        ("typ missing", header("typ missing", typ=None), "bad_request", True),
        ("kid missing", header("kid missing", kid=None), "bad_request", False),
        ("kid empty", header("kid empty", kid=""), "bad_request", False),
        ("alg none", header("alg none", alg="none"), "bad_request", False),
        ("alg HS256", header("alg HS256", alg="HS256"), "bad_request", False),
        ("crit header", header("crit", crit=["exp"]), "bad_request", False),
        ("payload not JSON", raw("not json", b"{nope"), "bad_request", True),
        ("payload a JSON list", raw("list", b"[]"), "bad_request", True),
        (
            "payload with a duplicate key",
            raw("dup", canonical(good)[:-1] + b',"iat":1}'),
            "bad_request",
            True,
        ),
        ("params a list", signed("params list", params=[1, 2]), "bad_request", True),
        ("params a string", signed("params string", params="x"), "bad_request", True),
        ("params missing", _signed(without_params, alice.signing), "bad_request", True),
        ("unknown payload field", signed("unknown", extra="x"), "bad_request", True),
        ("consortium mismatch", signed("cid", consortium="other"), "bad_request", True),
        (
            "member differs from kid",
            _signed(
                {**good, "nonce": nonce("member"), "member": "bob"}, alice.signing, kid="alice"
            ),
            "bad_request",
            True,
        ),
        ("action empty", signed("action empty", action=""), "bad_request", True),
        ("visible_to a string", signed("visible str", visible_to="bob"), "bad_request", True),
        ("nonce of 15 characters", signed("short", nonce="n" * 15), "bad_request", True),
        ("nonce of 65 characters", signed("long", nonce="n" * 65), "bad_request", True),
        ("iat a string", signed("iat str", iat=str(IAT)), "bad_request", True),
        ("iat true", signed("iat true", iat=True), "bad_request", True),
        ("txref not a string", signed("txref int", txref=7), "bad_request", True),
        ("txref of 129 characters", signed("txref long", txref="r" * 129), "bad_request", True),
        (
            "signed by another key",
            _signed({**good, "nonce": nonce("forged")}, carol.signing),
            "bad_signature",
            True,
        ),
        (
            "signature of another body",
            f"{head}.{signed('other').split('.')[1]}.{signature}",
            "bad_signature",
            True,
        ),
        (
            "unknown member",
            _signed(_payload("carol", "voteFor", {}, "carol"), carol.signing),
            "unknown_member",
            True,
        ),
        ("iat 301 s in the past", signed("past", iat=IAT - 301), "stale_request", True),
        ("iat 301 s in the future", signed("future", iat=IAT + 301), "stale_request", True),
        ("unknown action", signed("unknown action", action="noSuch"), "unknown_action", True),
        ("internal action", signed("internal", action="approveAction"), "not_public", True),
        ("nonce of an accepted request", _signed(replayed, alice.signing), "replay", True),
    ]
    return [
        {
            "name": name,
            "body": text,
            "code": code,
            "status": HTTP_STATUS[code],
            "txid": txid_of(text.strip()) if named else None,
        }
        for name, text, code, named in cases
    ]


def render() -> str:
    """The exact text of requests.json."""
    vectors = {
        "description": (
            "executeAction bodies (PROTOCOL.md section 2) for consortium 'vectors' with "
            "founders alice and bob (template 'default'), on a platform whose clock reads "
            f"{IAT}. Submit the 'valid' bodies in order to a fresh consortium: each parses to "
            "'expect' and gets HTTP 'status' with body 'answer'; then each 'invalid' body is "
            "refused with error 'code' and HTTP 'status', the error body naming 'txid' "
            "(null: none). Keys come from the public seeds here: test keys only. "
            "Regenerate with: python tests/vectors/generate_requests.py"
        ),
        "consortium": CONSORTIUM,
        "clock": IAT,
        "founders": list(FOUNDERS),
        "members": {
            m: {
                "signing_seed": _seed(f"{m} signing key").hex(),
                "encryption_secret": _seed(f"{m} encryption key").hex(),
                **member_keys(m).public_info(),
            }
            for m in MEMBERS
        },
        "valid": valid_cases(),
        "invalid": invalid_cases(),
    }
    return json.dumps(vectors, indent=2) + "\n"


def main() -> None:
    """Rewrite requests.json next to this script."""
    VECTORS_PATH.write_text(render(), encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
