"""docs/telco.md's walk-through, run line by line through the CLI against a real TEP.

Every ``consortia`` line of the page's shell block runs as written (in a fresh folder with
the page's JSON files); ``$PROPOSAL`` and ``$TXID`` stand for what earlier lines printed.
A line fails the test unless it exits 0, and the outputs a person would look for are checked.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from consortia.cli import main
from consortia.identity.keyfile import save_signing_key
from pg_server import postgres_server_fixture, postgres_url_fixture  # noqa: F401 - fixtures
from testkit import tls_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "telco.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Walk-through from the command line")
    return text[start : text.index("\n## ", start + 1)]


def _commands(section: str) -> list[str]:
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.startswith("consortia ")]


def _files(section: str) -> dict[str, str]:
    return dict(re.findall(r"```json (\S+)\n(.*?)```", section, re.DOTALL))


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_the_cli_walkthrough_runs_as_written(
    store: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole story over HTTPS, on the embedded store and on PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if store == "postgresql" else None
    section = _section()
    commands = _commands(section)
    assert len(commands) >= 20
    work = tmp_path / "work"
    work.mkdir()
    for name, body in _files(section).items():
        (work / name).write_text(body, encoding="utf-8")
    outputs: dict[str, str] = {}
    (tmp_path / "srv").mkdir()
    with tls_server(tmp_path / "srv", store=url) as server:
        (work / "tep").mkdir()
        save_signing_key(server.operator, work / "tep" / "operator.key.jwk")
        monkeypatch.chdir(work)
        monkeypatch.setenv("CONSORTIA_URL", server.url)
        monkeypatch.setenv("CONSORTIA_FINGERPRINT", server.pin)
        monkeypatch.setenv("CONSORTIA_CONSORTIUM", "b2b")
        values: dict[str, str] = {}
        for written in commands:
            line = written
            for name, value in values.items():
                line = line.replace(f"${name}", value)
            capsys.readouterr()
            code = main(shlex.split(line)[1:])
            captured = capsys.readouterr()
            out = captured.out + captured.err
            assert code == 0, f"{line}\n{out}"
            outputs[line] = out
            if found := re.search(r"proposal ([0-9a-f]{64}) waits for votes", out):
                values["PROPOSAL"] = found.group(1)[:10]
            if line.startswith("consortia history "):
                values["TXID"] = re.findall(r"^\d+\s+([0-9a-f]{64})", out, re.MULTILINE)[-1]
    text = "\n".join(f"$ {line}\n{out}" for line, out in outputs.items())
    assert "b2b" in text and "supplier" in text
    assert "every holder of role seller may run it" in text
    assert "resourceOrder/PO1/A1" in text
    assert "the proposal is approved: the bindSerial request ran" in text
    assert "receipt OK" in text
    csv_out = next(out for line, out in outputs.items() if "--format csv" in line)
    assert "productOrderId,device,state,supplier" in csv_out and "PO1,A1,recovered" in csv_out
    listed = next(out for line, out in outputs.items() if "report orders" in line)
    assert "PO1" in listed and "1 orders: 1 cancelled" in listed
    # The customer's report shows the order's state without the supplier's details.
    customer = next(out for line, out in outputs.items() if "acme.key.json" in line)
    assert "vendorA" not in customer
