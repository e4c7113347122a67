"""The seed's Telco stories through the member SDK against a real TLS server.

Each test creates its own consortium on one served platform and plays the stories of
``make demo`` (consortia.cli.telcodemo) up to the one it checks, then asserts what each
member can and cannot read and which notifications (TMF event names) each received.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from consortia import MemberKeys
from consortia.cli.telcodemo import ROLES, TelcoStory
from consortia.client import MemberClient, Notification, create_consortium
from consortia.errors import ConsortiaError, NotFound
from testkit import TLSServer, tls_server

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    with tls_server(tmp_path_factory.mktemp("telco-http")) as served:
        yield served


@asynccontextmanager
async def consortium(server: TLSServer) -> AsyncIterator[TelcoStory]:
    """A fresh Telco consortium and its members' connected clients, told silently."""
    cid = f"telco-{next(_ids)}"
    keys = {m: MemberKeys.generate(m) for m in ROLES}
    await create_consortium(
        server.url,
        server.operator,
        consortium=cid,
        name="B2B orders",
        members=[{**keys[m].public_info(), "info": {"role": r}} for m, r in ROLES.items()],
        template="telco",
        fingerprint=server.pin,
    )
    clients = {m: MemberClient(server.url, keys[m], cid, fingerprint=server.pin) for m in ROLES}
    lines: list[str] = []
    try:
        for client in clients.values():
            await client.connect()
        story = TelcoStory(clients, out=lines.append)
        await story.inbox()  # the genesis notices: every test starts from an empty inbox
        story.inboxes.clear()
        yield story
    finally:
        for client in clients.values():
            await client.aclose()


def play(server: TLSServer, scenario: Callable[[TelcoStory], Awaitable[None]]) -> None:
    async def run() -> None:
        async with consortium(server) as story:
            await scenario(story)

    asyncio.run(run())


def events(notes: list[Notification]) -> list[str]:
    """The TMF event names of notices, in order."""
    return [
        str(n.body["eventType"])
        for n in notes
        if n.kind == "notice" and isinstance(n.body, dict) and "eventType" in n.body
    ]


def body(note: Notification) -> Any:
    """A notification's opened body, for indexing in assertions."""
    return note.body


def kinds(notes: list[Notification]) -> list[str]:
    return [n.kind for n in notes]


async def value(story: TelcoStory, member: str, key: str) -> Any:
    """The newest value of ``key`` that ``member`` may read (NotFound otherwise)."""
    found: Any = await story.clients[member].object(key)
    return found["value"]


async def value_of(answer: Awaitable[Any]) -> Any:
    return await answer


async def hidden(story: TelcoStory, member: str, key: str) -> bool:
    try:
        await story.clients[member].object(key)
    except NotFound:
        return True
    return False


def test_an_order_reaches_each_party_with_what_it_may_know(server: TLSServer) -> None:
    async def scenario(story: TelcoStory) -> None:
        await story.place_order()
        told = story.inboxes
        assert events(told["vendorA"]) == ["ResourceOrderStateChangeEvent"]
        assert body(told["vendorA"][0])["event"]["resourceOrder"] == [
            {"id": "A1", "productOrderId": "PO1", "state": "acknowledged"},
            {"id": "D1", "productOrderId": "PO1", "state": "acknowledged"},
        ]
        assert events(told["vendorB"]) == ["ResourceOrderStateChangeEvent"]
        assert "A1" not in str(told["vendorB"][0].body)
        assert events(told["acme"]) == ["ProductOrderStateChangeEvent"]
        assert told["fitter"] == []
        assert kinds(told["telco"]).count("result") == 2

        header = await value(story, "acme", "productOrder/PO1")
        assert "state" not in header and header["revision"] == 1
        assert "vendorA" not in str(header) and "cpe-100" not in str(header)
        status = await value(story, "acme", "productOrder/PO1/state")
        assert status == {
            "@type": "ProductOrderState",
            "id": "PO1",
            "state": "acknowledged",
            "revision": 1,
        }
        table = await story.can_read(
            ["productOrder/PO1/revision/1", "resourceOrder/PO1/A1", "resourceOrder/PO1/D2"]
        )
        assert table["productOrder/PO1/revision/1"] == {
            "telco": True,
            "vendorA": False,
            "vendorB": False,
            "fitter": False,
            "acme": False,
        }
        assert [m for m, ok in table["resourceOrder/PO1/A1"].items() if ok] == ["telco", "vendorA"]
        assert [m for m, ok in table["resourceOrder/PO1/D2"].items() if ok] == ["telco", "vendorB"]
        assert await hidden(story, "vendorB", "stock/vendorA/cpe-100/PO1")

    play(server, scenario)


