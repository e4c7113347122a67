"""GET /v1/consortia/{cid}/insights over TLS: authenticated, per the constitution, live.

One served Telco platform (analytics on) and one consortium whose story has run up to an
order, a refusal and each member's reads. The member SDK and ``consortia insights --url``
then ask for the insights as different members, while the sink keeps writing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from consortia import MemberKeys, Platform, SigningKey
from consortia.analytics.insights import insights_from_json, sink_insights
from consortia.analytics.sink import BufferedSink
from consortia.cli.main import main
from consortia.cli.telcodemo import ROLES, TelcoStory
from consortia.client import MemberClient, create_consortium
from consortia.engine.datadir import ANALYTICS_FILE as STORE_NAME
from consortia.errors import ConsortiaError
from consortia.identity.jwt import issue_token
from consortia.identity.keyfile import save_member_keys
from consortia.server.run import ServerConfig, ServerThread
from consortia.wire import sign_creation
from testkit import tls_server

# Not "telco-…": the member id "telco" must not appear in a document by accident.
CID = "b2b-1"


@dataclass
class World:
    """The served platform of :func:`testkit.tls_server` as its members reach it: over TLS
    with bearer tokens on wall-clock time, so not the in-process world of tests/world.py."""

    url: str
    pin: str
    platform: Platform
    keys: dict[str, MemberKeys]
    http: httpx.Client

    def sink(self) -> BufferedSink:
        sink = self.platform.analytics
        assert isinstance(sink, BufferedSink)
        return sink

    def auth(self, member: str, keys: MemberKeys | None = None, aud: str = CID) -> dict[str, str]:
        token = issue_token(keys or self.keys[member], audience=aud, now=int(time.time()))
        return {"authorization": f"Bearer {token}"}

    def insights(self, member: str, **params: str) -> httpx.Response:
        return self.http.get(
            f"/v1/consortia/{CID}/insights", params=params, headers=self.auth(member)
        )

    def client(self, member: str) -> MemberClient:
        return MemberClient(self.url, self.keys[member], CID, fingerprint=self.pin)


async def _story(world: World) -> None:
    clients = {m: world.client(m) for m in ROLES}
    try:
        for client in clients.values():
            await client.connect()
        story = TelcoStory(clients, out=lambda _: None)
        await story.place_order()
        await story.refused("vendorB", "placeOrder", {"id": "PO9"})
        await story.inbox()
    finally:
        for client in clients.values():
            await client.aclose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with tls_server(tmp_path_factory.mktemp("insights-http")) as server:
        keys = {m: MemberKeys.generate(m) for m in ROLES}
        asyncio.run(
            create_consortium(
                server.url,
                server.operator,
                consortium=CID,
                name="B2B orders",
                members=[{**keys[m].public_info(), "info": {"role": r}} for m, r in ROLES.items()],
                template="telco",
                fingerprint=server.pin,
            )
        )
        http = httpx.Client(base_url=server.url, timeout=20, verify=False)  # noqa: S501
        served = World(server.url, server.pin, server.platform, keys, http)
        try:
            asyncio.run(_story(served))
            yield served
        finally:
            http.close()


def _without_alerts(doc: dict[str, Any]) -> str:
    """The document as text, alerts left out: alert_to (everyone, here) may name a suspect."""
    return json.dumps({k: v for k, v in doc.items() if k != "alerts"})


def test_a_supplier_sees_its_own_rows_and_totals_and_no_other_member(world: World) -> None:
    answer = world.insights("vendorA")
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["viewer"] == {"member": "vendorA", "full": False, "alerts": True}
    assert [m["member"] for m in doc["members"]] == ["vendorA"]
    assert doc["others"]["member"] == "(other members)" and doc["others"]["outcomes"]["refused"]
    actions = {a["action"]: a for a in doc["actions"]}
    assert actions["placeOrder"]["outcomes"]["committed"] == 1
    assert sum(actions["placeOrder"]["codes"].values()) == 1  # vendorB's refusal, unnamed
    assert [s["supplier"] for s in doc["stock"]] == ["vendorA"]
    assert doc["stock_total"]["reserved"] == 3  # A1 and D1 at vendorA, D2 at vendorB
    assert [o["placed_by"] for o in doc["orders_all"]] == [None]
    text = _without_alerts(doc)
    for other in set(ROLES) - {"vendorA"}:
        assert other not in text, other
    # The wire document is exactly what the platform computes in-process for vendorA.
    constitution = world.platform.runtime(CID).constitution
    assert doc == json.loads(json.dumps(sink_insights(world.sink(), constitution, CID, "vendorA")))


def test_a_full_viewer_sees_every_member(world: World) -> None:
    doc = world.insights("telco").json()
    assert doc["viewer"]["full"] is True  # the seller role is in insights_full
    assert {m["member"] for m in doc["members"]} == set(ROLES)
    assert doc["others"] is None
    refused = {m["member"]: m["outcomes"].get("refused", 0) for m in doc["members"]}
    assert refused["vendorB"] == 1 and refused["vendorA"] == 0
    assert [o["placed_by"] for o in doc["orders_all"]] == ["telco"]
    assert {s["supplier"] for s in doc["stock"]} == {"vendorA", "vendorB"}


def test_tokens_are_checked_like_every_read(world: World) -> None:
    stranger = MemberKeys.generate("vendorA")  # the right name, not the member's key
    nobody = MemberKeys.generate("nobody")
    for headers, status, code in (
        ({}, 401, "bad_signature"),
        ({"authorization": "Basic abc"}, 401, "bad_signature"),
        (world.auth("vendorA", keys=stranger), 401, "unknown_member"),
        (world.auth("x", keys=nobody), None, None),
        (world.auth("vendorA", aud="other-consortium"), None, None),
    ):
        answer = world.http.get(f"/v1/consortia/{CID}/insights", headers=headers)
        # Refused exactly as the constitution read refuses the same token.
        same = world.http.get(f"/v1/consortia/{CID}/constitution", headers=headers)
        assert answer.status_code == same.status_code == (status or same.status_code)
        assert answer.status_code in (400, 401, 403), headers
        wire = answer.json()["error"]["code"]
        assert wire == same.json()["error"]["code"] == (code or wire)
        assert "members" not in answer.text


def test_query_parameters_are_validated(world: World) -> None:
    for params, needle in (
        ({"bucket": "0"}, "'bucket' must be a whole number"),
        ({"bucket": "1.5"}, "'bucket' must be a whole number"),
        ({"bucket": str(10**9)}, "'bucket' must be a whole number"),
        ({"since": "yesterday"}, "'since' must be unix seconds"),
        ({"since": "-5"}, "'since' must be unix seconds"),
        ({"limit": "5"}, "unknown query parameter 'limit'"),
    ):
        answer = world.insights("vendorA", **params)
        assert answer.status_code == 400, params
        assert answer.json()["error"]["code"] == "bad_request"
        assert needle in answer.json()["error"]["message"]
    hourly = world.insights("vendorA", bucket="3600").json()
    assert hourly["bucket_s"] == 3600 and len(hourly["timeline"]) in (1, 2)
    later = world.insights("vendorA", since=str(int(time.time()) + 3600)).json()
    assert later["first"] is None and later["actions"] == [] and later["timeline"] == []


def test_the_sdk_and_the_remote_cli_show_tables_and_charts(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def ask() -> Any:
        async with world.client("vendorB") as client:
            return await client.insights(bucket=900)

    doc = asyncio.run(ask())
    assert isinstance(doc, dict) and doc["viewer"]["member"] == "vendorB"
    assert insights_from_json(doc).bucket_s == 900
    key = tmp_path / "vendorA.key.json"
    save_member_keys(world.keys["vendorA"], key)
    remote = ["--url", world.url, "--key", str(key), "--consortium", CID]
    remote += ["--service-fingerprint", world.pin]
    charts = tmp_path / "charts"
    assert main(["insights", *remote, "--plot", str(charts)]) == 0
    out = capsys.readouterr().out
    assert "insights of consortium 'b2b-1' as member 'vendorA' may see them" in out
    assert "REQUESTS PER ACTION" in out and "(other members)" in out
    assert "STOCK PER SUPPLIER" in out and "vendorB" not in out
    pngs = sorted(charts.glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert {f"wrote {p}" for p in pngs} <= set(out.splitlines())
    assert main(["insights", *remote, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["viewer"]["member"] == "vendorA" and printed["members"][0]["member"] == "vendorA"
    assert main(["insights", *remote, "--member", "telco"]) == 1
    assert "drop --member" in capsys.readouterr().err
    assert main(["insights", "--consortium", CID]) == 1
    assert "give --url, --key and --consortium" in capsys.readouterr().err
    assert main(["insights", *remote, "--data", str(tmp_path), "--member", "telco"]) == 1
    assert "exclude each other" in capsys.readouterr().err


def test_reading_while_the_sink_writes_neither_fails_nor_drops(world: World) -> None:
    before = world.sink().stats()
    stop = threading.Event()
    reads = 0

    def traffic() -> None:
        # Each read is an event: the sink keeps writing batches while insights are read.
        nonlocal reads
        with httpx.Client(base_url=world.url, timeout=20, verify=False) as http:  # noqa: S501
            while not stop.is_set():
                http.get(
                    f"/v1/consortia/{CID}/object",
                    params={"key": "productOrder/PO1"},
                    headers=world.auth("telco"),
                )
                reads += 1

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        answers = [world.insights("telco") for _ in range(8)]
    finally:
        stop.set()
        worker.join()
    assert [a.status_code for a in answers] == [200] * 8
    counted = [a.json()["actions"] for a in answers]
    object_reads = [sum(x["total"] for x in c if x["action"] == "read:object") for c in counted]
    assert object_reads == sorted(object_reads) and object_reads[-1] > object_reads[0]
    assert world.sink().flush(10)
    after = world.sink().stats()
    assert reads > 0 and after.written - before.written >= reads
    assert after.dropped == before.dropped and after.backend_errors == before.backend_errors


def _hold(world: World) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the store, as another reader would hold it."""
    path = getattr(world.sink().backend, "path", None)
    assert isinstance(path, Path) and path.name == STORE_NAME
    assert world.sink().flush(10)
    for _ in range(50):
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.Error:  # the sink is writing a batch right now
            time.sleep(0.05)
    raise AssertionError("could not open the analytics store read-only")


