"""Cluster vs embedded: the same signed HTTPS load with the ledger in SQLite and in PostgreSQL.

Starts a throwaway PostgreSQL (``tests/pg_server.py``: ``fsync`` and ``synchronous_commit``
on, as in production), then runs ``bench/http_load.py --only builtin telco`` twice: once
embedded (the ledger in ``ledger.sqlite``, the default) and once with the real server a
cluster node on a fresh database of that PostgreSQL (``--store URL --node n1``, lease 10 s, so
it never lapses mid-run). Then it runs the two cluster tests that time recovery, and picks
their figures from ``pytest -s``:

- ``test_sigkill_the_sequencer_50_times_under_load``: three ``consortia serve --node``
  processes, the sequencer SIGKILLed 50 times under load (``--kills``); the takeover, from
  the kill to the next acknowledged commit, median and worst (its ``cluster-kill:`` line);
- ``test_failover_to_the_synchronous_standby_loses_no_acknowledged_commit``: the PostgreSQL
  primary killed under load and its synchronous standby promoted; the time from the kill to
  the first commit after promotion (its ``pg-failover:`` line).

Prints one table (committed/s and p99 per scenario for each ledger, and their ratio) and
those two lines, and writes every figure to ``bench/results/cluster.json``. Both runs share
the machine with PostgreSQL and the load generator; each run's own ceiling (the empty
action, always embedded) is printed too, as a measure of how much the machine drifted
between the two. Exits 2 when the PostgreSQL server binaries are not installed, 1 when a
part of the run failed (its figures are then missing or marked failed).

Usage: python bench/cluster.py [--kills N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
sys.path.insert(0, str(ROOT / "tests"))

from pg_server import find_bindir, postgres_server  # noqa: E402 - needs tests/ on the path

SCENARIOS = ("builtin", "telco")
NODE = "n1"
KILL_TEST = (
    "tests/server/test_server_cluster_kill.py::test_sigkill_the_sequencer_50_times_under_load"
)
FAILOVER_TEST = (
    "tests/ledger/test_pg_failover.py::"
    "test_failover_to_the_synchronous_standby_loses_no_acknowledged_commit"
)
INSTALL = (
    "bench/cluster.py needs the PostgreSQL server binaries (initdb, pg_ctl, postgres), found "
    "neither in /usr/lib/postgresql/*/bin nor on PATH: install Debian's postgresql package "
    "(apt-get install postgresql)"
)


def say(text: str) -> None:
    print(f"cluster: {text}", file=sys.stderr, flush=True)


def http_load(out: Path, *, store: str | None = None) -> dict[str, Any]:
    """One ``http_load.py --only builtin telco`` run; its JSON (rows by scenario)."""
    cmd = [PY, str(HERE / "http_load.py"), "--only", *SCENARIOS, "--json", str(out)]
    if store is not None:
        cmd += ["--store", store, "--node", NODE]
    began = time.perf_counter()
    # The progress lines (stderr) show as it runs; its table (stdout) is summed up below.
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False, cwd=ROOT)  # noqa: S603
    if done.returncode != 0:
        print(done.stdout, file=sys.stderr)
        raise RuntimeError(f"http_load.py exited {done.returncode}: {' '.join(cmd)}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - began
    return result


def run_test(node_id: str, pattern: str, env: dict[str, str]) -> dict[str, Any]:
    """``pytest -s -q NODE_ID``; the line starting with ``pattern`` it printed, and its exit."""
    cmd = [PY, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", node_id]
    began = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603
            cmd, capture_output=True, text=True, check=False, cwd=ROOT, env=env, timeout=1800
        )
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        parts = [
            p.decode(errors="replace") if isinstance(p, bytes) else p or ""
            for p in (exc.stdout, exc.stderr)
        ]
        output, code = "".join(parts) + "\ntimed out after 1800 s", -1
    line = next((x.strip() for x in output.splitlines() if x.strip().startswith(pattern)), None)
    if code != 0 or line is None:
        say(f"{node_id} exited {code}; the end of its output:\n{output[-3000:]}")
    return {
        "test": node_id,
        "exit": code,
        "passed": code == 0,
        "line": line,
        "wall_s": time.perf_counter() - began,
    }


def kill_figures(found: dict[str, Any]) -> None:
    line = found["line"] or ""
    match = re.search(r"(\d+) SIGKILLs.*lease ([\d.]+) s.*median (\d+) ms, worst (\d+) ms", line)
    if match:
        found["kills"] = int(match[1])
        found["lease_s"] = float(match[2])
        found["takeover_median_ms"] = float(match[3])
        found["takeover_worst_ms"] = float(match[4])


def failover_figures(found: dict[str, Any]) -> None:
    line = found["line"] or ""
    match = re.search(
        r"pg-failover: ([\d.]+) s .*asked ([\d.]+) s after the kill, took ([\d.]+)", line
    )
    if match:
        found["failover_s"] = float(match[1])
        found["promote_delay_s"] = float(match[2])
        found["promotion_s"] = float(match[3])


def compare(embedded: dict[str, Any], cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """Per scenario (the ceiling first): each run's figures and cluster / embedded."""
    ours = {r["scenario"]: r for r in embedded["rows"]}
    theirs = {r["scenario"]: r for r in cluster["rows"]}
    out = []
    for name in ("ceiling", *SCENARIOS):
        a, b = ours.get(name), theirs.get(name)
        if a is None or b is None:
            continue
        keep = ("committed_per_s", "p50_ms", "p99_ms", "server_cores", "refused", "store")
        out.append(
            {
                "scenario": name,
                "embedded": {k: a.get(k) for k in keep},
                "cluster": {k: b.get(k) for k in keep},
                "ratio": b["committed_per_s"] / a["committed_per_s"]
                if a["committed_per_s"]
                else None,
            }
        )
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'scenario':<22}{'embedded ok/s':>14}{'p99 ms':>9}{'cluster ok/s':>14}{'p99 ms':>9}"
        f"{'cluster/embedded':>18}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        a, b = r["embedded"], r["cluster"]
        name = r["scenario"] + (" (no ledger)" if r["scenario"] == "ceiling" else "")
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        lines.append(
            f"{name:<22}{a['committed_per_s']:>14.0f}{a['p99_ms']:>9.1f}"
            f"{b['committed_per_s']:>14.0f}{b['p99_ms']:>9.1f}{ratio:>18}"
        )
    return "\n".join(lines)


