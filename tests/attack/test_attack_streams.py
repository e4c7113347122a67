"""Family 6, notification streams (SSE): a removed member's open stream ends within 3 s and
carries nothing created after the removal; a token's ``exp`` ends a stream; resumption with
Last-Event-ID; per-member stream caps; sealed bodies open only for their member."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from attack_kit import (
    Member,
    SseReader,
    World,
    auth,
    bearer,
    box_opens,
    expect_committed,
    expect_error,
    expect_refused,
    nonce,
    now,
    open_box,
    read_stream,
    token_claims,
    world_running,
)

LIFETIME_LEFT = 3  # seconds a short token has to live when its stream opens


@pytest.fixture(scope="module")
def w() -> Iterator[World]:
    with world_running() as world:
        for index in range(3):  # a few notifications in every founder's queue
            expect_committed(world.record("telco", {"order": f"S-{index}"}, visible_to=["vendor"]))
        yield world


def _short_token(member: Member, cid: str) -> tuple[str, int]:
    claims = token_claims(member.id, cid, iat=now() - (600 - LIFETIME_LEFT), lifetime=600)
    return bearer(member, cid, claims=claims), int(claims["exp"])


def _wait_open(readers: list[SseReader], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    for reader in readers:
        reader.opened.wait(max(0.0, deadline - time.monotonic()))


def _ids(reader: SseReader) -> list[int]:
    return [int(e.id) for e in reader.events if e.event == "notification" and e.id is not None]


@dataclass
class Capped:
    readers: list[SseReader]
    exps: list[int]
    ninth_status: int
    ninth_body: str
    resumed_from: int
    newest: int


@pytest.fixture(scope="module")
def capped(w: World) -> Capped:
    """Eight streams of one member (the cap), one resuming from Last-Event-ID, all with tokens
    that expire in a few seconds; then a ninth, which must be refused."""
    listing = w.read("vendor", "notifications")
    ids = [n["id"] for n in listing.json()]
    assert len(ids) >= 3, listing.text
    resumed_from = ids[-2]
    readers, exps, threads = [], [], []
    for index in range(8):
        token, exp = _short_token(w.members["vendor"], w.cid)
        reader, thread = read_stream(
            w, token, last_event_id=str(resumed_from) if index == 0 else None, after="0"
        )
        readers.append(reader)
        exps.append(exp)
        threads.append(thread)
    _wait_open(readers)
    ninth = w.http.get(
        f"/v1/consortia/{w.cid}/notifications",
        headers={"accept": "text/event-stream", **auth(w.token("vendor"))},
    )
    for thread in threads:
        thread.join(LIFETIME_LEFT + 10)
    return Capped(readers, exps, ninth.status_code, ninth.text, resumed_from, ids[-1])


def test_eight_streams_open(capped: Capped) -> None:
    assert [r.status for r in capped.readers] == [200] * 8, [r.body for r in capped.readers]


def test_ninth_stream_of_a_member_is_rate_limited(capped: Capped) -> None:
    assert capped.ninth_status == 429, capped.ninth_body
    assert json.loads(capped.ninth_body)["error"]["code"] == "rate_limited"


def test_token_expiry_ends_every_stream_with_end_then_eof(capped: Capped) -> None:
    for reader, exp in zip(capped.readers, capped.exps, strict=True):
        assert reader.done.is_set() and reader.eof_at is not None, reader.error
        assert reader.kinds()[-1:] == ["end"], reader.kinds()
        # The stream ends at exp (monotonic vs wall clock: compare through now()).
        assert now() - exp <= 8, f"stream ended {now() - exp} s after its token's exp"


def test_last_event_id_resumes_after_that_id(capped: Capped) -> None:
    ids = _ids(capped.readers[0])
    assert ids == list(range(capped.resumed_from + 1, capped.newest + 1)), ids


def test_after_zero_replays_the_whole_queue(capped: Capped) -> None:
    ids = _ids(capped.readers[1])
    assert ids and ids[0] == 1 and ids == sorted(set(ids)) and ids[-1] == capped.newest, ids


def test_stream_events_are_sealed_for_their_member(w: World, capped: Capped) -> None:
    notes = [json.loads(e.data) for e in capped.readers[1].events if e.event == "notification"]
    assert notes
    for note in notes:
        assert box_opens(note["sealed"], w.members["vendor"], w.service_x)
        assert not box_opens(note["sealed"], w.members["telco"], w.service_x)
        assert not box_opens(
            note["sealed"], w.members["vendor"], bytes(Member("x").encryption.public_key)
        )


def test_json_notifications_open_with_the_service_key(w: World) -> None:
    answer = w.read("telco", "notifications")
    assert answer.status_code == 200
    for note in answer.json():
        body = json.loads(open_box(note["sealed"], w.members["telco"], w.service_x))
        assert body is None or isinstance(body, (dict, list, str, int))


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 30])
def test_bad_last_event_id_is_refused_before_streaming(w: World, value: str) -> None:
    answer = w.http.get(
        f"/v1/consortia/{w.cid}/notifications",
        headers={"accept": "text/event-stream", "last-event-id": value, **auth(w.token("telco"))},
    )
    expect_error(answer, 400, "bad_request")


@pytest.mark.parametrize("kind", ["none", "garbage", "stranger"])
def test_stream_without_a_member_token_is_refused(w: World, kind: str) -> None:
    headers = {"accept": "text/event-stream"}
    if kind == "garbage":
        headers["authorization"] = "Bearer x.y.z"
    elif kind == "stranger":
        headers.update(auth(bearer(Member("mallory"), w.cid)))
    answer = w.http.get(f"/v1/consortia/{w.cid}/notifications", headers=headers)
    expect_refused(answer, [401], ["bad_signature", "unknown_member"])
    assert "event:" not in answer.text


# -- removal ends the removed member's stream -------------------------------------------------


@dataclass
class Removal:
    reader: SseReader
    committed_at: float
    later_proposal: str
    later_record: str


@pytest.fixture(scope="module")
def removal(w: World, capped: Capped) -> Removal:
    token = bearer(w.members["installer"], w.cid)  # lives 300 s: only the removal can end it
    reader, thread = read_stream(w, token, after="0")
    _wait_open([reader])
    time.sleep(0.3)  # let the stream deliver the backlog and wait for news
    pending = w.act("telco", "removeMember", {"id": "installer"})
    assert pending.status_code == 202, pending.text
    vote = w.vote("vendor", pending.json()["proposal"])
    assert vote.status_code == 200, vote.text
    committed_at = time.monotonic()
    # Created after the removal: a governance proposal every active member hears about, and
    # a record that names everyone still active.
    later = w.act("telco", "addMember", Member("newcomer").public_info())
    assert later.status_code == 202, later.text
    record = expect_committed(w.record("telco", {"order": nonce()}, visible_to=["vendor"]))
    thread.join(5)
    return Removal(reader, committed_at, later.json()["proposal"], record["txid"])


def test_removed_members_stream_ends_within_3_s(removal: Removal) -> None:
    reader = removal.reader
    assert reader.status == 200, reader.body
    assert reader.eof_at is not None, f"stream still open 5 s after the removal ({reader.error})"
    assert reader.eof_at - removal.committed_at <= 3.0


def test_removed_members_stream_ends_with_error_or_end(removal: Removal) -> None:
    kinds = removal.reader.kinds()
    assert kinds and kinds[-1] in ("error", "end"), kinds


def test_removed_member_gets_nothing_created_after_removal(removal: Removal) -> None:
    for event in removal.reader.events:
        assert removal.later_proposal not in event.data, event
        assert removal.later_record not in event.data, event


def test_removed_member_cannot_reopen_a_stream(w: World, removal: Removal) -> None:
    answer = w.http.get(
        f"/v1/consortia/{w.cid}/notifications",
        headers={"accept": "text/event-stream", **auth(w.token("installer"))},
    )
    expect_refused(answer, [401, 403], ["member_suspended", "unknown_member"])


def test_removed_member_cannot_read_or_act(w: World, removal: Removal) -> None:
    expect_refused(
        w.read("installer", "notifications"), [401, 403], ["member_suspended", "unknown_member"]
    )
    expect_error(w.record("installer", {"order": "late"}), 403, "member_suspended")
