"""Disaster recovery: k-of-n recovery shares open a copy of the storage without the node key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import World

from consortia import MemberKeys, Platform, open_notification
from consortia.engine import Committed, Pending
from consortia.engine.audit import verify_ledger
from consortia.engine.recovery import RecoverySession, recover
from consortia.errors import BadRequest, BadSignature, ConsortiaError
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.recovery import (
    Share,
    combine_key,
    default_threshold,
    open_share,
    sign_submission,
    split_key,
)
from consortia.ledger.sqlite import SQLiteStore
from testkit import js


def shares_of(world: World, member: str, cid: str = "acme") -> list[Share]:
    """Every recovery share the member was sent, oldest first, opened with its own key."""
    return [
        open_share(str(js(body)["sealed"]), world.keys[member])
        for kind, body in world.notes(member, cid=cid)
        if kind == "notice" and js(body).get("event") == "recovery_share"
    ]


def submission(world: World, member: str, cid: str = "acme") -> str:
    """The member's newest share, signed for a recovering platform."""
    return sign_submission(world.keys[member], shares_of(world, member, cid)[-1])


def lost_node_key_copy(world: World, tmp_path: Path) -> Path:
    """A copy of the data directory as a disaster leaves it: storage, no node key."""
    world.platform.close()
    copy = tmp_path.parent / (tmp_path.name + "-copy")
    shutil.copytree(world.data, copy)
    (copy / "node.key").unlink()
    world.platform = Platform.open(
        world.data, operator_keys=[world.operator.verify_key], clock=world.clock
    )
    return copy


def test_split_and_combine_are_k_of_n() -> None:
    key = bytes(range(32))
    shares = split_key(key, 3, 5)
    assert [x for x, _ in shares] == [1, 2, 3, 4, 5]
    assert combine_key(shares[1:4], 3) == key
    assert combine_key([shares[0], shares[2], shares[4]], 3) == key
    with pytest.raises(BadRequest, match="3 are needed"):
        combine_key(shares[:2], 3)
    assert default_threshold(3) == 2 and default_threshold(4) == 3
    assert combine_key(split_key(key, 1, 1), 1) == key


def test_founders_receive_sealed_shares(world: World) -> None:
    got = {m: shares_of(world, m) for m in ("telco", "vendor", "installer")}
    assert all(len(s) == 1 for s in got.values())
    assert sorted(s[0].x for s in got.values()) == [1, 2, 3]
    assert {s[0].threshold for s in got.values()} == {2}
    # Sealed to each member's own key: another member cannot open it.
    body = next(
        js(b)
        for k, b in world.notes("telco")
        if k == "notice" and js(b)["event"] == "recovery_share"
    )
    with pytest.raises(ConsortiaError):
        open_share(str(body["sealed"]), world.keys["vendor"])


def test_recovery_with_k_shares_and_refusal_with_k_minus_1(world: World, tmp_path: Path) -> None:
    service_key = world.platform.service.signing.verify_key
    copy = lost_node_key_copy(world, tmp_path)

    session = RecoverySession(copy)
    session.submit(submission(world, "telco"))
    assert session.status() == {"acme": (1, 2)}
    with pytest.raises(BadRequest, match=r"1 recovery share\(s\) submitted, 2 needed"):
        session.finish()
    session.close()
    assert not (copy / "node.key").exists()

    recover(copy, [submission(world, "telco"), submission(world, "installer")])
    recovered = Platform.open(copy, operator_keys=[world.operator.verify_key], clock=world.clock)
    try:
        assert recovered.service.signing.verify_key == service_key
        assert recovered.member_view("acme", "vendor").notifications()
        # The recovered platform accepts new requests, and the whole ledger verifies.
        customer = world.add_keys("customer")
        body = world.sign("telco", "addMember", customer.public_info())
        assert isinstance(recovered.execute("acme", body), Pending)
        store = SQLiteStore(copy / "ledger.sqlite")
        try:
            assert verify_ledger(store, load_node_key(copy / "node.key"))
        finally:
            store.close()
    finally:
        recovered.close()


