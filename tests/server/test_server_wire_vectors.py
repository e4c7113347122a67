"""The server against tests/vectors/requests.json: every body POSTed as it stands gets the
HTTP status and the body the vectors record (PROTOCOL.md sections 2 and 3)."""

from __future__ import annotations

from pathlib import Path

import httpx

from wire_vectors import JOSE, REQUESTS, served_vectors


def test_each_vector_gets_its_status_and_answer_over_http(tmp_path: Path) -> None:
    with (
        served_vectors(tmp_path / "tep") as (v, url),
        httpx.Client(base_url=url, timeout=20) as http,
    ):
        path = f"/v1/consortia/{v.cid}/actions"
        for case in REQUESTS["valid"]:
            answer = http.post(path, headers=JOSE, content=case["body"])
            assert (answer.status_code, answer.json()) == (case["status"], case["answer"]), case
        got, want = [], []
        for case in REQUESTS["invalid"]:
            answer = http.post(path, headers=JOSE, content=case["body"])
            doc = answer.json()
            assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
            got.append((case["name"], answer.status_code, doc["error"]["code"], doc.get("txid")))
            want.append((case["name"], case["status"], case["code"], case["txid"]))
        assert got == want
