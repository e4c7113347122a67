"""The executor's read cache and the parent's view tracker, alone (no processes).

ReadCache keeps committed answers of ``get``, ``exists`` and ``list_keys`` by request text;
ViewTracker builds the update each run carries. Together they must never let a run read
anything but committed state, its batch's earlier writes and its own writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consortia._json import JSON
from consortia.sandbox._link import dumps
from consortia.sandbox.cache import (
    MAX_CHANGED,
    ReadCache,
    RunWrites,
    StateView,
    ViewTracker,
    parent_prefix,
)


@dataclass(frozen=True)
class FakeChange:
    value: JSON
    deleted: bool = False


def get(key: str) -> str:
    return dumps(["get", key])


def exists(key: str) -> str:
    return dumps(["exists", key])


def listing(prefix: str) -> str:
    return dumps(["list_keys", prefix])


def update(
    scope: str = "s#1",
    epoch: int = 1,
    changed: list[JSON] | None = None,
    batch: int = 1,
    volatile: Sequence[str] = (),
) -> list[JSON]:
    return [scope, epoch, changed if changed is not None else [], batch, [*volatile]]


def put_change(key: str, value: JSON) -> list[JSON]:
    return [key, dumps(value), True]


def delete_change(key: str) -> list[JSON]:
    return [key, "null", False]


NOTHING = RunWrites()


def warm() -> ReadCache:
    """A cache on scope s#1 holding a get, an exists and a listing."""
    cache = ReadCache()
    cache.apply(update())
    cache.store(get("o/a"), "get", "o/a", dumps({"n": 1}))
    cache.store(exists("o/a"), "exists", "o/a", "true")
    cache.store(listing("o/"), "list_keys", "o/", dumps(["o/a"]))
    return cache


# -- ReadCache --------------------------------------------------------------------------------


def test_parent_prefix() -> None:
    assert parent_prefix("o/a") == "o/"
    assert parent_prefix("a/b/c") == "a/b/"
    assert parent_prefix("k") == ""


def test_a_stored_answer_is_served() -> None:
    cache = warm()
    assert cache.lookup(get("o/a"), NOTHING) == dumps({"n": 1})
    assert cache.lookup(exists("o/a"), NOTHING) == "true"
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/a"])
    assert cache.hits == 3
    assert cache.lookup(get("o/other"), NOTHING) is None
    assert cache.misses == 1
    assert len(cache) == 3


def test_a_committed_put_updates_get_exists_and_listing() -> None:
    cache = warm()
    cache.apply(update(epoch=2, changed=[put_change("o/a", {"n": 2}), put_change("o/b", 7)]))
    assert cache.lookup(get("o/a"), NOTHING) == dumps({"n": 2})
    assert cache.lookup(exists("o/a"), NOTHING) == "true"
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/a", "o/b"])
    # A committed key nobody asked about yet is learnt (its value travelled anyway).
    assert cache.lookup(get("o/b"), NOTHING) == "7"


def test_a_committed_delete_updates_get_exists_and_listing() -> None:
    cache = warm()
    cache.store(exists("o/b"), "exists", "o/b", "false")
    cache.apply(update(epoch=2, changed=[delete_change("o/a")]))
    assert cache.lookup(get("o/a"), NOTHING) == "null"
    assert cache.lookup(exists("o/a"), NOTHING) == "false"
    assert cache.lookup(listing("o/"), NOTHING) == dumps([])
    # Re-created: every answer follows again.
    cache.apply(update(epoch=3, changed=[put_change("o/a", "back"), put_change("o/b", 1)]))
    assert cache.lookup(get("o/a"), NOTHING) == dumps("back")
    assert cache.lookup(exists("o/a"), NOTHING) == "true"
    assert cache.lookup(exists("o/b"), NOTHING) == "true"
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/a", "o/b"])


def test_a_change_under_another_prefix_leaves_the_listing_alone() -> None:
    cache = warm()
    cache.apply(update(epoch=2, changed=[put_change("p/a", 1), put_change("o/a/deep", 2)]))
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/a"])
    assert cache.lookup(get("o/a"), NOTHING) == dumps({"n": 1})


