"""Batched submission: several independently signed requests in one HTTP request."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from server_harness import serve

from consortia._json import JSONObject
from consortia.client import MemberClient
from consortia.client.member import Submitted
from consortia.errors import ConsortiaError
from consortia.server.tls import certificate_fingerprint, ensure_self_signed
from consortia.wire import MAX_BATCH_REQUESTS, batch_body

BATCH = {"content-type": "application/json"}


def test_each_request_of_a_batch_is_answered_as_alone(tmp_path: Path) -> None:
    with serve(tmp_path) as s:
        s.vote_in_order_action()
        first = s.signed("telco", "recordOrder", {"order": "O-1", "status": "new"})
        bodies = [
            first,
            s.signed("vendor", "recordOrder", {"order": "O-2", "status": "new"}),
            s.signed("vendor", "noSuchAction", {}),
            first,  # the same JWS twice: its second copy answers as a retry does
            s.signed("installer", "addMember", {"id": "x"}),
        ]
        answer = s.http.post(
            "/v1/consortia/acme/actions/batch", headers=BATCH, content=batch_body(bodies)
        )
        assert answer.status_code == 200, answer.text
        got = answer.json()["answers"]
        assert [a["http"] for a in got[:4]] == [200, 200, 404, 200]
        assert got[0]["status"] == "committed" and got[1]["status"] == "committed"
        assert got[3] == got[0]  # same txid, same seqno: executed once
        assert got[1]["seqno"] == got[0]["seqno"] + 1
        assert got[2]["error"]["code"] == "unknown_action" and len(got[2]["txid"]) == 64
        assert got[4]["http"] >= 400 and "error" in got[4]
        # Each single request would have had the same answer.
        again = s.act("vendor", "noSuchAction", {})
        assert again.status_code == 404
        # Both committed requests are readable; the refused ones changed nothing.
        order = s.read("vendor", "object", key="order/O-2").json()
        assert order["value"]["by"] == "vendor"
        metrics = s.metrics().text
        assert 'consortia_actions_total{action="-",outcome="committed"}' in metrics


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "nothing else"),
        (b'{"requests": []}', "1 to"),
        (b'{"requests": ["a"], "more": 1}', "nothing else"),
        (b'{"requests": [1]}', "requests[0]"),
        (b'{"requests": "abc"}', "list"),
        (b"{not json", "not valid JSON"),
        (json.dumps({"requests": ["a"] * (MAX_BATCH_REQUESTS + 1)}).encode(), "1 to"),
    ],
)
def test_a_malformed_batch_is_refused_whole(tmp_path: Path, body: bytes, message: str) -> None:
    with serve(tmp_path) as s:
        before = s.read("telco", "constitution").json()
        answer = s.http.post("/v1/consortia/acme/actions/batch", headers=BATCH, content=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "bad_request"
        assert message in answer.json()["error"]["message"]
        assert s.read("telco", "constitution").json() == before


def test_a_batch_needs_its_media_type_and_an_existing_consortium(tmp_path: Path) -> None:
    with serve(tmp_path) as s:
        body = batch_body(
            [s.signed("telco", "sendNotifications", {"members": ["telco"], "body": {}})]
        )
        wrong = s.http.post(
            "/v1/consortia/acme/actions/batch",
            headers={"content-type": "application/jose"},
            content=body,
        )
        assert wrong.status_code == 400 and "application/json" in wrong.json()["error"]["message"]
        missing = s.http.post("/v1/consortia/nobody/actions/batch", headers=BATCH, content=body)
        assert missing.status_code == 404


def test_the_sdk_submits_many_and_gets_one_answer_each(tmp_path: Path) -> None:
    cert, key, _ = ensure_self_signed(tmp_path, "127.0.0.1")
    pin = certificate_fingerprint(cert.read_bytes())
    with serve(tmp_path, tls=(cert, key)) as s:
        s.vote_in_order_action()

        async def story() -> list[Submitted | ConsortiaError]:
            async with MemberClient(s.url, s.keys["vendor"], "acme", fingerprint=pin) as vendor:
                requests: list[tuple[str, JSONObject]] = [
                    ("recordOrder", {"order": f"O-{i}", "status": "new"}) for i in range(3)
                ]
                return await vendor.submit_many([*requests, ("noSuchAction", {})])

        answers = asyncio.run(story())
        assert [type(a).__name__ for a in answers] == ["Submitted"] * 3 + ["UnknownAction"]
        submitted = [a for a in answers if isinstance(a, Submitted)]
        assert [a.status for a in submitted] == ["committed"] * 3
        assert len({a.txid for a in submitted}) == 3
        refused = answers[3]
        assert isinstance(refused, ConsortiaError) and refused.txid is not None
        for i in range(3):
            assert s.read("vendor", "object", key=f"order/O-{i}").status_code == 200
