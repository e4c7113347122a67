"""Insights over a synthetic DuckDB store: the figures, and who may see which rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from insights_kit import T0, Traffic, telco_day, write_store

from consortia.analytics import Alert, Event
from consortia.analytics.insights import (
    BUCKETS,
    Insights,
    Viewer,
    bucket_label,
    compute_insights,
    open_store,
    pick_bucket,
    viewer_for,
)
from consortia.cli.insights import format_duration, render_insights
from consortia.errors import BadRequest, NotFound
from consortia.governance.analytics_policy import AnalyticsPolicy
from consortia.governance.constitution import Constitution
from consortia.governance.parse import parse_member
from consortia.identity.keys import MemberKeys
from consortia.telco.insights import TELCO_INSIGHTS, register_telco_insights

MEMBERS = ("telco", "vendorA", "vendorB", "installer")


@pytest.fixture(autouse=True)
def _telco_plug() -> None:
    register_telco_insights()  # as the server and the CLI wire it


@pytest.fixture
def day() -> Traffic:
    return telco_day()


@pytest.fixture
def store(tmp_path: Path, day: Traffic) -> Iterator[duckdb.DuckDBPyConnection]:
    alert = Alert(T0 + 9000, "acme", "installer", "probing", 0.9, {"permission_denied": 6})
    con = open_store(write_store(tmp_path / "analytics.duckdb", day.events, [alert]))
    yield con
    con.close()


def _view(con: duckdb.DuckDBPyConnection, viewer: Viewer) -> Insights:
    return compute_insights(con, "acme", viewer)


def test_per_action_figures_count_every_event_by_outcome_and_code(
    store: duckdb.DuckDBPyConnection, day: Traffic
) -> None:
    ins = _view(store, Viewer("telco", full=True))
    expected = Counter((e.action, e.outcome) for e in day.events if e.kind == "execute")
    for figures in ins.actions:
        if figures.action.startswith("read:"):
            assert figures.outcomes == {"ok": 72}
            continue
        for outcome, n in figures.outcomes.items():
            assert expected[(figures.action, outcome)] == n
    place = next(a for a in ins.actions if a.action == "placeOrder")
    assert place.codes == {"permission_denied": 6}
    assert 3 <= place.p50_ms <= 9 and place.p50_ms <= place.p95_ms
    assert sum(a.total for a in ins.actions) == len(day.events)
    assert ins.actions[0].action == "updateDeviceOrder"  # busiest first


def test_a_full_viewer_sees_every_member(store: duckdb.DuckDBPyConnection, day: Traffic) -> None:
    ins = _view(store, Viewer("telco", full=True))
    assert [m.member for m in ins.members] == sorted(MEMBERS)
    assert ins.others is None
    installer = next(m for m in ins.members if m.member == "installer")
    assert installer.codes == {"permission_denied": 6}
    telco = TELCO_INSIGHTS.section(ins)
    assert [o.placed_by for o in telco.orders] == ["telco"] * 24
    assert {s.supplier for s in telco.stock} == {"vendorA", "vendorB"}
    assert {v.requester for v in ins.votes} == {"telco", "vendorA", "vendorB"}


def test_a_member_sees_its_own_rows_and_only_totals_of_the_others(
    store: duckdb.DuckDBPyConnection, day: Traffic
) -> None:
    ins = _view(store, Viewer("vendorA"))
    (mine,) = ins.members
    assert mine.member == "vendorA"
    assert mine.total == sum(1 for e in day.events if e.member == "vendorA")
    assert ins.others is not None
    assert ins.others.total == sum(1 for e in day.events if e.member != "vendorA")
    assert ins.others.codes == {"permission_denied": 6, "action_failed": 4}
    # Orders were placed by telco: none are vendorA's rows, but the aggregates count them.
    telco = TELCO_INSIGHTS.section(ins)
    assert telco.orders == [] and len(telco.orders_all) == 24
    assert [s.supplier for s in telco.stock] == ["vendorA"]
    assert telco.stock_total.reserved == 62 and telco.stock_total.leak == 2
    assert [v.requester for v in ins.votes] == [None, "vendorA", None]
    # Alerts name their member, but only to those alert_to names (who are told anyway).
    text = render_insights(_view(store, Viewer("vendorA", alerts=False)))
    for other in ("telco", "vendorB", "installer"):
        assert other not in text, other


def test_the_timeline_buckets_every_event_and_marks_the_viewers_own(
    store: duckdb.DuckDBPyConnection, day: Traffic
) -> None:
    ins = _view(store, Viewer("vendorB"))
    assert ins.bucket_s == 900  # a ten-hour day in 15-minute buckets
    assert all(b.start % 900 == 0 for b in ins.timeline)
    assert sum(sum(b.by_action.values()) for b in ins.timeline) == len(day.events)
    assert sum(b.own for b in ins.timeline) == sum(1 for e in day.events if e.member == "vendorB")
    refusals = sum(1 for e in day.events if e.outcome in ("refused", "failed"))
    assert sum(sum(b.refused_by_code.values()) for b in ins.timeline) == refusals
    hourly = compute_insights(store, "acme", Viewer("vendorB"), bucket_s=3600)
    assert len(hourly.timeline) == 10
    with pytest.raises(ValueError, match="at least 1 second"):
        compute_insights(store, "acme", Viewer("vendorB"), bucket_s=0)


def test_vote_durations_run_from_pending_to_the_decision(
    store: duckdb.DuckDBPyConnection,
) -> None:
    ins = _view(store, Viewer("telco", full=True))
    votes = {v.action: v for v in ins.votes}
    assert (votes["addMember"].outcome, votes["addMember"].seconds) == ("approved", 2400)
    rejected = votes["setAnalyticsPolicy"]
    assert (rejected.outcome, rejected.seconds) == ("rejected", 7200)
    assert (votes["removeMember"].outcome, votes["removeMember"].seconds) == ("open", None)


def test_a_failed_execution_after_approval_counts_as_failed(tmp_path: Path) -> None:
    t = Traffic()
    tx = t.add(0, "telco", "amendConstitution", "pending")
    t.add(90, "telco", "amendConstitution", "failed", code="action_failed", txid=tx)
    t.add(95, "telco", "amendConstitution", "committed", txid=tx)  # later answers do not count
    con = open_store(write_store(tmp_path / "a.duckdb", t.events))
    ins = compute_insights(con, "acme", Viewer("telco"))
    (vote,) = ins.votes
    assert (vote.outcome, vote.seconds) == ("failed", 90)
    (amend,) = ins.actions
    assert amend.outcomes == {"pending": 1, "failed": 1, "committed": 1}
    assert amend.p95_ms == 2.0  # the answer's latency, not the vote's 90 s


def test_a_decision_event_does_not_count_as_latency(tmp_path: Path) -> None:
    t = Traffic()
    tx = t.add(0, "telco", "addMember", "pending", latency_ms=4.0)
    t.add(600, "telco", "addMember", "committed", txid=tx, latency_ms=600_000.0)
    # A request whose JWS did not parse has no txid: it still counts, and in latency too.
    t.events.append(
        Event(
            T0 + 700,
            "acme",
            "execute",
            "addMember",
            "telco",
            "refused",
            "bad_request",
            1.0,
            None,
            None,
            None,
            {},
        )
    )
    ins = compute_insights(
        open_store(write_store(tmp_path / "d.duckdb", t.events)), "acme", Viewer("telco")
    )
    (add,) = ins.actions
    assert (add.p50_ms, add.total) == (2.5, 3)  # median of 4.0 and 1.0: no decision, no loss


def test_alerts_reach_only_the_members_alert_to_names(
    store: duckdb.DuckDBPyConnection,
) -> None:
    seen = _view(store, Viewer("vendorA", alerts=True)).alerts
    assert seen is not None
    (alert,) = seen
    assert (alert.member, alert.rule, alert.evidence) == (
        "installer",
        "probing",
        {"permission_denied": 6},
    )
    hidden = _view(store, Viewer("vendorA", alerts=False))
    assert hidden.alerts is None
    assert "not shown" in render_insights(hidden)
    assert "installer" not in render_insights(hidden)


def test_viewer_follows_the_constitutions_policy_by_id_and_role() -> None:
    members = {
        m.id: m
        for m in (
            parse_member(
                {**MemberKeys.generate(name).public_info(), "info": {"role": role}},
                what="m",
                error=BadRequest,
            )
            for name, role in (("telco", "seller"), ("vendorA", "supplier"), ("audit", "auditor"))
        )
    }
    policy = AnalyticsPolicy(insights_full=("seller", "audit"), alert_to=("vendorA",))
    constitution = Constitution(actions={}, members=members, analytics=policy)
    assert viewer_for(constitution, "telco") == Viewer("telco", full=True, alerts=False)
    assert viewer_for(constitution, "audit") == Viewer("audit", full=True, alerts=False)
    assert viewer_for(constitution, "vendorA") == Viewer("vendorA", full=False, alerts=True)
    with pytest.raises(NotFound, match="not a member"):
        viewer_for(constitution, "stranger")
    everyone = Constitution(actions={}, members=members)  # the default policy
    assert viewer_for(everyone, "telco") == Viewer("telco", full=False, alerts=True)


def test_other_consortia_never_mix_in(tmp_path: Path) -> None:
    a, b = Traffic("acme"), Traffic("beta")
    a.add(0, "telco", "placeOrder")
    b.add(0, "spy", "placeOrder", "refused", code="permission_denied")
    con = open_store(write_store(tmp_path / "a.duckdb", [*a.events, *b.events]))
    ins = compute_insights(con, "acme", Viewer("telco", full=True))
    assert [m.member for m in ins.members] == ["telco"]
    assert [a.codes for a in ins.actions] == [{}]


def test_an_empty_or_missing_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no analytics store"):
        open_store(tmp_path / "absent.duckdb")
    con = open_store(write_store(tmp_path / "empty.duckdb", []))
    ins = compute_insights(con, "acme", Viewer("telco"))
    assert (ins.first, ins.actions, ins.timeline, ins.votes) == (None, [], [], [])
    assert "no events recorded" in render_insights(ins)
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()
    with pytest.raises(NotFound, match="no events table"):
        compute_insights(open_store(bare), "acme", Viewer("telco"))


def test_bucket_sizes_and_durations_read_well() -> None:
    labels = [bucket_label(s) for s in (60, 900, 3600, 21600, 86400, 604800, 90)]
    assert labels == ["minute", "15 min", "hour", "6 h", "day", "7 d", "90 s"]
    assert pick_bucket(0, 3000) == 60
    assert pick_bucket(0, 10 * 3600) == 900
    assert pick_bucket(0, 30 * 86400) == 86400
    assert pick_bucket(0, 10**9) == BUCKETS[-1]
    assert [format_duration(s) for s in (None, 45, 130, 2400, 7260, 200000)] == [
        "-",
        "45s",
        "2m 10s",
        "40m",
        "2h 01m",
        "2d 07h",
    ]


def test_reads_of_hidden_objects_count_apart_from_refusals_for_insiders_only(
    tmp_path: Path,
) -> None:
    traffic = Traffic()
    for n in range(3):
        traffic.add(60.0 * n, "vendorA", "object", "hidden", kind="read")
    traffic.add(300.0, "vendorA", "object", "refused", code="not_found", kind="read")
    con = open_store(write_store(tmp_path / "hidden.duckdb", traffic.events))
    try:
        full = compute_insights(con, "acme", Viewer("telco", full=True))
        mine = compute_insights(con, "acme", Viewer("vendorA"))
    finally:
        con.close()
    reads = next(a for a in full.actions if a.action == "read:object")
    assert reads.outcomes == {"hidden": 3, "refused": 1} and reads.codes == {"not_found": 1}
    assert sum(b.refused_by_code.get("not_found", 0) for b in full.timeline) == 1
    # Its reader got not_found each time: to it, and to anyone but the insiders, they are
    # not_found, or the counts would tell which keys exist.
    seen = next(a for a in mine.actions if a.action == "read:object")
    assert seen.outcomes == {"refused": 4} and seen.codes == {"not_found": 4}
    own = next(m for m in mine.members if m.member == "vendorA")
    assert own.outcomes == {"refused": 4}
    assert sum(b.refused_by_code.get("not_found", 0) for b in mine.timeline) == 4
