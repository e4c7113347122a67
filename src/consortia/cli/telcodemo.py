"""The Telco part of ``consortia demo``: the seed's stories, played over HTTPS by each member.

A consortium from the ``telco`` template with a Telco (seller), two vendors (suppliers), a
field installer and an enterprise customer. Each story is a method of :class:`TelcoStory`
that acts through the member SDK only and returns what it did; after each step every
member's new notifications are printed under its name (TMF event names), and at the key
moments a table shows which member can read which object. The scenario tests
(tests/telco/test_telco_over_http.py) run the same steps against a real server and assert
each member's view, so the narrative and the tests cannot drift apart.

The stories (TELCO.md, the seed):

1. an order with sites, services and devices from two vendors;
2. the change example: revision 1 (A..E, devices A1, D1, D2) becomes revision 2 (A', B, C',
   D, devices C1, D1), with A1 paused for re-planning and D2 auto-corrected; then resumed;
3. a postponement (a ``dueDate`` supplement);
4. a serial number bound by agreement (vendor proposes, Telco endorses by vote);
5. commissioning refused until an activation test has passed;
6. a cancellation after delivery that becomes a recovery (no point of no return);
7. the stock report showing a leak, and each member's own reports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from consortia._json import JSON, JSONObject
from consortia.cli.report import member_report, render
from consortia.client import MemberClient, Notification, create_consortium
from consortia.errors import ConsortiaError, NotFound
from consortia.identity.keys import MemberKeys, SigningKey

__all__ = ["ROLES", "TELCO_CID", "TelcoStory", "telco_story"]

TELCO_CID = "telco-b2b"
#: member id -> role in the telco template.
ROLES = {
    "telco": "seller",
    "vendorA": "supplier",
    "vendorB": "supplier",
    "fitter": "installer",
    "acme": "customer",
}
SITES: list[JSON] = [{"id": "HQ"}, {"id": "BR1"}]


def _service(sid: str, design: str = "v1", site: str = "HQ") -> JSON:
    return {"id": sid, "site": site, "spec": {"design": design}}


def _device(did: str, supplier: str, services: list[JSON], part: str = "cpe-100") -> JSON:
    return {"id": did, "part": part, "supplier": supplier, "site": "HQ", "services": services}


#: The seed's change example, revision 1: services A..E; devices A1, D1 (vendorA), D2 (vendorB).
REVISION_1: JSONObject = {
    "id": "PO1",
    "projectId": "P1",
    "externalId": [{"owner": "telco", "externalIdentifierType": "crmOrder", "id": "CRM-1001"}],
    "requestedCompletionDate": "2027-03-01",
    "sites": SITES,
    "services": [_service(s) for s in "ABCDE"],
    "devices": [
        _device("A1", "vendorA", ["A"]),
        _device("D1", "vendorA", ["D"]),
        _device("D2", "vendorB", ["D"], part="ont-7"),
    ],
}
#: Revision 2: A' and C' redesigned, E dropped; devices C1 (vendorB) and D1. A1 is paused for
#: re-planning; D2 (already delivered) and C1 are auto-corrected.
REVISION_2: JSONObject = {
    "id": "PO1",
    "basedOnRevision": 1,
    "changeReason": "design redone after the site survey",
    "sites": SITES,
    "services": [_service("A", "v2"), _service("B"), _service("C", "v2"), _service("D")],
    "devices": [_device("C1", "vendorB", ["C"], part="ont-7"), _device("D1", "vendorA", ["D"])],
    "modes": {"A1": "pause", "D2": "autoCorrect", "C1": "autoCorrect"},
}
#: A second order at the branch, cancelled after its device was delivered.
BRANCH_ORDER: JSONObject = {
    "id": "PO2",
    "projectId": "P1",
    "sites": [{"id": "BR1"}],
    "services": [_service("F", site="BR1")],
    "devices": [
        {"id": "F1", "part": "cpe-100", "supplier": "vendorA", "site": "BR1", "services": ["F"]}
    ],
}


def _brief(note: Notification) -> str:
    """One line for a notification: its TMF event name and the ids it names."""
    body: object = note.body
    if note.kind == "notice" and isinstance(body, dict) and "eventType" in body:
        event = body.get("event")
        return f"{body['eventType']} {_ids(event)}".rstrip()
    if note.kind == "result":
        return f"result of its {note.action}"
    if note.kind == "vote_request" and isinstance(body, dict):
        return f"vote_request ({note.action} proposed by {body.get('requester')})"
    if note.kind == "vote_result" and isinstance(body, dict):
        return f"vote_result ({note.action}: {body.get('outcome')})"
    return f"{note.kind} ({note.action})"


def _ids(event: object) -> str:
    """A compact summary of what an event body names: ids and states, no internals."""
    if not isinstance(event, dict):
        return ""
    parts: list[str] = []
    for name in ("productOrder", "changePlan", "resource"):
        item = event.get(name)
        if isinstance(item, dict):
            words = [item.get(k) for k in ("id", "state", "assetLifecycleStatus")]
            words.append(item.get("requestedCompletionDate"))
            parts.append(" ".join(str(w) for w in words if w))
    items = event.get("resourceOrder")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                state = item.get("state") or item.get("requestedDeliveryDate") or ""
                parts.append(f"{item.get('id')} {state}".strip())
            else:
                parts.append(str(item))
    if event.get("jeopardyType"):
        parts.insert(0, str(event["jeopardyType"]))
    if event.get("serialNumber"):
        parts.append(f"serial {event['serialNumber']}")
    return "(" + ", ".join(parts) + ")" if parts else ""


@dataclass
class TelcoStory:
    """The members' clients, and what each has been told so far."""

    clients: Mapping[str, MemberClient]
    out: Callable[[str], None] = print
    seen: dict[str, int] = field(default_factory=dict)
    inboxes: dict[str, list[Notification]] = field(default_factory=dict)
    refusals: list[ConsortiaError] = field(default_factory=list)

    # -- narration ------------------------------------------------------------------------

    def say(self, member: str, text: str) -> None:
        """A member's action, as a line of the narrative."""
        self.out(f"  {member:<8}-> {text}")

    async def inbox(self) -> dict[str, list[Notification]]:
        """Each member's notifications since the last call, printed under its name."""
        fresh: dict[str, list[Notification]] = {}
        for member, client in self.clients.items():
            notes = await client.notification_page(after=self.seen.get(member, 0))
            if notes:
                self.seen[member] = notes[-1].id
            fresh[member] = notes
            self.inboxes.setdefault(member, []).extend(notes)
            for note in notes:
                self.out(f"      {member:<8} got  {_brief(note)}")
        return fresh

    async def can_read(self, keys: Sequence[str]) -> dict[str, dict[str, bool]]:
        """For each key, which member may read it now, printed as a table."""
        table: dict[str, dict[str, bool]] = {}
        for key in keys:
            row: dict[str, bool] = {}
            for member, client in self.clients.items():
                try:
                    await client.object(key)
                    row[member] = True
                except NotFound:
                    row[member] = False
            table[key] = row
        width = max(len(k) for k in keys)
        members = list(self.clients)
        self.out("      " + " " * width + "  " + "  ".join(f"{m:<7}" for m in members))
        for key, row in table.items():
            marks = "  ".join(f"{'reads' if row[m] else '-':<7}" for m in members)
            self.out(f"      {key:<{width}}  {marks}")
        return table

    async def refused(self, member: str, action: str, params: JSONObject) -> ConsortiaError:
        """Run a request that must be refused; print and return the refusal."""
        try:
            await self.clients[member].call(action, params)
        except ConsortiaError as exc:
            self.say(member, f"{action}: refused ({exc.code}): {exc.message}")
            self.refusals.append(exc)
            return exc
        raise RuntimeError(f"{action} by {member} was expected to be refused, and committed")

    async def device(self, member: str, order: str, device: str, *states: str) -> None:
        """A supplier moves its device order through ``states``."""
        for state in states:
            await self.clients[member].call(
                "updateDeviceOrder", {"productOrderId": order, "device": device, "state": state}
            )
        self.say(member, f"updateDeviceOrder {order}/{device}: {' -> '.join(states)}")

    # -- the stories ----------------------------------------------------------------------

    async def place_order(self) -> JSON:
        """Story 1: a customer project and an order with sites, services and devices."""
        telco = self.clients["telco"]
        parties: list[JSON] = [{"role": r, "partyId": m} for m, r in ROLES.items() if m != "telco"]
        await telco.call(
            "createProject",
            {"id": "P1", "name": "Acme branch network", "relatedParty": parties},
        )
        self.say("telco", "createProject P1 (Acme branch network), every member a party")
        placed = await telco.call("placeOrder", REVISION_1)
        self.say(
            "telco",
            "placeOrder PO1 rev 1: services A..E at HQ; A1, D1 from vendorA, D2 from vendorB",
        )
        await self.inbox()
        return placed

    async def change(self) -> JSON:
        """Story 2: the change example, with a pause (A1) and autoCorrects (D2, C1)."""
        await self.device("vendorB", "PO1", "D2", "inProgress", "shipped", "delivered")
        await self.inbox()
        answer = await self.clients["telco"].call("reviseOrder", REVISION_2)
        self.say(
            "telco",
            "reviseOrder PO1 rev 2: A', B, C', D with C1, D1; A1 paused, D2 and C1 autoCorrect",
        )
        plan: object = answer.get("changePlan") if isinstance(answer, dict) else None
        if isinstance(plan, dict):
            for item in plan["serviceItem"]:
                self.out(f"      plan: service {item['target']} {item['action']}")
            for item in plan["resourceItem"]:
                self.out(
                    f"      plan: device {item['target']} {item['action']} "
                    f"({item['mode']}) -> {item['state']}"
                )
        await self.inbox()
        resumed = await self.clients["telco"].call("resumeChangePlan", {"productOrderId": "PO1"})
        self.say("telco", "resumeChangePlan PO1: re-planning done, A1 is cancelled")
        await self.inbox()
        await self.device("vendorB", "PO1", "D2", "recovered")
        await self.inbox()
        return resumed

    async def postpone(self) -> JSON:
        """Story 3: the site is late, the order is postponed (a dueDate supplement)."""
        order: object = await self.clients["telco"].object("productOrder/PO1")
        revision = order["value"]["revision"] if isinstance(order, dict) else None
        answer = await self.clients["telco"].call(
            "postponeOrder",
            {
                "id": "PO1",
                "basedOnRevision": revision,
                "requestedCompletionDate": "2027-04-15",
                "changeReason": "customer site not ready",
            },
        )
        self.say("telco", "postponeOrder PO1 to 2027-04-15 (customer site not ready)")
        await self.inbox()
        return answer

    async def bind_serial(self) -> str:
        """Story 4: vendorB delivers C1 and proposes its serial; the Telco endorses it."""
        await self.clients["telco"].call(
            "createAsset", {"id": "AS-C1", "productOrderId": "PO1", "device": "C1"}
        )
        self.say("telco", "createAsset AS-C1 for device C1 (no serial yet)")
        await self.device("vendorB", "PO1", "C1", "inProgress", "shipped", "delivered")
        self.out("      (the asset AS-C1 follows its device order: shipped, delivered)")
        await self.refused("fitter", "updateAssetStatus", {"id": "AS-C1", "status": "installed"})
        await self.inbox()
        pending = await self.clients["vendorB"].submit(
            "bindSerial", {"resourceId": "AS-C1", "serialNumber": "SN-ONT7-0042"}
        )
        self.say("vendorB", f"bindSerial AS-C1 SN-ONT7-0042: {pending.status}")
        await self.inbox()
        await self.clients["telco"].vote(str(pending.proposal))
        self.say("telco", "voteFor the binding: approve (the endorsement the constitution asks)")
        await self.inbox()
        return str(pending.proposal)

    async def commission(self) -> None:
        """Story 5: installed, then commissioned only after a passed activation test."""
        fitter = self.clients["fitter"]
        await fitter.call("updateAssetStatus", {"id": "AS-C1", "status": "installed"})
        self.say("fitter", "updateAssetStatus AS-C1 installed")
        await self.refused("fitter", "updateAssetStatus", {"id": "AS-C1", "status": "commissioned"})
        await fitter.call(
            "recordActivationTest", {"productOrderId": "PO1", "serviceId": "C", "result": "passed"}
        )
        self.say("fitter", "recordActivationTest service C: passed")
        await fitter.call("updateAssetStatus", {"id": "AS-C1", "status": "commissioned"})
        self.say("fitter", "updateAssetStatus AS-C1 commissioned")
        await self.inbox()

    async def cancel_after_delivery(self) -> None:
        """Story 6: a delivered device's order is cancelled; it becomes a recovery."""
        await self.clients["telco"].call("placeOrder", BRANCH_ORDER)
        self.say("telco", "placeOrder PO2: service F at BR1 with device F1 from vendorA")
        await self.device("vendorA", "PO2", "F1", "inProgress", "shipped", "delivered")
        await self.inbox()
        await self.clients["telco"].call(
            "cancelOrder", {"id": "PO2", "changeReason": "branch closed"}
        )
        self.say("telco", "cancelOrder PO2 (branch closed): F1 was delivered, so it is recovered")
        await self.inbox()
        await self.device("vendorA", "PO2", "F1", "recovered")
        await self.inbox()

    async def leak(self) -> None:
        """Story 7: a reservation nothing uses, and the stock report that shows it."""
        await self.clients["telco"].call(
            "reserveStock",
            {"supplier": "vendorA", "part": "cpe-100", "productOrderId": "PO1", "quantity": 2},
        )
        self.say("telco", "reserveStock 2 x cpe-100 at vendorA for PO1, which no device uses")
        await self.inbox()

    async def report(self, member: str, kind: str, ident: str) -> JSONObject:
        """Print ``consortia report`` as ``member`` would see it."""
        report = await member_report(self.clients[member], kind, ident)
        self.out(f"\n  $ consortia report {kind} {ident}   # as {member}")
        self.out(
            "\n".join(f"    {line}" if line else "" for line in render(kind, report).split("\n"))
        )
        return report


