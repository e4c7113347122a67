"""The in-process world the engine, telco and analytics suites build on.

A platform opened on the test's directory with a clock the test moves by hand, an operator
key, members with signing and encryption keys, and helpers that sign and execute as a member,
vote, open a member's sealed notifications and restart the platform on the same files. The
suites add only what is theirs: ``tests/engine/conftest.py`` (the ``world`` fixture),
``tests/telco/telco_world.py`` (the Telco template's actions) and
``tests/analytics/analytics_world.py`` (the analytics sink). The attack suite does not use it:
it speaks only the wire protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self, TypedDict, Unpack

import pytest

from consortia import (
    Committed,
    MemberKeys,
    Pending,
    Platform,
    SigningKey,
    open_notification,
    sign_action,
    sign_creation,
)
from consortia._json import JSON, JSONObject
from consortia.analytics.events import EventSink
from consortia.engine import ActionSandbox, Outcome
from consortia.errors import ConsortiaError
from consortia.governance.templates import Template
from testkit import Clock, storage_fingerprint

__all__ = ["FOUNDERS", "BaseWorld", "PlatformOptions", "SignOptions", "World"]

#: The founders of consortium ``acme`` in the engine and analytics worlds.
FOUNDERS = ("telco", "vendor", "installer")


class PlatformOptions(TypedDict, total=False):
    """What a world hands :meth:`Platform.open` besides the operator key and the clock (at
    the start and again on every :meth:`BaseWorld.reopen`)."""

    templates: Mapping[str, Template]
    sandbox: ActionSandbox
    analytics: bool | EventSink
    store: str
    node: str
    lease_s: float


class SignOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`BaseWorld.sign`, passed on by :meth:`BaseWorld.act`."""

    visible_to: Sequence[str]
    txref: str | None
    nonce: str | None
    iat: int | None
    cid: str | None


@dataclass
class BaseWorld:
    """The platform, its clock and the members' keys, with helpers that sign as a member."""

    data: Path
    clock: Clock
    operator: SigningKey
    platform: Platform
    keys: dict[str, MemberKeys] = field(default_factory=dict)
    cid: str = "acme"
    options: PlatformOptions = field(default_factory=PlatformOptions)

    @classmethod
    def open(cls, data: Path, *, cid: str = "acme", **options: Unpack[PlatformOptions]) -> Self:
        """A platform on ``data`` with a fresh operator key and a :class:`Clock` at ``T0``;
        no consortium yet (:meth:`create` founds one)."""
        clock = Clock()
        operator = SigningKey.generate()
        platform = Platform.open(data, operator_keys=[operator.verify_key], clock=clock, **options)
        return cls(data, clock, operator, platform, cid=cid, options=options)

    @property
    def db(self) -> Path:
        return self.data / "ledger.sqlite"

    def fingerprint(self) -> str:
        """Hash of every stored row, in whichever store the platform runs on."""
        url = self.options.get("store")
        if url is None:
            return storage_fingerprint(self.db)
        from pg_server import storage_fingerprint_pg

        return storage_fingerprint_pg(url)

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

    def act(
        self, member: str, action: str, params: JSONObject, **kw: Unpack[SignOptions]
    ) -> Outcome:
        """Sign as ``member`` (see :meth:`sign`) and execute on consortium ``cid`` (the
        world's by default)."""
        cid = kw.get("cid")
        return self.platform.execute(cid or self.cid, self.sign(member, action, params, **kw))

    def expect_refusal(self, code: str, submit: Callable[[], object]) -> ConsortiaError:
        """Call ``submit``, expect refusal ``code``, and check storage did not change."""
        before = self.fingerprint()
        with pytest.raises(ConsortiaError) as caught:
            submit()
        assert caught.value.code == code, caught.value
        assert self.fingerprint() == before
        return caught.value

    def vote_through(
        self, member: str, action: str, params: JSONObject, voter: str | None = None
    ) -> Outcome:
        """Propose as ``member`` and have ``voter`` approve: by default the first other member
        the world has keys for (a majority of 2 of 3 founders)."""
        pending = self.act(member, action, params)
        voter = voter or next(m for m in self.keys if m != member)
        return self.act(voter, "voteFor", {"proposal": pending.txid, "ballot": "approve"})

    def install(
        self,
        name: str,
        code: str,
        permitted: Sequence[str] = ("telco",),
        *,
        proposer: str = "telco",
        voter: str = "vendor",
        cid: str | None = None,
        **extra: JSON,
    ) -> None:
        """Vote Starlark action ``name`` in (``amendConstitution``, no vote needed to run it),
        executable by ``permitted``: ``proposer`` proposes, ``voter`` approves (two of three
        founders) on consortium ``cid`` (the world's by default); ``extra`` adds fields of the
        definition (``params_schema``, ``voting``)."""
        definition: JSONObject = {
            "name": name,
            "scope": "public",
            "language": "starlark",
            "code": code,
            "permissions": [{"member": m, "execute": True} for m in permitted],
            "voting": {"voters": "any", "majority": 1, "veto": []},
            **extra,
        }
        where = cid or self.cid
        pending = self.act(proposer, "amendConstitution", definition, cid=where)
        assert isinstance(pending, Pending), pending
        vote: JSONObject = {"proposal": pending.proposal, "ballot": "approve"}
        assert isinstance(self.act(voter, "voteFor", vote, cid=where), Committed)

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

    def create(
        self,
        cid: str,
        members: Sequence[str],
        infos: Mapping[str, JSONObject] | None = None,
        *,
        template: str = "default",
        name: str | None = None,
    ) -> None:
        """Found consortium ``cid`` (keys made for members that have none); with ``infos``,
        each founder's entry carries ``info`` (``{}`` for members it does not name)."""
        for m in members:
            if m not in self.keys:
                self.add_keys(m)
        founders: list[JSONObject] = []
        for m in members:
            entry = self.keys[m].public_info()
            founders.append(entry if infos is None else {**entry, "info": infos.get(m, {})})
        self.platform.create_consortium(
            sign_creation(
                self.operator,
                consortium=cid,
                name=name or f"{cid} consortium",
                members=founders,
                now=self.clock.now,
                template=template,
            )
        )

    def reopen(self) -> None:
        """Close the platform and start a new one on the same files (a restart)."""
        self.platform.close()
        self.platform = Platform.open(
            self.data, operator_keys=[self.operator.verify_key], clock=self.clock, **self.options
        )

    def close(self) -> None:
        self.platform.close()


class World(BaseWorld):
    """The engine's world: a refusal is checked on a signed body (:meth:`refused`)."""

    def refused(self, code: str, body: str, *, cid: str | None = None) -> ConsortiaError:
        """Submit ``body``, expect refusal ``code``, and check storage did not change."""
        return self.expect_refusal(code, lambda: self.platform.execute(cid or self.cid, body))


def founded(data: Path, **options: Unpack[PlatformOptions]) -> Iterator[World]:
    """A :class:`World` on ``data`` with consortium ``acme`` of the three founders, closed
    after: the body of a ``world`` fixture (``yield from founded(tmp_path)``)."""
    w = World.open(data, **options)
    w.create("acme", FOUNDERS)
    try:
        yield w
    finally:
        w.close()
