"""Disaster recovery: issuing members' recovery shares, and recovering without the node key.

Issuing (:func:`issue_shares`): when a consortium is created, and in every commit batch that
changes its active members, their keys or the threshold (``addMember``, ``removeMember``,
``refreshTrustKeys``, ``setRecoveryThreshold``), a fresh 32-byte recovery key wraps the
keyring and the service keys; the key is split k-of-n over the active members (k voted with
``setRecoveryThreshold``, by default ⌊n/2⌋+1) and each share, sealed to the member's X25519
key, rides in a ``notice`` notification (``{"event": "recovery_share", ...}``) of the same
commit. The wrapped copies and the holder digests go to the meta table as the epoch's
:class:`~consortia.ledger.recovery.RecoveryRecord` *before* that commit, so a delivered share
always has its record; the previous epoch's record is withdrawn after it.

Recovering (:class:`RecoverySession`): on a copy of the data directory with no node key,
members submit their shares signed; each must come from a holder the record names. With
k shares per consortium :meth:`RecoverySession.finish` unwraps every keyring, checks the
submitters against the recovered constitution, writes a new node key and re-wraps the
keyrings and the (same) service keys under it. With k-1 it refuses and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consortia._json import JSONObject, loads_strict
from consortia.engine.batch import Batch
from consortia.engine.consortium import ConsortiumRuntime
from consortia.engine.service import ServiceIdentity
from consortia.errors import BadRequest, BadSignature, NotFound
from consortia.governance.constitution import Constitution, Member
from consortia.identity.box import Sealer
from consortia.ledger.crypto import KEY_BYTES, Keyring, LedgerCorrupted, unwrap, wrap
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.recovery import (
    RecoveryRecord,
    Share,
    ShareSubmission,
    check_holder,
    combine_key,
    holder_digest,
    parse_submission,
    record_name,
    seal_share,
    split_key,
    wrap_aad,
)
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import Store
from consortia.notify.messages import Notice

__all__ = ["IssuedShares", "RecoverySession", "issue_shares", "recover"]

_Roster = tuple[int | None, tuple[tuple[str, bytes, bytes], ...]]


def _roster(constitution: Constitution) -> _Roster:
    """Threshold, active members and their keys: a change in this re-issues the shares."""
    return constitution.recovery_threshold, tuple(
        (m.id, m.signing_key.raw, m.encryption_key.raw)
        for m in (constitution.members[i] for i in constitution.active_ids())
    )


@dataclass(frozen=True)
class IssuedShares:
    """An epoch whose shares are staged in a batch; its record is stored before the commit."""

    store: Store
    cid: str
    epoch: int
    record: RecoveryRecord

    def store_record(self) -> None:
        """Before the batch commits: store the record its shares need (an orphan is harmless)."""
        self.store.meta_put(record_name(self.cid, self.epoch), self.record.to_bytes())

    def committed(self) -> None:
        """After the batch is durable: point at this epoch and withdraw the previous one."""
        pointer = self.store.meta_get(record_name(self.cid))
        self.store.meta_put(record_name(self.cid), str(self.epoch).encode())
        previous = pointer.decode("ascii", errors="replace") if pointer else ""
        if previous.isdigit() and int(previous) != self.epoch:
            self.store.meta_put(record_name(self.cid, int(previous)), b"")


def issue_shares(
    batch: Batch, service: ServiceIdentity, *, force: bool = False
) -> IssuedShares | None:
    """Issue new shares in ``batch`` if its active members or their keys changed (or ``force``).

    Stages one ``notice`` per active member (the batch's last seqno is the epoch); call
    :meth:`IssuedShares.store_record` before the commit and :meth:`IssuedShares.committed`
    after it.
    """
    runtime = batch.runtime
    if not batch.rows.txs:
        return None
    if not force and (
        batch.constitution is runtime.constitution
        or _roster(batch.constitution) == _roster(runtime.constitution)
    ):
        return None
    constitution = batch.constitution
    members: list[Member] = [constitution.members[i] for i in constitution.active_ids()]
    if not members:
        return None
    cid, last = runtime.cid, batch.rows.txs[-1]
    epoch, threshold = last.seqno, constitution.recovery_threshold_for(len(members))
    key = runtime.random(KEY_BYTES)
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
            (batch.new_keyring or runtime.keyring).to_bytes(),
            wrap_aad(cid, epoch, "keyring"),
        ),
        service=wrap(key, service.to_bytes(), wrap_aad(cid, epoch, "service")),
    )
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
        notices.append(Notice(member.id, "notice", last.txid, None, "recovery", body))
    batch.notify(notices)
    return IssuedShares(runtime.store, cid, epoch, record)


@dataclass
class _Pending:
    """The shares received for one consortium, by epoch then x-coordinate."""

    records: dict[int, RecoveryRecord] = field(default_factory=dict)
    shares: dict[int, dict[int, ShareSubmission]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Recovered:
    keyring: Keyring
    service: ServiceIdentity


class RecoverySession:
    """Recovery of a data directory that has lost its node key (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        if (data_dir / "node.key").exists():
            raise BadRequest(
                f"{data_dir} still has a node key: recovery opens a copy of the storage "
                "without one; open it with Platform.open instead"
            )
        database = data_dir / "ledger.sqlite"
        if not database.exists():
            raise NotFound(f"no ledger at {database}")
        self.data_dir = data_dir
        self.store = SQLiteStore(database)
        self._pending: dict[str, _Pending] = {cid: _Pending() for cid in self.store.consortia()}

    def __repr__(self) -> str:
        return f"RecoverySession({self.data_dir}, consortia={sorted(self._pending)})"

    def close(self) -> None:
        """Close the storage (a finished session is closed already)."""
        self.store.close()

    def _record(self, cid: str, epoch: int) -> RecoveryRecord:
        pending = self._pending.get(cid)
        if pending is None:
            raise NotFound(f"no consortium {cid!r} in this storage")
        found = pending.records.get(epoch)
        if found is None:
            blob = self.store.meta_get(record_name(cid, epoch))
            if not blob:
                raise BadRequest(
                    f"shares of epoch {epoch} of {cid!r} were replaced by newer ones; "
                    "submit the newest recovery share you were sent"
                )
            found = pending.records[epoch] = RecoveryRecord.from_bytes(blob)
        return found

    def submit(self, body: str) -> Share:
        """Accept one member's signed share; refused unless the record names that holder."""
        submission = parse_submission(body)
        share = submission.share
        record = self._record(share.cid, share.epoch)
        check_holder(record, submission)
        self._pending[share.cid].shares.setdefault(share.epoch, {})[share.x] = submission
        return share

    def status(self) -> dict[str, tuple[int, int]]:
        """Per consortium: (shares received for its best epoch, shares needed)."""
        answer = {}
        for cid, pending in self._pending.items():
            best = (0, 0)
            for epoch, shares in pending.shares.items():
                best = max(best, (len(shares), pending.records[epoch].threshold))
            answer[cid] = best
        return answer

    def _unlock(self, cid: str) -> tuple[RecoveryRecord, list[ShareSubmission], bytes]:
        pending = self._pending[cid]
        for epoch, shares in sorted(pending.shares.items(), reverse=True):
            record = pending.records[epoch]
            if len(shares) >= record.threshold:
                chosen = [shares[x] for x in sorted(shares)]
                key = combine_key([(s.share.x, s.share.value) for s in chosen], record.threshold)
                return record, chosen, key
        have, need = self.status()[cid]
        raise BadRequest(
            f"cannot recover {cid!r}: {have} recovery share(s) submitted, "
            f"{need or 'a majority of the members'} needed"
        )

    def _open(self, cid: str) -> _Recovered:
        record, chosen, key = self._unlock(cid)
        try:
            keyring = Keyring.from_bytes(
                unwrap(key, record.keyring, record.aad("keyring"), what=f"recovery copy of {cid}")
            )
            service = ServiceIdentity.from_bytes(
                unwrap(key, record.service, record.aad("service"), what="service keys")
            )
        except LedgerCorrupted as exc:
            raise BadRequest(f"the shares submitted for {cid!r} do not open it: {exc}") from None
        row = self.store.consortium(cid)
        if row is None:
            raise NotFound(f"no consortium {cid!r} in this storage")
        info = loads_strict(keyring.decrypt(row.info, b"info|" + cid.encode(), what="info"))
        if not isinstance(info, dict):
            raise LedgerCorrupted(f"info of {cid} is not an object")
        runtime = ConsortiumRuntime(
            cid=cid,
            store=self.store,
            keyring=keyring,
            sealer=Sealer(service.encryption),
            service_key=service.signing,
            info=info,
        )
        runtime.reload()
        for submission in chosen:
            member = runtime.constitution.members.get(submission.member)
            if member is None or not member.active or member.signing_key != submission.signing_key:
                raise BadSignature(
                    f"{submission.member!r} is not an active member of {cid!r} with the key "
                    "that signed its share"
                )
        return _Recovered(keyring, service)

    def finish(self) -> None:
        """Recover every consortium, then write a new node key and re-wrap under it.

        Raises (and writes nothing) unless every consortium has enough valid shares.
        """
        if not self._pending:
            raise BadRequest("this storage holds no consortium: there is nothing to recover")
        recovered = {cid: self._open(cid) for cid in sorted(self._pending)}
        node_key = load_or_create_node_key(self.data_dir / "node.key")
        for cid, found in recovered.items():
            self.store.rewrap_keyring(
                cid, wrap(node_key, found.keyring.to_bytes(), b"keyring|" + cid.encode())
            )
        next(iter(recovered.values())).service.save(self.store, node_key)
        self.close()


def recover(data_dir: Path, submissions: Sequence[str] | Mapping[str, Sequence[str]]) -> None:
    """Recover ``data_dir`` (a copy without a node key) from members' signed shares.

    ``submissions`` is a list of signed shares (or lists of them by consortium); afterwards
    :meth:`consortia.engine.Platform.open` opens the directory with its new node key.
    """
    bodies = (
        [b for group in submissions.values() for b in group]
        if isinstance(submissions, Mapping)
        else list(submissions)
    )
    session = RecoverySession(data_dir)
    try:
        for body in bodies:
            session.submit(body)
        session.finish()
    finally:
        session.close()
