"""``bench/targets.py``: the issue's targets computed from the two result files of one run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _row(scenario: str, rate: float, *, cores: float = 1.0, p99: float = 50.0) -> dict[str, object]:
    latency = "open-loop" if "@" in scenario else "service"
    return {
        "scenario": scenario,
        "committed_per_s": rate,
        "server_cores": cores,
        "p99_ms": p99,
        "latency": latency,
    }


def test_targets_are_ratios_of_the_same_runs_floor(tmp_path: Path) -> None:
    load = {
        "rows": [
            _row("ceiling", 8_000),
            _row("builtin", 5_000, cores=1.6),
            _row("telco", 1_000),
            _row("telco@half", 500, p99=12.0),
            _row("p99@1500", 1_499, p99=30.0),
        ]
    }
    floor = {"rows": [{"stack": "uvicorn", "app": "raw", "max_actions_per_s": 20_000}]}
    (tmp_path / "load.json").write_text(json.dumps(load))
    (tmp_path / "floor.json").write_text(json.dumps(floor))
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [
            sys.executable,
            str(ROOT / "bench" / "targets.py"),
            "--load",
            str(tmp_path / "load.json"),
            "--floor",
            str(tmp_path / "floor.json"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = {line.split("  ")[0]: line for line in done.stdout.splitlines() if "  " in line}
    assert "5.0% (1,000/s)" in lines["telco / floor"] and "not met" in lines["telco / floor"]
    # The floor is above 19,000/s, so the absolute rate is asked for too.
    assert "1,000/s" in lines["telco absolute"] and "not met" in lines["telco absolute"]
    assert "25.0%" in lines["builtin / floor"] and lines["builtin / floor"].endswith("met")
    assert "40.0%" in lines["ceiling / floor"] and "not met" not in lines["ceiling / floor"]
    assert "1.60" in lines["server cores at saturation (max)"]
    assert "12.0 ms at 500/s offered" in lines["telco p99 at half capacity"]
    assert "holds 1,499/s" in lines["builtin p99 at 1,500/s offered"]
