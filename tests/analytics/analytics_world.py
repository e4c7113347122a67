"""A platform with an analytics sink the test can see into, and members that sign requests.

The sink is the real :class:`BufferedSink` (thread, bounded queue) over a backend of the
test's choice: the in-memory one for assertions on events, or DuckDB on disk for the
"nothing leaves unless granted" checks that grep the file.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consortia import MemberKeys, Platform, SigningKey, open_notification, sign_action
from consortia._json import JSON, JSONObject
from consortia.analytics import Event
from consortia.analytics.sink import BufferedSink, MemoryBackend, SinkBackend
from consortia.engine import Outcome
from consortia.errors import ConsortiaError
from consortia.protocol import sign_creation
from testkit import Clock, storage_fingerprint

FOUNDERS = ("telco", "vendor", "installer")

#: A Starlark action that writes one object named by its params (and echoes a secret).
RECORD_CODE = """
def main(params):
    key = params["kind"] + "/" + params["id"]
    put(key, {"note": params["note"], "by": caller()})
    return {"key": key}
"""


@dataclass
class AnalyticsWorld:
    """Platform + sink + keys; ``events()`` waits for the sink and returns what it wrote."""

    data: Path
    clock: Clock
    operator: SigningKey
    backend: SinkBackend
    sink: BufferedSink
    platform: Platform
    keys: dict[str, MemberKeys] = field(default_factory=dict)
    cid: str = "acme"

    @property
    def db(self) -> Path:
        return self.data / "ledger.sqlite"

    def sign(
        self,
        member: str,
        action: str,
        params: JSONObject,
        *,
        nonce: str | None = None,
        cid: str | None = None,
        visible_to: Sequence[str] = (),
    ) -> str:
        return sign_action(
            self.keys[member],
            consortium=cid or self.cid,
            action=action,
            params=params,
            now=self.clock.now,
            nonce=nonce,
            visible_to=visible_to,
        )

    def act(self, member: str, action: str, params: JSONObject, **kw: str) -> Outcome:
        return self.platform.execute(self.cid, self.sign(member, action, params, **kw))

    def refused(self, code: str, body: str) -> ConsortiaError:
        """Submit ``body``, expect refusal ``code``, and check storage did not change."""
        before = storage_fingerprint(self.db)
        with pytest.raises(ConsortiaError) as caught:
            self.platform.execute(self.cid, body)
        assert caught.value.code == code, caught.value
        assert storage_fingerprint(self.db) == before
        return caught.value

    def events(self) -> list[Event]:
        """Every event written so far (after the sink drained)."""
        assert self.sink.flush(10.0), "the sink did not drain"
        assert isinstance(self.backend, MemoryBackend)
        return list(self.backend.events)

    def notes(self, member: str) -> list[tuple[str, JSON]]:
        """(kind, opened body) of every notification the member has."""
        view = self.platform.member_view(self.cid, member)
        service = self.platform.service.encryption.public_key
        return [
            (str(n["kind"]), open_notification(n, self.keys[member], service))
            for n in view.notifications()
        ]

    def create(
        self, cid: str, members: Sequence[str], infos: dict[str, JSONObject] | None = None
    ) -> None:
        infos = infos or {}
        for m in members:
            self.keys.setdefault(m, MemberKeys.generate(m))
        self.platform.create_consortium(
            sign_creation(
                self.operator,
                consortium=cid,
                name=f"{cid} consortium",
                members=[{**self.keys[m].public_info(), "info": infos.get(m, {})} for m in members],
                now=self.clock.now,
            )
        )

    def vote_through(self, member: str, action: str, params: JSONObject) -> None:
        """Propose as ``member`` and have the next founder approve (majority 2 of 3)."""
        pending = self.act(member, action, params)
        voter = next(m for m in FOUNDERS if m != member)
        self.act(voter, "voteFor", {"proposal": pending.txid, "ballot": "approve"})

    def add_record_action(self) -> None:
        """Vote in ``record`` (Starlark, no vote needed to run), executable by every founder."""
        self.vote_through(
            "telco",
            "amendConstitution",
            {
                "name": "record",
                "scope": "public",
                "language": "starlark",
                "code": RECORD_CODE,
                "permissions": [{"member": m, "execute": True} for m in FOUNDERS],
                "voting": {"voters": "any", "majority": 1, "veto": []},
            },
        )

    def close(self) -> None:
        self.platform.close()


def make_world(
    tmp: Path, backend: SinkBackend | None = None, *, capacity: int = 50_000
) -> AnalyticsWorld:
    """A platform whose sink writes to ``backend`` (memory by default), consortium ``acme``."""
    clock = Clock()
    operator = SigningKey.generate()
    backend = backend or MemoryBackend()
    sink = BufferedSink(backend, linger=0.0, capacity=capacity)
    platform = Platform.open(tmp, operator_keys=[operator.verify_key], clock=clock, analytics=sink)
    world = AnalyticsWorld(tmp, clock, operator, backend, sink, platform)
    world.create("acme", FOUNDERS)
    return world


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    """Poll ``predicate()`` until true (threads at work); fail after ``timeout`` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
