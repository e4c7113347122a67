"""The bounded-buffer sink: events leave the commit path at the cost of a queue append.

:meth:`BufferedSink.emit` never blocks and never raises: past ``capacity`` events not yet
written (queued, or in the batch being written), or once closed, an event is counted as
dropped and forgotten. One daemon thread drains the queue in batches, shows each event to
the *observers* (the misuse detector), forwards the alerts they raise, and hands the batch
to a :class:`SinkBackend` (DuckDB by default; Kafka or PostgreSQL can follow). When the
backend fails, that batch is counted as dropped and the thread carries on with the next
one: the analytics platform being down must never hold a commit, and the metrics say how
much it missed (``emitted = written + dropped + queued``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from consortia.analytics.events import Alert, Event

__all__ = [
    "AlertHandler",
    "BufferedSink",
    "MemoryBackend",
    "Observer",
    "SinkBackend",
    "SinkStats",
]

log = logging.getLogger("consortia.analytics")

#: Sees every event on the sink's thread; returns the alerts it raises (usually none).
Observer = Callable[[Event], Iterable[Alert]]


class _Prepare:
    """The queue's marker for "load the observers' models now" (see ``prepare``)."""

    def __init__(self) -> None:
        self.done = threading.Event()


#: Receives each alert an observer raised (the platform's ``submit_alert``).
AlertHandler = Callable[[Alert], None]


class SinkBackend(Protocol):
    """Where batches of events and alerts are written (called on the sink's thread only)."""

    def write_events(self, events: Sequence[Event]) -> None:
        """Store a batch of events, or raise: the sink counts the batch as dropped."""
        ...

    def write_alerts(self, alerts: Sequence[Alert]) -> None:
        """Store alerts, or raise."""
        ...

    def close(self) -> None:
        """Release the backend."""
        ...


class MemoryBackend:
    """A backend in memory, for tests and for embedding without a file."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.alerts: list[Alert] = []

    def write_events(self, events: Sequence[Event]) -> None:
        """Keep the batch."""
        self.events.extend(events)

    def write_alerts(self, alerts: Sequence[Alert]) -> None:
        """Keep the alerts."""
        self.alerts.extend(alerts)

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True, slots=True)
class SinkStats:
    """The sink's counters, for ``/metrics``."""

    emitted: int
    written: int
    dropped: int
    queued: int
    alerts: int
    backend_errors: int
    observer_errors: int


