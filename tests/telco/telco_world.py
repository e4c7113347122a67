"""A Telco consortium on an in-process platform, with helpers that act as each member."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from consortia import Committed, MemberKeys, Platform, SigningKey, open_notification, sign_action
from consortia._json import JSON, JSONObject
from consortia.engine import Outcome
from consortia.errors import ConsortiaError, NotFound
from consortia.governance.templates import DEFAULT_TEMPLATE
from consortia.protocol import sign_creation
from consortia.sandbox import ActionRuntime
from consortia.telco import TELCO_TEMPLATE
from testkit import js, storage_fingerprint

T0 = 1_800_000_000
CID = "telco-b2b"
#: member id -> role: a Telco, two device vendors, a field installer, a customer, an auditor.
ROLES = {
    "telco": "seller",
    "vendorA": "supplier",
    "vendorB": "supplier",
    "fitter": "installer",
    "acme": "customer",
    "audit": "auditor",
}


@dataclass
class TelcoWorld:
    """The platform and the members' keys, with helpers that sign as a member."""

    data: Path
    platform: Platform
    keys: dict[str, MemberKeys] = field(default_factory=dict)
    now: int = T0

    def act(
        self,
        member: str,
        action: str,
        params: Mapping[str, object],
        visible_to: Sequence[str] = (),
    ) -> Outcome:
        """Sign and execute a request as ``member``."""
        body = sign_action(
            self.keys[member],
            consortium=CID,
            action=action,
            params=js(dict(params)),
            now=self.now,
            visible_to=visible_to,
        )
        return self.platform.execute(CID, body)

    def ok(self, member: str, action: str, params: Mapping[str, object]) -> Any:
        """Execute, expect a commit, and return the caller's result."""
        assert isinstance(self.act(member, action, params), Committed)
        return self.results(member)[-1]

    def refused(
        self, member: str, action: str, params: Mapping[str, object], code: str = "action_failed"
    ) -> str:
        """Expect refusal ``code`` with storage unchanged; return the message."""
        before = storage_fingerprint(self.data / "ledger.sqlite")
        with pytest.raises(ConsortiaError) as caught:
            self.act(member, action, params)
        assert caught.value.code == code, caught.value
        assert storage_fingerprint(self.data / "ledger.sqlite") == before
        return caught.value.message

    def _notes(self, member: str) -> list[tuple[str, JSON]]:
        view = self.platform.member_view(CID, member)
        service = self.platform.service.encryption.public_key
        return [
            (str(n["kind"]), open_notification(n, self.keys[member], service))
            for n in view.notifications()
        ]

    def results(self, member: str) -> list[Any]:
        """Bodies of the member's ``result`` notifications."""
        return [b for k, b in self._notes(member) if k == "result"]

    def events(self, member: str, kind: str | None = None) -> list[Any]:
        """The TMF events the member received as notices, optionally of one eventType."""
        out = [js(b) for k, b in self._notes(member) if k == "notice"]
        out = [e for e in out if isinstance(e, dict) and "eventType" in e]
        return [e for e in out if kind is None or e["eventType"] == kind]

    def read(self, member: str, key: str) -> Any:
        """The newest value of ``key`` the member may see, or None."""
        try:
            return self.platform.member_view(CID, member).object(key)["value"]
        except NotFound:
            return None


@contextmanager
def telco_world(tmp_path: Path) -> Iterator[TelcoWorld]:
    """A platform offering both templates, with the Telco consortium created."""
    operator = SigningKey.generate()
    runtime = ActionRuntime(isolation="inline")
    platform = Platform.open(
        tmp_path,
        operator_keys=[operator.verify_key],
        templates={"default": DEFAULT_TEMPLATE, "telco": TELCO_TEMPLATE},
        sandbox=runtime,
        clock=lambda: T0,
    )
    world = TelcoWorld(tmp_path, platform)
    founders: list[JSONObject] = []
    for member, role in ROLES.items():
        world.keys[member] = MemberKeys.generate(member)
        founders.append({**world.keys[member].public_info(), "info": {"role": role}})
    platform.create_consortium(
        sign_creation(
            operator,
            consortium=CID,
            name="B2B orders",
            members=founders,
            now=T0,
            template="telco",
        )
    )
    try:
        yield world
    finally:
        platform.close()
        runtime.close()


def start_project(world: TelcoWorld) -> None:
    """The seller opens project P1 with every other member as a party."""
    world.ok(
        "telco",
        "createProject",
        {
            "id": "P1",
            "name": "Acme branch network",
            "relatedParty": [
                {"role": role, "partyId": m} for m, role in ROLES.items() if m != "telco"
            ],
        },
    )


SITES: list[JSON] = [{"id": "HQ"}, {"id": "BR1"}]


def service(sid: str, spec: str = "v1", site: str = "HQ") -> JSONObject:
    """A service item of an order."""
    return {"id": sid, "site": site, "spec": {"design": spec}}


def device(did: str, supplier: str, services: list[str], part: str = "cpe-100") -> JSONObject:
    """A device item of an order, with its supplier."""
    svc: list[JSON] = list(services)
    return {"id": did, "part": part, "supplier": supplier, "site": "HQ", "services": svc}


def place_order(world: TelcoWorld) -> None:
    """Project P1, then order PO1: services A and B at HQ; device A1 of vendorA serves A and
    device B1 of vendorB serves B."""
    start_project(world)
    world.ok(
        "telco",
        "placeOrder",
        {
            "id": "PO1",
            "projectId": "P1",
            "sites": SITES,
            "services": [service("A"), service("B")],
            "devices": [device("A1", "vendorA", ["A"]), device("B1", "vendorB", ["B"])],
        },
    )
