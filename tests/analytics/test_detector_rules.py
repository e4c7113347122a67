"""The detector's hard rules, de-duplication, isolation and bounds, on hand-made events."""

from __future__ import annotations

import pytest

from consortia.analytics.detector import RULES, DetectorConfig, MisuseDetector
from consortia.analytics.events import Alert, Event
from consortia.telco.simulate import CONSORTIUM, make_event, object_ref


def _feed(detector: MisuseDetector, events: list[Event]) -> list[Alert]:
    return detector.observe_all(events)


def _burst(
    member: str, code: str, n: int, *, start: float = 0.0, every: float = 2.0
) -> list[Event]:
    return [make_event(start + i * every, member, code=code) for i in range(n)]


def test_bad_signature_burst_fires_at_the_threshold_and_names_the_claimed_member() -> None:
    detector = MisuseDetector()
    assert _feed(detector, _burst("installer", "bad_signature", 4)) == []
    alerts = detector.observe(make_event(8.0, "installer", code="bad_signature"))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.member, alert.rule, alert.consortium) == (
        "installer",
        "bad_signature_burst",
        CONSORTIUM,
    )
    assert alert.time == 8.0
    assert alert.evidence == {"bad_signature": 5, "window_s": 60.0}
    assert alert.score == pytest.approx(0.75)


def test_bad_signatures_spread_out_never_fire() -> None:
    # One a quarter of an hour for a day: a member with a broken clock or key, not an attack.
    assert _feed(MisuseDetector(), _burst("installer", "bad_signature", 96, every=900.0)) == []


def test_replay_flood_counts_replays_and_stale_requests() -> None:
    events = [
        make_event(i * 1.0, "seller", code="replay" if i % 2 else "stale_request") for i in range(5)
    ]
    alerts = _feed(MisuseDetector(), events)
    assert [(a.member, a.rule) for a in alerts] == [("seller", "replay_flood")]
    assert alerts[0].evidence["replay_or_stale"] == 5


def test_probing_needs_distinct_forbidden_actions() -> None:
    detector = MisuseDetector()
    # The same refused action again and again is a confused client, not probing.
    repeated = [
        make_event(i * 5.0, "supplier2", action="placeOrder", code="permission_denied")
        for i in range(20)
    ]
    assert _feed(detector, repeated) == []
    alerts = _feed(
        detector,
        [
            make_event(101.0, "supplier2", action="approveAction", code="not_public"),
            make_event(102.0, "supplier2", action="deleteAll", code="unknown_action"),
        ],
    )
    assert [(a.member, a.rule) for a in alerts] == [("supplier2", "probing")]
    assert alerts[0].evidence == {"refused_distinct_actions": 3, "window_s": 300.0}


def test_action_failures_are_not_probing() -> None:
    events = [
        make_event(i * 1.0, "seller", action=f"a{i}", code="action_failed", outcome="failed")
        for i in range(10)
    ]
    assert _feed(MisuseDetector(), events) == []


def _reads(member: str, keys: list[str], *, start: float = 0.0, every: float = 1.0) -> list[Event]:
    return [
        make_event(start + i * every, member, kind="read", action="object", key=k)
        for i, k in enumerate(keys)
    ]


def test_scraping_counts_distinct_objects_read() -> None:
    detector = MisuseDetector()
    assert _feed(detector, _reads("customer", [f"productOrder/O{i}" for i in range(29)])) == []
    alerts = detector.observe(
        make_event(29.0, "customer", kind="read", action="object", key="productOrder/O29")
    )
    assert [(a.member, a.rule) for a in alerts] == [("customer", "scraping")]
    assert alerts[0].evidence == {"distinct_objects_read": 30, "window_s": 60.0}


def test_rereading_the_same_objects_or_writing_many_is_not_scraping() -> None:
    detector = MisuseDetector()
    same = _reads("customer", [f"productOrder/O{i % 5}" for i in range(500)])
    writes = [make_event(1000.0 + i, "seller", key=f"productOrder/N{i}") for i in range(100)]
    assert _feed(detector, same + writes) == []


def test_slow_scraping_is_caught_by_the_hour_long_tier() -> None:
    # One new object every 10 s stays under 30 a minute, but reaches 300 within the hour.
    keys = [f"productOrder/S{i}" for i in range(300)]
    alerts = _feed(MisuseDetector(), _reads("customer", keys, every=10.0))
    assert [(a.member, a.rule) for a in alerts] == [("customer", "scraping")]
    assert alerts[0].evidence == {"distinct_objects_read": 300, "window_s": 3600.0}
    assert alerts[0].time == pytest.approx(2990.0)


