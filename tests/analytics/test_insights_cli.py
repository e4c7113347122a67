"""``consortia insights`` over a real platform folder: tables, the member's view, charts."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from insights_kit import telco_day, write_store
from matplotlib.image import imread

from consortia import MemberKeys, Pending, Platform, SigningKey, sign_action
from consortia._json import JSONObject
from consortia.cli.main import main
from consortia.errors import ConsortiaError
from consortia.governance.templates import DEFAULT_TEMPLATE
from consortia.telco import TELCO_TEMPLATE
from consortia.wire import sign_creation

ROLES = {"telco": "seller", "vendorA": "supplier", "vendorB": "supplier", "installer": "installer"}


def _platform(
    data: Path, members: Sequence[str], template: str
) -> tuple[Platform, dict[str, MemberKeys]]:
    operator = SigningKey.generate()
    templates = {t.name: t for t in (DEFAULT_TEMPLATE, TELCO_TEMPLATE)}
    platform = Platform.open(data, operator_keys=[operator.verify_key], templates=templates)
    keys = {m: MemberKeys.generate(m) for m in members}
    infos: list[JSONObject] = []
    for m in members:
        info = keys[m].public_info()
        if template == "telco":
            info["info"] = {"role": ROLES[m]}
        infos.append(info)
    platform.create_consortium(
        sign_creation(
            operator,
            consortium="acme",
            name="Acme",
            members=infos,
            now=int(time.time()),
            template=template,
        )
    )
    return platform, keys


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["insights", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_insights_of_real_requests_as_one_member_sees_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform, keys = _platform(tmp_path, ("telco", "vendor", "installer"), "default")

    def act(member: str, action: str, params: JSONObject) -> object:
        body = sign_action(
            keys[member], consortium="acme", action=action, params=params, now=int(time.time())
        )
        return platform.execute("acme", body)

    pending = act("telco", "addMember", MemberKeys.generate("customer").public_info())
    assert isinstance(pending, Pending)
    act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    with pytest.raises(ConsortiaError):
        act("installer", "noSuchAction", {})
    platform.close()  # flushes the analytics sink

    code, out, _ = _cli(
        capsys, "--data", str(tmp_path), "--consortium", "acme", "--member", "vendor"
    )
    assert code == 0, out
    assert "your own rows and consortium-wide totals" in out
    assert "unknown_action 1" in out  # per action, consortium-wide
    votes = out[out.index("VOTES") : out.index("ORDER CYCLE")]
    assert "addMember" in votes and "REQUESTER" not in votes  # telco's proposal: a count only
    per_member = out[out.index("REQUESTS PER MEMBER") : out.index("REQUESTS OVER TIME")]
    assert "vendor " in per_member and "(other members)" in per_member
    assert "installer" not in out and "telco" not in out  # others only as totals

    code, out, _ = _cli(
        capsys, "--data", str(tmp_path), "--consortium", "acme", "--member", "telco"
    )
    assert code == 0
    votes = out[out.index("VOTES") : out.index("ORDER CYCLE")]
    assert "REQUESTER" in votes and "telco" in votes and "approved" in votes  # its own, named


def test_plots_write_charts_a_person_can_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform, _ = _platform(tmp_path, tuple(ROLES), "telco")
    platform.close()
    write_store(tmp_path / "analytics.duckdb", telco_day().events)
    charts = tmp_path / "charts"
    args = ["--data", str(tmp_path), "--consortium", "acme", "--member", "telco"]
    code, out, _ = _cli(capsys, *args, "--plot", str(charts))
    assert code == 0
    assert "every member's rows (insights_full)" in out  # the template: sellers see all
    assert "LEAK: vendorB: 2 unit(s) reserved and unaccounted" in out
    written = [
        line.removeprefix("wrote ") for line in out.splitlines() if line.startswith("wrote ")
    ]
    names = ["requests", "refusals", "members", "votes", "orders", "stock"]
    assert written == [str(charts / f"{n}.png") for n in names]
    for path in written:
        image = imread(path)
        assert image.shape[:2] == (616, 1210), path  # 11 x 5.6 inches at 110 dpi
        rgba = (image * 255).astype(np.uint8).view(np.uint32)  # one number per pixel
        assert len(np.unique(rgba)) > 50, path  # drawn on, not a blank canvas

    code, out, _ = _cli(capsys, *args, "--json")
    doc = json.loads(out)
    assert doc["viewer"] == {"member": "telco", "full": True, "alerts": True}
    leaks = {s["supplier"]: s["leak"] for s in doc["stock"]}
    assert leaks == {"vendorA": 0, "vendorB": 2} and doc["stock_total"]["leak"] == 2
    assert sorted(v["seconds"] or 0 for v in doc["votes"]) == [0, 2400, 7200]

    code, out, _ = _cli(
        capsys, "--data", str(tmp_path), "--consortium", "acme", "--member", "vendorA"
    )
    assert code == 0
    stock = out[out.index("STOCK PER SUPPLIER") : out.index("MISUSE ALERTS")]
    assert "vendorA" in stock and "vendorB" not in stock and "(all suppliers)" in stock


def test_bad_arguments_get_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "--data", str(tmp_path), "--consortium", "acme", "--member", "x")
    assert code == 1 and "not_found: no platform ledger" in err
    platform, _ = _platform(tmp_path, ("telco", "vendor"), "default")
    platform.close()
    args = ["--data", str(tmp_path), "--consortium", "acme"]
    code, _, err = _cli(capsys, *args, "--member", "stranger")
    assert code == 1 and "'stranger' is not a member" in err
    code, _, err = _cli(
        capsys, "--data", str(tmp_path), "--consortium", "zeta", "--member", "telco"
    )
    assert code == 1 and "not_found" in err
    code, _, err = _cli(capsys, *args, "--member", "telco", "--bucket", "0")
    assert code == 1 and "--bucket must be a positive number" in err
