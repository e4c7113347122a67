"""Per-member features for misuse detection, computed from redacted events only.

Two kinds of memory, both bounded per member whatever an attacker sends:

- Sliding-window trackers (:class:`CountInWindow`, :class:`DistinctInWindow`) answer "how
  many bad signatures / distinct objects in the last W seconds?" in O(1) amortised time and
  never hold more entries than the threshold a rule asks about: once the threshold is
  reached the rule has fired, and further entries add nothing to know.
- A tumbling window (:class:`WindowStats`) accumulates one member's requests for a fixed
  period; when it closes, :func:`window_features` turns it into numbers in [0, 1] relative
  to the member's own history (:class:`MemberProfile`): the scale the anomaly model expects,
  and one that lets a busy seller and a quiet customer share one model.

The profile is what "unusual" is measured against: how many requests a window of this
member usually holds, at which hours it usually works, which actions it usually runs. It
decays, so a member's habits may drift without being flagged for ever.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from consortia.analytics.events import Event

__all__ = [
    "AUTH_CODES",
    "FEATURE_NAMES",
    "MAX_PROFILE_ACTIONS",
    "PERMISSION_CODES",
    "REPLAY_CODES",
    "CountInWindow",
    "DistinctInWindow",
    "MemberProfile",
    "WindowStats",
    "hour_of",
    "window_features",
]

#: Refusals that say "this member asked for something it may not run": the marks of probing.
PERMISSION_CODES = frozenset({"permission_denied", "not_public", "unknown_action"})
#: Refusals that say "someone resent a request": a captured request replayed within the
#: window is ``replay``; replayed later it is ``stale_request``.
REPLAY_CODES = frozenset({"replay", "stale_request"})
#: Refusals of the authentication step (PROTOCOL.md section 3). Their event names a member
#: that did not (or not now) sign the request: a claimed id, or the author of a replayed
#: one. They feed the hard rules, never a member's behavioural window.
AUTH_CODES = frozenset({"bad_signature", "replay", "stale_request", "unknown_member"})

#: The anomaly model's inputs, in a fixed order; each value is in [0, 1].
FEATURE_NAMES = (
    "volume",
    "rate_ratio",
    "refusal_rate",
    "permission_fail_rate",
    "read_fraction",
    "distinct_objects_ratio",
    "distinct_actions",
    "unusual_hour",
    "action_mix_surprise",
)

#: Window counts at which ``volume`` saturates (log scale): far above any honest window.
_VOLUME_CAP = 1000.0
#: How many distinct actions a member profile remembers; the rest share one bucket, so an
#: attacker inventing action names cannot grow the profile.
MAX_PROFILE_ACTIONS = 64
_OTHER = "\x00other"
#: Windows before a profile is trusted to say what is usual for the member.
_PROFILE_MIN_WINDOWS = 10


class CountInWindow:
    """How many times something happened within the last ``window`` seconds, up to ``cap``.

    Holds at most ``cap`` timestamps: the question asked is only ever "at least ``cap``?".
    """

    __slots__ = ("_times", "window")

    def __init__(self, window: float, cap: int) -> None:
        self.window = window
        self._times: deque[float] = deque(maxlen=cap)

    def add(self, t: float) -> int:
        """Record one occurrence at ``t``; return the count within the window (<= cap)."""
        self._times.append(t)
        return self.count(t)

    def count(self, now: float) -> int:
        """Occurrences within ``window`` seconds before ``now`` (at most ``cap``)."""
        times = self._times
        while times and now - times[0] > self.window:
            times.popleft()
        return len(times)


class DistinctInWindow:
    """How many distinct keys were seen within the last ``window`` seconds, up to ``cap``."""

    __slots__ = ("_cap", "_seen", "window")

    def __init__(self, window: float, cap: int) -> None:
        self.window = window
        self._cap = cap
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, key: str, t: float) -> int:
        """Record ``key`` at ``t``; return the number of distinct keys within the window."""
        seen = self._seen
        if key in seen:
            seen.move_to_end(key)
        seen[key] = t
        while seen:
            oldest, when = next(iter(seen.items()))
            if t - when <= self.window and len(seen) <= self._cap:
                break
            del seen[oldest]
        return len(seen)


@dataclass(slots=True)
class WindowStats:
    """One member's requests within one tumbling window (bounded: counters of codes and
    actions, and a capped set of object references)."""

    start: float
    object_cap: int = 4096
    action_cap: int = 64
    count: int = 0
    reads: int = 0
    refusals: int = 0
    permission_failures: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    objects: set[str] = field(default_factory=set)
    hours: Counter[int] = field(default_factory=Counter)

    def add(self, event: Event) -> None:
        """Account one event of this member to the window."""
        self.count += 1
        if event.kind == "read":
            self.reads += 1
        code = event.code
        if code is not None:
            self.refusals += 1
            if len(self.codes) < self.action_cap or code in self.codes:
                self.codes[code] += 1
            if code in PERMISSION_CODES:
                self.permission_failures += 1
        action = event.action or ""
        if action in self.actions or len(self.actions) < self.action_cap:
            self.actions[action] += 1
        else:
            self.actions[_OTHER] += 1
        if event.object_ref is not None and len(self.objects) < self.object_cap:
            self.objects.add(event.object_ref)
        self.hours[hour_of(event.time)] += 1


def hour_of(t: float) -> int:
    """The UTC hour of day of a unix time."""
    return int(t // 3600) % 24


@dataclass(slots=True)
class MemberProfile:
    """What is usual for one member, learnt from its past (unflagged) windows.

    Volumes are averaged per window; the hours and the action mix are histograms that decay
    with time (half-lives of a week and of a day), not per window: a busy member closes many
    windows a day, and a per-window decay would forget yesterday's mornings by evening.
    """

    count_decay: float = 0.98
    hour_half_life: float = 7 * 86_400.0
    action_half_life: float = 86_400.0
    windows: int = 0
    mean_count: float = 0.0
    mean_distinct: float = 0.0
    hours: list[float] = field(default_factory=lambda: [0.0] * 24)
    actions: dict[str, float] = field(default_factory=dict)
    updated: float | None = None

    @property
    def trusted(self) -> bool:
        """Whether enough history exists to call something unusual for this member."""
        return self.windows >= _PROFILE_MIN_WINDOWS

    def learn(self, stats: WindowStats, now: float) -> None:
        """Fold a window judged normal, closed at ``now``, into the member's history."""
        self.windows += 1
        # Until the profile is trusted, a plain mean; then an exponential one, so habits drift.
        alpha = max(1.0 - self.count_decay, 1.0 / self.windows)
        self.mean_count += alpha * (stats.count - self.mean_count)
        self.mean_distinct += alpha * (len(stats.objects) - self.mean_distinct)
        elapsed = 0.0 if self.updated is None else max(0.0, now - self.updated)
        self.updated = now
        keep_hours = 0.5 ** (elapsed / self.hour_half_life)
        hours = self.hours
        for h in range(24):
            hours[h] *= keep_hours
        for h, n in stats.hours.items():
            hours[h] += n
        keep_actions = 0.5 ** (elapsed / self.action_half_life)
        actions = self.actions
        for name in list(actions):
            actions[name] *= keep_actions
            if actions[name] < 1e-3:
                del actions[name]
        for name, n in stats.actions.items():
            key = name if name in actions or len(actions) < MAX_PROFILE_ACTIONS else _OTHER
            actions[key] = actions.get(key, 0.0) + n

    def hour_unusualness(self, hours: Counter[int]) -> float:
        """Mean over the window's requests of 1 - p(hour) / p(busiest hour): 0 usual, 1 never."""
        peak = max(self.hours)
        if peak <= 0.0:
            return 0.0
        total = sum(hours.values())
        return sum(n * (1.0 - self.hours[h] / peak) for h, n in hours.items()) / total

    def mix_surprise(self, actions: Counter[str]) -> float:
        """How much more surprising the window's actions are than the member's usual ones.

        The mean surprisal (-log p) of the window's actions under the usual mix, minus that
        mix's entropy (the mean surprisal of the member's own habits): about 0 for a window
        drawn from its habits whatever their spread, large for actions it rarely or never
        runs. Unseen actions get the probability of half an observation.
        """
        usual = self.actions
        usual_total = sum(usual.values())
        total = sum(actions.values())
        if usual_total <= 0.0 or total == 0:
            return 0.0
        norm = usual_total + 0.5 * (len(usual) + 1)
        entropy = -sum((c / usual_total) * math.log((c + 0.5) / norm) for c in usual.values())
        surprisal = -sum(n * math.log((usual.get(a, 0.0) + 0.5) / norm) for a, n in actions.items())
        return max(0.0, surprisal / total - entropy)


