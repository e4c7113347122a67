"""Scenario: consortia isolated from each other; restarts lose nothing; storage is ciphertext."""

from __future__ import annotations

from conftest import FOUNDERS, World

from consortia import Committed, MemberKeys, Pending, Platform
from consortia.errors import ConsortiaError
from consortia.governance.constitution import Constitution
from testkit import js


def test_two_consortia_cannot_see_each_other(world: World) -> None:
    telco_acme = world.keys["telco"]
    world.keys["telco"] = MemberKeys.generate("telco")  # same id, another company's key
    world.create("globex", ["telco", "supplier"])
    globex_telco = world.keys["telco"]
    # acme's telco key does not act in globex, and vice versa.
    world.keys["telco"] = telco_acme
    world.refused(
        "bad_signature",
        world.sign("telco", "voteFor", {"proposal": "p", "ballot": "approve"}, cid="globex"),
        cid="globex",
    )
    world.keys["telco"] = globex_telco
    world.refused(
        "bad_signature", world.sign("telco", "voteFor", {"proposal": "p", "ballot": "approve"})
    )
    # acme's vendor is unknown in globex.
    world.refused(
        "unknown_member",
        world.sign("vendor", "voteFor", {"proposal": "p", "ballot": "approve"}, cid="globex"),
        cid="globex",
    )
    # A proposal of acme cannot be voted from globex.
    customer = world.add_keys("customer")
    world.keys["telco"] = telco_acme
    pending = world.act("telco", "addMember", customer.public_info())
    assert isinstance(pending, Pending)
    world.keys["telco"] = globex_telco
    try:
        world.act(
            "supplier", "voteFor", {"proposal": pending.proposal, "ballot": "approve"}, cid="globex"
        )
    except ConsortiaError as exc:
        assert exc.code == "not_found"
    else:
        raise AssertionError("a globex member voted on an acme proposal")
    # Reads are per consortium: each sees only its own members and transactions.
    acme = js(world.platform.member_view("acme", "vendor").constitution())
    globex = js(world.platform.member_view("globex", "supplier").constitution())
    assert {m["id"] for m in acme["members"]} == set(FOUNDERS)
    assert {m["id"] for m in globex["members"]} == {"telco", "supplier"}
    try:
        world.platform.member_view("globex", "supplier").transaction(pending.txid)
    except ConsortiaError as exc:
        assert exc.code == "not_found"
    else:
        raise AssertionError("globex read an acme transaction")
    try:
        world.platform.member_view("acme", "supplier")
    except ConsortiaError as exc:
        assert exc.code == "unknown_member"
    else:
        raise AssertionError("a globex member read acme")


def test_restart_in_the_middle_of_a_vote_loses_nothing(world: World) -> None:
    customer = world.add_keys("customer")
    body = world.sign("telco", "addMember", customer.public_info(), nonce="restart-nonce-0001")
    pending = world.platform.execute("acme", body)
    assert isinstance(pending, Pending)
    queue_before = world.platform.member_view("acme", "vendor").notifications()
    world.reopen()
    # The proposal, the queues and the nonce all survived.
    assert world.platform.member_view("acme", "vendor").notifications() == queue_before
    assert [p["proposal"] for p in world.platform.member_view("acme", "installer").proposals()] == [
        pending.proposal
    ]
    world.refused(
        "replay", world.sign("telco", "removeMember", {"id": "vendor"}, nonce="restart-nonce-0001")
    )
    assert world.platform.execute("acme", body) == pending
    done = world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    assert isinstance(done, Committed)
    world.reopen()
    members = js(world.platform.member_view("acme", "customer").constitution())["members"]
    assert "customer" in [m["id"] for m in members]
    again = world.platform.execute("acme", body)
    assert isinstance(again, Committed)
    assert again.seqno == done.seqno + 1  # the resumed request followed its deciding ballot


def test_storage_holds_no_plaintext(world: World) -> None:
    customer = world.add_keys("customer")
    pending = world.act("telco", "addMember", customer.public_info(), txref="crm-order-4711")
    assert isinstance(pending, Pending)
    world.act("vendor", "voteFor", {"proposal": pending.proposal, "ballot": "approve"})
    world.platform.close()
    raw = b"".join(p.read_bytes() for p in world.data.glob("ledger.sqlite*"))
    for needle in [
        "telco",
        "vendor",
        "installer",
        "customer",
        "acme consortium",
        "crm-order-4711",
        "gov/members",
        "addMember",
        "voteFor",
        "consortium_created",
        str(customer.signing.public_jwk()["x"]),
    ]:
        assert needle.encode() not in raw, needle
    # the node key file is private
    assert (world.data / "node.key").stat().st_mode & 0o077 == 0
    world.reopen()


def test_a_ledger_without_its_node_key_is_not_silently_rekeyed(world: World) -> None:
    world.platform.close()
    (world.data / "node.key").unlink()
    try:
        world.reopen()
    except ConsortiaError as exc:
        assert exc.code == "unavailable" and "recovery" in exc.message
    else:
        raise AssertionError("opened a ledger with a brand-new node key")
    assert not (world.data / "node.key").exists()
    # put a key back so the fixture can close cleanly
    world.platform = Platform.open(world.data.parent / "elsewhere", operator_keys=[])


def test_a_template_refusing_its_founders_is_a_bad_request(world: World) -> None:
    from consortia.governance.templates import Template

    def picky(founders: object) -> Constitution:
        raise ValueError("a seller is required")

    world.platform.templates["picky"] = Template("picky", "refuses everyone", picky)
    try:
        world.create("picky-co", ["a1"], template="picky")
    except ConsortiaError as exc:
        assert exc.code == "bad_request" and "a seller is required" in exc.message
    else:
        raise AssertionError("the template's refusal was lost")