def test_a_volatile_key_is_neither_served_nor_stored() -> None:
    cache = warm()
    cache.apply(update(epoch=1, batch=2, volatile=["o/a"]))
    assert cache.lookup(get("o/a"), NOTHING) is None
    assert cache.lookup(exists("o/a"), NOTHING) is None
    # Its prefix is volatile too: the listing may include the batch's write.
    assert cache.lookup(listing("o/"), NOTHING) is None
    size = len(cache)
    cache.store(get("o/c"), "get", "o/c", "1")  # not volatile: kept
    cache.apply(update(epoch=1, batch=2, volatile=["o/c", "q/x"]))
    cache.store(get("q/x"), "get", "q/x", "5")
    cache.store(exists("q/x"), "exists", "q/x", "true")
    cache.store(listing("q/"), "list_keys", "q/", dumps(["q/x"]))
    assert len(cache) == size + 1
    assert cache.lookup(get("q/x"), NOTHING) is None
    assert cache.lookup(get("o/c"), NOTHING) is None  # became volatile later in the batch


def test_a_new_batch_clears_volatile() -> None:
    cache = warm()
    cache.apply(update(epoch=1, batch=2, volatile=["o/a"]))
    assert cache.lookup(get("o/a"), NOTHING) is None
    # The batch committed: its writes arrive as committed changes with the next batch.
    cache.apply(update(epoch=2, changed=[put_change("o/a", 9)], batch=3))
    assert cache.lookup(get("o/a"), NOTHING) == "9"
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/a"])
    cache.store(get("o/z"), "get", "o/z", "null")
    assert cache.lookup(get("o/z"), NOTHING) == "null"


def test_a_thrown_away_batch_leaves_nothing() -> None:
    cache = warm()
    cache.apply(update(epoch=1, batch=2, volatile=["o/a", "o/new"]))
    # The batch failed: the next one starts from the same epoch, nothing changed.
    cache.apply(update(epoch=1, batch=3))
    assert cache.lookup(get("o/a"), NOTHING) == dumps({"n": 1})
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/a"])
    assert cache.lookup(get("o/new"), NOTHING) is None


def test_another_scope_clears_everything() -> None:
    cache = warm()
    cache.apply(update(epoch=1, batch=2, volatile=["x/y"]))
    cache.apply(update(scope="s#2", epoch=1, batch=2))
    assert len(cache) == 0
    assert cache.lookup(get("o/a"), NOTHING) is None
    assert cache.lookup(listing("o/"), NOTHING) is None


def test_an_unknown_history_clears_everything() -> None:
    cache = warm()
    cache.apply(["s#1", 9, None, 1, []])
    assert len(cache) == 0
    assert cache.lookup(get("o/a"), NOTHING) is None
    cache.store(get("o/a"), "get", "o/a", "3")
    assert cache.lookup(get("o/a"), NOTHING) == "3"


def test_a_clear_forgets_volatile_too() -> None:
    cache = warm()
    cache.apply(update(batch=2, volatile=["o/a"]))
    cache.clear()
    assert len(cache) == 0
    cache.store(get("o/a"), "get", "o/a", "1")
    # clear() forgot the volatile mark; the caller clears only when nothing may be trusted.
    assert cache.lookup(get("o/a"), NOTHING) == "1"