def test_the_change_example_pauses_a1_and_recovers_d2(server: TLSServer) -> None:
    async def scenario(story: TelcoStory) -> None:
        await story.place_order()
        await story.change()
        plan = await value(story, "telco", "changePlan/PO1/2")
        assert {i["target"]: i["action"] for i in plan["serviceItem"]} == {
            "A": "modify",
            "B": "noChange",
            "C": "modify",
            "D": "noChange",
            "E": "delete",
        }
        assert plan["state"] == "completed"  # A1 was resumed
        a1 = await value(story, "vendorA", "resourceOrder/PO1/A1")
        d2 = await value(story, "vendorB", "resourceOrder/PO1/D2")
        c1 = await value(story, "vendorB", "resourceOrder/PO1/C1")
        assert (a1["state"], d2["state"], c1["state"]) == ("cancelled", "recovered", "acknowledged")
        # Each supplier heard of its own devices only: vendorA of the pause, vendorB not.
        told = story.inboxes
        assert "ProductOrderJeopardyAlertEvent" in events(told["vendorA"])
        assert "ProductOrderJeopardyAlertEvent" not in events(told["vendorB"])
        assert all("D2" not in str(n.body) and "C1" not in str(n.body) for n in told["vendorA"])
        assert all("A1" not in str(n.body) for n in told["vendorB"])
        mine = await value(story, "vendorB", "changePlan/PO1/2/vendorB")
        assert {i["target"] for i in mine["resourceItem"]} == {"C1", "D2"}
        assert await hidden(story, "vendorA", "changePlan/PO1/2/vendorB")
        assert await hidden(story, "vendorB", "changePlan/PO1/2")
        # The customer follows the order's state, never the devices or the plan.
        states = [
            body(n)["event"]["productOrder"]["state"]
            for n in told["acme"]
            if events([n]) == ["ProductOrderStateChangeEvent"]
        ]
        assert states == ["acknowledged", "inProgress", "held", "inProgress", "acknowledged"]
        assert all("resourceOrder" not in str(n.body) for n in told["acme"])
        for key in ("changePlan/PO1/2", "resourceOrder/PO1/C1", "productOrder/PO1/revision/2"):
            assert await hidden(story, "acme", key)
        # vendorB's delivery and recovery of D2 moved the order's state: vendorB may read that
        # state (it wrote it), never the header with the other suppliers' services.
        for vendor in ("vendorA", "vendorB"):
            assert await hidden(story, vendor, "productOrder/PO1")
        assert (await value(story, "vendorB", "productOrder/PO1/state"))["state"] == "acknowledged"
        assert await hidden(story, "vendorA", "productOrder/PO1/state")
        # Stock stays balanced: D2's consumption came back, A1's reservation was released.
        stock_b = await value(story, "vendorB", "stock/vendorB/ont-7/PO1")
        assert stock_b["balance"]["PO1"] == {"reserve": 2, "consume": 1, "release": 0, "return": 1}
        stock_a = await value(story, "vendorA", "stock/vendorA/cpe-100/PO1")
        assert stock_a["balance"]["PO1"] == {"reserve": 2, "consume": 0, "release": 1, "return": 0}

    play(server, scenario)


def test_a_postponement_moves_dates_for_those_concerned(server: TLSServer) -> None:
    async def scenario(story: TelcoStory) -> None:
        await story.place_order()
        before = len(story.inboxes["fitter"])
        await story.postpone()
        header = await value(story, "acme", "productOrder/PO1")
        assert (header["requestedCompletionDate"], header["revision"]) == ("2027-04-15", 2)
        revision = await value(story, "telco", "productOrder/PO1/revision/2")
        assert revision["supplementType"] == "dueDate"
        assert "ResourceOrderAttributeValueChangeEvent" in events(story.inboxes["vendorA"])
        assert "ProductOrderAttributeValueChangeEvent" in events(story.inboxes["acme"])
        assert len(story.inboxes["fitter"]) == before
        d2 = await value(story, "vendorB", "resourceOrder/PO1/D2")
        assert d2["requestedDeliveryDate"] == "2027-04-15"

    play(server, scenario)


