"""``consortia report order|stock|asset`` over HTTP, as each member sees it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from telco_world import place_order, telco_world

from consortia.cli import main
from consortia.identity.keyfile import save_member_keys
from consortia.server.run import ServerConfig, ServerThread


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    if "--json" in argv:
        # A script reads stdout alone; stderr says what was attested (here: nothing).
        assert "NOT ATTESTED" in out.err or code != 0, out.err
        return code, out.out
    return code, out.out + out.err


def test_reports_over_http(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with telco_world(tmp_path / "tep") as world:
        place_order(world)
        move = {"supplier": "vendorA", "part": "cpe-100", "productOrderId": "PO1"}
        world.ok("telco", "reserveStock", {**move, "quantity": 2})
        world.ok("telco", "createAsset", {"id": "AS-1", "productOrderId": "PO1", "device": "A1"})
        files = {}
        for member, keys in world.keys.items():
            files[member] = tmp_path / f"{member}.key.json"
            save_member_keys(keys, files[member])
        # From here on, real time: the SDK signs its read tokens with the wall clock.
        world.platform.clock = lambda: int(time.time())
        config = ServerConfig(port=0, tls=None, access_log=False, log_level="warning")
        thread = ServerThread(world.platform, config).start()
        try:
            conn = ["--url", thread.url, "--consortium", "telco-b2b"]

            def run(member: str, *argv: str) -> tuple[int, str]:
                return _cli(capsys, "report", *argv, *conn, "--key", str(files[member]))

            code, out = run("telco", "order", "PO1")
            assert code == 0, out
            assert "state acknowledged, revision 1" in out
            assert "A1" in out and "B1" in out and "vendorB" in out

            # vendorA learns its device from its notifications; vendorB's is hidden from it.
            code, out = run("vendorA", "order", "PO1", "--device", "B1", "--json")
            report = json.loads(out)
            assert code == 0 and report["header"] is None
            assert [d["id"] for d in report["devices"]] == ["A1"]
            assert report["hidden"]["deviceIds"] == ["B1"]

            code, out = run("telco", "stock", "PO1")
            assert code == 0 and "LEAK: vendorA cpe-100: 2 reserved and unaccounted" in out
            code, out = run("vendorB", "stock", "PO1", "--json")
            lines = json.loads(out)["lines"]
            assert [(s["supplier"], s["reserved"]) for s in lines] == [("vendorB", 1)]
            code, out = run("acme", "stock", "PO1")
            assert code == 0 and "no stock visible" in out

            code, out = run("acme", "asset", "AS-1")
            assert code == 0 and "asset AS-1: ordered, serial -" in out
            code, out = run("vendorB", "asset", "AS-1")
            assert code == 1 and "not_found" in out
        finally:
            thread.stop()


def test_the_network_demo_ends_with_the_telco_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from consortia.cli.netdemo import run_network_demo

    assert run_network_demo(data_dir=tmp_path / "tep") == 0
    out = capsys.readouterr().out
    assert "report stock PO1   # as telco" in out
    assert "LEAK: vendorA cpe-100: 2 reserved and unaccounted" in out
    customer = out.split("# as acme", 1)[1].split("$ consortia", 1)[0]
    assert "vendor" not in customer and "state inProgress" in customer