def _squash(ratio: float) -> float:
    """Map a ratio in [0, inf) into [0, 1): 1 (usual) -> 1/3, 10x -> 0.83."""
    return ratio / (ratio + 2.0)


def _per_nat(excess: float) -> float:
    """Map excess surprisal (nats) into [0, 1): one nat more than usual -> 1/2."""
    return excess / (excess + 1.0)


def window_features(stats: WindowStats, profile: MemberProfile) -> dict[str, float]:
    """The window as the anomaly model sees it: :data:`FEATURE_NAMES`, each in [0, 1].

    Distances from the member's habits are shrunk for windows of few requests, so a single
    request of a quiet member does not look like a change of habits.
    """
    n = stats.count
    if n == 0:
        return dict.fromkeys(FEATURE_NAMES, 0.0)
    confidence = n / (n + 3.0)
    trusted = profile.trusted
    distinct = len(stats.objects)
    return {
        "volume": min(1.0, math.log1p(n) / math.log1p(_VOLUME_CAP)),
        "rate_ratio": _squash(n / (profile.mean_count + 1.0)) if trusted else 1.0 / 3.0,
        "refusal_rate": stats.refusals / n,
        "permission_fail_rate": stats.permission_failures / n,
        "read_fraction": stats.reads / n,
        "distinct_objects_ratio": (
            _squash(distinct / (profile.mean_distinct + 1.0)) if trusted else 1.0 / 3.0
        ),
        "distinct_actions": min(1.0, len(stats.actions) / 16.0),
        "unusual_hour": confidence * profile.hour_unusualness(stats.hours) if trusted else 0.0,
        "action_mix_surprise": (
            confidence * _per_nat(profile.mix_surprise(stats.actions)) if trusted else 0.0
        ),
    }
