"""Finishing a recovery: unwrap every keyring from k shares, then re-key the storage.

:class:`RecoverySession` receives shares as :class:`~consortia.engine.recovery.intake.ShareIntake`
does; :meth:`RecoverySession.finish` unwraps each consortium's keyring from k of its shares,
checks the submitters against the recovered constitution and the restored service key
against the stored roots, writes a new node key and re-wraps under it. :func:`recover` is
the whole procedure in one call.
"""

from __future__ import annotations

import hmac
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from consortia.engine.consortium import ConsortiumRuntime
from consortia.engine.datadir import DataDir
from consortia.engine.recovery.intake import ShareIntake
from consortia.engine.service import ServiceIdentity
from consortia.errors import BadRequest, BadSignature, ConsortiaError, NotFound
from consortia.identity.box import Sealer
from consortia.identity.keys import EncryptionKey
from consortia.ledger.crypto import Keyring, LedgerCorrupted, unwrap
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.receipts import verify_signed_root
from consortia.ledger.recovery import RecoveryRecord, combine_key
from consortia.ledger.sealed import open_info, wrap_keyring

__all__ = ["RecoverySession", "recover"]

#: Most k-subsets of the submitted shares tried to get past a wrong one (see _open).
_MAX_SUBSETS: Final = 2000


@dataclass(frozen=True)
class _Recovered:
    keyring: Keyring


