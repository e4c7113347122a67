"""Listing keys, paging history, and a member's consortia: only what the caller may read,
page after page, and nothing that tells a hidden key from a missing one."""

from __future__ import annotations

from typing import Any

import pytest

from consortia import Committed
from consortia.errors import BadRequest, BadSignature
from consortia.identity.jwt import issue_token
from consortia.identity.keys import MemberKeys
from testkit import js
from world import World

CODE = """
def main(params):
    for k in params["keys"]:
        put(k, {"k": k, "n": params.get("n", 0)}, visible_to=params.get("to"))
    for k in params.get("drop", []):
        delete(k)
    return None
"""


def _put(world: World, keys: list[str], **extra: Any) -> None:
    assert isinstance(world.act("telco", "putMany", js({"keys": keys, **extra})), Committed)


def _listed(world: World, member: str, prefix: str, **kw: Any) -> list[str]:
    """Every key the member lists under ``prefix``, following the cursors."""
    view = world.platform.member_view("acme", member)
    out: list[str] = []
    cursor = None
    for _ in range(100):
        page: Any = view.keys(prefix, cursor=cursor, **kw)
        out += [entry["key"] for entry in page["keys"]]
        cursor = page["next"]
        if cursor is None:
            return out
    raise AssertionError("the listing never ended")


def test_a_listing_holds_only_what_the_member_may_read(world: World) -> None:
    world.install("putMany", CODE)
    shared = [f"box/{i:02d}" for i in range(6)]
    _put(world, shared, to=["vendor"])
    _put(world, [f"box/s{i}" for i in range(4)])  # the submitter's alone
    _put(world, ["box/00", "box/01"], to=[], n=1)  # newer versions hidden from the vendor
    _put(world, [], drop=["box/05"])
    assert _listed(world, "telco", "box/") == [*shared[:5], "box/s0", "box/s1", "box/s2", "box/s3"]
    # The vendor reads the older versions of 00 and 01 (its newest visible), not the rest.
    assert _listed(world, "vendor", "box/") == shared[:5]
    page: Any = world.platform.member_view("acme", "vendor").keys("box/")
    first = page["keys"][0]
    assert first["value"] == {"k": "box/00", "n": 0} and set(first) == {
        "key",
        "value",
        "seqno",
        "txid",
    }
    # Pages of two give the same keys in order, with an opaque cursor between them.
    assert _listed(world, "vendor", "box/", limit=2) == shared[:5]
    assert _listed(world, "installer", "box/") == []
    # A prefix with nothing under it and one with nothing visible answer alike.
    nothing: Any = world.platform.member_view("acme", "installer").keys("nope/")
    hidden: Any = world.platform.member_view("acme", "installer").keys("box/")
    assert nothing["keys"] == hidden["keys"] == [] and nothing["next"] is hidden["next"] is None


def test_listing_refuses_what_it_cannot_read(world: World) -> None:
    view = world.platform.member_view("acme", "telco")
    for prefix, kw, fragment in (
        ("box", {}, "must end with '/'"),
        ("box/", {"limit": 0}, "limit must be within"),
        ("box/", {"cursor": "not-ours"}, "cursor is not one this server returned"),
        ("box/", {"cursor": "a2V5"}, "cursor is not one this server returned"),
    ):
        with pytest.raises(BadRequest, match=fragment):
            view.keys(prefix, **kw)


def test_history_comes_in_pages(world: World) -> None:
    world.install("putMany", CODE)
    for n in range(5):
        _put(world, ["doc/1"], to=["vendor"], n=n)
    view = world.platform.member_view("acme", "vendor")
    whole: Any = view.history("doc/1")
    assert [v["value"]["n"] for v in whole] == [0, 1, 2, 3, 4]
    first: Any = view.history("doc/1", limit=2)
    rest: Any = view.history("doc/1", after=first[-1]["seqno"], limit=2)
    last: Any = view.history("doc/1", after=rest[-1]["seqno"], limit=2)
    assert [v["value"]["n"] for v in first + rest + last] == [0, 1, 2, 3, 4]
    assert view.history("doc/1", after=last[-1]["seqno"]) == []


def test_a_member_finds_its_consortia_and_a_stranger_finds_none(world: World) -> None:
    world.create("beta", ("vendor", "installer"))
    now = world.clock.now

    def mine(keys: MemberKeys) -> list[str]:
        token = issue_token(keys, audience="consortia", now=now)
        return [m["consortium"] for m in js(world.platform.memberships(token))]

    assert mine(world.keys["vendor"]) == ["acme", "beta"]
    assert mine(world.keys["telco"]) == ["acme"]
    # Another key under a member's id, and a token meant for one consortium: nothing.
    assert mine(MemberKeys.generate("vendor")) == []
    wrong_audience = issue_token(world.keys["vendor"], audience="acme", now=now)
    assert world.platform.memberships(wrong_audience) == []
    with pytest.raises(BadSignature):
        world.platform.memberships("not a token")
