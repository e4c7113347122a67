"""Over HTTP: /metrics shows the sink's counters, and alerts commit with no request arriving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from analytics_world import FOUNDERS, wait_for

from consortia import MemberKeys, Platform, SigningKey, sign_action, sign_creation
from consortia.analytics import Alert
from consortia.analytics.embedded import LazyDetector
from consortia.analytics.sink import BufferedSink
from consortia.identity.jwt import issue_token
from consortia.server.run import ServerConfig, ServerThread
from consortia.wire import sign_operator_token

JOSE = {"content-type": "application/jose"}


class Served:
    def __init__(self, tmp: Path) -> None:
        self.operator = SigningKey.generate()
        self.platform = Platform.open(tmp, operator_keys=[self.operator.verify_key])
        config = ServerConfig(port=0, access_log=False, log_level="warning")
        self.thread = ServerThread(self.platform, config).start()
        self.http = httpx.Client(base_url=self.thread.url, timeout=10, verify=False)  # noqa: S501
        self.keys = {m: MemberKeys.generate(m) for m in FOUNDERS}
        body = sign_creation(
            self.operator,
            consortium="acme",
            name="Acme",
            now=int(time.time()),
            members=[k.public_info() for k in self.keys.values()],
        )
        assert self.http.post("/v1/consortia", headers=JOSE, content=body).status_code == 201

    def notifications(self, member: str) -> list[dict[str, object]]:
        token = issue_token(self.keys[member], audience="acme", now=int(time.time()))
        answer = self.http.get(
            "/v1/consortia/acme/notifications", headers={"authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        found: list[dict[str, object]] = answer.json()
        return found

    def metrics(self) -> str:
        token = sign_operator_token(self.operator, audience="metrics", now=int(time.time()))
        answer = self.http.get("/metrics", headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        return answer.text

    def close(self) -> None:
        self.http.close()
        self.thread.stop()
        self.platform.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path)
    yield s
    s.close()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_show_events_emitted_written_and_dropped(served: Served) -> None:
    forger = MemberKeys.generate("vendor")
    body = sign_action(forger, consortium="acme", action="voteFor", params={}, now=int(time.time()))
    assert (
        served.http.post("/v1/consortia/acme/actions", headers=JOSE, content=body).status_code
        == 401
    )
    served.notifications("telco")
    assert served.platform.analytics is not None
    stats = served.platform.analytics_stats()
    assert stats is not None

    def written() -> bool:
        text = served.metrics()
        return _metric(text, 'consortia_analytics_events_total{state="written"}') >= 2

    wait_for(written)
    text = served.metrics()
    assert _metric(text, 'consortia_analytics_events_total{state="emitted"}') >= 2
    assert _metric(text, 'consortia_analytics_events_total{state="dropped"}') == 0
    assert _metric(text, "consortia_analytics_queued") >= 0


def test_a_submitted_alert_is_committed_while_no_request_arrives(served: Served) -> None:
    served.platform.submit_alert(
        Alert(time.time(), "acme", "installer", "scraping", 0.8, {"distinct_objects": 40})
    )
    # No executeAction follows: the lane commits the alert on its own.
    wait_for(lambda: any(n["kind"] == "misuse_alert" for n in served.notifications("telco")))
    assert not any(n["kind"] == "misuse_alert" for n in served.notifications("installer"))


def test_the_detector_is_loaded_before_the_server_takes_its_first_request(
    tmp_path: Path,
) -> None:
    platform = Platform.open(tmp_path)
    sink = platform.analytics
    assert isinstance(sink, BufferedSink)
    (detector,) = (o for o in sink.observers if isinstance(o, LazyDetector))
    assert "loaded=False" in repr(detector)
    config = ServerConfig(port=0, access_log=False, log_level="warning")
    with ServerThread(platform, config):
        # Ready means warm: loaded before the first request could arrive.
        assert "loaded=True" in repr(detector)
        assert sink.stats().emitted == 0
    platform.close()
