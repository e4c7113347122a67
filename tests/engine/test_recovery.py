"""Disaster recovery: k-of-n recovery shares open a copy of the storage without the node key."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia import MemberKeys, Platform, open_notification
from consortia.engine import Committed, Pending
from consortia.engine.audit import verify_ledger
from consortia.engine.recovery import (
    BACKUP_META,
    RecoverySession,
    ServiceBackup,
    backup_service_keys,
    recover,
)
from consortia.engine.service import ServiceIdentity
from consortia.errors import BadRequest, BadSignature, ConsortiaError, Replay, StaleRequest
from consortia.identity.keys import EncryptionKey
from consortia.ledger.crypto import unwrap
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.receipts import sign_root
from consortia.ledger.recovery import (
    RecoveryRecord,
    Share,
    combine_key,
    default_threshold,
    open_share,
    record_name,
    sign_holder_proof,
    sign_submission,
    split_key,
)
from consortia.ledger.sqlite import SQLiteStore
from testkit import js, storage_fingerprint
from world import World, founded

#: The operator's offline recovery key, which the service-key backup is sealed to.
OPERATOR_RECOVERY = EncryptionKey.generate()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """SQLite only (the conftest's world also runs on PostgreSQL): these tests open, copy or
    damage the ledger file itself."""
    yield from founded(tmp_path)


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


def lost_node_key_copy(world: World, tmp_path: Path, *, backup: bool = True) -> Path:
    """A copy of the data directory as a disaster leaves it: storage, no node key.

    With ``backup``, the operator sealed the service keys to its recovery key beforehand.
    """
    if backup:
        backup_service_keys(world.data, OPERATOR_RECOVERY.public_key)
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
    assert session.status() == {"acme": (0, 2)}
    assert session.restore_service(OPERATOR_RECOVERY) == service_key
    session.submit(submission(world, "telco"))
    assert session.status() == {"acme": (1, 2)}
    assert not session.ready
    with pytest.raises(BadRequest, match=r"1 recovery share\(s\) submitted, 2 needed"):
        session.finish()
    session.close()
    assert not (copy / "node.key").exists()

    recover(
        copy,
        [submission(world, "telco"), submission(world, "installer")],
        backup_key=OPERATOR_RECOVERY,
    )
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
    session.restore_service(OPERATOR_RECOVERY)
    try:
        # Shares of a replaced epoch are withdrawn; the removed member holds none of the new.
        with pytest.raises(BadSignature, match="older ones stop working when shares are re-is"):
            session.submit(old)
        with pytest.raises(BadSignature, match="holds no current recovery share"):
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
    session.restore_service(OPERATOR_RECOVERY)
    try:
        # A stranger signing a real share, or a member of another consortium: refused.
        mallory = MemberKeys.generate("mallory")
        with pytest.raises(BadSignature, match="holds no current recovery share"):
            session.submit(sign_submission(mallory, stolen))
        with pytest.raises(BadSignature, match="holds no current recovery share"):
            session.submit(sign_submission(world.keys["mallory"], stolen))
        # A member submitting its share for a consortium it is not in: refused too.
        moved = Share(
            "acme", stolen.epoch, stolen.x, 2, shares_of(world, "mallory", "other")[0].value
        )
        with pytest.raises(BadSignature):
            session.submit(sign_submission(world.keys["mallory"], moved))
        assert session.status()["acme"] == (0, 2)
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
    session.restore_service(OPERATOR_RECOVERY)
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


def _meta(db: Path) -> dict[str, bytes]:
    """Every row of the meta table, as an attacker with a storage copy reads it."""
    connection = sqlite3.connect(db)
    try:
        return {str(n): bytes(v) for n, v in connection.execute("SELECT name, value FROM meta")}
    finally:
        connection.close()


def test_k_members_of_one_consortium_get_no_key_that_signs_another(
    world: World, tmp_path: Path
) -> None:
    world.create("other", ["bob", "carol"])
    service = world.platform.service
    secrets_of_service = [
        service.signing.to_jwk()["d"],
        service.encryption.to_jwk()["d"],
    ]
    copy = lost_node_key_copy(world, tmp_path)
    meta = _meta(copy / "ledger.sqlite")

    # The attacker's view: acme's k shares combine to acme's recovery key...
    mine = [shares_of(world, m)[-1] for m in ("telco", "vendor")]
    key = combine_key([(s.x, s.value) for s in mine], 2)
    record_blob = meta[record_name("acme", mine[0].epoch)]
    assert set(json.loads(record_blob)) == {"cid", "epoch", "threshold", "holders", "keyring"}
    record = RecoveryRecord.from_bytes(record_blob)
    keyring = unwrap(key, record.keyring, record.aad("keyring"), what="keyring")
    # ...which opens acme's keyring and nothing else in storage: no service keys in it,
    # and no other stored blob (a legacy "service" copy included) opens with it.
    for secret in secrets_of_service:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        assert secret.encode() not in keyring and raw not in keyring
        assert raw.hex().encode() not in keyring
    for name, value in meta.items():
        for what in ("service", "keyring"):
            if name == record_name("acme", mine[0].epoch) and what == "keyring":
                continue
            with pytest.raises(ConsortiaError):
                unwrap(key, value, f"recovery-{what}|acme|{mine[0].epoch}".encode(), what=name)
    # The operator's backup does not open with any member's key, of either consortium.
    backup = ServiceBackup.from_bytes(meta[BACKUP_META])
    for member in ("telco", "vendor", "installer", "bob", "carol"):
        with pytest.raises(BadSignature, match="sealed to another key"):
            backup.open(world.keys[member].encryption)

    # Even k members of *every* consortium recover nothing without the operator's key.
    session = RecoverySession(copy)
    try:
        for member, cid in [("telco", "acme"), ("vendor", "acme"), ("bob", "other")]:
            session.submit(submission(world, member, cid))
        session.submit(submission(world, "carol", "other"))
        assert session.status() == {"acme": (2, 2), "other": (2, 2)}
        assert not session.ready
        before = storage_fingerprint(copy / "ledger.sqlite")
        with pytest.raises(BadRequest, match="service keys are not restored"):
            session.finish()
        assert storage_fingerprint(copy / "ledger.sqlite") == before
        assert not (copy / "node.key").exists()
        # With the operator's key, the same service keys come back: pins stay valid.
        assert session.restore_service(OPERATOR_RECOVERY) == service.signing.verify_key
        session.finish()
    finally:
        session.close()
    platform = Platform.open(copy, clock=world.clock)
    try:
        assert platform.service.signing.verify_key == service.signing.verify_key
        assert platform.service.encryption.public_key == service.encryption.public_key
    finally:
        platform.close()


def test_a_record_of_the_older_format_is_read_without_its_service_copy() -> None:
    doc = {
        "cid": "acme",
        "epoch": 3,
        "threshold": 2,
        "holders": {"1": "00" * 32},
        "keyring": "ab" * 40,
        "service": "cd" * 40,
    }
    record = RecoveryRecord.from_bytes(json.dumps(doc).encode())
    assert not hasattr(record, "service")
    assert "service" not in json.loads(record.to_bytes())


def test_the_service_backup_must_be_this_platforms(world: World, tmp_path: Path) -> None:
    copy = lost_node_key_copy(world, tmp_path, backup=False)
    session = RecoverySession(copy)
    try:
        with pytest.raises(BadRequest, match="holds no service-key backup"):
            session.restore_service(OPERATOR_RECOVERY)
        # Another platform's keys, sealed to the operator's (public) key: refused, since
        # they did not sign this ledger's roots.
        stranger = Platform.open(tmp_path / "stranger", clock=world.clock)
        foreign = ServiceBackup.seal(stranger.service, OPERATOR_RECOVERY.public_key)
        stranger.close()
        with pytest.raises(BadSignature, match="not this platform's"):
            session.restore_service(OPERATOR_RECOVERY, foreign.to_bytes())
        with pytest.raises(BadRequest, match="not a service-key backup"):
            session.restore_service(OPERATOR_RECOVERY, b'{"format": "x"}')
        mine = ServiceBackup.seal(world.platform.service, OPERATOR_RECOVERY.public_key)
        with pytest.raises(BadSignature, match="sealed to another key"):
            session.restore_service(EncryptionKey.generate(), mine.to_bytes())
        assert session.progress().service_key is None
        assert session.restore_service(OPERATOR_RECOVERY, mine.to_bytes())
    finally:
        session.close()


def test_bad_shares_are_refused_and_change_nothing(world: World, tmp_path: Path) -> None:
    copy = lost_node_key_copy(world, tmp_path)
    db = copy / "ledger.sqlite"
    session = RecoverySession(copy)
    try:
        session.restore_service(OPERATOR_RECOVERY)
        telco = submission(world, "telco")
        session.submit(telco)
        before = storage_fingerprint(db)
        with pytest.raises(Replay, match="already received; it counts once"):
            session.submit(telco)
        with pytest.raises(BadRequest):
            session.submit("not.a.jws")
        # A future epoch, an unknown consortium, a stranger: one refusal, so an outsider
        # learns nothing of which consortia this storage holds.
        latest = shares_of(world, "vendor")[-1]
        refusals = []
        for keys, share in [
            (world.keys["vendor"], Share("acme", latest.epoch + 5, latest.x, 2, latest.value)),
            (world.keys["vendor"], Share("nope", latest.epoch, latest.x, 2, latest.value)),
            (MemberKeys.generate("vendor"), latest),
        ]:
            with pytest.raises(BadSignature) as caught:
                session.submit(sign_submission(keys, share))
            refusals.append(caught.value.message.replace("'nope'", "'acme'"))
        assert len(set(refusals) - {refusals[0]}) <= 1  # only the epoch number differs
        assert all("holds no current recovery share" in m for m in refusals)
        assert refusals[1] == refusals[2]
        assert session.status() == {"acme": (1, 2)}
        assert storage_fingerprint(db) == before
        assert not (copy / "node.key").exists()
    finally:
        session.close()


def test_a_wrong_share_is_got_past_with_one_more(world: World, tmp_path: Path) -> None:
    copy = lost_node_key_copy(world, tmp_path)
    session = RecoverySession(copy)
    try:
        session.restore_service(OPERATOR_RECOVERY)
        real = shares_of(world, "telco")[-1]
        wrong = Share(real.cid, real.epoch, real.x, real.threshold, bytes(32))
        session.submit(sign_submission(world.keys["telco"], wrong))  # a holder, a bad value
        session.submit(submission(world, "vendor"))
        assert session.ready
        with pytest.raises(BadRequest, match="do not open its recovery record"):
            session.finish()
        assert "do not open" in str(session.progress().of("acme").problem)
        assert not (copy / "node.key").exists()
        session.submit(submission(world, "installer"))
        assert session.progress().of("acme").problem is None
        session.finish()
        assert session.progress().complete
    finally:
        session.close()
    Platform.open(copy, clock=world.clock).close()


def test_an_interrupted_finish_can_be_done_again(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = lost_node_key_copy(world, tmp_path)
    session = RecoverySession(copy)
    session.restore_service(OPERATOR_RECOVERY)
    session.submit(submission(world, "telco"))
    session.submit(submission(world, "vendor"))

    def crash(cid: str, keyring: bytes) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(session.store, "rewrap_keyring", crash)
    with pytest.raises(OSError, match="disk gone"):
        session.finish()
    session.close()
    # The new key never got its name: the copy is still one a recovery opens.
    assert not (copy / "node.key").exists()
    with pytest.raises(ConsortiaError, match="without its node key"):
        Platform.open(copy, clock=world.clock)
    recover(
        copy,
        [submission(world, "telco"), submission(world, "vendor")],
        backup_key=OPERATOR_RECOVERY,
    )
    platform = Platform.open(copy, clock=world.clock)
    try:
        assert platform.member_view("acme", "telco").notifications()
    finally:
        platform.close()


def test_roots_and_backup_swapped_in_storage_are_caught_at_finish(
    world: World, tmp_path: Path
) -> None:
    # Someone who can write the storage signs a newer root with a key of their own and
    # seals that key to the operator's (public) recovery key: the plain check passes...
    copy = lost_node_key_copy(world, tmp_path, backup=False)
    mine = ServiceIdentity.generate()
    db = copy / "ledger.sqlite"
    connection = sqlite3.connect(db)
    try:
        (size,) = connection.execute(
            "SELECT tree_size FROM signed_roots WHERE cid = 'acme' ORDER BY tree_size DESC LIMIT 1"
        ).fetchone()
        forged = sign_root(
            mine.signing, consortium="acme", tree_size=size + 1, root=bytes(32), iat=0
        )
        connection.execute(
            "INSERT INTO signed_roots VALUES ('acme', ?, ?, ?, ?)",
            (size + 1, size, forged, bytes(32)),
        )
        connection.execute(
            "INSERT INTO meta VALUES (?, ?)",
            (BACKUP_META, ServiceBackup.seal(mine, OPERATOR_RECOVERY.public_key).to_bytes()),
        )
        connection.commit()
    finally:
        connection.close()
    session = RecoverySession(copy)
    try:
        assert session.restore_service(OPERATOR_RECOVERY) == mine.signing.verify_key
        session.submit(submission(world, "telco"))
        session.submit(submission(world, "vendor"))
        # ...but with the keyring the row's MAC is checked, and nothing is written.
        with pytest.raises(BadSignature, match="its MAC does not check"):
            session.finish()
        assert not (copy / "node.key").exists()
        assert not session.progress().complete
    finally:
        session.close()


def test_progress_per_consortium_goes_to_holders_only(world: World, tmp_path: Path) -> None:
    world.create("other", ["bob", "carol"])
    copy = lost_node_key_copy(world, tmp_path)
    session = RecoverySession(copy)
    try:
        session.submit(submission(world, "telco"))
        now = world.clock.now
        share = shares_of(world, "vendor")[-1]
        mine = session.holder_progress(
            sign_holder_proof(world.keys["vendor"], share, now=now), now=now
        )
        assert mine.to_json() == {"consortium": "acme", "received": 1, "threshold": 2}
        # The public document has counts only, no ids.
        public = session.progress().to_json()
        assert public["consortia"] == 2 and "consortium" not in public
        assert "acme" not in json.dumps(public)
        # A member of another consortium, or a name that is not there: the same refusal.
        bob = shares_of(world, "bob", "other")[-1]
        disguised = Share("acme", share.epoch, share.x, 2, bob.value)
        unknown = Share("nope", share.epoch, share.x, 2, bob.value)
        messages = []
        for claimed in (disguised, unknown):
            proof = sign_holder_proof(world.keys["bob"], claimed, now=now)
            with pytest.raises(BadSignature) as caught:
                session.holder_progress(proof, now=now)
            messages.append(caught.value.message.replace("'nope'", "'acme'"))
        assert messages[0] == messages[1]
        stale = sign_holder_proof(world.keys["vendor"], share, now=now - 1000)
        with pytest.raises(StaleRequest):
            session.holder_progress(stale, now=now)
    finally:
        session.close()