def recovery_lines(kill: dict[str, Any], failover: dict[str, Any]) -> list[str]:
    out = []
    if "takeover_median_ms" in kill:
        out.append(
            f"takeover after SIGKILL of the sequencer ({kill['kills']} kills, lease "
            f"{kill['lease_s']} s): median {kill['takeover_median_ms']:.0f} ms, worst "
            f"{kill['takeover_worst_ms']:.0f} ms" + ("" if kill["passed"] else "  [test FAILED]")
        )
    else:
        out.append(f"takeover after SIGKILL of the sequencer: not measured (exit {kill['exit']})")
    if "failover_s" in failover:
        out.append(
            f"PostgreSQL failover (primary killed, synchronous standby promoted "
            f"{failover['promote_delay_s']} s later): {failover['failover_s']:.3f} s from the kill "
            f"to the first commit after promotion (promotion {failover['promotion_s']:.3f} s)"
            + ("" if failover["passed"] else "  [test FAILED]")
        )
    else:
        out.append(f"PostgreSQL failover: not measured (exit {failover['exit']})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=HERE / "results" / "cluster.json")
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs of the sequencer")
    args = parser.parse_args(argv)
    if find_bindir() is None:
        print(INSTALL, file=sys.stderr)
        return 2
    began = time.perf_counter()
    # PostgreSQL is stopped (and its directory removed) on leaving, failure or not.
    with (
        tempfile.TemporaryDirectory(prefix="consortia-cluster-bench-") as tmp,
        postgres_server() as pg,
    ):
        say("embedded run (ledger in SQLite)")
        embedded = http_load(Path(tmp) / "embedded.json")
        say(f"cluster run (ledger in PostgreSQL {pg.bindir.parent.name}, node {NODE})")
        cluster = http_load(Path(tmp) / "cluster.json", store=pg.new_database())
    env = {**os.environ, "CONSORTIA_CLUSTER_KILLS": str(args.kills)}
    say(f"{KILL_TEST} ({args.kills} kills)")
    kill = run_test(KILL_TEST, "cluster-kill:", env)
    kill_figures(kill)
    say(FAILOVER_TEST)
    failover = run_test(FAILOVER_TEST, "pg-failover:", env)
    failover_figures(failover)

    rows = compare(embedded, cluster)
    print(
        f"\ncluster vs embedded: signed actions over HTTPS, {embedded['notes']['conns']} "
        f"connections, {os.cpu_count()} cores shared by server, load generator and PostgreSQL; "
        f"embedded = ledger in SQLite, cluster = ledger in PostgreSQL as cluster node {NODE!r} "
        "(lease 10 s); p99: service time"
    )
    print(table(rows))
    for r in rows:
        for side in ("embedded", "cluster"):
            if r[side]["refused"]:
                print(f"  {r['scenario']} {side}: {r[side]['refused']} requests not committed")
    for line in recovery_lines(kill, failover):
        print(line)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "notes": {
                    "embedded": embedded["notes"],
                    "cluster": cluster["notes"],
                    "wall_s": time.perf_counter() - began,
                },
                "rows": rows,
                "cluster_kill": kill,
                "pg_failover": failover,
                "time": int(time.time()),
            },
            indent=1,
        )
    )
    print(f"results: {args.json}")
    complete = all(t["passed"] and t["line"] for t in (kill, failover))
    return 0 if complete and len(rows) == 1 + len(SCENARIOS) else 1


if __name__ == "__main__":
    sys.exit(main())