def test_shares_reissued_when_members_join_and_leave(world: World, tmp_path: Path) -> None:
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info())
    assert isinstance(pending, Pending)
    world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    assert len(shares_of(world, "telco")) == 2
    (new,) = shares_of(world, "customer")
    assert new.threshold == 3 and new.epoch == shares_of(world, "telco")[-1].epoch
    old = sign_submission(world.keys["telco"], shares_of(world, "telco")[0])
    removed = submission(world, "customer")

    removal = world.act("telco", "removeMember", {"id": "customer"})
    assert isinstance(removal, Pending)
    done = world.act("vendor", "voteFor", {"proposal": removal.proposal, "ballot": "approve"})
    assert isinstance(done, Committed)
    latest = shares_of(world, "telco")[-1]
    assert len(shares_of(world, "telco")) == 3 and latest.threshold == 2

    copy = lost_node_key_copy(world, tmp_path)
    session = RecoverySession(copy)
    try:
        # Shares of a replaced epoch are withdrawn; the removed member holds none of the new.
        with pytest.raises(BadRequest, match="replaced by newer ones"):
            session.submit(old)
        with pytest.raises(BadRequest, match="replaced by newer ones"):
            session.submit(removed)
        session.submit(submission(world, "vendor"))
        session.submit(submission(world, "installer"))
        session.finish()
    finally:
        session.close()
    Platform.open(copy, clock=world.clock).close()


def test_shares_reissued_when_keys_rotate(world: World) -> None:
    from test_authentication import rotate_params

    params, new = rotate_params(world, "vendor")
    world.act("vendor", "refreshTrustKeys", params)
    assert len(shares_of(world, "telco")) == 2
    # The new share is sealed (inside a box) to the vendor's new key.
    last = world.platform.member_view("acme", "vendor").notifications()[-1]
    body = js(open_notification(last, new, world.platform.service.encryption.public_key))
    assert body["event"] == "recovery_share"
    assert open_share(str(body["sealed"]), new).epoch == shares_of(world, "telco")[-1].epoch


def test_share_from_a_non_member_is_refused(world: World, tmp_path: Path) -> None:
    world.create("other", ["mallory", "vendor"])
    stolen = shares_of(world, "telco")[-1]
    copy = lost_node_key_copy(world, tmp_path)
    session = RecoverySession(copy)
    try:
        # A stranger signing a real share, or a member of another consortium: refused.
        mallory = MemberKeys.generate("mallory")
        with pytest.raises(BadSignature, match="holds no recovery share"):
            session.submit(sign_submission(mallory, stolen))
        with pytest.raises(BadSignature, match="holds no recovery share"):
            session.submit(sign_submission(world.keys["mallory"], stolen))
        # A member submitting its share for a consortium it is not in: refused too.
        moved = Share(
            "acme", stolen.epoch, stolen.x, 2, shares_of(world, "mallory", "other")[0].value
        )
        with pytest.raises(BadSignature):
            session.submit(sign_submission(world.keys["mallory"], moved))
        assert session.status()["acme"] == (0, 0)
        # Every consortium must be recoverable before anything is written.
        session.submit(submission(world, "telco"))
        session.submit(submission(world, "vendor"))
        with pytest.raises(BadRequest, match="cannot recover 'other'"):
            session.finish()
        assert not (copy / "node.key").exists()
        session.submit(submission(world, "vendor", "other"))
        session.submit(submission(world, "mallory", "other"))
        session.finish()
    finally:
        session.close()
    platform = Platform.open(copy, clock=world.clock)
    try:
        assert sorted(platform.consortia()) == ["acme", "other"]
        assert platform.member_view("other", "mallory").notifications()
    finally:
        platform.close()


def test_threshold_is_voted_in_the_constitution(world: World, tmp_path: Path) -> None:
    world.refused("action_failed", world.sign("telco", "setRecoveryThreshold", {"threshold": 4}))
    pending = world.act("telco", "setRecoveryThreshold", {"threshold": 3})
    assert isinstance(pending, Pending)  # governance: a majority must approve
    assert len(shares_of(world, "telco")) == 1
    world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    constitution = js(world.platform.member_view("acme", "installer").constitution())
    assert constitution["recovery_threshold"] == 3
    assert {shares_of(world, m)[-1].threshold for m in ("telco", "vendor", "installer")} == {3}

    copy = lost_node_key_copy(world, tmp_path)
    session = RecoverySession(copy)
    try:
        session.submit(submission(world, "telco"))
        session.submit(submission(world, "vendor"))
        with pytest.raises(BadRequest, match="2 recovery share"):
            session.finish()
        session.submit(submission(world, "installer"))
        session.finish()
    finally:
        session.close()
    platform = Platform.open(copy, clock=world.clock)
    try:
        restored = platform.runtime("acme").constitution
        assert restored.recovery_threshold == 3
    finally:
        platform.close()
