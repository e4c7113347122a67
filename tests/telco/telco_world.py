"""A Telco consortium on an in-process platform, with helpers that act as each member."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consortia import Committed
from consortia._json import JSON, JSONObject
from consortia.engine import Outcome
from consortia.errors import NotFound
from consortia.sandbox import ActionRuntime
from testkit import TEMPLATES, js
from world import BaseWorld

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


class TelcoWorld(BaseWorld):
    """The world of tests/world.py on consortium ``telco-b2b``, with helpers for the Telco
    template's actions: results, TMF events and objects as each member sees them."""

    def act(self, member: str, action: str, params: Mapping[str, object], **kw: Any) -> Outcome:
        """Sign and execute a request as ``member`` (``params`` as loosely typed as TMF)."""
        return super().act(member, action, js(dict(params)), **kw)

    def ok(self, member: str, action: str, params: Mapping[str, object]) -> Any:
        """Execute, expect a commit, and return the caller's result."""
        assert isinstance(self.act(member, action, params), Committed)
        return self.results(member)[-1]

    def refused(
        self, member: str, action: str, params: Mapping[str, object], code: str = "action_failed"
    ) -> str:
        """Expect refusal ``code`` with storage unchanged; return the message."""
        return self.expect_refusal(code, lambda: self.act(member, action, params)).message

    def results(self, member: str) -> list[Any]:
        """Bodies of the member's ``result`` notifications."""
        return [b for k, b in self.notes(member) if k == "result"]

    def events(self, member: str, kind: str | None = None) -> list[Any]:
        """The TMF events the member received as notices, optionally of one eventType."""
        out = [js(b) for k, b in self.notes(member) if k == "notice"]
        out = [e for e in out if isinstance(e, dict) and "eventType" in e]
        return [e for e in out if kind is None or e["eventType"] == kind]

    def read(self, member: str, key: str) -> Any:
        """The newest value of ``key`` the member may see, or None."""
        try:
            return self.platform.member_view(self.cid, member).object(key)["value"]
        except NotFound:
            return None


@contextmanager
def telco_world(tmp_path: Path) -> Iterator[TelcoWorld]:
    """A platform offering both templates, with the Telco consortium created."""
    runtime = ActionRuntime(isolation="inline")
    world = TelcoWorld.open(tmp_path, cid=CID, templates=TEMPLATES, sandbox=runtime)
    try:
        infos: dict[str, JSONObject] = {m: {"role": role} for m, role in ROLES.items()}
        world.create(CID, tuple(ROLES), infos, template="telco", name="B2B orders")
        yield world
    finally:
        world.close()
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