def test_a_serial_is_bound_by_agreement_and_commissioning_needs_a_passed_test(
    server: TLSServer,
) -> None:
    async def scenario(story: TelcoStory) -> None:
        await story.place_order()
        await story.change()
        proposal = await story.bind_serial()
        # The proposal was seen by its requester and its voter (the seller) only.
        assert (await value_of(story.clients["telco"].proposal(proposal)))["status"] == "approved"
        for member in ("vendorA", "fitter", "acme"):
            with pytest.raises(NotFound):
                await story.clients[member].proposal(proposal)
        told = story.inboxes
        assert "vote_request" in kinds(told["telco"])
        assert "vote_request" not in kinds(told["vendorA"]) + kinds(told["acme"])
        assert "vote_result" in kinds(told["vendorB"])
        asset = await value(story, "acme", "resource/AS-C1")
        assert (asset["serialNumber"], asset["assetLifecycleStatus"]) == (
            "SN-ONT7-0042",
            "delivered",
        )
        assert await hidden(story, "vendorA", "resource/AS-C1")
        # A serial, once bound, stays: a second binding fails even with the endorsement.
        again = await story.clients["vendorB"].submit(
            "bindSerial", {"resourceId": "AS-C1", "serialNumber": "SN-OTHER"}
        )
        await story.clients["telco"].vote(str(again.proposal))
        fresh = await story.inbox()
        (result,) = [n for n in fresh["vendorB"] if n.kind == "vote_result"]
        assert body(result)["outcome"] == "failed"
        assert "already carries serial SN-ONT7-0042" in str(result.body)
        asset = await value(story, "telco", "resource/AS-C1")
        assert asset["serialNumber"] == "SN-ONT7-0042"

        await story.commission()
        asset = await value(story, "acme", "resource/AS-C1")
        assert asset["assetLifecycleStatus"] == "commissioned"
        messages = [exc.message for exc in story.refusals]
        assert any("until a serial is bound" in m for m in messages)
        assert any("commissioned needs a passed activation test" in m for m in messages)
        assert "ResourceStateChangeEvent" in events(told["acme"])
        assert "ResourceSerialBindEvent" not in events(told["acme"])

    play(server, scenario)


def test_a_cancel_after_delivery_becomes_a_recovery(server: TLSServer) -> None:
    async def scenario(story: TelcoStory) -> None:
        await story.place_order()
        await story.cancel_after_delivery()
        states = [
            body(n)["event"]["productOrder"]["state"]
            for n in story.inboxes["acme"]
            if events([n]) == ["ProductOrderStateChangeEvent"]
            and body(n)["event"]["productOrder"]["id"] == "PO2"
        ]
        assert states == ["acknowledged", "inProgress", "pendingCancellation", "cancelled"]
        f1 = await value(story, "vendorA", "resourceOrder/PO2/F1")
        assert f1["state"] == "recovered"
        stock = await value(story, "vendorA", "stock/vendorA/cpe-100/PO2")
        assert stock["balance"]["PO2"] == {"reserve": 1, "consume": 1, "release": 0, "return": 1}
        assert await hidden(story, "vendorB", "stock/vendorA/cpe-100/PO2")
        # Nothing moves a cancelled order any more.
        with pytest.raises(ConsortiaError) as caught:
            await story.clients["telco"].call("cancelOrder", {"id": "PO2"})
        assert caught.value.code == "action_failed"
        assert "PO2 is cancelled" in caught.value.message

    play(server, scenario)


def test_the_stock_report_shows_the_leak_to_those_who_may_see_it(server: TLSServer) -> None:
    async def scenario(story: TelcoStory) -> None:
        await story.place_order()
        await story.change()
        await story.leak()
        telco: Any = await story.report("telco", "stock", "PO1")
        lines = {(line["supplier"], line["part"]): line for line in telco["lines"]}
        assert lines["vendorA", "cpe-100"]["leak"] == 2
        assert lines["vendorB", "ont-7"]["leak"] == 0
        vendor_b: Any = await story.report("vendorB", "stock", "PO1")
        assert [line["supplier"] for line in vendor_b["lines"]] == ["vendorB"]
        customer: Any = await story.report("acme", "order", "PO1")
        assert customer["devices"] == []
        assert customer["header"]["state"] == "acknowledged"
        assert customer["hidden"]["revisions"] == 2

    play(server, scenario)
