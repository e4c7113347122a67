"""The load generator of ``bench/http_load.py``: pre-built HTTP/1.1 requests, open loop, over TLS.

Runs in its own process so that its CPU is measured apart from the server's. It reads a
file of ready requests (each one raw bytes, signed beforehand, so signing costs nothing
here), opens ``--conns`` keep-alive TLS connections, then releases request *i* at
``start + i / rate`` (or all at once with ``--rate 0``: saturation). A released request waits
for a free connection; its open-loop latency counts from its release time, so a slow server
cannot hide queueing (no coordinated omission). The service latency counts from the moment
it was written.

While it runs it samples the server's CPU time (server process and its children, the
sandbox executor included, from /proc) and resident memory. It prints one JSON object.

Usage: python bench/loadgen.py --file REQS --host H --port P --server-pid PID
                               [--rate R] [--conns C] [--duration S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import ssl
import sys
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux /proc/<pid>/task/<tid>/children)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children", encoding="ascii") as f:
                    found.extend(int(c) for c in f.read().split())
            except OSError:
                continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the live processes in ``pids``."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of one process."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length framed); its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


class Run:
    """One load run: the requests, the schedule and what was measured."""

    def __init__(self, args: argparse.Namespace, requests: list[tuple[str, bytes]]) -> None:
        self.args = args
        self.requests = requests
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()
        self.released = [0.0] * len(requests)
        self.sent = [0.0] * len(requests)
        self.done = [0.0] * len(requests)
        self.status = [0] * len(requests)
        self.errors = 0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a local benchmark against its own self-signed cert
        return await asyncio.open_connection(
            self.args.host, self.args.port, ssl=context, limit=1 << 20
        )

    async def worker(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        reader, writer = conn
        while True:
            index = await self.queue.get()
            if index is None:
                writer.close()
                return
            self.sent[index] = time.perf_counter()
            writer.write(self.requests[index][1])
            try:
                self.status[index] = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                self.errors += 1
                reader, writer = await self.connect()
                continue
            self.done[index] = time.perf_counter()

    async def dispatch(self, start: float) -> None:
        rate = self.args.rate
        deadline = start + self.args.duration
        for index in range(len(self.requests)):
            due = start + index / rate if rate > 0 else start
            now = time.perf_counter()
            if due > deadline or now > deadline:
                break
            if due > now + 0.001:
                await asyncio.sleep(due - now)
            self.released[index] = due
            self.queue.put_nowait(index)
        for _ in range(self.args.conns):
            self.queue.put_nowait(None)

    async def sample(self, pid: int, rss: list[int], stop: asyncio.Event) -> None:
        while not stop.is_set():
            rss.append(rss_bytes(pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def go(self) -> dict[str, object]:
        conns = [await self.connect() for _ in range(self.args.conns)]
        pids = descendants(self.args.server_pid)
        rss: list[int] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(self.sample(self.args.server_pid, rss, stop))
        server_cpu0, own_cpu0 = cpu_seconds(pids), own_cpu()
        start = time.perf_counter()
        workers = [asyncio.create_task(self.worker(c)) for c in conns]
        await self.dispatch(start)
        await asyncio.gather(*workers)
        end = time.perf_counter()
        server_cpu = cpu_seconds(pids) - server_cpu0
        load_cpu = own_cpu() - own_cpu0
        stop.set()
        await sampler
        return self.summary(start, end, server_cpu, load_cpu, rss)

    def summary(
        self, start: float, end: float, server_cpu: float, load_cpu: float, rss: list[int]
    ) -> dict[str, object]:
        by_kind: dict[str, dict[str, int]] = {}
        open_loop: list[float] = []
        service: list[float] = []
        for index, (kind, _) in enumerate(self.requests):
            if not self.done[index]:
                continue
            counts = by_kind.setdefault(kind, {})
            key = str(self.status[index])
            counts[key] = counts.get(key, 0) + 1
            open_loop.append(self.done[index] - self.released[index])
            service.append(self.done[index] - self.sent[index])
        wall = end - start
        return {
            "wall_s": wall,
            "completed": len(service),
            "statuses": by_kind,
            "errors": self.errors,
            "open_loop_ms": [round(x * 1000, 3) for x in open_loop],
            "service_ms": [round(x * 1000, 3) for x in service],
            "server_cpu_s": server_cpu,
            "loadgen_cpu_s": load_cpu,
            "server_rss": rss,
        }


def load_requests(path: Path) -> list[tuple[str, bytes]]:
    """The request file: one JSON ``[kind, raw request text]`` per line."""
    out = []
    with path.open(encoding="ascii") as f:
        for line in f:
            kind, raw = json.loads(line)
            out.append((kind, raw.encode("ascii")))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--server-pid", required=True, type=int)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0: all at once")
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    run = Run(args, load_requests(args.file))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        result = asyncio.run(run.go())
    else:
        result = uvloop.run(run.go())
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
