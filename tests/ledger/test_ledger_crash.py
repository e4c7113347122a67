"""Crash safety: kill -9 a writer hundreds of times at random instants, restart it each time.

tests/ledger/crash_writer.py opens a platform and commits group batches, printing a txid only
after the commit returned. Here it is killed with SIGKILL at random points: during start-up
(interpreter, node key, schema, consortium creation) or while it commits. Afterwards every
acknowledged transaction must be in storage and the whole ledger must verify; and every
restart must have come up on its own. A SIGKILL cannot tear a write (the kernel keeps what
was written), so some kills also get a torn copy: in a copy, the WAL's newest transaction
(the only part a power loss could still damage under synchronous=FULL) is cut at a random
byte or scrambled, and that copy too must verify: a half-written batch is never read back
as committed.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consortia.engine.audit import verify_ledger
from consortia.errors import Unavailable
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.sqlite import SQLiteStore

WRITER = Path(__file__).with_name("crash_writer.py")
STREAMS = 2  # independent data directories, one per core
KILLS_PER_STREAM = 110
TORN_EVERY = 4  # every 4th kill also checks a torn copy
READY_TIMEOUT = 30.0


@dataclass
class Stream:
    """One data directory and what its writers acknowledged."""

    data: Path
    rng: random.Random
    acked: set[str] = field(default_factory=set)
    kills: int = 0
    kills_while_writing: int = 0
    torn_copies: int = 0
    empty_copies: int = 0


def _lines(chunk: bytes) -> list[str]:
    # Acks are written one whole line per write(); a kill can only cut the stream between them.
    return chunk.decode("ascii", errors="replace").splitlines()


def _collect(stream: Stream, lines: list[str], transcript: list[str]) -> None:
    for line in lines:
        transcript.append(line)
        if line.startswith("error"):
            raise AssertionError(f"the writer was refused: {line}")
        parts = line.split()
        if len(parts) == 2 and parts[0] == "ack" and len(parts[1]) == 64:
            stream.acked.add(parts[1])


def _wait_ready(proc: subprocess.Popen[bytes], stream: Stream, transcript: list[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    buffered = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break  # exited: reported by the caller from its return code
        buffered += chunk
        if b"ready\n" in buffered:
            head, _, rest = buffered.partition(b"ready\n")
            _collect(stream, [*_lines(head), "ready"], transcript)
            _collect(stream, _lines(rest), transcript)
            return
    _collect(stream, _lines(buffered), transcript)


def run_and_kill(stream: Stream) -> None:
    """Start the writer, let it run a random while, SIGKILL it, keep what it acknowledged."""
    transcript: list[str] = []
    proc = subprocess.Popen(  # noqa: S603 - our interpreter and our script
        [sys.executable, str(WRITER), str(stream.data), str(stream.rng.randrange(2**32))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if stream.rng.random() < 0.25:
        time.sleep(stream.rng.uniform(0.002, 0.4))  # anywhere in start-up
    else:
        _wait_ready(proc, stream, transcript)
        stream.kills_while_writing += 1
        time.sleep(stream.rng.uniform(0.0, 0.12))
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()
    _collect(stream, _lines(out), transcript)
    if proc.returncode != -signal.SIGKILL:
        raise AssertionError(
            f"the writer exited by itself ({proc.returncode}) after {stream.kills} kills: a "
            f"restart needed a manual step?\n{err.decode(errors='replace')[-2000:]}"
        )
    stream.kills += 1


def verify(data: Path) -> int:
    """verify_ledger on ``data``; the number of transactions of the crash consortium."""
    store = SQLiteStore(data / "ledger.sqlite", read_only=True)
    try:
        audits = verify_ledger(store, load_node_key(data / "node.key"))
    finally:
        store.close()
    return sum(a.tree_size for a in audits)


def last_commit_span(wal: bytes, shm: bytes) -> tuple[int, int] | None:
    """Byte span of the WAL's newest transaction, if a power loss could still tear it.

    WAL format (sqlite.org/fileformat2.html#walformat): a 32-byte header with the page size
    and two salts, then frames of a 24-byte header (page number, database size if the frame
    commits, the salts) and one page. Everything before the newest commit was synced before
    that commit began (synchronous=FULL), and the checkpointer copies only synced frames, so
    only the newest transaction, and only if no checkpoint copied it yet, can be torn.
    """
    if len(wal) < 32:
        return None
    page_size = int.from_bytes(wal[8:12], "big")
    salts = wal[16:24]
    frame = 24 + page_size
    commits: list[int] = []  # index of every commit frame of the current generation
    count = (len(wal) - 32) // frame
    for i in range(count):
        header = wal[32 + i * frame : 32 + i * frame + 24]
        if header[8:16] != salts:
            break  # an older generation's leftovers: not part of the log
        if int.from_bytes(header[4:8], "big"):
            commits.append(i)
    if not commits:
        return None
    # The wal-index (its checkpoint info at byte 96) keeps nBackfill, the frames copied
    # into the database, and at byte 128 nBackfillAttempted, set before copying begins: a
    # writer killed mid-checkpoint has already changed the database up to there.
    info = [int.from_bytes(shm[at : at + 4], sys.byteorder) for at in (96, 128)]
    backfilled = max(info) if len(shm) >= 132 else 0
    first = commits[-2] + 1 if len(commits) > 1 else 0
    if backfilled > first:
        return None
    return 32 + first * frame, 32 + (commits[-1] + 1) * frame


def check_torn_copy(stream: Stream, scratch: Path) -> None:
    """Tear the newest transaction in a copy's WAL; the copy must verify, one batch shorter
    or complete, never half-written."""
    wal_path = stream.data / "ledger.sqlite-wal"
    shm_path = stream.data / "ledger.sqlite-shm"
    if not wal_path.exists() or not shm_path.exists():
        return
    wal = wal_path.read_bytes()
    span = last_commit_span(wal, shm_path.read_bytes())
    if span is None:
        return
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    shutil.copy2(stream.data / "ledger.sqlite", scratch / "ledger.sqlite")
    shutil.copy2(stream.data / "node.key", scratch / "node.key")
    # The wal-index (-shm) is shared memory, not durable state: a power loss loses it and
    # SQLite rebuilds it from the WAL, so the copy gets none.
    begin, end = span
    cut = stream.rng.randrange(begin, end)
    if stream.rng.random() < 0.5:
        torn = wal[:cut]  # the rest never reached the disk
    else:
        torn = wal[:cut] + stream.rng.randbytes(min(512, end - cut)) + wal[cut + 512 :]
    (scratch / "ledger.sqlite-wal").write_bytes(torn)
    try:
        verify(scratch)
    except Unavailable as exc:
        # Torn in the schema's own commit: an empty file, the one shorter ledger that is
        # not a store yet. Anything else is a failure.
        if "no schema version" not in exc.message:
            raise
        stream.empty_copies += 1
    stream.torn_copies += 1


def kill_loop(stream: Stream, scratch: Path) -> Stream:
    for kill in range(KILLS_PER_STREAM):
        run_and_kill(stream)
        if kill % TORN_EVERY == TORN_EVERY - 1:
            check_torn_copy(stream, scratch)
    return stream


@pytest.mark.slow
def test_kill_9_at_random_instants_loses_no_acknowledged_transaction(tmp_path: Path) -> None:
    started = time.monotonic()
    streams = [Stream(tmp_path / f"data{i}", random.Random(1000 + i)) for i in range(STREAMS)]
    with ThreadPoolExecutor(STREAMS) as pool:
        done = list(
            pool.map(
                lambda s: kill_loop(s, tmp_path / f"torn{streams.index(s)}"),
                streams,
            )
        )
    kills = sum(s.kills for s in done)
    assert kills >= 200
    for stream in done:
        size = verify(stream.data)
        store = SQLiteStore(stream.data / "ledger.sqlite", read_only=True)
        try:
            missing = [t for t in stream.acked if store.tx_by_txid("crash", t) is None]
        finally:
            store.close()
        assert not missing, f"{len(missing)} acknowledged transactions were lost: {missing[:3]}"
        assert len(stream.acked) <= size
        assert stream.kills_while_writing >= KILLS_PER_STREAM // 2
        assert len(stream.acked) > stream.kills  # the kills did land while it was writing
    elapsed = time.monotonic() - started
    print(
        f"\ncrash test: {kills} kills "
        f"({sum(s.kills_while_writing for s in done)} while writing), "
        f"{sum(len(s.acked) for s in done)} acknowledged transactions, all present; "
        f"{sum(s.torn_copies for s in done)} torn copies verified; {elapsed:.1f} s"
    )
