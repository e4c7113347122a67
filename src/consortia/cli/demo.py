"""``consortia demo``: a short in-process story, printed as each member saw it.

Three founders (a Telco, a vendor, an installer) create a consortium, vote a customer in,
vote in a Starlark action, and pass an order object along M1 -> M2 -> M3 with visibility
constraints (the seed's "key feature"). Then each member's notifications and reads are shown.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from consortia import MemberKeys, Pending, Platform, SigningKey, open_notification
from consortia._json import JSON, JSONObject
from consortia.engine import Outcome
from consortia.errors import ConsortiaError
from consortia.wire import sign_action, sign_creation

__all__ = ["ORDER_ACTION", "record_order_amendment", "run_demo"]

#: The demo's one domain action: write an order object for the request's audience.
ORDER_ACTION = """
def main(params):
    key = "order/" + params["order"]
    put(key, {"status": params["status"], "by": caller()})
    return {"key": key, "status": params["status"]}
"""

CID = "acme-fiber"
MEMBERS = ("telco", "vendor", "installer")


def record_order_amendment() -> JSONObject:
    """The amendConstitution params that vote ORDER_ACTION in as ``recordOrder``."""
    return {
        "name": "recordOrder",
        "scope": "public",
        "language": "starlark",
        "code": ORDER_ACTION,
        "permissions": [{"member": m, "execute": True} for m in MEMBERS],
        "voting": {"voters": "any", "majority": 1, "veto": []},
    }


def _show(value: JSON) -> str:
    return json.dumps(value, sort_keys=True)


class _Demo:
    def __init__(self, platform: Platform, operator: SigningKey) -> None:
        self.platform = platform
        self.operator = operator
        self.keys = {m: MemberKeys.generate(m) for m in (*MEMBERS, "customer")}

    def act(
        self, member: str, action: str, params: JSONObject, visible_to: tuple[str, ...] = ()
    ) -> Outcome:
        body = sign_action(
            self.keys[member],
            consortium=CID,
            action=action,
            params=params,
            now=int(time.time()),
            visible_to=visible_to,
            txref=f"{member}-{action}",
        )
        outcome = self.platform.execute(CID, body)
        print(f"  {member:>9} -> {action}: {_show(outcome.to_wire())}")
        return outcome

    def vote(self, proposal: Outcome, voter: str) -> None:
        assert isinstance(proposal, Pending)  # noqa: S101 - the demo's own flow
        self.act(voter, "voteFor", {"proposal": proposal.proposal, "ballot": "approve"})


def run_demo(data_dir: Path | None = None) -> int:
    """Play the story; print what each member saw. Returns the exit code."""
    with tempfile.TemporaryDirectory(prefix="consortia-demo-") as tmp:
        folder = data_dir or Path(tmp)
        operator = SigningKey.generate()
        platform = Platform.open(folder, operator_keys=[operator.verify_key])
        try:
            _story(_Demo(platform, operator))
        except ConsortiaError as exc:
            print(f"demo stopped: {exc.code}: {exc.message}")
            return 1
        finally:
            platform.close()
    return 0


def _story(demo: _Demo) -> None:
    platform = demo.platform
    print("1. The operator creates the consortium with three founders (template 'default').")
    created = platform.create_consortium(
        sign_creation(
            demo.operator,
            consortium=CID,
            name="Acme fiber roll-out",
            members=[demo.keys[m].public_info() for m in MEMBERS],
            now=int(time.time()),
        )
    )
    print(f"  genesis: {_show(created.to_wire())}")

    print("2. The Telco proposes the enterprise customer as a member; the vendor approves.")
    demo.vote(demo.act("telco", "addMember", demo.keys["customer"].public_info()), "vendor")

    print("3. The Telco proposes a Starlark action 'recordOrder'; the installer approves.")
    demo.vote(demo.act("telco", "amendConstitution", record_order_amendment()), "installer")

    print("4. The order object passes M1 -> M2 -> M3 with visibility constraints.")
    demo.act("telco", "recordOrder", {"order": "O-1", "status": "acknowledged"}, ("vendor",))
    demo.act("vendor", "recordOrder", {"order": "O-1", "status": "shipped"}, ("installer",))
    demo.act(
        "installer", "recordOrder", {"order": "O-1", "status": "installed"}, ("telco", "vendor")
    )

    print("\nWhat each member saw:")
    service = platform.service.encryption.public_key
    for member in (*MEMBERS, "customer"):
        view = platform.member_view(CID, member)
        print(f"\n== {member} ==")
        for note in view.notifications():
            body = open_notification(note, demo.keys[member], service)
            print(f"  [{note['id']}] {note['kind']:<12} {note['action']:<18} {_show(body)[:110]}")
        try:
            print(f"  order/O-1 now: {_show(view.object('order/O-1'))}")
        except ConsortiaError as exc:
            print(f"  order/O-1 now: ({exc.code})")
        try:
            for entry in view.history("order/O-1"):
                shown = (
                    entry["value"]
                    if entry["visible"]
                    else f"hidden, digest {str(entry['digest'])[:16]}..."
                )
                print(f"    seqno {entry['seqno']}: {_show(shown)}")
        except ConsortiaError as exc:
            print(f"    history: ({exc.code})")
