"""A small world for engine scenarios: a platform on disk, an operator, three founders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consortia import MemberKeys, Platform, SigningKey, open_notification, sign_action
from consortia._json import JSON, JSONObject
from consortia.engine import Outcome
from consortia.errors import ConsortiaError
from consortia.protocol import sign_creation
from testkit import Clock, storage_fingerprint

FOUNDERS = ("telco", "vendor", "installer")


@dataclass
class World:
    """The platform, its clock and the members' keys, with helpers that sign as a member."""

    data: Path
    clock: Clock
    operator: SigningKey
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
        visible_to: Sequence[str] = (),
        txref: str | None = None,
        nonce: str | None = None,
        iat: int | None = None,
        cid: str | None = None,
    ) -> str:
        return sign_action(
            self.keys[member],
            consortium=cid or self.cid,
            action=action,
            params=params,
            now=self.clock.now if iat is None else iat,
            visible_to=visible_to,
            txref=txref,
            nonce=nonce,
        )

    def act(self, member: str, action: str, params: JSONObject, **kw: object) -> Outcome:
        cid = kw.get("cid")
        body = self.sign(member, action, params, **kw)  # type: ignore[arg-type]
        return self.platform.execute(str(cid) if cid else self.cid, body)

    def refused(self, code: str, body: str, *, cid: str | None = None) -> ConsortiaError:
        """Submit ``body``, expect refusal ``code``, and check storage did not change."""
        before = storage_fingerprint(self.db)
        with pytest.raises(ConsortiaError) as caught:
            self.platform.execute(cid or self.cid, body)
        assert caught.value.code == code, caught.value
        assert storage_fingerprint(self.db) == before
        return caught.value

    def notes(self, member: str, *, cid: str | None = None) -> list[tuple[str, JSON]]:
        """(kind, opened body) of every notification the member has."""
        view = self.platform.member_view(cid or self.cid, member)
        service = self.platform.service.encryption.public_key
        return [
            (str(n["kind"]), open_notification(n, self.keys[member], service))
            for n in view.notifications()
        ]

    def kinds(self, member: str, *, cid: str | None = None) -> list[str]:
        """Kinds of the member's notifications (outside the sealed body)."""
        view = self.platform.member_view(cid or self.cid, member)
        return [str(n["kind"]) for n in view.notifications()]

    def add_keys(self, member: str) -> MemberKeys:
        self.keys[member] = MemberKeys.generate(member)
        return self.keys[member]

    def create(self, cid: str, members: Sequence[str], template: str = "default") -> None:
        for m in members:
            if m not in self.keys:
                self.add_keys(m)
        self.platform.create_consortium(
            sign_creation(
                self.operator,
                consortium=cid,
                name=f"{cid} consortium",
                members=[self.keys[m].public_info() for m in members],
                now=self.clock.now,
                template=template,
            )
        )

    def reopen(self) -> None:
        """Close the platform and start a new one on the same files (a restart)."""
        self.platform.close()
        self.platform = Platform.open(
            self.data, operator_keys=[self.operator.verify_key], clock=self.clock
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = Clock()
    operator = SigningKey.generate()
    platform = Platform.open(tmp_path, operator_keys=[operator.verify_key], clock=clock)
    w = World(tmp_path, clock, operator, platform)
    w.create("acme", FOUNDERS)
    yield w
    w.platform.close()
