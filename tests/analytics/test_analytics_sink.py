"""The bounded-buffer sink: never blocks a commit, counts what it drops, feeds observers."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pytest
from analytics_world import FOUNDERS, make_world, wait_for

from consortia.analytics import Alert, Event
from consortia.analytics.duckdb_sink import DuckDBBackend
from consortia.analytics.embedded import LazyDetector
from consortia.analytics.sink import BufferedSink, MemoryBackend
from consortia.engine import Committed


def event(n: int, member: str = "telco") -> Event:
    return Event(
        time=1_800_000_000.0 + n,
        consortium="acme",
        kind="execute",
        action="voteFor",
        member=member,
        outcome="refused",
        code="bad_signature",
        latency_ms=0.5,
        object_type=None,
        object_ref=None,
        txid=f"{n:064x}",
        fields={},
    )


class BlockedBackend(MemoryBackend):
    """A backend that hangs until released: an analytics platform that stopped answering."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def write_events(self, events: Sequence[Event]) -> None:
        self.entered.set()
        self.release.wait(30)
        super().write_events(events)


class DownBackend(MemoryBackend):
    """A backend that fails every write until it comes back up."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False

    def write_events(self, events: Sequence[Event]) -> None:
        if not self.up:
            raise ConnectionError("analytics platform unreachable")
        super().write_events(events)


def test_everything_emitted_is_written_in_order() -> None:
    backend = MemoryBackend()
    sink = BufferedSink(backend, linger=0.0, batch_size=7)
    for n in range(100):
        sink.emit(event(n))
    assert sink.flush()
    sink.close()
    assert [e.txid for e in backend.events] == [f"{n:064x}" for n in range(100)]
    stats = sink.stats()
    assert (stats.emitted, stats.written, stats.dropped, stats.queued) == (100, 100, 0, 0)


def test_a_full_buffer_drops_and_counts_instead_of_blocking() -> None:
    backend = BlockedBackend()
    sink = BufferedSink(backend, linger=0.0, capacity=10, batch_size=1)
    sink.emit(event(0))
    assert backend.entered.wait(10)  # the thread is stuck inside the backend
    for n in range(1, 51):
        sink.emit(event(n))  # returns at once although nothing drains
    stats = sink.stats()
    assert stats.emitted == 51
    # Capacity bounds events not yet written: 1 inside the backend and 9 queued.
    assert (stats.queued, stats.dropped) == (10, 41)
    backend.release.set()
    assert sink.flush()
    sink.close()
    assert len(backend.events) == 10
    final = sink.stats()
    assert final.emitted == final.written + final.dropped == 51


def test_a_down_backend_drops_its_batches_and_recovers() -> None:
    backend = DownBackend()
    sink = BufferedSink(backend, linger=0.0)
    for n in range(20):
        sink.emit(event(n))
    assert sink.flush()
    down = sink.stats()
    assert (down.written, down.dropped) == (0, 20)
    assert down.backend_errors >= 1
    backend.up = True
    for n in range(20, 25):
        sink.emit(event(n))
    assert sink.flush()
    sink.close()
    up = sink.stats()
    assert (up.emitted, up.written, up.dropped) == (25, 5, 20)
    assert [e.txid for e in backend.events] == [f"{n:064x}" for n in range(20, 25)]


def test_after_close_events_are_dropped_and_close_is_idempotent() -> None:
    sink = BufferedSink(MemoryBackend(), linger=0.0)
    sink.close()
    sink.close()
    sink.emit(event(1))
    assert sink.stats().dropped == 1


def test_observers_see_every_event_and_their_alerts_go_to_the_handler_and_the_store() -> None:
    backend = MemoryBackend()
    seen: list[Event] = []
    handled: list[Alert] = []

    def watch(e: Event) -> Iterable[Alert]:
        seen.append(e)
        if e.time == 1_800_000_003.0:
            return [Alert(e.time, e.consortium, "telco", "bad_signature_burst", 1.0, {"n": 3})]
        return []

    def broken(e: Event) -> Iterable[Alert]:
        raise RuntimeError("detector bug")

    sink = BufferedSink(backend, linger=0.0, observers=[broken, watch], on_alert=handled.append)
    for n in range(5):
        sink.emit(event(n))
    assert sink.flush()
    sink.close()
    assert len(seen) == 5
    assert [a.rule for a in handled] == ["bad_signature_burst"]
    assert backend.alerts == handled
    stats = sink.stats()
    assert (stats.written, stats.alerts, stats.observer_errors) == (5, 1, 5)


def test_a_blocked_backend_never_holds_a_commit(tmp_path: Path) -> None:
    backend = BlockedBackend()
    world = make_world(tmp_path, backend, capacity=5)
    try:
        world.add_record_action()
        assert backend.entered.wait(10)
        before = world.sink.stats()
        # Every commit below returns while the backend is stuck: none waits for analytics.
        for n in range(30):
            done = world.act(FOUNDERS[n % 3], "record", {"kind": "order", "id": str(n), "note": ""})
            assert isinstance(done, Committed)
        stats = world.sink.stats()
        assert stats.emitted == before.emitted + 30
        assert stats.written == 0
        assert stats.queued <= 5
        assert stats.dropped >= 30 - 5
        backend.release.set()
        assert world.sink.flush()
        final = world.sink.stats()
        assert final.written > 0
        assert final.emitted == final.written + final.dropped
    finally:
        backend.release.set()
        world.close()


def test_duckdb_backend_writes_batches_and_leaves_the_file_readable(tmp_path: Path) -> None:
    path = tmp_path / "analytics.duckdb"
    backend = DuckDBBackend(path)
    sink = BufferedSink(backend, linger=0.0)
    for n in range(2_500):
        sink.emit(event(n, member=f"m{n % 7}"))
    alert = Alert(1.0, "acme", "m1", "probing", 0.75, {"distinct_actions": 4})
    backend.write_alerts([alert])
    assert sink.flush()
    # Between batches the file is closed, so a reader can open it while the sink runs.
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT member) FROM events").fetchone() == (
            2_500,
            7,
        )
        assert con.execute("SELECT code, fields FROM events LIMIT 1").fetchone() == (
            "bad_signature",
            "{}",
        )
        assert con.execute("SELECT * FROM alerts").fetchall() == [
            (1.0, "acme", "m1", "probing", 0.75, '{"distinct_actions":4}')
        ]
        columns = [r[0] for r in con.execute("DESCRIBE events").fetchall()]
        assert columns == list(Event.__dataclass_fields__)
    finally:
        con.close()
    sink.close()


def test_sink_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        BufferedSink(MemoryBackend(), capacity=0)
    sink = BufferedSink(MemoryBackend(), linger=0.0)
    try:
        wait_for(lambda: sink.stats().queued == 0)
    finally:
        sink.close()


def test_an_unwritable_store_drops_events_but_never_stops_the_platform(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    backend = DuckDBBackend(blocker / "analytics.duckdb")  # opening it would fail
    world = make_world(tmp_path / "tep", backend)
    try:
        world.add_record_action()
        world.act("vendor", "record", {"kind": "order", "id": "1", "note": ""})
        assert world.sink.flush()
        stats = world.sink.stats()
        assert stats.written == 0
        assert stats.dropped == stats.emitted > 0
        assert stats.backend_errors >= 1
    finally:
        world.close()


class SlowModel:
    """An observer whose model loads slowly, on whichever thread first needs it."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.loaded_on: list[str] = []
        self.seen: list[Event] = []

    def prepare(self) -> None:
        self.loaded_on.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("model file missing")

    def __call__(self, event: Event) -> Iterable[Alert]:
        self.seen.append(event)
        return ()