class BufferedSink:
    """An :class:`~consortia.analytics.events.EventSink` with a bounded queue and one thread."""

    def __init__(
        self,
        backend: SinkBackend,
        *,
        capacity: int = 50_000,
        batch_size: int = 2_000,
        linger: float = 0.25,
        observers: Sequence[Observer] = (),
        on_alert: AlertHandler | None = None,
    ) -> None:
        if capacity < 1 or batch_size < 1 or linger < 0:
            raise ValueError("capacity and batch_size must be positive, linger not negative")
        self._backend = backend
        self._capacity = capacity
        self._batch_size = batch_size
        self._linger = linger
        self._observers = tuple(observers)
        self._on_alert = on_alert
        self._queue: queue.SimpleQueue[Event | _Prepare | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._closed = False
        self._wake = threading.Event()  # cuts a linger short (close, flush)
        self._emitted = 0
        self._dropped = 0
        self._handled = 0  # events the thread finished with (written or dropped)
        self._written = 0
        self._alerts = 0
        self._backend_errors = 0
        self._observer_errors = 0
        self._thread = threading.Thread(target=self._drain, name="consortia-analytics", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"BufferedSink({type(self._backend).__name__}, capacity={self._capacity})"

    # -- the producer side (the engine's threads) ------------------------------------------

    def emit(self, event: Event) -> None:
        """Queue ``event``; when the queue is full or the sink closed, count it as dropped."""
        with self._lock:
            self._emitted += 1
            if self._closed or self._emitted - self._dropped - self._handled > self._capacity:
                self._dropped += 1
                return
        self._queue.put(event)

    @property
    def backend(self) -> SinkBackend:
        """Where batches go (the server reads insights back through it)."""
        return self._backend

    @property
    def observers(self) -> tuple[Observer, ...]:
        """The observers every event is shown to."""
        return self._observers

    def add_observer(self, observer: Observer) -> None:
        """Show every later event to ``observer`` too (e.g. a detector wired after start)."""
        with self._lock:
            self._observers = (*self._observers, observer)

    def set_alert_handler(self, handler: AlertHandler | None) -> None:
        """Where observers' alerts go (the platform's ``submit_alert``)."""
        self._on_alert = handler

    def stats(self) -> SinkStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            queued = self._emitted - self._dropped - self._handled
            return SinkStats(
                emitted=self._emitted,
                written=self._written,
                dropped=self._dropped,
                queued=queued,
                alerts=self._alerts,
                backend_errors=self._backend_errors,
                observer_errors=self._observer_errors,
            )

    def prepare(self) -> threading.Event:
        """Have the sink's thread load its observers' models now, not at the first event.

        A server calls it as it starts, so that its first requests' events do not wait on
        (and, under the GIL, its first requests do not compete with) a model import. The
        event returned is set once that is done (at once if the sink is closed). Observers
        without a ``prepare`` method are left as they are.
        """
        marker = _Prepare()
        with self._lock:
            if self._closed:
                marker.done.set()
            else:
                self._queue.put(marker)
        return marker.done

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event emitted so far was written or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._done:
            target = self._emitted
            while self._dropped + self._handled < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._done.wait(left)
        if not self._closed:
            self._wake.clear()
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking events, write what is queued (up to ``timeout``), close the backend."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("analytics sink did not drain within %.1f s; closing anyway", timeout)
            return
        try:
            self._backend.close()
        except Exception as exc:  # noqa: BLE001 - closing must not fail the platform's close
            log.warning("analytics backend failed to close: %s", type(exc).__name__)

    # -- the consumer side (the sink's own thread) -----------------------------------------

    def _take(self) -> tuple[list[Event], bool]:
        """One batch: block for the first event, linger for more; (batch, stop)."""
        first = self._queue.get()
        if first is None:
            return self._rest([]), True
        if isinstance(first, _Prepare):
            self._prepare_observers(first)
            return [], False
        batch = [first]
        if self._linger and self._queue.qsize() < self._batch_size:
            self._wake.wait(self._linger)
        stop = False
        while len(batch) < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                batch = self._rest(batch)
                break
            if isinstance(item, _Prepare):
                self._prepare_observers(item)
                continue
            batch.append(item)
        return batch, stop

    def _rest(self, batch: list[Event]) -> list[Event]:
        """Everything still queued after the close marker (emit stops before it is put)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch
            if isinstance(item, _Prepare):
                item.done.set()  # closing: nothing left to prepare for
            elif item is not None:
                batch.append(item)

    def _drain(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            for start in range(0, len(batch), self._batch_size):
                self._handle(batch[start : start + self._batch_size])

    def _prepare_observers(self, marker: _Prepare) -> None:
        try:
            self._prepare_each()
        finally:
            marker.done.set()

    def _prepare_each(self) -> None:
        for observer in self._observers:
            prepare = getattr(observer, "prepare", None)
            if not callable(prepare):
                continue
            try:
                prepare()
            except Exception as exc:  # noqa: BLE001 - it loads again at the first event
                with self._lock:
                    self._observer_errors += 1
                log.error("analytics observer failed to prepare: %s", type(exc).__name__)

    def _observe(self, batch: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        for observer in self._observers:
            for event in batch:
                try:
                    alerts.extend(observer(event))
                except Exception as exc:  # noqa: BLE001 - a detector bug must not stop the sink
                    with self._lock:
                        self._observer_errors += 1
                    log.error("analytics observer failed: %s", type(exc).__name__)
        return alerts

    def _handle(self, batch: list[Event]) -> None:
        alerts = self._observe(batch)
        if alerts:
            self._deliver(alerts)
        try:
            self._backend.write_events(batch)
            ok = True
        except Exception as exc:  # noqa: BLE001 - a down backend drops events, nothing more
            ok = False
            log.warning(
                "analytics backend failed; %d events dropped: %s", len(batch), type(exc).__name__
            )
        with self._done:
            self._handled += len(batch)
            if ok:
                self._written += len(batch)
            else:
                # handled counts them out of the queue; dropped says they never arrived.
                self._handled -= len(batch)
                self._dropped += len(batch)
                self._backend_errors += 1
            self._done.notify_all()

    def _deliver(self, alerts: list[Alert]) -> None:
        with self._lock:
            self._alerts += len(alerts)
        handler = self._on_alert
        if handler is not None:
            for alert in alerts:
                try:
                    handler(alert)
                except Exception as exc:  # noqa: BLE001 - one bad alert must not stop the sink
                    log.error("analytics alert handler failed: %s", type(exc).__name__)
        try:
            self._backend.write_alerts(alerts)
        except Exception as exc:  # noqa: BLE001 - the alert still reached the platform
            log.warning("analytics backend failed to store alerts: %s", type(exc).__name__)
