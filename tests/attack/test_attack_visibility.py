"""Family 4, authorization and visibility: who reads which transaction, object version and
history entry; permission_denied and not_public; a proposal's txref shown to its requester
only; and an unauthenticated reader who cannot tell an existing consortium from none."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from attack_kit import (
    Member,
    World,
    auth,
    b64d,
    bearer,
    expect_committed,
    expect_error,
    now,
    token_claims,
    world_running,
)

CRM = "crm-secret-txref-4711"
SECRET_V1 = "first-version-marker-v1"
SECRET_V2 = "second-version-marker-v2"
NOOP = "def main(params):\n    return None\n"


@dataclass
class Scene:
    world: World
    t1: str  # telco, visible_to vendor: order/V-1 v1
    t2: str  # vendor, visible_to installer: order/V-1 v2
    t3: str  # telco, visible_to vendor+installer, but put(visible_to=[vendor]): order/V-2
    proposal: str  # telco's addMember of "auditor", with a txref; still open


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    with world_running() as w:
        voters = ["telco", "vendor"]
        w.amend("secretOp", NOOP, voters=voters, permitted=["telco"])
        w.amend(
            "futureOp",
            NOOP,
            voters=voters,
            permissions=[
                {"member": "telco", "execute": True},
                {"member": "installer", "execute": True, "valid_from": now() + 86400 * 365},
            ],
        )
        w.amend("helperInternal", NOOP, voters=voters, scope="internal")
        customer = Member("customer")
        w.members["customer"] = customer
        w.pass_vote("addMember", customer.public_info(), voters)
        t1 = expect_committed(
            w.record("telco", {"key": "order/V-1", "v": SECRET_V1}, visible_to=["vendor"])
        )["txid"]
        t2 = expect_committed(
            w.record("vendor", {"key": "order/V-1", "v": SECRET_V2}, visible_to=["installer"])
        )["txid"]
        t3 = expect_committed(
            w.record(
                "telco",
                {"key": "order/V-2", "to": ["vendor"], "v": "narrowed"},
                visible_to=["vendor", "installer"],
            )
        )["txid"]
        auditor = Member("auditor")
        pending = w.act("telco", "addMember", auditor.public_info(), txref=CRM)
        assert pending.status_code == 202, pending.text
        yield Scene(w, t1, t2, t3, pending.json()["proposal"])


# -- transactions ----------------------------------------------------------------------------

TX_MATRIX = [
    ("t1", "telco", 200),
    ("t1", "vendor", 200),
    ("t1", "installer", 404),
    ("t1", "customer", 404),
    ("t2", "telco", 404),
    ("t2", "vendor", 200),
    ("t2", "installer", 200),
    ("t3", "installer", 200),
    ("t3", "customer", 404),
]


@pytest.mark.parametrize(("tx", "member", "status"), TX_MATRIX)
def test_transaction_visibility(scene: Scene, tx: str, member: str, status: int) -> None:
    txid = getattr(scene, tx)
    answer = scene.world.read(member, f"transactions/{txid}")
    if status == 200:
        assert answer.status_code == 200, answer.text
        assert answer.json()["txid"] == txid
        assert txid.encode() in b64d(answer.json()["record"])
    else:
        expect_error(answer, 404, "not_found")
        assert SECRET_V1 not in answer.text and SECRET_V2 not in answer.text


def test_hidden_and_unknown_transactions_answer_alike(scene: Scene) -> None:
    hidden = scene.world.read("installer", f"transactions/{scene.t1}")
    unknown = scene.world.read("installer", "transactions/" + "c" * 64)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.text.replace(scene.t1, "X") == unknown.text.replace("c" * 64, "X")


def test_receipt_of_a_hidden_transaction_reveals_only_its_digest(scene: Scene) -> None:
    answer = scene.world.read("installer", f"transactions/{scene.t1}/receipt")
    assert answer.status_code == 200, answer.text
    assert SECRET_V1 not in answer.text and "order/V-1" not in answer.text
    seen = scene.world.read("telco", f"transactions/{scene.t1}")
    digest = hashlib.sha256(b64d(seen.json()["record"])).hexdigest()
    assert answer.json()["digest"] == digest


# -- objects and history ---------------------------------------------------------------------

OBJECTS = [
    ("order/V-1", "telco", SECRET_V1),
    ("order/V-1", "vendor", SECRET_V2),
    ("order/V-1", "installer", SECRET_V2),
    ("order/V-1", "customer", None),
    ("order/V-2", "telco", "narrowed"),
    ("order/V-2", "vendor", "narrowed"),
    ("order/V-2", "installer", None),
]


@pytest.mark.parametrize(("key", "member", "value"), OBJECTS)
def test_object_shows_the_newest_visible_version(
    scene: Scene, key: str, member: str, value: str | None
) -> None:
    answer = scene.world.read(member, "object", {"key": key})
    if value is None:
        expect_error(answer, 404, "not_found")
        assert "narrowed" not in answer.text and SECRET_V1 not in answer.text
    else:
        assert answer.status_code == 200, answer.text
        assert answer.json()["value"]["v"] == value


HISTORY = [
    ("order/V-1", "telco", [True, False]),
    ("order/V-1", "vendor", [True, True]),
    ("order/V-1", "installer", [False, True]),
    ("order/V-1", "customer", [False, False]),
    ("order/V-2", "installer", [False]),
]


@pytest.mark.parametrize(("key", "member", "visible"), HISTORY)
def test_history_shows_hidden_versions_as_digests_only(
    scene: Scene, key: str, member: str, visible: list[bool]
) -> None:
    answer = scene.world.read(member, "history", {"key": key})
    assert answer.status_code == 200, answer.text
    entries = answer.json()
    assert [e["visible"] for e in entries] == visible
    for entry, shown in zip(entries, visible, strict=True):
        if shown:
            assert set(entry) == {"seqno", "txid", "value", "visible"}, entry
        else:
            assert set(entry) == {"seqno", "txid", "digest", "visible"}, entry
            assert len(entry["digest"]) == 64
    hidden_values = {SECRET_V1, SECRET_V2, "narrowed"} - {
        e["value"]["v"] for e in entries if e["visible"]
    }
    for marker in hidden_values:
        assert marker not in answer.text


def test_notifications_of_a_hidden_transaction_are_not_delivered(scene: Scene) -> None:
    answer = scene.world.read("installer", "notifications")
    assert answer.status_code == 200
    assert scene.t1 not in answer.text
    customer = scene.world.read("customer", "notifications")
    assert scene.t1 not in customer.text and scene.t2 not in customer.text


# -- permissions -----------------------------------------------------------------------------

DENIED = [
    ("vendor", "secretOp"),
    ("installer", "futureOp"),
    ("customer", "addMember"),
    ("customer", "removeMember"),
    ("customer", "amendConstitution"),
    ("customer", "updatePermissions"),
]


@pytest.mark.parametrize(("member", "action"), DENIED)
def test_permission_denied(scene: Scene, member: str, action: str) -> None:
    params: dict[str, object] = {}
    if action == "removeMember":
        params = {"id": "vendor"}
    expect_error(scene.world.act(member, action, params), 403, "permission_denied")


@pytest.mark.parametrize("action", ["approveAction", "sendNotifications", "helperInternal"])
def test_internal_action_is_not_public(scene: Scene, action: str) -> None:
    expect_error(scene.world.act("telco", action, {}), 403, "not_public")


def test_control_permitted_member_runs_secret_op(scene: Scene) -> None:
    expect_committed(scene.world.act("telco", "secretOp", {}))


def test_vote_on_unknown_proposal_is_not_found(scene: Scene) -> None:
    expect_error(scene.world.vote("vendor", "d" * 64), 404, "not_found")


# -- a proposal's txref ----------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["vendor", "installer", "customer"])
def test_listed_proposal_hides_the_requesters_txref(scene: Scene, reader: str) -> None:
    answer = scene.world.read(reader, "proposals", {"status": "open"})
    assert answer.status_code == 200, answer.text
    mine = [p for p in answer.json() if p.get("proposal") == scene.proposal]
    assert len(mine) == 1, answer.text[:300]
    assert "txref" in mine[0] and mine[0]["txref"] is None, mine[0]
    assert CRM not in answer.text


@pytest.mark.parametrize("reader", ["vendor", "customer"])
def test_single_proposal_hides_the_requesters_txref(scene: Scene, reader: str) -> None:
    answer = scene.world.read(reader, f"proposals/{scene.proposal}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["txref"] is None and CRM not in answer.text


def test_requester_sees_its_own_txref(scene: Scene) -> None:
    listed = scene.world.read("telco", "proposals", {"status": "open"})
    mine = [p for p in listed.json() if p.get("proposal") == scene.proposal]
    assert mine and mine[0]["txref"] == CRM, listed.text[:300]
    single = scene.world.read("telco", f"proposals/{scene.proposal}")
    assert single.json()["txref"] == CRM


@pytest.mark.parametrize("reader", ["vendor", "installer"])
def test_vote_request_notification_hides_the_txref(scene: Scene, reader: str) -> None:
    answer = scene.world.read(reader, "notifications")
    requests = [n for n in answer.json() if n.get("txid") == scene.proposal]
    assert requests, f"{reader} got no notification about the proposal"
    assert all(n["txref"] is None for n in requests), requests
    assert CRM not in answer.text


# -- unauthenticated readers: an existing consortium looks like none ------------------------

UNKNOWN = "zzzz"  # same length as "acme": nothing but the id differs in the two requests


def _tokens(scene: Scene) -> dict[str, Callable[[str], dict[str, str]]]:
    stranger = Member("mallory")
    impostor = Member("telco")  # a guessed member id with the attacker's own key
    return {
        "no-token": lambda cid: {},
        "garbage-token": lambda cid: {"authorization": "Bearer garbage.garbage.garbage"},
        "stranger-token": lambda cid: auth(bearer(stranger, cid)),
        "stranger-expired-token": lambda cid: auth(
            bearer(stranger, cid, claims=token_claims("mallory", cid, iat=now() - 900))
        ),
        "guessed-member-id-token": lambda cid: auth(bearer(impostor, cid)),
    }


TAILS = {
    "constitution": "constitution",
    "proposals": "proposals",
    "proposal": "proposals/{pid}",
    "object": "object?key=order%2FV-1",
    "history": "history?key=order%2FV-1",
    "notifications": "notifications",
    "transaction": "transactions/{t1}",
    "receipt": "transactions/{t1}/receipt",
}
TOKEN_KINDS = [
    "no-token",
    "garbage-token",
    "stranger-token",
    "stranger-expired-token",
    "guessed-member-id-token",
]


@pytest.mark.parametrize("kind", TOKEN_KINDS)
@pytest.mark.parametrize("endpoint", sorted(TAILS))
def test_unauthenticated_read_cannot_tell_a_consortium_exists(
    scene: Scene, endpoint: str, kind: str
) -> None:
    w = scene.world
    tail = TAILS[endpoint].format(pid=scene.proposal, t1=scene.t1)
    header = _tokens(scene)[kind]

    def get(cid: str) -> httpx.Response:
        return w.http.get(f"/v1/consortia/{cid}/{tail}", headers=header(cid))

    existing, unknown = get(w.cid), get(UNKNOWN)
    seen = f"{w.cid}: {existing.status_code} {existing.text} / {UNKNOWN}: {unknown.text}"
    assert existing.status_code in (401, 403, 404), existing.text
    assert (existing.status_code, existing.text.replace(w.cid, "<cid>")) == (
        unknown.status_code,
        unknown.text.replace(UNKNOWN, "<cid>"),
    ), seen
    assert SECRET_V1 not in existing.text
