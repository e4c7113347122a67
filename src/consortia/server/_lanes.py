"""One ordered lane per consortium in front of the engine (docs/architecture.md, steps 5-7).

The engine is not thread-safe and answers only once a commit is durable. Each consortium gets
a :class:`Lane`: requests queue on the event loop, one asyncio task drains whatever has queued
into a single :meth:`Platform.execute_batch` call (group commit) on a worker thread, and
resolves each caller's future only after that call returned. Reads of the consortium take
the same lock on a worker thread, so they see committed state only and never a half-applied
batch. Different consortia have different locks and proceed in parallel.

After each commit the lane tells the :class:`StreamHub` which members' notification queues
grew, so their open SSE streams wake up; idle streams cost nothing per commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from consortia.engine import Outcome, Platform
from consortia.errors import ConsortiaError, RateLimited, Unavailable
from consortia.server._metrics import Metrics

__all__ = ["Lane", "Sequencer", "StreamHub"]

log = logging.getLogger("consortia.server")

T = TypeVar("T")

#: Most requests one group commit takes from the queue.
MAX_BATCH = 256
#: Requests waiting per consortium before new ones are answered ``rate_limited``.
MAX_QUEUE = 4096


@dataclass(eq=False)
class Waiter:
    """One open SSE stream: the member it reads for and the newest id it has sent."""

    member: str
    last_id: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class StreamHub:
    """Open SSE streams by consortium and member, with the caps that bound their cost."""

    def __init__(self, *, per_member: int, total: int) -> None:
        self.per_member = per_member
        self.total = total
        self._streams: dict[str, dict[str, set[Waiter]]] = {}
        self._count = 0

    @property
    def count(self) -> int:
        """Open streams, all consortia together."""
        return self._count

    def add(self, cid: str, waiter: Waiter) -> None:
        """Register a stream, or raise ``rate_limited`` past a cap (checked before any read)."""
        members = self._streams.setdefault(cid, {})
        mine = members.setdefault(waiter.member, set())
        if self._count >= self.total:
            raise RateLimited(
                f"the server holds its maximum of {self.total} notification streams; "
                "retry later, or poll GET …/notifications?after=N"
            )
        if len(mine) >= self.per_member:
            raise RateLimited(
                f"member {waiter.member!r} already has {len(mine)} open notification streams "
                f"(the limit is {self.per_member}); close one, or resume it with Last-Event-ID"
            )
        mine.add(waiter)
        self._count += 1

    def remove(self, cid: str, waiter: Waiter) -> None:
        """Forget a stream that ended."""
        members = self._streams.get(cid, {})
        mine = members.get(waiter.member)
        if mine is not None and waiter in mine:
            mine.discard(waiter)
            self._count -= 1
            if not mine:
                del members[waiter.member]

    def members(self, cid: str) -> list[str]:
        """Members with an open stream (a copy: it is read from the engine thread)."""
        return list(self._streams.get(cid, {}))

    def wake(self, cid: str, counters: dict[str, int]) -> None:
        """Wake the streams whose member's queue now goes past what they have sent."""
        members = self._streams.get(cid, {})
        for member, newest in counters.items():
            for waiter in members.get(member, ()):
                if newest > waiter.last_id:
                    waiter.wake.set()

    def end(self, cid: str, members: list[str]) -> None:
        """Wake every stream of ``members`` (removed or suspended): its next read is refused,
        so it ends with an ``error`` event and nothing committed later reaches it."""
        streams = self._streams.get(cid, {})
        for member in members:
            for waiter in streams.get(member, ()):
                waiter.wake.set()

    def wake_all(self) -> None:
        """Wake every stream (at shutdown, so each one sees the server is closing)."""
        for members in self._streams.values():
            for waiters in members.values():
                for waiter in waiters:
                    waiter.wake.set()


