"""docs/sdk.md's quick-start, run as written against a real Telco TEP over pinned TLS.

The vendor has only what the page says it has: a URL, a fingerprint, a consortium id and its
own key file; the Telco side (creation, a project, an order) is set up here first.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from consortia._json import JSON, JSONObject
from consortia.client import MemberClient, create_consortium
from consortia.identity.keyfile import save_member_keys
from consortia.identity.keys import MemberKeys, SigningKey
from testkit import tls_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
CID = "telco-b2b"


def _quickstart() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1, "docs/sdk.md should hold exactly one program"
    return str(blocks[0])


async def _telco_side(
    url: str, pin: str, operator: SigningKey, keys: dict[str, MemberKeys]
) -> None:
    members: list[JSONObject] = [
        {**keys["telco"].public_info(), "roles": ["seller"]},
        {**keys["vendorA"].public_info(), "roles": ["supplier"]},
    ]
    await create_consortium(
        url,
        operator,
        consortium=CID,
        name="B2B orders",
        members=members,
        template="telco",
        fingerprint=pin,
    )
    async with MemberClient(url, keys["telco"], CID, fingerprint=pin) as telco:
        party: JSON = [{"role": "supplier", "partyId": "vendorA"}]
        await telco.call("createProject", {"id": "P1", "name": "branches", "relatedParty": party})
        device: JSONObject = {"id": "A1", "part": "cpe-100", "supplier": "vendorA", "site": "HQ"}
        order: JSONObject = {
            "id": "PO1",
            "projectId": "P1",
            "sites": [{"id": "HQ"}],
            "services": [{"id": "S", "site": "HQ"}],
            "devices": [{**device, "services": ["S"]}],
        }
        await telco.call("placeOrder", order)


def test_the_quickstart_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = {m: MemberKeys.generate(m) for m in ("telco", "vendorA")}
    key_file = tmp_path / "vendorA.key.json"
    save_member_keys(keys["vendorA"], key_file)
    with tls_server(tmp_path) as server:
        asyncio.run(_telco_side(server.url, server.pin, server.operator, keys))
        monkeypatch.setenv("CONSORTIA_URL", server.url)
        monkeypatch.setenv("CONSORTIA_KEY", str(key_file))
        monkeypatch.setenv("CONSORTIA_CONSORTIUM", CID)
        monkeypatch.setenv("CONSORTIA_FINGERPRINT", server.pin)
        capsys.readouterr()
        exec(compile(_quickstart(), str(DOC), "exec"), {"__name__": "__main__"})  # noqa: S102
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "member of telco-b2b as vendorA roles ['supplier']"
    assert out[1] == "updateDeviceOrder needs ['productOrderId', 'device', 'state']"
    assert out[2] == "device order resourceOrder/PO1/A1 is acknowledged"
    assert out[3].startswith("result ")
    assert out[4].startswith("refused: ") and "unknown field 'stat'" in out[4]
    assert "params.state is required" in out[4]
    assert re.fullmatch(r"receipt for seqno \d+ verified", out[5])
    assert len(out) == 6
