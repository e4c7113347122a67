"""The Telco part of ``consortia demo``: one order, a stock leak, and each member's reports.

A second consortium on the same server, from the ``telco`` template: the Telco places an
order with two vendors' devices, vendorA ships its device, and a reservation of two more
parts is left behind (the seed's "leak"). Then each member runs ``consortia report``'s
logic on its own reads: the customer sees order status only, each vendor its own lines,
the Telco all of them.
"""

from __future__ import annotations

from consortia._json import JSON, JSONObject
from consortia.cli.report import member_report, render
from consortia.client import MemberClient, create_consortium
from consortia.identity.keys import MemberKeys, SigningKey

__all__ = ["telco_story"]

TELCO_CID = "telco-b2b"
#: member id -> role in the telco template.
ROLES = {"telco": "seller", "vendorA": "supplier", "vendorB": "supplier", "acme": "customer"}
ORDER: JSONObject = {
    "id": "PO1",
    "projectId": "P1",
    "sites": [{"id": "HQ"}],
    "services": [{"id": "A", "site": "HQ"}, {"id": "B", "site": "HQ"}],
    "devices": [
        {"id": "A1", "part": "cpe-100", "supplier": "vendorA", "site": "HQ", "services": ["A"]},
        {"id": "B1", "part": "ont-7", "supplier": "vendorB", "site": "HQ", "services": ["B"]},
    ],
}


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.splitlines())


async def telco_story(url: str, fingerprint: str, operator: SigningKey, step: int) -> None:
    """Play the Telco story on a running server; ``step`` numbers its first heading."""
    keys = {m: MemberKeys.generate(m) for m in ROLES}
    print(f"\n{step}. A Telco consortium (template 'telco'): a seller, two vendors, a customer.")
    await create_consortium(
        url,
        operator,
        consortium=TELCO_CID,
        name="B2B orders",
        members=[{**keys[m].public_info(), "info": {"role": r}} for m, r in ROLES.items()],
        template="telco",
        fingerprint=fingerprint,
    )
    clients = {m: MemberClient(url, keys[m], TELCO_CID, fingerprint=fingerprint) for m in ROLES}
    try:
        for client in clients.values():
            await client.connect()
        telco = clients["telco"]
        parties: list[JSON] = [{"role": r, "partyId": m} for m, r in ROLES.items() if m != "telco"]
        await telco.call("createProject", {"id": "P1", "relatedParty": parties})
        await telco.call("placeOrder", ORDER)
        print("  telco -> createProject P1, placeOrder PO1 (A1 from vendorA, B1 from vendorB)")
        for state in ("inProgress", "shipped"):
            await clients["vendorA"].call(
                "updateDeviceOrder", {"productOrderId": "PO1", "device": "A1", "state": state}
            )
        print("  vendorA -> updateDeviceOrder A1 inProgress, shipped (consumes its reservation)")
        leak: JSONObject = {
            "supplier": "vendorA",
            "part": "cpe-100",
            "productOrderId": "PO1",
            "quantity": 2,
        }
        await telco.call("reserveStock", leak)
        print("  telco -> reserveStock 2 x cpe-100 at vendorA that no device will use")

        print(f"\n{step + 1}. Reports, each computed by the member from its own reads:")
        for member, kind in (
            ("acme", "order"),
            ("vendorA", "order"),
            ("telco", "order"),
            ("vendorB", "stock"),
            ("telco", "stock"),
        ):
            report = await member_report(clients[member], kind, "PO1")
            print(f"\n  $ consortia report {kind} PO1   # as {member}")
            print(_indent(render(kind, report)))
    finally:
        for client in clients.values():
            await client.aclose()