def test_prepare_loads_the_models_on_the_sinks_thread_before_any_event() -> None:
    model = SlowModel()
    sink = BufferedSink(MemoryBackend(), observers=[model], linger=0)
    assert sink.prepare().wait(10)
    assert model.loaded_on == ["consortia-analytics"]
    sink.emit(event(1))
    assert sink.flush()
    assert [e.txid for e in model.seen] == [event(1).txid]
    assert sink.stats().written == 1 and sink.stats().queued == 0
    sink.close()
    assert sink.prepare().is_set()  # after close: nothing queued, nothing to wait for
    assert model.loaded_on == ["consortia-analytics"]


def test_a_model_that_fails_to_prepare_is_counted_and_events_still_flow() -> None:
    model = SlowModel(fail=True)
    sink = BufferedSink(MemoryBackend(), observers=[model], linger=0)
    assert sink.prepare().wait(10)
    sink.emit(event(1))
    assert sink.flush()
    stats = sink.stats()
    assert stats.observer_errors == 1 and stats.written == 1
    assert len(model.seen) == 1
    sink.close()


def test_the_lazy_detector_loads_when_prepared() -> None:
    detector = LazyDetector()
    assert "loaded=False" in repr(detector)
    observe = detector.prepare()
    assert "loaded=True" in repr(detector)
    assert detector.prepare() is observe
    assert list(detector(event(1))) == []
