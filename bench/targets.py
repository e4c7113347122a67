"""The performance targets of the project, as ratios measured in one run (``make bench``).

Reads ``bench/results/http_load.json`` and ``bench/results/http_floor.json`` (written by
``bench/http_load.py`` and ``bench/http_floor.py`` just before) and prints each target beside
what this run measured. Ratios, not absolute rates: machines of this class differ by 2-3x
from one session to the next, while the floor (a do-nothing app over TLS plus one Ed25519
verify, uvicorn as we serve it) moves with them.

Figures, not pass/fail: the exit status is 0 whether or not a target is met.

Usage: python bench/targets.py [--load PATH] [--floor PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: Where an absolute rate is asked for too: wherever the floor reaches this many a second.
ABSOLUTE_FLOOR = 19_000
ABSOLUTE_TELCO = 1_500


def _rows(load: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["scenario"]: row for row in load["rows"]}


def _floor(floor: dict[str, Any]) -> float:
    for row in floor["rows"]:
        if row["stack"] == "uvicorn" and row["app"] == "raw":
            return float(row["max_actions_per_s"])
    raise SystemExit("http_floor.json has no uvicorn/raw row: run bench/http_floor.py")


def targets(load: dict[str, Any], floor: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(target, measured, goal, verdict) rows."""
    rows = _rows(load)
    best = _floor(floor)
    out: list[tuple[str, str, str, str]] = [
        ("floor max/s (uvicorn raw + verify)", f"{best:,.0f}", "", "")
    ]

    def share(name: str, goal: float) -> None:
        row = rows.get(name)
        if row is None:
            out.append((f"{name} / floor", "not run", f">= {goal:.0%}", "-"))
            return
        ratio = row["committed_per_s"] / best
        verdict = "met" if ratio >= goal else "not met"
        measured = f"{ratio:.1%} ({row['committed_per_s']:,.0f}/s)"
        out.append((f"{name} / floor", measured, f">= {goal:.0%}", verdict))

    share("telco", 0.08)
    if best >= ABSOLUTE_FLOOR and "telco" in rows:
        rate = rows["telco"]["committed_per_s"]
        verdict = "met" if rate >= ABSOLUTE_TELCO else "not met"
        out.append(("telco absolute", f"{rate:,.0f}/s", f">= {ABSOLUTE_TELCO:,}/s", verdict))
    share("builtin", 0.25)
    share("ceiling", 0.40)
    saturated = [
        r for r in load["rows"] if r["latency"] == "service" and r["scenario"] != "ceiling"
    ]
    if saturated:
        cores = max(r["server_cores"] for r in saturated)
        verdict = "met" if cores > 1.5 else "not met"
        out.append(("server cores at saturation (max)", f"{cores:.2f}", "> 1.5", verdict))
    half = rows.get("telco@half")
    if half is not None:
        verdict = "met" if half["p99_ms"] <= 20 else "not met"
        offered = rows["telco"]["committed_per_s"] / 2 if "telco" in rows else float("nan")
        measured = f"{half['p99_ms']:.1f} ms at {offered:,.0f}/s offered"
        out.append(("telco p99 at half capacity", measured, "<= 20 ms", verdict))
    at1500 = rows.get("p99@1500")
    if at1500 is not None:
        measured = f"{at1500['p99_ms']:.1f} ms, holds {at1500['committed_per_s']:,.0f}/s"
        out.append(("builtin p99 at 1,500/s offered", measured, "reported", ""))
    for single, batched in (("builtin", "builtin-batch"), ("telco", "telco-batch")):
        if single in rows and batched in rows:
            gain = rows[batched]["committed_per_s"] / rows[single]["committed_per_s"]
            out.append((f"{batched} / {single}", f"{gain:.2f}x", "measured beside", ""))
    if "telco" in rows and rows["telco"].get("round_trips_per_run") is not None:
        trips = rows["telco"]["round_trips_per_run"]
        out.append(("telco sandbox round trips per run", f"{trips:.1f}", "1 per action", ""))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=Path, default=HERE / "results" / "http_load.json")
    parser.add_argument("--floor", type=Path, default=HERE / "results" / "http_floor.json")
    args = parser.parse_args(argv)
    load = json.loads(args.load.read_text())
    floor = json.loads(args.floor.read_text())
    rows = targets(load, floor)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print("\nperformance targets, as ratios of this run's floor")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
