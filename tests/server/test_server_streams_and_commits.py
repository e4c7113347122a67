"""SSE wake-up and resume, group commit under concurrency, metrics and the OpenAPI table."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from server_harness import JOSE, serve

from consortia.server._openapi import OPERATIONS


def _events(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for line in lines:
        if line.startswith("data: "):
            found.append(json.loads(line[6:]))
            if len(found) == count:
                break
    return found


def test_streams_wake_on_commit_and_resume_without_gaps(tmp_path: Path) -> None:
    with serve(tmp_path) as s:
        s.vote_in_order_action()
        path = "/v1/consortia/acme/notifications"
        before = s.read("installer", "notifications").json()
        headers = {**s.auth("installer"), "accept": "text/event-stream"}
        with s.http.stream("GET", path, headers=headers) as stream:
            lines = stream.iter_lines()
            backlog = _events(lines, len(before))
            assert [n["id"] for n in backlog] == [n["id"] for n in before]
            # A live commit wakes the stream: a notice to the installer arrives at once.
            worker = threading.Thread(
                target=lambda: s.act(
                    "vendor",
                    "recordOrder",
                    {"order": "O-1", "status": "shipped"},
                    visible_to=["installer"],
                )
            )
            worker.start()
            (live,) = _events(lines, 1)
            worker.join()
        assert live["id"] == before[-1]["id"] + 1 and live["kind"] == "notice"
        # Missed while away, then resumed by Last-Event-ID: exactly the missing ones.
        for n in range(3):
            s.act(
                "telco", "recordOrder", {"order": f"O-{n}", "status": "x"}, visible_to=["installer"]
            )
        headers["last-event-id"] = str(live["id"])
        with s.http.stream("GET", path, headers=headers) as stream:
            resumed = _events(stream.iter_lines(), 3)
        assert [n["id"] for n in resumed] == [live["id"] + 1, live["id"] + 2, live["id"] + 3]
        listed = s.read("installer", "notifications", after=str(live["id"])).json()
        assert [n["id"] for n in listed] == [n["id"] for n in resumed]


def test_concurrent_requests_share_group_commits(tmp_path: Path) -> None:
    with serve(tmp_path) as s:
        s.vote_in_order_action()
        bodies = [
            s.signed("telco", "recordOrder", {"order": f"O-{i}", "status": "new"})
            for i in range(60)
        ]

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=s.url, timeout=30) as client:
                return await asyncio.gather(
                    *[
                        client.post("/v1/consortia/acme/actions", headers=JOSE, content=b)
                        for b in bodies
                    ]
                )

        answers = asyncio.run(burst())
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers][:3]
        seqnos = sorted(a.json()["seqno"] for a in answers)
        assert len(set(seqnos)) == 60
        # The very same JWS again: the original answer, nothing executed.
        again = s.http.post("/v1/consortia/acme/actions", headers=JOSE, content=bodies[0])
        assert again.json() == answers[0].json()
        # /metrics answers the operator only, and names no consortium and no action.
        assert s.http.get("/metrics").json()["error"]["code"] == "bad_signature"
        assert s.http.get("/metrics", headers=s.auth("telco")).status_code == 401
        metrics = s.metrics().text
        # 61 recordOrder and the vote that brought it in, all under one unnamed label.
        assert 'consortia_actions_total{action="-",outcome="committed"} 62.0' in metrics
        assert "recordOrder" not in metrics and "acme" not in metrics
        assert 'consortia_queue_depth{consortium="lane-1"}' in metrics
        assert "consortia_commit_seconds_count" in metrics
        assert "consortia_queue_depth" in metrics and "consortia_sse_streams" in metrics
        count = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("consortia_batch_size_count")
        )
        assert count < 60 + 4  # fewer commits than requests: they were grouped


def test_openapi_lists_every_route(tmp_path: Path) -> None:
    with serve(tmp_path) as s:
        doc = s.http.get("/v1/openapi.json").json()
        app: Any = s.thread.server.config.app
        routes = {(r.path, m.lower()) for r in app.routes for m in r.methods - {"HEAD"}}
        table = {(op.path, op.method) for op in OPERATIONS}
        assert routes == table
        assert set(doc["paths"]) == {op.path for op in OPERATIONS}
        assert doc["openapi"].startswith("3.1")


def test_a_removed_members_stream_ends_at_the_removal(tmp_path: Path) -> None:
    """Its token may still be valid for minutes: the removal itself ends the stream, and
    nothing committed after it reaches the removed member."""
    with serve(tmp_path) as s:
        path = "/v1/consortia/acme/notifications"
        before = s.read("installer", "notifications").json()
        headers = {**s.auth("installer"), "accept": "text/event-stream"}
        seen: list[str] = []
        with s.http.stream("GET", path, headers=headers, timeout=10) as stream:
            lines = stream.iter_lines()
            assert len(_events(lines, len(before))) == len(before)
            pending = s.act("telco", "removeMember", {"id": "installer"}).json()
            started = time.monotonic()
            done = s.act(
                "vendor", "voteFor", {"proposal": pending["proposal"], "ballot": "approve"}
            )
            assert done.status_code == 200, done.text
            at_removal = s.platform.runtime("acme").notification_counter("installer")
            s.act("telco", "removeMember", {"id": "vendor"})  # after: must not reach it
            for line in lines:  # ends when the server closes the stream
                seen.append(line)
            took = time.monotonic() - started
        assert took < 3, f"the stream stayed open {took:.1f} s after the removal"
        data = [json.loads(x[6:]) for x in seen if x.startswith("data: ")]
        assert data and data[-1]["error"]["code"] == "member_suspended"
        ids = [int(x[4:]) for x in seen if x.startswith("id: ")]
        assert all(i <= at_removal for i in ids), (ids, at_removal)


def test_metric_labels_name_consortia_and_actions_only_when_the_operator_opts_in() -> None:
    from consortia.server._metrics import Metrics

    for names in (False, True):
        metrics = Metrics(names=names)
        metrics.action("recordOrder", "committed")
        metrics.action("recordOrder", "bad_signature")  # never named: it did not authenticate
        metrics.queue_depth.labels(metrics.consortium_label("acme")).set(1)
        text = metrics.render().decode()
        assert ("recordOrder" in text) is names and ('"acme"' in text) is names
        assert 'consortia_actions_total{action="-",outcome="bad_signature"} 1.0' in text
