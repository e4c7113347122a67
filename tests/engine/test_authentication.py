"""Scenario: authentication, replay protection and permission windows."""

from __future__ import annotations

import pytest
from conftest import World

from consortia import (
    Committed,
    ConsortiaError,
    MemberKeys,
    Pending,
    open_notification,
    sign_key_proof,
)
from consortia._json import JSONObject, canonical
from consortia.identity.jws import sign_compact
from consortia.identity.keys import EncryptionKey, SigningKey
from testkit import T0, js


def rotate_params(world: World, member: str) -> tuple[JSONObject, MemberKeys]:
    new = MemberKeys(member, SigningKey.generate(), EncryptionKey.generate())
    proof = sign_key_proof(new.signing, member=member, consortium="acme", now=world.clock.now)
    params: JSONObject = {
        "signing_key": dict(new.signing.public_jwk()),
        "encryption_key": dict(new.encryption.public_jwk()),
        "proof": proof,
    }
    return params, new


def test_refresh_trust_keys_old_key_refused_after(world: World) -> None:
    params, new = rotate_params(world, "vendor")
    old = world.keys["vendor"]
    assert old != new
    assert isinstance(world.act("vendor", "refreshTrustKeys", params), Committed)
    # Every active member learns of the new key; the rotating member's copy is sealed to
    # its new key (older notifications stay sealed to the old one).
    assert "key_rotated" in world.kinds("telco")
    last = next(
        n
        for n in world.platform.member_view("acme", "vendor").notifications()
        if n["kind"] == "key_rotated"
    )
    service = world.platform.service.encryption.public_key
    opened = open_notification(last, new, service)
    assert js(opened)["member"] == "vendor"
    world.refused(
        "bad_signature", world.sign("vendor", "voteFor", {"proposal": "p", "ballot": "approve"})
    )
    world.keys["vendor"] = new
    # The new key works (the proposal does not exist: refused by the action, not the key).
    world.refused(
        "not_found", world.sign("vendor", "voteFor", {"proposal": "p", "ballot": "approve"})
    )


def test_refresh_trust_keys_needs_proof_of_possession(world: World) -> None:
    params, _ = rotate_params(world, "vendor")
    wrong = SigningKey.generate()
    params["proof"] = sign_key_proof(wrong, member="vendor", consortium="acme", now=world.clock.now)
    error = world.refused("action_failed", world.sign("vendor", "refreshTrustKeys", params))
    assert "proof" in error.message
    params2, _ = rotate_params(world, "vendor")
    params2["proof"] = sign_key_proof(
        SigningKey.from_jwk(world.keys["vendor"].signing.to_jwk()),
        member="telco",
        consortium="acme",
        now=world.clock.now,
    )
    world.refused("action_failed", world.sign("vendor", "refreshTrustKeys", params2))
    # The right claims signed by the new key, but as another kind of message: not a proof.
    params3, new = rotate_params(world, "vendor")
    claims: JSONObject = {"member": "vendor", "consortium": "acme", "iat": world.clock.now}
    params3["proof"] = sign_compact(
        canonical(claims), new.signing, kid="vendor", typ="consortia-action"
    )
    error = world.refused("action_failed", world.sign("vendor", "refreshTrustKeys", params3))
    assert "typ must be 'consortia-key-proof'" in error.message


def test_replayed_nonce_is_refused(world: World) -> None:
    params, new = rotate_params(world, "vendor")
    nonce = "abcdefghijklmnop"
    body = world.sign("vendor", "refreshTrustKeys", params, nonce=nonce)
    done = world.platform.execute("acme", body)
    assert isinstance(done, Committed)
    # The very same JWS again: the original answer, nothing executed twice (even though the
    # key that signed it has since been replaced).
    assert world.platform.execute("acme", body) == done
    world.keys["vendor"] = new
    # A different request reusing the nonce: replay.
    other = world.sign("vendor", "voteFor", {"proposal": "p", "ballot": "approve"}, nonce=nonce)
    world.refused("replay", other)


