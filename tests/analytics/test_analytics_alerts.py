"""The loopback: an alert becomes a committed service transaction that tells the named members
and, when the constitution says so, suspends the suspect until a vote decides."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from analytics_world import FOUNDERS, AnalyticsWorld, make_world, wait_for

from consortia import MemberKeys, sign_action
from consortia._json import JSON, JSONObject
from consortia.analytics import Alert
from consortia.engine.alerts import ALERT_ACTION, SERVICE_MEMBER
from consortia.engine.audit import verify_ledger
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.records import parse_record
from consortia.ledger.sqlite import SQLiteStore
from testkit import js, storage_fingerprint

ROLES: dict[str, JSONObject] = {
    "telco": {"role": "seller"},
    "vendor": {"role": "supplier"},
    "installer": {"role": "installer"},
    "audit-co": {"role": "auditor"},
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AnalyticsWorld]:
    w = make_world(tmp_path)
    yield w
    w.close()


def alert(member: str = "installer", cid: str = "acme", **kw: object) -> Alert:
    fields: dict[str, object] = {
        "time": 1_800_000_000.0,
        "consortium": cid,
        "member": member,
        "rule": "probing",
        "score": 0.9,
        "evidence": {"distinct_actions": 4, "window_s": 300},
    }
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


def set_policy(world: AnalyticsWorld, **changes: JSON) -> None:
    doc: JSONObject = {
        "grants": {},
        "insights_full": [],
        "alert_to": "all",
        "suspend_on_alert": False,
    }
    doc.update(changes)
    world.vote_through("telco", "setAnalyticsPolicy", doc)


def alerts_of(world: AnalyticsWorld, member: str) -> list[JSON]:
    return [body for kind, body in world.notes(member) if kind == "misuse_alert"]


def test_by_default_every_member_but_the_suspect_is_told(world: AnalyticsWorld) -> None:
    world.platform.submit_alert(alert("installer"))
    assert world.platform.apply_alerts("acme") == 1
    for member in ("telco", "vendor"):
        (body,) = alerts_of(world, member)
        assert js(body) == {
            "member": "installer",
            "rule": "probing",
            "score": 0.9,
            "time": 1_800_000_000.0,
            "evidence": {"distinct_actions": 4, "window_s": 300},
            "suspended": False,
        }
    assert alerts_of(world, "installer") == []
    # Not suspended: the suspect is still active.
    assert world.platform.runtime("acme").constitution.is_active("installer")


def test_alerts_reach_exactly_the_members_and_roles_the_policy_names(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    try:
        world.create("roles", tuple(ROLES), ROLES)
        world.cid = "roles"
        pending = world.act(
            "telco",
            "setAnalyticsPolicy",
            {
                "grants": {},
                "insights_full": [],
                "alert_to": ["auditor", "vendor"],  # a role, and a member id
                "suspend_on_alert": False,
            },
        )
        for voter in ("vendor", "installer"):  # 3 of 4
            world.act(voter, "voteFor", {"proposal": pending.txid, "ballot": "approve"})
        world.platform.submit_alert(alert("telco", cid="roles"))
        world.platform.apply_alerts("roles")
        told = {m for m in ROLES if alerts_of(world, m)}
        assert told == {"audit-co", "vendor"}
        (note,) = [
            n
            for n in world.platform.member_view("roles", "audit-co").notifications()
            if n["kind"] == "misuse_alert"
        ]
        assert note["action"] == ALERT_ACTION
        # The record is visible to the alerted members only, not to the suspect.
        txid = str(note["txid"])
        record = world.platform.member_view("roles", "vendor").transaction(txid)
        assert record["seqno"] is not None
        with pytest.raises(Exception, match="may see"):
            world.platform.member_view("roles", "telco").transaction(txid)
    finally:
        world.close()


def test_suspend_on_alert_suspends_until_members_vote_to_reinstate(world: AnalyticsWorld) -> None:
    set_policy(world, suspend_on_alert=True)
    # A flood of replays or forged signatures under a member's id makes it the victim, not
    # the suspect: those alerts never suspend, or any stranger could suspend any member.
    for rule in ("replay_flood", "bad_signature_burst"):
        world.platform.submit_alert(alert("installer", rule=rule))
    world.platform.apply_alerts("acme")
    assert [js(b)["suspended"] for b in alerts_of(world, "telco")] == [False, False]
    assert world.platform.runtime("acme").constitution.is_active("installer")
    world.platform.submit_alert(alert("installer", rule="probing"))
    world.platform.apply_alerts("acme")
    body = alerts_of(world, "telco")[-1]
    assert js(body)["suspended"] is True
    refusal = world.refused(
        "member_suspended", world.sign("installer", "voteFor", {"proposal": "0" * 64})
    )
    assert "suspended" in refusal.message
    # The suspension is governance: every active member sees the transaction and the status.
    note = next(
        n
        for n in world.platform.member_view("acme", "vendor").notifications()
        if n["kind"] == "misuse_alert"
    )
    record = world.platform.member_view("acme", "telco").transaction(str(note["txid"]))
    parsed = parse_record(_b64(str(record["record"])))
    assert (parsed.action, parsed.member, parsed.request) == (ALERT_ACTION, SERVICE_MEMBER, None)
    members = {
        m["id"]: m["status"]
        for m in js(world.platform.member_view("acme", "telco").constitution())["members"]
    }
    assert members == {"telco": "active", "vendor": "active", "installer": "suspended"}
    # Reinstating takes the governance vote (2 of the 2 remaining active members).
    pending = world.act("telco", "reinstateMember", {"id": "installer"})
    assert world.platform.runtime("acme").constitution.members["installer"].status == "suspended"
    world.act("vendor", "voteFor", {"proposal": pending.txid, "ballot": "approve"})
    assert world.platform.runtime("acme").constitution.is_active("installer")
    world.refused("action_failed", world.sign("telco", "reinstateMember", {"id": "installer"}))
    # `ledger verify` names each of the three alerts as such, and the two voted changes.
    store = SQLiteStore(world.data / "ledger.sqlite", read_only=True)
    try:
        (audit,) = verify_ledger(store, load_node_key(world.data / "node.key"))
    finally:
        store.close()
    assert (audit.kinds["alert"], audit.kinds["voted"]) == (3, 2)
    assert sum(audit.kinds.values()) == audit.tree_size


def test_a_suspended_member_can_be_removed_by_vote(world: AnalyticsWorld) -> None:
    set_policy(world, suspend_on_alert=True)
    world.platform.submit_alert(alert("vendor"))
    world.platform.apply_alerts("acme")
    pending = world.act("telco", "removeMember", {"id": "vendor"})
    world.act("installer", "voteFor", {"proposal": pending.txid, "ballot": "approve"})
    assert world.platform.runtime("acme").constitution.members["vendor"].status == "removed"
    world.refused("action_failed", world.sign("telco", "reinstateMember", {"id": "vendor"}))


def test_the_last_active_member_is_never_suspended(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    try:
        world.create("solo", ("telco",))
        world.cid = "solo"
        world.act(
            "telco",
            "setAnalyticsPolicy",
            {"grants": {}, "insights_full": [], "alert_to": "all", "suspend_on_alert": True},
        )
        world.platform.submit_alert(alert("telco", cid="solo"))
        assert world.platform.apply_alerts("solo") == 1
        assert world.platform.runtime("solo").constitution.is_active("telco")
    finally:
        world.close()


def test_alerts_ride_the_next_batch_without_an_explicit_apply(world: AnalyticsWorld) -> None:
    world.platform.submit_alert(alert("installer"))
    world.platform.execute_batch("acme", [])
    assert len(alerts_of(world, "telco")) == 1
    assert world.platform.apply_alerts("acme") == 0


@pytest.mark.parametrize(
    "bad",
    [
        alert(score=math.nan),
        alert(time=math.inf),
        alert(rule=""),
        alert(evidence={"x": math.nan}),
    ],
)
def test_malformed_alerts_are_dropped_and_change_nothing(world: AnalyticsWorld, bad: Alert) -> None:
    before = storage_fingerprint(world.db)
    world.platform.submit_alert(bad)
    assert world.platform.apply_alerts("acme") == 0
    assert world.platform.alerts_dropped == 1
    assert storage_fingerprint(world.db) == before


def test_an_alert_for_an_unknown_consortium_is_dropped(world: AnalyticsWorld) -> None:
    world.platform.submit_alert(alert(cid="nowhere"))
    assert world.platform.apply_alerts("nowhere") == 0
    assert world.platform.alerts_dropped == 1


def test_the_listener_hears_of_each_alert(world: AnalyticsWorld) -> None:
    heard: list[str] = []
    world.platform.alert_listener = heard.append
    world.platform.submit_alert(alert())
    assert heard == ["acme"]


def test_the_detector_closes_the_loop_on_a_bad_signature_burst(tmp_path: Path) -> None:
    """Default platform: DuckDB sink + detector; a forger's burst becomes an alert."""
    import duckdb

    from consortia import Platform, SigningKey
    from consortia.wire import sign_creation

    operator = SigningKey.generate()
    platform = Platform.open(tmp_path, operator_keys=[operator.verify_key])
    keys = {m: MemberKeys.generate(m) for m in FOUNDERS}
    try:
        now = platform.clock()
        platform.create_consortium(
            sign_creation(
                operator,
                consortium="acme",
                name="Acme",
                members=[k.public_info() for k in keys.values()],
                now=now,
            )
        )
        forger = MemberKeys.generate("vendor")
        bodies = [
            sign_action(forger, consortium="acme", action="voteFor", params={}, now=now)
            for _ in range(12)
        ]
        answers = platform.execute_batch("acme", bodies)
        assert {getattr(a, "code", None) for a in answers} == {"bad_signature"}

        def alerted() -> bool:
            platform.apply_alerts("acme")
            notes = platform.member_view("acme", "telco").notifications()
            return any(n["kind"] == "misuse_alert" for n in notes)

        wait_for(alerted, timeout=30)
        kinds = [n["kind"] for n in platform.member_view("acme", "vendor").notifications()]
        assert "misuse_alert" not in kinds  # the claimed (framed) member is not told
    finally:
        platform.close()
    con = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT member, rule FROM alerts").fetchall()
    finally:
        con.close()
    assert ("vendor", "bad_signature_burst") in rows


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_alerting_members_of_a_removed_policy_entry_are_skipped(world: AnalyticsWorld) -> None:
    set_policy(world, alert_to=["vendor"])
    pending = world.act("telco", "removeMember", {"id": "vendor"})
    world.act("installer", "voteFor", {"proposal": pending.txid, "ballot": "approve"})
    world.platform.submit_alert(alert("installer"))
    world.platform.apply_alerts("acme")
    assert all(alerts_of(world, m) == [] for m in ("telco", "installer"))
    # The transaction still committed: an audit trail with no live recipient.
    before = world.platform.runtime("acme").next_seqno
    world.platform.submit_alert(alert("installer"))
    assert world.platform.apply_alerts("acme") == 1
    assert world.platform.runtime("acme").next_seqno == before + 1
