"""Features of the misuse detector: bounded sliding windows, member habits, scaled inputs."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.analytics.features import (
    FEATURE_NAMES,
    MAX_PROFILE_ACTIONS,
    CountInWindow,
    DistinctInWindow,
    MemberProfile,
    WindowStats,
    hour_of,
    window_features,
)
from consortia.telco.simulate import make_event

HOUR = 3600.0


def test_count_in_window_slides_and_is_capped() -> None:
    counter = CountInWindow(window=60.0, cap=5)
    assert [counter.add(t) for t in (0, 10, 20, 30)] == [1, 2, 3, 4]
    # 0 and 10 fall out of the window at t=75; 20, 30 and 75 remain.
    assert counter.add(75.0) == 3
    for t in range(100, 200):
        n = counter.add(float(t))
    assert n == 5  # capped at the threshold a rule asks about, however many arrive
    assert counter.count(1000.0) == 0


def test_distinct_in_window_counts_keys_not_repeats() -> None:
    seen = DistinctInWindow(window=60.0, cap=100)
    for t in range(50):
        n = seen.add("same-object", float(t))
    assert n == 1
    assert seen.add("other", 80.0) == 2
    # Keys untouched for longer than the window expire; re-touching a key refreshes it.
    assert seen.add("third", 115.0) == 2  # "same-object" (t=49) expired, "other" (t=80) kept
    assert seen.add("other", 139.0) == 2
    assert seen.add("fourth", 176.0) == 2  # "third" (t=115) expired, "other" (t=139) kept


def test_distinct_in_window_never_holds_more_than_its_cap() -> None:
    seen = DistinctInWindow(window=3600.0, cap=30)
    counts = [seen.add(f"obj{i}", float(i)) for i in range(10_000)]
    assert max(counts) == 30
    assert len(seen._seen) == 30


def test_window_stats_bounds_actions_and_objects() -> None:
    stats = WindowStats(start=0.0, object_cap=10, action_cap=4)
    for i in range(100):
        stats.add(make_event(1.0, "m", action=f"invented{i}", key=f"order/O{i}"))
    assert stats.count == 100
    assert len(stats.objects) == 10
    assert len(stats.actions) == 5  # four named, the rest in one bucket
    assert sum(stats.actions.values()) == 100


def test_window_stats_sorts_refusals() -> None:
    stats = WindowStats(start=0.0)
    stats.add(make_event(1.0, "m", code="bad_signature"))
    stats.add(make_event(2.0, "m", code="replay"))
    stats.add(make_event(3.0, "m", code="permission_denied"))
    stats.add(make_event(4.0, "m", code="action_failed", outcome="failed"))
    stats.add(make_event(5.0, "m", kind="read", action="object", key="order/O1"))
    assert (stats.refusals, stats.permission_failures) == (4, 1)
    assert stats.reads == 1
    assert stats.codes == Counter(
        {"bad_signature": 1, "replay": 1, "permission_denied": 1, "action_failed": 1}
    )


def _habit_window(start: float, actions: dict[str, int]) -> WindowStats:
    stats = WindowStats(start=start)
    t = start
    for action, n in actions.items():
        for _ in range(n):
            stats.add(make_event(t, "m", action=action))
            t += 1.0
    return stats


def _day_worker() -> MemberProfile:
    """A member that works 9:00-17:00 running placeOrder and reviseOrder, 3 to 1."""
    profile = MemberProfile()
    for day in range(3):
        for hour in range(9, 17):
            start = day * 24 * HOUR + hour * HOUR
            profile.learn(_habit_window(start, {"placeOrder": 3, "reviseOrder": 1}), start + 300)
    return profile


def test_profile_hours_say_when_a_member_works() -> None:
    profile = _day_worker()
    assert profile.trusted
    assert profile.hour_unusualness(Counter({10: 5})) < 0.05
    assert profile.hour_unusualness(Counter({3: 5})) == 1.0
    assert 0.4 < profile.hour_unusualness(Counter({10: 5, 3: 5})) < 0.6


def test_profile_mix_surprise_is_low_for_habits_and_high_for_novelty() -> None:
    profile = _day_worker()
    usual = profile.mix_surprise(Counter({"placeOrder": 6, "reviseOrder": 2}))
    novel = profile.mix_surprise(Counter({"cancelOrder": 4, "createProject": 4}))
    assert usual < 0.1
    assert novel > 2.0


def test_profile_action_memory_is_bounded() -> None:
    profile = MemberProfile()
    for i in range(200):
        profile.learn(_habit_window(i * 300.0, {f"a{i}": 1}), i * 300.0 + 300)
    assert len(profile.actions) <= MAX_PROFILE_ACTIONS + 1


def test_features_of_usual_and_odd_windows() -> None:
    profile = _day_worker()
    usual = window_features(_habit_window(3 * 24 * HOUR + 10 * HOUR, {"placeOrder": 3}), profile)
    odd = window_features(
        _habit_window(3 * 24 * HOUR + 3 * HOUR, {"cancelOrder": 30, "getDeviceStatus": 30}),
        profile,
    )
    assert odd["rate_ratio"] > usual["rate_ratio"]
    assert odd["unusual_hour"] > 0.9 > usual["unusual_hour"]
    assert odd["action_mix_surprise"] > 0.6 > usual["action_mix_surprise"]


def test_an_untrusted_profile_calls_nothing_unusual() -> None:
    x = window_features(_habit_window(3 * HOUR, {"cancelOrder": 20}), MemberProfile())
    assert x["unusual_hour"] == 0.0
    assert x["action_mix_surprise"] == 0.0


def test_hour_of_is_utc() -> None:
    assert hour_of(0.0) == 0
    assert hour_of(1_800_000_000.0) == 8  # 500,000 hours after the epoch; 500,000 mod 24 = 8


_Row = tuple[float, str, str, str | None, str | None]
_CODES = st.sampled_from(
    [None, "bad_signature", "replay", "stale_request", "permission_denied", "not_found"]
)
_EVENTS = st.lists(
    st.tuples(
        st.floats(0.0, 299.0),
        st.sampled_from(["execute", "read"]),
        st.text(min_size=0, max_size=3),
        _CODES,
        st.one_of(st.none(), st.text(min_size=1, max_size=4)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(history=st.lists(_EVENTS, max_size=15), window=_EVENTS)
def test_features_always_lie_in_the_unit_interval(
    history: list[list[_Row]], window: list[_Row]
) -> None:
    def stats_of(start: float, rows: list[_Row]) -> WindowStats:
        stats = WindowStats(start=start)
        for t, kind, action, code, key in rows:
            stats.add(make_event(start + t, "m", kind=kind, action=action, code=code, key=key))
        return stats

    profile = MemberProfile()
    for i, rows in enumerate(history):
        profile.learn(stats_of(i * 300.0, rows), i * 300.0 + 300.0)
    x = window_features(stats_of(len(history) * 300.0, window), profile)
    assert tuple(x) == FEATURE_NAMES
    assert all(0.0 <= v <= 1.0 for v in x.values()), x