class Sequencer:
    """Orders the server's calls into the engine: the platform, its per-consortium locks
    and lanes, and the worker threads that make the calls."""

    def __init__(self, platform: Platform, *, metrics: Metrics, hub: StreamHub) -> None:
        self.platform = platform
        self.metrics = metrics
        self.hub = hub
        # Engine calls block (signatures, sandbox, fsync): they run off the event loop.
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="consortia-engine")
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._lanes: dict[str, Lane] = {}
        self._known: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Misuse alerts arrive from the analytics thread at any time: commit them promptly.
        platform.alert_listener = self._alert_arrived

    def _alert_arrived(self, cid: str) -> None:
        """Any thread: commit ``cid``'s queued alerts in its order, then wake its streams."""

        def work() -> None:
            try:
                with self.lock(cid):
                    self.platform.apply_alerts(cid)
                    watched = self.hub.members(cid)
                    counters = self.platform.newest_notification_ids(cid, watched)
                    ended = self.platform.inactive_members(cid, watched)
            except Exception as exc:  # noqa: BLE001 - logged; the lane goes on
                log.error("misuse alerts of %s not committed: %s", cid, type(exc).__name__)
                return
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self.hub.wake, cid, counters)
                loop.call_soon_threadsafe(self.hub.end, cid, ended)

        with contextlib.suppress(RuntimeError):  # the pool is shut down: the server stops
            self.pool.submit(work)

    def lock(self, cid: str) -> threading.Lock:
        """The lock that orders every call into the engine on consortium ``cid``."""
        with self._locks_guard:
            found = self._locks.get(cid)
            if found is None:
                found = self._locks[cid] = threading.Lock()
            return found

    async def call(self, cid: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a worker thread under ``cid``'s lock."""

        def locked() -> T:
            with self.lock(cid):
                return fn()

        self._loop = loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, locked)

    async def lane(self, cid: str) -> Lane:
        """The lane of an existing consortium (``not_found`` otherwise)."""
        found = self._lanes.get(cid)
        if found is not None:
            return found
        if cid not in self._known:
            await self.call(cid, lambda: self.platform.require(cid))
            self._known.add(cid)
        found = self._lanes.get(cid)
        if found is None:
            found = self._lanes[cid] = Lane(self, cid)
        return found

    async def close(self) -> None:
        """Let every lane finish what it has queued, then stop the worker threads."""
        self.platform.alert_listener = None
        for lane in list(self._lanes.values()):
            await lane.close()
        self.pool.shutdown(wait=True)


class Lane:
    """The group-commit sequencer of one consortium."""

    def __init__(self, sequencer: Sequencer, cid: str) -> None:
        self.sequencer = sequencer
        self.cid = cid
        self._queue: asyncio.Queue[tuple[bytes, asyncio.Future[Outcome | ConsortiaError]]]
        self._queue = asyncio.Queue()
        # The gauge's child for this consortium, looked up once (a labels() call per request
        # showed in the profile).
        self._depth = sequencer.metrics.queue_depth.labels(sequencer.metrics.consortium_label(cid))
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"consortia-lane-{cid}"
        )

    async def execute(self, body: bytes) -> Outcome:
        """Queue one executeAction body; its outcome once durable, or its refusal raised."""
        (answer,) = await self.execute_many([body])
        if isinstance(answer, ConsortiaError):
            raise answer
        return answer

    async def execute_many(self, bodies: list[bytes]) -> list[Outcome | ConsortiaError]:
        """Queue several bodies at once (so they usually share one group commit); each
        one's outcome or refusal, in order, once durable. All are refused if the queue
        cannot take them all."""
        if self._queue.qsize() + len(bodies) > MAX_QUEUE:
            raise RateLimited(
                f"consortium {self.cid!r} has {self._queue.qsize()} requests waiting (at most "
                f"{MAX_QUEUE}); retry shortly with the same bodies (retries are safe)"
            )
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Outcome | ConsortiaError]] = []
        for body in bodies:
            future: asyncio.Future[Outcome | ConsortiaError] = loop.create_future()
            self._queue.put_nowait((body, future))
            futures.append(future)
        self._depth.set(self._queue.qsize())
        return [await future for future in futures]

    async def close(self) -> None:
        """Finish the queued requests, then stop."""
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        queue = self._queue
        while True:
            items = [await queue.get()]
            while len(items) < MAX_BATCH and not queue.empty():
                items.append(queue.get_nowait())
            self._depth.set(queue.qsize())
            try:
                answers, counters, ended = await self._commit([body for body, _ in items])
            finally:
                for _ in items:
                    queue.task_done()
            for (_, future), answer in zip(items, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
            self.sequencer.hub.wake(self.cid, counters)
            self.sequencer.hub.end(self.cid, ended)

    async def _commit(
        self, bodies: list[bytes]
    ) -> tuple[list[Outcome | ConsortiaError], dict[str, int], list[str]]:
        sequencer = self.sequencer
        cid = self.cid

        def work() -> tuple[list[Outcome | ConsortiaError], dict[str, int], list[str]]:
            started = time.perf_counter()
            answers = sequencer.platform.execute_batch(cid, bodies)
            sequencer.metrics.commit_seconds.observe(time.perf_counter() - started)
            sequencer.metrics.batch_size.observe(len(bodies))
            # Read under the same lock, right after the commit: which watched queues grew.
            watched = sequencer.hub.members(cid)
            counters = sequencer.platform.newest_notification_ids(cid, watched)
            return answers, counters, sequencer.platform.inactive_members(cid, watched)

        try:
            return await sequencer.call(cid, work)
        except ConsortiaError as exc:
            return [exc] * len(bodies), {}, []
        except Exception as exc:
            # One bad batch must not stop the lane. Log the type only: a message or a
            # traceback could carry request data.
            log.error("group commit of %s failed unexpectedly: %s", cid, type(exc).__name__)
            log.debug("group commit failure", exc_info=True)
            failed = Unavailable("the platform could not commit; retry with the same request")
            return [failed] * len(bodies), {}, []