async def telco_story(url: str, fingerprint: str, operator: SigningKey, step: int) -> None:
    """Play the stories on a running server; ``step`` numbers the first heading."""
    keys = {m: MemberKeys.generate(m) for m in ROLES}
    print(
        f"\n{step}. A Telco consortium (template 'telco'): telco (seller), vendorA and vendorB "
        "(suppliers), fitter (installer), acme (customer)."
    )
    await create_consortium(
        url,
        operator,
        consortium=TELCO_CID,
        name="B2B orders",
        members=[{**keys[m].public_info(), "roles": [r]} for m, r in ROLES.items()],
        template="telco",
        fingerprint=fingerprint,
    )
    clients = {m: MemberClient(url, keys[m], TELCO_CID, fingerprint=fingerprint) for m in ROLES}
    story = TelcoStory(clients)
    try:
        for client in clients.values():
            await client.connect()
        # The genesis notices (welcome, recovery shares) are not part of the story.
        story.out = lambda _line: None
        await story.inbox()
        story.out, story.inboxes = print, {}
        chapters: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("An order with sites, services and devices", story.place_order),
            ("The change example: A..E -> A', B, C', D; a pause and an autoCorrect", story.change),
            ("A postponement", story.postpone),
            ("A serial number bound by agreement", story.bind_serial),
            ("Commissioning after the activation test", story.commission),
            ("A cancel after delivery becomes a recovery", story.cancel_after_delivery),
            ("A stock leak", story.leak),
        ]
        for number, (title, chapter) in enumerate(chapters, start=step + 1):
            print(f"\n{number}. {title}")
            await chapter()
            if chapter == story.change:
                await story.can_read(
                    [
                        "productOrder/PO1",
                        "productOrder/PO1/revision/2",
                        "changePlan/PO1/2",
                        "resourceOrder/PO1/A1",
                        "resourceOrder/PO1/C1",
                        "stock/vendorA/cpe-100/PO1",
                        "stock/vendorB/ont-7/PO1",
                    ]
                )
        print(f"\n{step + len(chapters) + 1}. Reports, each computed by the member from its reads:")
        for member, kind, ident in (
            ("acme", "order", "PO1"),
            ("vendorA", "order", "PO1"),
            ("telco", "order", "PO1"),
            ("telco", "stock", "PO1"),
            ("vendorB", "stock", "PO1"),
            ("acme", "asset", "AS-C1"),
        ):
            await story.report(member, kind, ident)
        print("\n  What each member was told, in TMF event names:")
        for member, notes in story.inboxes.items():
            names = sorted({_brief(n).split(" ")[0] for n in notes if n.kind == "notice"})
            print(f"    {member:<8} {len(notes):>3} notifications: {', '.join(names)}")
    finally:
        for client in clients.values():
            await client.aclose()
