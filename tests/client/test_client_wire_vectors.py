"""The member SDK against tests/vectors/: it signs the very bytes the vectors hold, turns
each refusal on the wire into the error of its code with its txid, and opens the served
notifications to the bodies recorded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from consortia import sign_action
from consortia._json import JSONObject
from consortia.client.service import connect, send
from consortia.errors import ConsortiaError
from consortia.identity.jwt import issue_token
from consortia.identity.keys import EncryptionKey, PublicEncryptionKey
from consortia.wire import unwrap_body
from testkit import js
from wire_vectors import (
    JOSE,
    NOTIFICATIONS,
    NOTIFIED,
    REQUESTS,
    member_keys,
    opened,
    served_vectors,
)


@pytest.mark.parametrize("case", REQUESTS["valid"], ids=lambda c: c["name"])
def test_the_sdk_signs_the_bytes_of_each_valid_vector(case: dict[str, object]) -> None:
    body = str(case["body"]).strip()
    # The payload as signed (visible_to may repeat a member: the parse would fold it).
    payload = json.loads(unwrap_body(body.encode(), EncryptionKey.generate()).payload)
    signed = sign_action(
        member_keys(payload["member"]),
        consortium=payload["consortium"],
        action=payload["action"],
        params=payload["params"],
        now=payload["iat"],
        visible_to=payload["visible_to"],
        txref=payload.get("txref"),
        nonce=payload["nonce"],
    )
    assert signed == body


def test_the_sdk_reads_every_answer_and_refusal_of_the_vectors(tmp_path: Path) -> None:
    async def run(
        url: str, cid: str
    ) -> tuple[list[object], list[tuple[str, str, str | None]], dict[str, list[JSONObject]]]:
        http = await connect(url, None, False, 20.0)
        path = f"/v1/consortia/{cid}/actions"
        answers: list[object] = []
        refused: list[tuple[str, str, str | None]] = []
        async with http:
            for case in REQUESTS["valid"]:
                answers.append(await send(http, "POST", path, content=case["body"], headers=JOSE))
            for case in REQUESTS["invalid"]:
                try:
                    await send(http, "POST", path, content=case["body"], headers=JOSE)
                except ConsortiaError as exc:
                    refused.append((case["name"], exc.code, exc.txid))
            service = await send(http, "GET", "/v1/service")
            assert isinstance(service, dict)
            service_key = PublicEncryptionKey.from_jwk(service["encryption_key"])
            queues: dict[str, list[JSONObject]] = {}
            for member in NOTIFIED:
                token = issue_token(member_keys(member), audience=cid, now=REQUESTS["clock"])
                page = await send(
                    http,
                    "GET",
                    f"/v1/consortia/{cid}/notifications",
                    headers={"authorization": f"Bearer {token}"},
                )
                assert isinstance(page, list)
                queues[member] = [opened(js(e), member, service_key) for e in page]
        return answers, refused, queues

    with served_vectors(tmp_path / "tep") as (v, url):
        answers, refused, queues = asyncio.run(run(url, v.cid))
    assert answers == [c["answer"] for c in REQUESTS["valid"]]
    assert refused == [(c["name"], c["code"], c["txid"]) for c in REQUESTS["invalid"]]
    # Served over HTTP and opened with the SDK's open_notification, as recorded.
    assert queues == NOTIFICATIONS["queues"]