def test_a_malformed_update_is_refused() -> None:
    cache = ReadCache()
    malformed: list[JSON] = [None, [], ["s", 1, [], 1], [1, 1, [], 1, []], ["s", 1, [], 1, "x"]]
    for bad in malformed:
        try:
            cache.apply(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
    cache.apply(update())
    bad_changes: list[JSON] = ["x", [["k", "1"]], [1]]
    for bad_changed in bad_changes:
        try:
            cache.apply(["s#1", 2, bad_changed, 1, []])
        except ValueError:
            continue
        raise AssertionError(f"accepted changed={bad_changed!r}")


def test_a_run_s_own_write_is_not_served_from_the_cache() -> None:
    cache = warm()
    own = RunWrites()
    own.record("o/a", dumps({"n": 5}))
    assert cache.lookup(get("o/a"), own) is None
    assert cache.lookup(exists("o/a"), own) is None
    own = RunWrites()
    own.record("o/a", None)
    assert cache.lookup(get("o/a"), own) is None
    assert cache.lookup(exists("o/a"), own) is None
    # Other keys still are.
    cache.store(get("o/b"), "get", "o/b", "2")
    assert cache.lookup(get("o/b"), own) == "2"


def test_a_listing_merges_the_run_s_writes() -> None:
    cache = warm()
    cache.store(listing("p/"), "list_keys", "p/", dumps(["p/x"]))
    own = RunWrites()
    own.record("o/b", "1")
    own.record("o/a", None)
    own.record("q/z", "1")
    assert cache.lookup(listing("o/"), own) == dumps(["o/b"])
    assert cache.lookup(listing("p/"), own) == dumps(["p/x"])
    own.record("o/a", "2")
    assert cache.lookup(listing("o/"), own) == dumps(["o/a", "o/b"])
    # The committed answer itself did not change.
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/a"])


def test_run_writes_listing() -> None:
    own = RunWrites()
    assert own.listing("o/", ["o/a"]) == ["o/a"]
    own.record("o/c", "1")
    own.record("o/a", None)
    assert own.listing("o/", ["o/a", "o/b"]) == ["o/b", "o/c"]
    assert own.values == {"o/c": "1", "o/a": None}


def test_the_byte_bound_evicts_the_oldest_entries() -> None:
    cache = ReadCache(max_bytes=8 * 400)
    cache.apply(update())
    for i in range(20):
        cache.store(get(f"k/{i}"), "get", f"k/{i}", dumps("v" * 50))
    assert 0 < len(cache) < 20
    kept = [i for i in range(20) if cache.lookup(get(f"k/{i}"), NOTHING) is not None]
    # The newest survive, contiguously; the oldest went first.
    assert kept == list(range(20 - len(kept), 20))
    assert 19 in kept and 0 not in kept


def test_an_entry_too_large_is_not_kept() -> None:
    cache = ReadCache(max_bytes=8 * 400)
    cache.apply(update())
    cache.store(get("k/big"), "get", "k/big", dumps("v" * 1000))
    assert len(cache) == 0
    assert cache.lookup(get("k/big"), NOTHING) is None


def test_a_growing_entry_is_accounted() -> None:
    cache = ReadCache(max_bytes=8 * 600)
    cache.apply(update())
    cache.store(get("k/a"), "get", "k/a", "1")
    cache.apply(update(epoch=2, changed=[put_change("k/a", "x" * 400)]))
    assert cache.lookup(get("k/a"), NOTHING) == dumps("x" * 400)
    for i in range(20):
        cache.store(get(f"k/{i}"), "get", f"k/{i}", "1")
    assert cache.lookup(get("k/a"), NOTHING) is None  # the oldest went
    assert cache.lookup(get("k/19"), NOTHING) == "1"


def test_storing_twice_keeps_the_first_answer() -> None:
    cache = warm()
    cache.store(get("o/a"), "get", "o/a", "99")
    assert cache.lookup(get("o/a"), NOTHING) == dumps({"n": 1})
    assert len(cache) == 3


# -- ViewTracker ------------------------------------------------------------------------------


class FakeState:
    """A committed history: epoch -> what the commit that reached it wrote."""

    def __init__(self) -> None:
        self.epoch = 0
        self.commits: list[tuple[int, dict[str, FakeChange]]] = []
        self.floor = 0
        self.asked: list[int] = []

    def commit(self, **writes: FakeChange) -> None:
        self.epoch += 1
        self.commits.append((self.epoch, {k.replace("_", "/"): v for k, v in writes.items()}))

    def changed_since(self, epoch: int) -> Mapping[str, FakeChange] | None:
        self.asked.append(epoch)
        if epoch < self.floor:
            return None
        changed: dict[str, FakeChange] = {}
        for after, written in reversed(self.commits):
            if after <= epoch:
                break
            for key, change in written.items():
                changed.setdefault(key, change)
        return changed

    def view(self, scope: str = "s#1", batch: int = 1, volatile: Sequence[str] = ()) -> StateView:
        return StateView(scope, self.epoch, self.changed_since, batch, volatile)


def test_the_first_update_starts_over() -> None:
    state = FakeState()
    tracker = ViewTracker()
    assert tracker.update(state.view()) == ["s#1", 0, None, 1, []]


def test_the_same_epoch_sends_no_change() -> None:
    state = FakeState()
    tracker = ViewTracker()
    tracker.update(state.view())
    assert tracker.update(state.view(batch=2)) == ["s#1", 0, [], 2, []]
    assert state.asked == []


def test_a_later_epoch_sends_what_changed_since() -> None:
    state = FakeState()
    tracker = ViewTracker()
    tracker.update(state.view())
    state.commit(o_a=FakeChange({"n": 1}))
    state.commit(o_b=FakeChange(None, deleted=True), o_a=FakeChange(2))
    sent = tracker.update(state.view(batch=2))
    assert sent[:2] == ["s#1", 2]
    changed = sent[2]
    assert isinstance(changed, list)
    assert sorted(map(str, changed)) == sorted(
        map(str, [["o/b", "null", False], ["o/a", "2", True]])
    )
    assert state.asked == [0]
    # Nothing more since.
    assert tracker.update(state.view(batch=3))[2] == []


def test_the_applied_update_matches_the_committed_state() -> None:
    state = FakeState()
    tracker = ViewTracker()
    cache = ReadCache()
    cache.apply(tracker.update(state.view()))
    cache.store(get("o/a"), "get", "o/a", "null")
    cache.store(listing("o/"), "list_keys", "o/", "[]")
    state.commit(o_a=FakeChange(1), o_b=FakeChange(2))
    cache.apply(tracker.update(state.view(batch=2)))
    assert cache.lookup(get("o/a"), NOTHING) == "1"
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/a", "o/b"])
    state.commit(o_a=FakeChange(None, deleted=True))
    cache.apply(tracker.update(state.view(batch=3)))
    assert cache.lookup(get("o/a"), NOTHING) == "null"
    assert cache.lookup(listing("o/"), NOTHING) == dumps(["o/b"])


def test_a_new_scope_starts_over() -> None:
    state = FakeState()
    tracker = ViewTracker()
    tracker.update(state.view())
    state.commit(o_a=FakeChange(1))
    assert tracker.update(state.view(scope="s#2", batch=2)) == ["s#2", 1, None, 2, []]
    assert state.asked == []


def test_an_unknown_history_starts_over() -> None:
    state = FakeState()
    tracker = ViewTracker()
    tracker.update(state.view())
    state.commit(o_a=FakeChange(1))
    state.floor = 1
    assert tracker.update(state.view(batch=2))[2] is None
    # Then it is known again from the new epoch.
    state.commit(o_b=FakeChange(2))
    assert tracker.update(state.view(batch=3))[2] == [["o/b", "2", True]]


def test_too_many_changes_start_over() -> None:
    state = FakeState()
    tracker = ViewTracker()
    tracker.update(state.view())
    state.commit(**{f"k_{i}": FakeChange(i) for i in range(MAX_CHANGED + 1)})
    assert tracker.update(state.view(batch=2))[2] is None


def test_an_epoch_going_backwards_starts_over() -> None:
    state = FakeState()
    tracker = ViewTracker()
    state.commit(o_a=FakeChange(1))
    state.commit(o_a=FakeChange(2))
    tracker.update(state.view())
    state.epoch = 1
    assert tracker.update(state.view(batch=2)) == ["s#1", 1, None, 2, []]
    assert state.asked == []


def test_volatile_keys_are_sent_once_per_batch() -> None:
    state = FakeState()
    tracker = ViewTracker()
    volatile: list[str] = []
    tracker.update(state.view())
    tracker.update(state.view(batch=2))
    assert tracker.update(state.view(batch=2, volatile=volatile))[4] == []
    volatile += ["o/a", "o/b"]
    assert tracker.update(state.view(batch=2, volatile=volatile))[4] == ["o/a", "o/b"]
    assert tracker.update(state.view(batch=2, volatile=volatile))[4] == []
    volatile.append("o/c")
    assert tracker.update(state.view(batch=2, volatile=volatile))[4] == ["o/c"]
    # A new batch: all of its keys.
    assert tracker.update(state.view(batch=3, volatile=["o/a", "o/d"]))[4] == ["o/a", "o/d"]


def test_starting_over_resends_every_volatile_key() -> None:
    state = FakeState()
    tracker = ViewTracker()
    tracker.update(state.view())
    tracker.update(state.view(batch=2, volatile=["o/a"]))
    # Same batch, but the executor's cache starts over (another scope), which forgets the
    # volatile keys too: all of them must travel again.
    sent = tracker.update(state.view(scope="s#2", batch=2, volatile=["o/a", "o/b"]))
    assert sent[2] is None
    assert sent[4] == ["o/a", "o/b"]


def test_reset_starts_over() -> None:
    state = FakeState()
    tracker = ViewTracker()
    state.commit(o_a=FakeChange(1))
    tracker.update(state.view())
    tracker.update(state.view(batch=2, volatile=["o/a"]))
    tracker.reset()
    assert tracker.update(state.view(batch=2, volatile=["o/a"])) == ["s#1", 1, None, 2, ["o/a"]]
    assert state.asked == []


def test_a_reset_tracker_and_a_new_cache_agree() -> None:
    """A restarted executor (empty cache) after reset(): nothing stale survives."""
    state = FakeState()
    tracker = ViewTracker()
    cache = ReadCache()
    cache.apply(tracker.update(state.view()))
    cache.store(get("o/a"), "get", "o/a", "null")
    tracker.reset()
    fresh = ReadCache()
    state.commit(o_a=FakeChange(1))
    fresh.apply(tracker.update(state.view(batch=2)))
    assert fresh.lookup(get("o/a"), NOTHING) is None