def test_stale_iat_is_refused_at_the_window_edges(world: World) -> None:
    world.refused("stale_request", world.sign("telco", "approveAction", {}, iat=T0 - 301))
    world.refused("stale_request", world.sign("telco", "approveAction", {}, iat=T0 + 301))
    # At exactly ±300 s the request passes authentication (and fails later for its own reason).
    world.refused("not_public", world.sign("telco", "approveAction", {}, iat=T0 - 300))
    world.refused("not_public", world.sign("telco", "approveAction", {}, iat=T0 + 300))


def test_bad_signature_and_unknown_member(world: World) -> None:
    stranger = MemberKeys.generate("telco")  # claims to be telco, with another key
    world.keys["impostor"] = stranger
    world.refused(
        "bad_signature", world.sign("impostor", "voteFor", {"proposal": "p", "ballot": "approve"})
    )
    world.add_keys("nobody")
    world.refused(
        "unknown_member", world.sign("nobody", "voteFor", {"proposal": "p", "ballot": "approve"})
    )


def test_malformed_bodies_are_bad_requests(world: World) -> None:
    world.refused("bad_request", "not a jws")
    world.refused("bad_request", "a.b.c")
    good = world.sign("telco", "voteFor", {"proposal": "p", "ballot": "approve"})
    # consortium mismatch: signed for acme, sent to another id that exists
    world.create("other", ["telco2"])
    error = world.refused("bad_request", good, cid="other")
    assert "acme" in error.message and error.txid is not None
    # an unknown payload field, and a wrong typ
    key = world.keys["telco"].signing
    payload = (
        b'{"action":"voteFor","consortium":"acme","iat":%d,"member":"telco","nonce":"0123456789abcdef",'
        b'"params":{},"visible_to":[],"extra":1}' % T0
    )
    world.refused("bad_request", sign_compact(payload, key, kid="telco", typ="consortia-action"))
    world.refused("bad_request", sign_compact(payload, key, kid="telco", typ="JWT"))


def permission_window(world: World, start: int, end: int) -> None:
    params: JSONObject = {
        "action": "refreshTrustKeys",
        "permissions": [
            {"member": "telco", "execute": True},
            {"member": "vendor", "execute": True, "valid_from": start, "valid_to": end},
            {"member": "installer", "execute": True},
        ],
    }
    pending = world.act("telco", "updatePermissions", params)
    assert isinstance(pending, Pending)
    assert isinstance(
        world.act("installer", "voteFor", {"proposal": pending.proposal, "ballot": "approve"}),
        Committed,
    )


def test_update_permissions_validity_window(world: World) -> None:
    start, end = T0 + 1000, T0 + 2000
    permission_window(world, start, end)
    for now, allowed in [
        (start - 1, False),  # before
        (start, True),  # at the opening edge (inclusive)
        (start + 500, True),  # inside
        (end - 1, True),  # last second
        (end, False),  # at the closing edge (exclusive)
        (end + 1, False),  # after
    ]:
        world.clock.now = now
        params, new = rotate_params(world, "vendor")
        body = world.sign("vendor", "refreshTrustKeys", params)
        if allowed:
            assert isinstance(world.platform.execute("acme", body), Committed), now
            world.keys["vendor"] = new
        else:
            error = world.refused("permission_denied", body)
            assert str(start) in error.message and str(end) in error.message


def test_an_operator_nonce_serves_one_creation_only(world: World) -> None:
    """Operator nonces are platform-wide: each consortium's own nonce table is keyed by a
    ledger secret the new consortium has not got yet, so it cannot catch a reuse."""
    from consortia.wire import sign_creation

    members = [world.keys[m].public_info() for m in ("telco", "vendor")]

    def creation(cid: str) -> str:
        return sign_creation(
            world.operator,
            consortium=cid,
            name=cid,
            members=members,
            now=world.clock.now,
            nonce="operator-nonce-0001",
        )

    first = creation("beta")
    created = world.platform.create_consortium(first)
    assert world.platform.create_consortium(first) == created  # a retry: the same answer
    with pytest.raises(ConsortiaError) as caught:
        world.platform.create_consortium(creation("gamma"))
    assert caught.value.code == "replay" and created.txid in caught.value.message
    assert "gamma" not in world.platform.consortia()
    world.reopen()  # the used nonce is durable
    with pytest.raises(ConsortiaError) as caught:
        world.platform.create_consortium(creation("delta"))
    assert caught.value.code == "replay"