def test_a_busy_store_answers_unavailable_and_the_sdk_retries(world: World) -> None:
    held = _hold(world)
    try:
        answer = world.insights("vendorA")
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "unavailable"
        assert answer.headers["retry-after"] == "1"
    finally:
        held.close()

    async def ask(tries: int) -> Any:
        async with world.client("vendorA") as client:
            return await client.insights(tries=tries)

    held = _hold(world)
    with pytest.raises(ConsortiaError) as refused:
        asyncio.run(ask(1))
    assert refused.value.code == "unavailable"
    # Released while the SDK waits: its retry gets the document.
    threading.Timer(0.3, held.close).start()
    doc = asyncio.run(ask(4))
    assert doc["viewer"]["member"] == "vendorA"


def test_with_analytics_off_the_endpoint_says_so(tmp_path: Path) -> None:
    operator = SigningKey.generate()
    platform = Platform.open(tmp_path, operator_keys=[operator.verify_key], analytics=False)
    thread = ServerThread(platform, ServerConfig(port=0, access_log=False)).start()
    keys = MemberKeys.generate("acme")
    try:
        with httpx.Client(base_url=thread.url, timeout=20) as http:
            body = sign_creation(
                operator,
                consortium="solo",
                name="Solo",
                now=int(time.time()),
                members=[keys.public_info()],
            )
            jose = {"content-type": "application/jose"}
            assert http.post("/v1/consortia", headers=jose, content=body).status_code == 201
            token = issue_token(keys, audience="solo", now=int(time.time()))
            answer = http.get(
                "/v1/consortia/solo/insights", headers={"authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "not_found"
            assert "analytics is off" in answer.json()["error"]["message"]
            # Authentication still comes first: no token, no hint about analytics.
            assert http.get("/v1/consortia/solo/insights").status_code == 401
    finally:
        thread.stop()
        platform.close()
