"""Every request leaves exactly one redacted event: each outcome kind, reads, decisions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from analytics_world import FOUNDERS, AnalyticsWorld, make_world

from consortia import ConsortiaError, MemberKeys, sign_action
from consortia._json import JSONObject
from consortia.analytics import Event
from consortia.errors import NotFound
from consortia.identity.jwt import issue_token


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AnalyticsWorld]:
    w = make_world(tmp_path)
    yield w
    w.close()


def _only(events: list[Event], **match: object) -> Event:
    found = [e for e in events if all(getattr(e, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_committed_pending_refused_and_failed_each_emit_one_event(world: AnalyticsWorld) -> None:
    world.add_record_action()
    committed = world.act("vendor", "record", {"kind": "order", "id": "O1", "note": "n"})
    pending = world.act("telco", "addMember", MemberKeys.generate("customer").public_info())
    failed = world.refused(
        "action_failed", world.sign("vendor", "record", {"kind": "order", "id": "O2"})
    )
    body = world.sign("installer", "record", {"kind": "order", "id": "O3", "note": "x"})
    world.platform.execute(world.cid, body)
    replay = world.refused(
        "replay",
        world.sign(
            "installer", "record", {"kind": "a", "id": "b", "note": "c"}, nonce=_nonce(body)
        ),
    )
    denied = world.refused("not_public", world.sign("installer", "approveAction", {}))
    unknown = world.refused("unknown_action", world.sign("installer", "stealData", {}))
    events = world.events()
    ev = _only(events, txid=committed.txid)
    assert (ev.kind, ev.action, ev.member, ev.outcome, ev.code) == (
        "execute",
        "record",
        "vendor",
        "committed",
        None,
    )
    # The default policy declares no object types: the first segment leaves as a keyed hash.
    assert ev.object_type is not None and re.fullmatch(r"#[0-9a-f]{8}", ev.object_type)
    assert ev.object_ref is not None and re.fullmatch(r"[0-9a-f]{16}", ev.object_ref)
    assert ev.latency_ms > 0
    assert ev.time == world.clock.now
    assert dict(ev.fields) == {}
    assert _only(events, txid=pending.txid).outcome == "pending"
    ev = _only(events, txid=failed.txid)
    assert (ev.outcome, ev.code, ev.member, ev.object_ref) == (
        "failed",
        "action_failed",
        "vendor",
        None,
    )
    ev = _only(events, txid=replay.txid)
    assert (ev.outcome, ev.code, ev.member) == ("refused", "replay", "installer")
    ev = _only(events, txid=denied.txid)
    assert (ev.outcome, ev.code) == ("refused", "not_public")
    ev = _only(events, txid=unknown.txid)
    assert (ev.action, ev.outcome, ev.code) == ("stealData", "refused", "unknown_action")
    assert all(e.kind == "execute" and e.consortium == "acme" for e in events)


def _nonce(body: str) -> str:
    import base64
    import json

    payload = body.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(decoded["nonce"])


def test_bad_signature_names_the_claimed_member(world: AnalyticsWorld) -> None:
    forger = MemberKeys.generate("vendor")  # claims to be vendor, signs with its own key
    body = sign_action(forger, consortium="acme", action="voteFor", params={}, now=world.clock.now)
    refusal = world.refused("bad_signature", body)
    ev = _only(world.events(), txid=refusal.txid)
    assert (ev.member, ev.action, ev.outcome, ev.code) == (
        "vendor",
        "voteFor",
        "refused",
        "bad_signature",
    )


def test_garbage_body_still_emits_a_refusal_without_names(world: AnalyticsWorld) -> None:
    world.refused("bad_request", "not a jws")
    (ev,) = world.events()
    assert (ev.outcome, ev.code, ev.member, ev.action, ev.txid) == (
        "refused",
        "bad_request",
        None,
        None,
        None,
    )


def test_a_decided_proposal_emits_its_final_outcome_with_the_vote_duration(
    world: AnalyticsWorld,
) -> None:
    world.keys["customer"] = MemberKeys.generate("customer")
    pending = world.act("telco", "addMember", world.keys["customer"].public_info())
    world.clock.now += 90
    world.act("vendor", "voteFor", {"proposal": pending.txid, "ballot": "approve"})
    rejected = world.act("telco", "removeMember", {"id": "installer"})
    world.act("vendor", "voteFor", {"proposal": rejected.txid, "ballot": "reject"})
    world.act("installer", "voteFor", {"proposal": rejected.txid, "ballot": "reject"})
    world.act("customer", "voteFor", {"proposal": rejected.txid, "ballot": "reject"})
    events = world.events()
    added = [e for e in events if e.txid == pending.txid]
    assert [e.outcome for e in added] == ["pending", "committed"]
    assert added[1].latency_ms == 90_000
    assert added[1].member == "telco" and added[1].action == "addMember"
    dropped = [e for e in events if e.txid == rejected.txid]
    assert [(e.outcome, e.code) for e in dropped] == [
        ("pending", None),
        ("refused", "vote_rejected"),
    ]
    ballots = [e for e in events if e.action == "voteFor"]
    assert [e.outcome for e in ballots] == ["committed"] * 4


def test_reads_emit_read_events_with_object_refs_not_names(world: AnalyticsWorld) -> None:
    world.add_record_action()
    done = world.act("vendor", "record", {"kind": "device", "id": "D1", "note": "n"})
    view = world.platform.member_view(world.cid, "vendor")
    view.object("device/D1")
    view.history("device/D1")
    view.transaction(done.txid)
    view.receipt(done.txid)
    view.constitution()
    view.notifications()
    with pytest.raises(NotFound, match="may see") as hidden:
        world.platform.member_view(world.cid, "telco").object("device/D1")
    with pytest.raises(NotFound, match="may see") as absent:
        world.platform.member_view(world.cid, "telco").object("device/D9")
    # The reader cannot tell the two apart; analytics, inside the TEP, can.
    assert (hidden.value.code, hidden.value.message.replace("D1", "D9")) == (
        absent.value.code,
        absent.value.message,
    )
    reads = [e for e in world.events() if e.kind == "read"]
    assert (reads[-1].outcome, reads[-1].code) == ("refused", "not_found")
    reads = reads[:-1]
    assert [e.action for e in reads] == [
        "object",
        "history",
        "transaction",
        "receipt",
        "constitution",
        "notifications",
        "object",
    ]
    assert all(e.outcome == "ok" for e in reads[:-1])
    assert (reads[-1].outcome, reads[-1].code, reads[-1].member) == ("hidden", None, "telco")
    written = next(e for e in world.events() if e.txid == done.txid)
    assert reads[0].object_type == written.object_type  # one type, whether read or written
    assert reads[0].object_type is not None and "device" not in reads[0].object_type
    assert reads[0].object_ref == reads[1].object_ref == written.object_ref
    assert reads[2].txid == reads[3].txid == done.txid
    assert all("D1" not in repr(e) for e in reads)


def test_object_refs_are_keyed_per_consortium_and_per_key(world: AnalyticsWorld) -> None:
    world.create("other", FOUNDERS)
    for cid in ("acme", "other"):
        view = world.platform.member_view(cid, "telco")
        for key in ("order/O1", "order/O2"):
            with pytest.raises(Exception, match="may see"):
                view.object(key)
    refs = [(e.consortium, e.object_ref) for e in world.events()]
    assert len({r for _, r in refs}) == 4
    assert all(r is not None and len(r) == 16 for _, r in refs)


def test_a_forged_read_token_is_a_refused_token_read(world: AnalyticsWorld) -> None:
    forger = MemberKeys.generate("installer")
    token = issue_token(forger, audience="acme", now=world.clock.now)
    # The forger hears what a stranger hears; the event keeps the real cause for the detector.
    with pytest.raises(Exception, match="with the key that signed this token"):
        world.platform.reader("acme", token)
    (ev,) = world.events()
    assert (ev.kind, ev.action, ev.member, ev.outcome, ev.code) == (
        "read",
        "token",
        "installer",
        "refused",
        "bad_signature",
    )


def test_without_a_sink_no_event_is_built(tmp_path: Path) -> None:
    from consortia import Platform, SigningKey

    operator = SigningKey.generate()
    platform = Platform.open(tmp_path, operator_keys=[operator.verify_key], analytics=False)
    try:
        assert platform.analytics is None
        assert platform.analytics_stats() is None
        assert platform._hook is None  # so no request is traced for analytics
        assert not (tmp_path / "analytics.duckdb").exists()
    finally:
        platform.close()


def test_every_answer_of_a_batch_gets_its_event(world: AnalyticsWorld) -> None:
    bodies = [
        world.sign(m, "voteFor", {"proposal": "0" * 64, "ballot": "approve"}) for m in FOUNDERS
    ]
    bodies.append("garbage")
    answers = world.platform.execute_batch(world.cid, bodies)
    events = world.events()
    assert len(events) == len(answers) == 4
    assert [e.code for e in events] == [getattr(a, "code", None) for a in answers]


def test_object_types_leave_in_clear_only_where_the_policy_declares_them() -> None:
    """A key such as ``acme-bid/...`` names a customer: its first segment leaves only if the
    constitution lists it; otherwise a keyed hash still lets types be counted apart."""
    from consortia.analytics.redact import ObjectRefs, execute_event
    from consortia.governance.analytics_policy import AnalyticsPolicy, parse_analytics_policy

    refs = ObjectRefs(b"k" * 32)
    declared = AnalyticsPolicy(object_types=("productOrder",))

    def type_of(policy: AnalyticsPolicy, key: str) -> str | None:
        return execute_event(
            policy=policy,
            refs=refs,
            time=0.0,
            consortium="acme",
            action="a",
            member="m",
            outcome="committed",
            code=None,
            latency_ms=1.0,
            txid=None,
            params=None,
            key=key,
        ).object_type

    assert type_of(declared, "productOrder/PO1") == "productOrder"
    hidden = type_of(declared, "acme-bid/2027/PO1")
    assert hidden is not None and hidden.startswith("#") and "acme" not in hidden
    assert hidden == type_of(declared, "acme-bid/other")  # the same type, the same hash
    assert hidden != type_of(declared, "globex-bid/x")
    # Voted as part of the policy; policies voted before the field existed stay valid.
    base: JSONObject = {
        "grants": {},
        "insights_full": [],
        "alert_to": "all",
        "suspend_on_alert": False,
    }
    assert parse_analytics_policy(base).object_types == ()
    assert parse_analytics_policy({**base, "object_types": ["stock"]}).object_types == ("stock",)
    with pytest.raises(ConsortiaError) as caught:
        parse_analytics_policy({**base, "object_types": ["no/slash"]})
    assert "object_types[0]" in caught.value.message
