"""Issuing recovery shares: in a commit batch that changes the roster, a new epoch.

A fresh recovery key wraps the consortium's keyring; it is split k-of-n over the active
members, each share sealed to its member and sent in a ``notice`` of the same commit, and
the epoch's record, its pointer and the previous one's withdrawal are staged in the batch's
own storage transaction (see :mod:`consortia.engine.recovery`).
"""

from __future__ import annotations

import hashlib

from consortia._json import JSONObject
from consortia.engine.batch import Batch
from consortia.governance.constitution import Constitution, Member
from consortia.ledger.crypto import KEY_BYTES, wrap
from consortia.ledger.records import RECOVERY_FIELD
from consortia.ledger.recovery import (
    RecoveryRecord,
    Share,
    holder_digest,
    record_name,
    seal_share,
    split_key,
    wrap_aad,
)
from consortia.wire.notification import Notice

__all__ = ["issue_shares"]

_Roster = tuple[int | None, tuple[tuple[str, bytes, bytes], ...]]


def _roster(constitution: Constitution) -> _Roster:
    """Threshold, active members and their keys: a change in this re-issues the shares."""
    return constitution.recovery_threshold, tuple(
        (m.id, m.signing_key.raw, m.encryption_key.raw)
        for m in (constitution.members[i] for i in constitution.active_ids())
    )


def issue_shares(batch: Batch, *, force: bool = False) -> RecoveryRecord | None:
    """Issue new shares in ``batch`` if its active members or their keys changed (or ``force``).

    Stages one ``notice`` per active member (the batch's last seqno is the epoch) and, in the
    batch's own transaction, the record, the pointer to it and the withdrawal of the previous
    one; the last record commits to the new one (``detail["recovery"]``). Returns the record
    staged, or None. The record wraps this consortium's keyring only, never the service keys:
    those would open every consortium's roots (see :mod:`consortia.engine.recovery`).
    """
    committed = batch.base
    last = batch.last_tx
    if last is None:
        return None
    if not force and (
        batch.constitution is committed.constitution
        or _roster(batch.constitution) == _roster(committed.constitution)
    ):
        return None
    constitution = batch.constitution
    members: list[Member] = [constitution.members[i] for i in constitution.active_ids()]
    if not members:
        return None
    (epoch, last_txid), cid = last, batch.cid
    threshold = constitution.recovery_threshold_for(len(members))
    key = batch.random(KEY_BYTES)
    shares = split_key(key, threshold, len(members))
    record = RecoveryRecord(
        cid=cid,
        epoch=epoch,
        threshold=threshold,
        holders={
            x: holder_digest(cid, epoch, x, m.id, m.signing_key)
            for (x, _), m in zip(shares, members, strict=True)
        },
        keyring=wrap(
            key,
            (batch.new_keyring or committed.keyring).to_bytes(),
            wrap_aad(cid, epoch, "keyring"),
        ),
    )
    # The ledger commits to the record, so `ledger verify` finds it deleted or altered.
    batch.note_in_last_record(RECOVERY_FIELD, hashlib.sha256(record.to_bytes()).hexdigest())
    notices = []
    for (x, value), member in zip(shares, members, strict=True):
        share = Share(cid, epoch, x, threshold, value)
        body: JSONObject = {
            "event": "recovery_share",
            "consortium": cid,
            "epoch": epoch,
            "x": x,
            "threshold": threshold,
            "holders": len(members),
            "sealed": seal_share(member.encryption_key, share),
        }
        notices.append(Notice(member.id, "notice", last_txid, None, "recovery", body))
    batch.notify(notices)
    # One transaction with the shares: the record, the pointer, the previous one withdrawn.
    pointer = batch.store.meta_get(record_name(cid))
    batch.rows.meta[record_name(cid, epoch)] = record.to_bytes()
    batch.rows.meta[record_name(cid)] = str(epoch).encode()
    previous = pointer.decode("ascii", errors="replace") if pointer else ""
    if previous.isdigit() and int(previous) != epoch:
        batch.rows.meta[record_name(cid, int(previous))] = b""
    return record
