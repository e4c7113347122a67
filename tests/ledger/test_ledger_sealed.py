"""Encryption at rest (ledger/sealed.py): each row opens only where it was written."""

from __future__ import annotations

import dataclasses

import pytest

from consortia.ledger.crypto import Keyring, LedgerCorrupted
from consortia.ledger.sealed import SealedRows, Write, parent_of

KEYRING = Keyring.generate()


def _rows(cid: str = "acme") -> SealedRows:
    return SealedRows(cid, KEYRING)


def test_a_version_opens_where_it_was_written_and_nowhere_else() -> None:
    rows = _rows()
    write = Write("order/O-1", {"status": "new"}, ("telco",))
    version, name, digest = rows.seal_version(write, 7, "ab" * 32)
    opened = rows.open_version(version)
    assert (opened.key, opened.value, opened.seqno, opened.audience) == (
        "order/O-1",
        {"status": "new"},
        7,
        ("telco",),
    )
    assert opened.visible_to("telco") and not opened.visible_to("vendor")
    assert rows.open_name(name) == "order/O-1"
    assert name.parent_hash == rows.dir_hash("order/") and len(digest) > 0
    # Names never reach storage in the clear.
    assert b"O-1" not in version.blob + name.blob + version.name_hash
    for moved in (
        dataclasses.replace(version, seqno=8),  # another row
        dataclasses.replace(version, name_hash=rows.name_hash("order/O-2")),  # another key
    ):
        with pytest.raises(LedgerCorrupted):
            rows.open_version(moved)
    with pytest.raises(LedgerCorrupted):
        _rows("other").open_version(version)  # another consortium


def test_proposals_and_notifications_are_bound_to_their_row() -> None:
    rows = _rows()
    proposal = rows.seal_proposal("p-1", is_open=True, stored={"id": "p-1"})
    assert rows.open_proposal(proposal.pid_hash, proposal.blob) == {"id": "p-1"}
    with pytest.raises(LedgerCorrupted):
        rows.open_proposal(rows.proposal_hash("p-2"), proposal.blob)
    note = rows.seal_notification("vendor", 3, {"id": 3, "kind": "notice"}, committed_in=5)
    assert rows.open_notification(note) == ({"id": 3, "kind": "notice"}, 5)
    with pytest.raises(LedgerCorrupted):
        rows.open_notification(dataclasses.replace(note, nid=4))
    with pytest.raises(LedgerCorrupted):
        rows.open_notification(dataclasses.replace(note, member_hash=rows.member_hash("telco")))


def test_keyed_hashes_differ_by_purpose_and_consortium_secret() -> None:
    rows = _rows()
    assert rows.name_hash("x") != rows.member_hash("x") != rows.proposal_hash("x")
    assert rows.nonce_hash("telco", "n-1") != rows.nonce_hash("vendor", "n-1")
    assert SealedRows("acme", Keyring.generate()).name_hash("x") != rows.name_hash("x")
    assert parent_of("a/b/c") == "a/b/" and parent_of("top") == ""
