"""Scenario: "who sees what" (PROTOCOL.md section 7, TELCO.md's visibility example)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from conftest import World

from consortia import Committed, Pending
from consortia._json import JSON, JSONObject
from consortia.errors import ConsortiaError
from testkit import js

WRITE_ORDER = """
def main(params):
    key = "order/" + params["order"]
    if "only" in params:
        put(key, params["data"], visible_to=params["only"])
    else:
        put(key, params["data"])
    return {"key": key, "seen_before": get(key) != None}
"""

SPLIT_ORDER = """
def main(params):
    # One transaction hands each vendor its own part and nobody else's.
    for part in params["parts"]:
        put("order/O-9/" + part["vendor"], part["items"], visible_to=[part["vendor"]])
    notify([p["vendor"] for p in params["parts"]], {"order": "O-9", "event": "parts ready"})
    return len(params["parts"])
"""


def vote_in(world: World, name: str, code: str) -> None:
    params: JSONObject = {
        "name": name,
        "scope": "public",
        "language": "starlark",
        "code": code,
        "permissions": [{"member": m, "execute": True} for m in world.keys],
        "voting": {"voters": "any", "majority": 1, "veto": []},
    }
    pending = world.act("telco", "amendConstitution", params)
    assert isinstance(pending, Pending)
    done = world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    assert isinstance(done, Committed)


def test_three_member_visibility_example(world: World) -> None:
    """M1 -> [M2]; M2 -> [M3]; M3 -> [M1, M2] on the same object (TELCO.md)."""
    m1, m2, m3 = "telco", "vendor", "installer"
    vote_in(world, "writeOrder", WRITE_ORDER)
    v1 = world.act(m1, "writeOrder", {"order": "O-1", "data": {"v": 1}}, visible_to=[m2])
    v2 = world.act(m2, "writeOrder", {"order": "O-1", "data": {"v": 2}}, visible_to=[m3])
    v3 = world.act(m3, "writeOrder", {"order": "O-1", "data": {"v": 3}}, visible_to=[m1, m2])
    assert isinstance(v1, Committed) and isinstance(v2, Committed) and isinstance(v3, Committed)

    def seen(member: str) -> list[int]:
        return [
            js(h)["value"]["v"]
            for h in world.platform.member_view("acme", member).history("order/O-1")
            if h["visible"]
        ]

    assert seen(m1) == [1, 3]  # its own and M3's, never M2's
    assert seen(m2) == [1, 2, 3]  # all three
    assert seen(m3) == [2, 3]  # M2's and its own, never M1's
    for member, newest in [(m1, 3), (m2, 3), (m3, 3)]:
        assert js(world.platform.member_view("acme", member).object("order/O-1"))["value"] == {
            "v": newest
        }
    # Hidden versions appear as seqno, txid and digest only; the digest is the SHA-256 of
    # the record that its audience reads.
    history = world.platform.member_view("acme", m1).history("order/O-1")
    hidden = [h for h in history if not h["visible"]]
    assert [h["txid"] for h in hidden] == [v2.txid] and set(hidden[0]) == {
        "seqno",
        "txid",
        "digest",
        "visible",
    }
    record = world.platform.member_view("acme", m2).transaction(v2.txid)
    raw = base64.urlsafe_b64decode(str(record["record"]) + "==")
    assert hashlib.sha256(raw).hexdigest() == hidden[0]["digest"]
    # Transaction records follow the same audiences.
    for member, txid, allowed in [
        (m1, v2.txid, False),
        (m3, v1.txid, False),
        (m3, v2.txid, True),
        (m1, v3.txid, True),
        ("customer", v3.txid, False),
    ]:
        if member not in world.keys:
            world.add_keys(member)
            pending = world.act("telco", "addMember", world.keys[member].public_info())
            assert isinstance(pending, Pending)
            world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
        view = world.platform.member_view("acme", member)
        if allowed:
            assert view.transaction(txid)["txid"] == txid
        else:
            with pytest.raises(ConsortiaError) as caught:
                view.transaction(txid)
            assert caught.value.code == "not_found"
    # A member outside every audience sees no value at all.
    with pytest.raises(ConsortiaError) as caught:
        world.platform.member_view("acme", "customer").object("order/O-1")
    assert caught.value.code == "not_found"


def test_one_transaction_hands_each_vendor_its_own_part(world: World) -> None:
    vote_in(world, "splitOrder", SPLIT_ORDER)
    parts: list[JSON] = [
        {"vendor": "vendor", "items": ["router"]},
        {"vendor": "installer", "items": ["survey"]},
    ]
    done = world.act("telco", "splitOrder", {"parts": parts})
    assert isinstance(done, Committed)
    vendor = world.platform.member_view("acme", "vendor")
    installer = world.platform.member_view("acme", "installer")
    assert js(vendor.object("order/O-9/vendor"))["value"] == ["router"]
    assert js(installer.object("order/O-9/installer"))["value"] == ["survey"]
    for view, other in [(vendor, "order/O-9/installer"), (installer, "order/O-9/vendor")]:
        with pytest.raises(ConsortiaError):
            view.object(other)
    # The record itself is the submitter's only (visible_to was empty).
    with pytest.raises(ConsortiaError):
        vendor.transaction(done.txid)
    assert world.platform.member_view("acme", "telco").transaction(done.txid)["seqno"] == done.seqno
    # The notice is a deliberate disclosure: both got it, with no more than the code sent.
    for member in ("vendor", "installer"):
        notices = [b for k, b in world.notes(member) if k == "notice"]
        assert {"order": "O-9", "event": "parts ready"} in notices
    assert [b for k, b in world.notes("telco") if k == "result"][-1] == 2


def test_governance_is_visible_to_every_member(world: World) -> None:
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info(), visible_to=[])
    assert isinstance(pending, Pending)
    # Every member sees a governance proposal and its outcome, whatever visible_to said.
    assert [p["proposal"] for p in world.platform.member_view("acme", "installer").proposals()] == [
        pending.proposal
    ]
    done = world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    assert isinstance(done, Committed)
    for member in ("installer", "customer"):
        view = world.platform.member_view("acme", member)
        assert view.transaction(pending.txid)["txid"] == pending.txid
        assert view.object("gov/members/customer")["key"] == "gov/members/customer"


def test_action_code_cannot_write_governance_keys(world: World) -> None:
    vote_in(world, "sneaky", 'def main(params):\n    put("gov/members/mallory", {})\n')
    world.refused("scope_violation", world.sign("telco", "sneaky", {}))