class RecoverySession(ShareIntake):
    """Recovery of a data directory that has lost its node key.

    See :mod:`consortia.engine.recovery` for the procedure.

    Thread-safe: the HTTP service calls it from worker threads.
    """

    # -- finishing ------------------------------------------------------------------------

    def _open_keyring(self, cid: str, record: RecoveryRecord, key: bytes) -> Keyring | None:
        try:
            plain = unwrap(key, record.keyring, record.aad("keyring"), what=f"keyring of {cid}")
        except LedgerCorrupted:
            return None  # not the recovery key: a wrong share is among these
        return Keyring.from_bytes(plain)

    def _runtime(self, cid: str, keyring: Keyring, service: ServiceIdentity) -> ConsortiumRuntime:
        row = self.store.consortium(cid)
        if row is None:
            raise NotFound(f"no consortium {cid!r} in this storage")
        info = open_info(keyring, cid, row.info)
        runtime = ConsortiumRuntime(
            cid=cid,
            store=self.store,
            keyring=keyring,
            sealer=Sealer(service.encryption),
            service_key=service.signing,
            info=info,
        )
        runtime.reload()
        return runtime

    def _check_service_key(self, runtime: ConsortiumRuntime, service: ServiceIdentity) -> None:
        """The restored signing key signed this consortium's newest root, as authenticated.

        :meth:`restore_service` checked the plain root rows already; only now, with the
        keyring, is the row's MAC checkable, so rows and a backup swapped together by
        someone who can write the storage (keys of their own, sealed to the operator's
        public key) are refused here, before anything is written.
        """
        cid = runtime.cid
        row = self.store.latest_signed_root(cid)
        if row is None or not hmac.compare_digest(
            runtime.signed_root_mac(row.tree_size, row.previous, row.jws), row.mac
        ):
            raise BadSignature(
                f"the newest signed root of {cid!r} in this storage is not the platform's own "
                "(its MAC does not check): the storage was altered; recover from another copy"
            )
        try:
            verify_signed_root(row.jws, service.signing.verify_key)
        except BadSignature:
            raise BadSignature(
                f"the service keys restored are not the ones that signed {cid!r}'s roots: "
                "the service-key backup or the storage was altered; recover from another copy"
            ) from None

    def _open(self, cid: str, service: ServiceIdentity) -> _Recovered:
        """Unwrap ``cid``'s keyring from k of its shares, whose submitters are still active.

        Shamir shares carry no check of their own, so a holder's wrong share (a damaged
        file, or sabotage) shows only as a key that does not unwrap; with more than k shares
        in, k-subsets are tried (at most _MAX_SUBSETS) until one unwraps and all its
        submitters are active members with the key that signed.
        """
        pending = self._pending[cid]
        failure: ConsortiaError | None = None
        for epoch, shares in sorted(pending.shares.items(), reverse=True):
            record = pending.records[epoch]
            if len(shares) < record.threshold:
                continue
            runtime: ConsortiumRuntime | None = None
            subsets = itertools.combinations(sorted(shares), record.threshold)
            for xs in itertools.islice(subsets, _MAX_SUBSETS):
                chosen = [shares[x] for x in xs]
                key = combine_key([(s.share.x, s.share.value) for s in chosen], record.threshold)
                keyring = self._open_keyring(cid, record, key)
                if keyring is None:
                    failure = failure or BadRequest(
                        f"the {len(shares)} shares submitted for {cid!r} do not open its "
                        "recovery record: one is not the share its member was sent; the "
                        "members should check their share files (more shares can get past it)"
                    )
                    continue
                if runtime is None:
                    runtime = self._runtime(cid, keyring, service)
                    self._check_service_key(runtime, service)
                members = runtime.constitution.members
                stale = sorted(
                    s.member
                    for s in chosen
                    if (m := members.get(s.member)) is None
                    or not m.active
                    or m.signing_key != s.signing_key
                )
                if not stale:
                    return _Recovered(keyring)
                failure = BadSignature(
                    f"{', '.join(map(repr, stale))} of {cid!r} are no longer active members with "
                    "the key that signed their share; shares of active members are needed"
                )
        if failure is not None:
            raise failure
        have, need = self.status()[cid]
        raise BadRequest(
            f"cannot recover {cid!r}: {have} recovery share(s) submitted, "
            f"{need or 'a majority of the members'} needed"
            + ("" if need else " (it has no recovery record: its shares were never issued)")
        )

    def finish(self) -> None:
        """Recover every consortium, then write a new node key and re-wrap under it.

        Raises (and writes nothing) unless the service keys are restored and every
        consortium has enough valid shares. Crash-safe: the new key gets its name
        ``node.key`` only after every keyring and the service keys are re-wrapped under it,
        so an interrupted finish leaves a copy that a new session recovers again.
        """
        with self._lock:
            if self.complete:
                return
            if not self._pending:
                raise BadRequest("this storage holds no consortium: there is nothing to recover")
            service = self._service
            if service is None:
                raise BadRequest(
                    "the service keys are not restored: they are recovered only through the "
                    "operator (RecoverySession.restore_service with the key that "
                    "`consortia recovery backup` sealed them to)"
                )
            recovered: dict[str, _Recovered] = {}
            for cid, pending in sorted(self._pending.items()):
                try:
                    recovered[cid] = self._open(cid, service)
                    pending.problem = None
                except ConsortiaError as exc:
                    if self._progress_of(cid, pending).ready:
                        pending.problem = exc.message  # k shares in, and still no key
                    raise
            staged = self.data_dir / "node.key.recovering"
            node_key = load_or_create_node_key(staged)
            for cid, found in recovered.items():
                self.store.rewrap_keyring(cid, wrap_keyring(node_key, cid, found.keyring))
            service.save(self.store, node_key)
            os.replace(staged, DataDir(self.data_dir).node_key)
            dir_fd = os.open(self.data_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self.complete = True
            self.close()


def recover(
    data_dir: Path,
    submissions: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    backup_key: EncryptionKey,
) -> None:
    """Recover ``data_dir`` (a copy without a node key) from members' signed shares.

    ``submissions`` is a list of signed shares (or lists of them by consortium);
    ``backup_key`` opens the operator's service-key backup. Afterwards
    :meth:`consortia.engine.Platform.open` opens the directory with its new node key.
    """
    bodies = (
        [b for group in submissions.values() for b in group]
        if isinstance(submissions, Mapping)
        else list(submissions)
    )
    session = RecoverySession(data_dir)
    try:
        session.restore_service(backup_key)
        for body in bodies:
            session.submit(body)
        session.finish()
    finally:
        session.close()
