"""The README's walk-through is code a newcomer copies: it must run as printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_walkthrough_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python block"
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "readme"})  # noqa: S102
    out = capsys.readouterr().out
    # Every member printed a line; the customer sees no version of the order.
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert set(lines) == {"telco", "vendor", "installer", "customer"}
    assert "(3, True)" not in lines["customer"] and "True" not in lines["customer"]
