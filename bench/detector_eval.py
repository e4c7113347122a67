"""Figures for the misuse detector on simulated Telco traffic (consortia.telco.simulate).

For each seed: warm-up days, then normal days on which every alert is a false alarm, then a
day with the five attacks mixed into normal traffic. Prints, per seed, the false alarms of
the normal days and each attack's detection delay; then the totals, and the detector's cost
per event (the whole run, and a dense hour where model windows rarely close).

    .venv/bin/python bench/detector_eval.py --seeds 10 --normal-days 3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

from consortia.analytics.detector import MisuseDetector
from consortia.analytics.events import Alert, Event
from consortia.telco import simulate as sim


@dataclass
class SeedRun:
    """What one seed's run produced."""

    normal_alerts: list[Alert]
    scored_windows: int
    day_alerts: list[Alert]
    attacks: list[sim.Attack]
    events: int
    seconds: float


def run_seed(seed: int, warmup_days: int, normal_days: int) -> SeedRun:
    """Warm up, watch the normal days, then the attack day; time only the detector."""
    w, n = warmup_days, normal_days
    everyday = sim.days(seed, w + n)
    warmup = [e for e in everyday if e.time < w * sim.DAY]
    normal = [e for e in everyday if e.time >= w * sim.DAY]
    attack_events, attacks = sim.attack_day(seed, (w + n) * sim.DAY, day_index=w + n)
    detector = MisuseDetector(seed=seed)
    t0 = time.perf_counter()
    detector.observe_all(warmup)
    scored_before = detector.windows_scored
    normal_alerts = detector.observe_all(normal) + detector.tick((w + n) * sim.DAY)
    scored = detector.windows_scored - scored_before
    day_alerts = detector.observe_all(attack_events)
    seconds = time.perf_counter() - t0
    events = len(everyday) + len(attack_events)
    return SeedRun(normal_alerts, scored, day_alerts, attacks, events, seconds)


def _dense_hour(seed: int, per_second: float) -> list[Event]:
    """An hour at ``per_second`` requests: normal days' mix, time-compressed (a busy TEP)."""
    n = int(per_second * 3600)
    events: list[Event] = []
    day = 0
    while len(events) < n:
        events.extend(sim.normal_day(seed, day_index=day))
        day += 1
    return [replace(e, time=i / per_second) for i, e in enumerate(events[:n])]


def _split_cost(seed: int) -> str:
    """Mean cost of observe() for events that close a model window, and for the rest."""
    detector = MisuseDetector(seed=seed)
    window = detector.config.anomaly_window
    closing: list[float] = []
    plain: list[float] = []
    for event in sim.days(seed, 4):
        state = detector._members.get((event.consortium, event.member or ""))
        closes = state is not None and event.time >= state.window.start + window
        t0 = time.perf_counter()
        detector.observe(event)
        (closing if closes else plain).append(time.perf_counter() - t0)
    return (
        f"{sum(plain) / len(plain) * 1e6:.1f} us/event on the common path ({len(plain)} events),"
        f" {sum(closing) / len(closing) * 1e6:.1f} us when it closes a model window"
        f" ({len(closing)} events)"
    )


def _others(run: SeedRun) -> str:
    """Attack-day alerts beyond the first per attack, relative to the member's attack."""
    expected = {(a.member, a.rule) for a in run.attacks}
    starts = {a.member: a.start for a in run.attacks}
    cells = [
        f"{a.member}/{a.rule}@+{a.time - starts[a.member]:.0f}s"
        if a.member in starts and a.time >= starts[a.member]
        else f"UNEXPECTED {a.member}/{a.rule}@{(a.time % sim.DAY) / 3600:.2f}h"
        for a in run.day_alerts
        if (a.member, a.rule) not in expected
    ]
    return ", ".join(cells) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--warmup-days", type=int, default=2)
    parser.add_argument("--normal-days", type=int, default=3, help="measured, per seed")
    args = parser.parse_args()
    rules = list(sim.ATTACK_HOURS)
    print(f"{'seed':>4} {'normal alerts':>13} {'windows':>8} "
          + " ".join(f"{r:>20}" for r in rules) + "   other attack-day alerts")  # fmt: skip
    false_alarms = windows = events = 0
    seconds = 0.0
    delays: dict[str, list[float]] = {r: [] for r in rules}
    for seed in range(args.seeds):
        run = run_seed(seed, args.warmup_days, args.normal_days)
        false_alarms += len(run.normal_alerts)
        windows += run.scored_windows
        events += run.events
        seconds += run.seconds
        cells = []
        for attack in run.attacks:
            delay = sim.detection_delay(run.day_alerts, attack)
            if delay is None:
                cells.append(f"{'MISSED':>20}")
            else:
                delays[attack.rule].append(delay)
                cells.append(f"{delay:>18.1f} s")
        print(f"{seed:>4} {len(run.normal_alerts):>13} {run.scored_windows:>8} "
              + " ".join(cells) + "   " + _others(run))  # fmt: skip
    print()
    normal_days = args.seeds * args.normal_days
    print(f"normal days: {normal_days}, false alarms: {false_alarms} "
          f"({false_alarms / normal_days:.2f} per day for 5 members; "
          f"{false_alarms / max(1, windows):.4%} of {windows} scored member-windows)")  # fmt: skip
    for rule in rules:
        got = delays[rule]
        worst = f"{max(got):.1f} s" if got else "-"
        mean = f"{sum(got) / len(got):.1f} s" if got else "-"
        print(f"{rule:>20}: detected {len(got)}/{args.seeds}, mean delay {mean}, worst {worst}")
    print(f"cost: {seconds / events * 1e6:.1f} us/event over {events} sparse events "
          "(a model window closes every ~3.5 events)")  # fmt: skip
    print("cost:", _split_cost(0))
    dense = _dense_hour(0, 200.0)
    detector = MisuseDetector(seed=0)
    t0 = time.perf_counter()
    detector.observe_all(dense)
    spent = time.perf_counter() - t0
    print(f"cost: {spent / len(dense) * 1e6:.1f} us/event over {len(dense)} events "
          "at 200 req/s (windows close rarely)")  # fmt: skip


if __name__ == "__main__":
    main()
