"""The analytics policy: parsing untrusted JSON, amending it by vote, what it lets leave."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from analytics_world import FOUNDERS, AnalyticsWorld, make_world
from hypothesis import given
from hypothesis import strategies as st

from consortia._json import JSON, JSONObject
from consortia.analytics.duckdb_sink import DuckDBBackend
from consortia.errors import ActionFailed
from consortia.governance.analytics_policy import (
    DEFAULT_ANALYTICS_POLICY,
    AnalyticsPolicy,
    parse_analytics_policy,
)
from consortia.governance.templates import default_constitution
from consortia.telco.template import TELCO_TEMPLATE
from testkit import js

SECRET = "SECRET-MARKER-7f3a9c"
GRANTED = "granted-marker-91c2"


def policy(**changes: JSON) -> JSONObject:
    doc: JSONObject = {
        "grants": {},
        "insights_full": [],
        "alert_to": "all",
        "suspend_on_alert": False,
        "object_types": [],
    }
    doc.update(changes)
    return doc


# -- parsing ----------------------------------------------------------------------------------


def test_the_default_policy_grants_nothing_and_alerts_everyone() -> None:
    assert parse_analytics_policy(policy()) == DEFAULT_ANALYTICS_POLICY
    assert DEFAULT_ANALYTICS_POLICY.granted("placeOrder") == ()
    assert DEFAULT_ANALYTICS_POLICY.alerted("anyone", None)
    assert not DEFAULT_ANALYTICS_POLICY.sees_full("anyone", "seller")


def test_roles_and_member_ids_both_match() -> None:
    parsed = parse_analytics_policy(
        policy(insights_full=["auditor", "telco"], alert_to=["seller"], suspend_on_alert=True)
    )
    assert parsed.sees_full("telco", None)
    assert parsed.sees_full("acme-audit", "auditor")
    assert not parsed.sees_full("vendor", "supplier")
    assert parsed.alerted("x", "seller") and not parsed.alerted("seller2", "supplier")
    assert parsed.suspend_on_alert


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("nope", "must be a JSON object"),
        ({"grants": {}}, "is missing"),
        ({**policy(), "extra": 1}, "unknown field"),
        (policy(grants=[]), "grants must be an object"),
        (policy(grants={"bad name": ["x"]}), "not an action name"),
        (policy(grants={"placeOrder": "order"}), "must be a list"),
        (policy(grants={"placeOrder": ["ok", "ok"]}), "twice"),
        (policy(grants={"placeOrder": [1]}), "parameter field name"),
        (policy(grants={"placeOrder": [f"f{i}" for i in range(33)]}), "at most 32"),
        (policy(insights_full="all"), "insights_full must be a list"),
        (policy(insights_full=["a b"]), "member id or a role"),
        (policy(alert_to="everyone"), "alert_to must be a list"),
        (policy(alert_to=["x", "x"]), "twice"),
        (policy(suspend_on_alert="yes"), "true or false"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(doc: JSON, message: str) -> None:
    with pytest.raises(ActionFailed, match=message):
        parse_analytics_policy(doc)


_names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@given(
    grants=st.dictionaries(_names, st.lists(_names, max_size=4, unique=True), max_size=4),
    full=st.lists(_names, max_size=4, unique=True),
    alert=st.one_of(st.just("all"), st.lists(_names, max_size=4, unique=True)),
    suspend=st.booleans(),
)
def test_to_json_round_trips(
    grants: dict[str, list[str]], full: list[str], alert: str | list[str], suspend: bool
) -> None:
    doc = policy(
        grants=js(grants), insights_full=js(full), alert_to=js(alert), suspend_on_alert=suspend
    )
    parsed = parse_analytics_policy(doc)
    again = parse_analytics_policy(parsed.to_json())
    assert again == parsed
    assert parsed.to_json()["grants"] == {a: f for a, f in grants.items() if f}


def test_the_policy_shows_in_the_constitution_json() -> None:
    c = default_constitution([])
    assert c.to_json()["analytics"] == policy()


# -- amendment by vote ------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AnalyticsWorld]:
    w = make_world(tmp_path)
    yield w
    w.close()


def test_set_analytics_policy_votes_like_amend_constitution() -> None:
    from consortia.governance.constitution import Member
    from consortia.identity.keys import EncryptionKey, SigningKey

    founders = [
        Member(
            m,
            SigningKey.generate().verify_key,
            EncryptionKey.generate().public_key,
            roles=(r,),
        )
        for m, r in (
            ("telco", "seller"),
            ("vendor", "supplier"),
            ("fitter", "installer"),
        )
    ]
    for constitution in (default_constitution(founders), TELCO_TEMPLATE.build(founders)):
        amend = constitution.action("amendConstitution")
        for name in ("setAnalyticsPolicy", "reinstateMember"):
            action = constitution.action(name)
            assert action.voting == amend.voting, name
            assert action.permissions == amend.permissions, name
            assert (action.scope, action.language) == ("public", "builtin")


def test_a_policy_takes_the_same_votes_and_then_survives_a_restart(
    world: AnalyticsWorld,
) -> None:
    wanted = policy(grants={"addMember": ["id"]}, alert_to=["telco"], suspend_on_alert=True)
    pending = world.act("telco", "setAnalyticsPolicy", wanted)
    view = world.platform.member_view(world.cid, "installer")
    assert view.constitution()["analytics"] == policy()  # not yet: one vote of two
    world.act("vendor", "voteFor", {"proposal": pending.txid, "ballot": "approve"})
    assert view.constitution()["analytics"] == wanted
    world.platform.close()
    from consortia import Platform

    reopened = Platform.open(
        world.data, operator_keys=[world.operator.verify_key], clock=world.clock, analytics=False
    )
    try:
        restored = reopened.runtime(world.cid).constitution.analytics
        assert restored == parse_analytics_policy(wanted)
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (policy(grants={"noSuchAction": ["x"]}), "not an action"),
        (policy(alert_to=["stranger"]), "neither a member id nor a role"),
        (policy(insights_full=["auditor"]), "neither a member id nor a role"),
        ({"grants": {}}, "is missing"),
    ],
)
def test_bad_amendments_are_refused_before_the_vote_and_change_nothing(
    world: AnalyticsWorld, params: JSONObject, message: str
) -> None:
    error = world.refused("action_failed", world.sign("telco", "setAnalyticsPolicy", params))
    assert message in error.message
    assert world.platform.runtime(world.cid).constitution.analytics == DEFAULT_ANALYTICS_POLICY


def test_a_member_without_permission_cannot_set_the_policy(world: AnalyticsWorld) -> None:
    world.vote_through(
        "telco",
        "updatePermissions",
        {
            "action": "setAnalyticsPolicy",
            "permissions": [{"member": "telco", "execute": True}],
        },
    )
    world.refused("permission_denied", world.sign("vendor", "setAnalyticsPolicy", policy()))


# -- nothing leaves unless granted ------------------------------------------------------------


def _duck_world(tmp_path: Path) -> AnalyticsWorld:
    return make_world(tmp_path, DuckDBBackend(tmp_path / "analytics.duckdb"))


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + ".wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_no_parameter_value_reaches_duckdb_unless_granted(tmp_path: Path) -> None:
    world = _duck_world(tmp_path)
    try:
        world.add_record_action()
        world.act("vendor", "record", {"kind": "order", "id": SECRET, "note": SECRET + "-note"})
        world.platform.member_view(world.cid, "vendor").object(f"order/{SECRET}")
        hidden = world.platform.member_view(world.cid, "telco").history(f"order/{SECRET}")
        assert hidden[0]["visible"] is False
        world.refused("action_failed", world.sign("telco", "record", {"id": SECRET}))
        world.sink.flush()
        store = tmp_path / "analytics.duckdb"
        assert SECRET.encode() not in _file_bytes(store)
        con = duckdb.connect(str(store), read_only=True)
        try:
            rows = con.execute("SELECT * FROM events").fetchall()
            assert len(rows) >= 6
            assert not any(SECRET in repr(row) for row in rows)
            assert {r[0] for r in con.execute("SELECT DISTINCT fields FROM events").fetchall()} == {
                "{}"
            }
        finally:
            con.close()
    finally:
        world.close()


def test_a_granted_field_leaves_and_only_that_field(tmp_path: Path) -> None:
    world = _duck_world(tmp_path)
    try:
        world.add_record_action()
        world.vote_through("telco", "setAnalyticsPolicy", policy(grants={"record": ["kind"]}))
        world.act("vendor", "record", {"kind": GRANTED, "id": SECRET, "note": SECRET})
        # A refused request's parameters never leave, granted or not: it did not authenticate.
        stranger = world.sign("vendor", "record", {"kind": "forged", "id": "1", "note": "x"})
        world.refused(
            "bad_signature", stranger[:-4] + ("AAAA" if stranger[-4:] != "AAAA" else "BBBB")
        )
        world.sink.flush()
        store = tmp_path / "analytics.duckdb"
        # The positive control: a granted value is in the file as written, so the negative
        # check above is a real one.
        assert GRANTED.encode() in _file_bytes(store)
        assert SECRET.encode() not in _file_bytes(store)
        con = duckdb.connect(str(store), read_only=True)
        try:
            fields = con.execute(
                "SELECT outcome, fields FROM events WHERE action = 'record' ORDER BY time"
            ).fetchall()
        finally:
            con.close()
        assert ("committed", f'{{"kind":"{GRANTED}"}}') in fields
        assert ("refused", "{}") in fields
        assert all("forged" not in f for _, f in fields)
    finally:
        world.close()


def test_the_default_platform_writes_analytics_duckdb_in_its_data_dir(tmp_path: Path) -> None:
    from consortia import MemberKeys, Platform, SigningKey
    from consortia.wire import sign_creation

    operator = SigningKey.generate()
    platform = Platform.open(tmp_path, operator_keys=[operator.verify_key])
    keys = {m: MemberKeys.generate(m) for m in FOUNDERS}
    try:
        platform.create_consortium(
            sign_creation(
                operator,
                consortium="acme",
                name="Acme",
                members=[k.public_info() for k in keys.values()],
                now=platform.clock(),
            )
        )
        platform.member_view("acme", "telco").constitution()
        stats = platform.analytics_stats()
        assert stats is not None and stats.emitted == 1
    finally:
        platform.close()
    con = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT kind, action, member FROM events").fetchall() == [
            ("read", "constitution", "telco")
        ]
        assert con.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
    finally:
        con.close()


def test_analytics_policy_is_a_frozen_value() -> None:
    parsed = parse_analytics_policy(policy(grants={"a": ["b"]}))
    assert isinstance(parsed, AnalyticsPolicy)
    with pytest.raises(TypeError):
        parsed.grants["a"] = ("c",)  # type: ignore[index]