def test_one_alert_per_member_and_rule_per_cooldown() -> None:
    detector = MisuseDetector(DetectorConfig(cooldown=600.0))
    # A bad-signature flood lasting 20 minutes at one a second.
    alerts = _feed(detector, _burst("installer", "bad_signature", 1200, every=1.0))
    assert [a.time for a in alerts] == [4.0, 604.0]
    assert {a.rule for a in alerts} == {"bad_signature_burst"}


def test_rules_deduplicate_separately() -> None:
    detector = MisuseDetector()
    events = _burst("seller", "bad_signature", 5) + _burst("seller", "replay", 5, start=20.0)
    alerts = _feed(detector, events)
    assert [a.rule for a in alerts] == ["bad_signature_burst", "replay_flood"]


def test_members_and_consortia_are_kept_apart() -> None:
    detector = MisuseDetector()
    # Four bad signatures each under two names and in two consortia: none reaches five.
    events = [
        make_event(float(i), member, code="bad_signature", consortium=cid)
        for i in range(4)
        for member in ("installer", "customer")
        for cid in ("c1", "c2")
    ]
    assert _feed(detector, events) == []
    alerts = detector.observe(make_event(5.0, "customer", code="bad_signature", consortium="c2"))
    assert [(a.consortium, a.member) for a in alerts] == [("c2", "customer")]


def test_events_without_a_member_are_counted_and_ignored() -> None:
    detector = MisuseDetector()
    assert (
        _feed(detector, [make_event(float(i), None, code="bad_request") for i in range(50)]) == []
    )
    assert detector.events_seen == 50
    assert detector.members_tracked == 0


def test_claimed_ids_cannot_grow_the_detector_without_bound() -> None:
    detector = MisuseDetector(DetectorConfig(max_members=100))
    events = [make_event(float(i), f"nobody-{i}", code="bad_signature") for i in range(5000)]
    assert _feed(detector, events) == []
    assert detector.members_tracked == 100


def test_the_least_recently_seen_member_is_forgotten_first() -> None:
    detector = MisuseDetector(DetectorConfig(max_members=2))
    _feed(detector, _burst("a", "bad_signature", 4))
    _feed(detector, [make_event(10.0, "b"), make_event(11.0, "a"), make_event(12.0, "c")])
    # "b" went, "a" (touched at 11) stayed: its four bad signatures still count.
    alerts = detector.observe(make_event(13.0, "a", code="bad_signature"))
    assert [(a.member, a.rule) for a in alerts] == [("a", "bad_signature_burst")]


def test_alerts_carry_counts_not_values() -> None:
    events = _reads("customer", [f"productOrder/secret-{i}" for i in range(30)])
    (alert,) = _feed(MisuseDetector(), events)
    text = repr(alert)
    assert "secret" not in text
    assert object_ref("productOrder/secret-0") not in text


def test_every_rule_name_is_declared() -> None:
    assert set(RULES) == {"bad_signature_burst", "replay_flood", "probing", "scraping", "anomaly"}


@pytest.mark.parametrize(
    "bad",
    [
        {"bad_signature_threshold": 0},
        {"replay_threshold": 0},
        {"probing_distinct_actions": 0},
        {"scraping_distinct_objects": 0},
        {"anomaly_threshold": 0.0},
        {"anomaly_threshold": 1.5},
        {"anomaly_window": 0.0},
        {"cooldown": -1.0},
        {"max_members": 0},
    ],
)
def test_config_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        DetectorConfig(**bad)  # type: ignore[arg-type]


def test_an_event_without_a_usable_time_is_ignored() -> None:
    detector = MisuseDetector()
    for t in (float("nan"), float("inf")):
        assert detector.observe(make_event(t, "seller", code="bad_signature")) == []
    assert detector.members_tracked == 0


def _busy_windows(consortium: str, windows: int, *, start: float = 0.0) -> list[Event]:
    """Six ordinary requests of one member in each of ``windows`` 300 s windows."""
    return [
        make_event(start + w * 300.0 + i * 40.0, "seller", consortium=consortium)
        for w in range(windows)
        for i in range(6)
    ]


def test_each_consortium_has_its_own_model() -> None:
    detector = MisuseDetector(DetectorConfig(anomaly_warmup_windows=10))
    _feed(detector, _busy_windows("c1", 12))
    assert detector.warmed_up("c1")
    assert not detector.warmed_up("c2")
    _feed(detector, _busy_windows("c2", 5, start=12 * 300.0))
    assert not detector.warmed_up("c2")
    assert detector.consortia_modelled == 2


def test_models_are_bounded_in_number() -> None:
    detector = MisuseDetector(DetectorConfig(max_consortia=2))
    for n, cid in enumerate(("c1", "c2", "c3")):
        _feed(detector, _busy_windows(cid, 3, start=n * 900.0))
    assert detector.consortia_modelled == 2
