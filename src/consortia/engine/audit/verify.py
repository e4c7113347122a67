"""Verifying a whole store: its integrity, its platform-level values, every consortium.

:func:`verify_ledger` opens each consortium with the node key and hands it to an
:class:`~consortia.engine.audit.auditor.Auditor`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from consortia.engine.audit.auditor import Auditor
from consortia.engine.audit.results import ConsortiumAudit, Entry, LedgerDamaged
from consortia.engine.consortium import ConsortiumRuntime
from consortia.engine.recovery.backup import BACKUP_META, ServiceBackup
from consortia.engine.service import ServiceIdentity
from consortia.errors import ConsortiaError
from consortia.identity.box import Sealer
from consortia.ledger.store import AuditStore

__all__ = ["verify_ledger"]


def verify_ledger(
    store: AuditStore, node_key: bytes, *, on_entry: Callable[[Entry], None] | None = None
) -> list[ConsortiumAudit]:
    """Check every consortium in ``store``; raise :class:`LedgerDamaged` at the first damage.

    ``on_entry`` hears each entry, in seqno order, as it is walked (its record decrypted
    and matched its row; a later check may still fail the walk).
    """
    with store.snapshot():
        try:
            store.check_integrity()
            cids = store.consortia()
            strays = sorted(store.cids_in_use() - set(cids))
            # A store that never got past its first start holds no consortium and may hold no
            # service keys yet: nothing to check. Any consortium needs them for its roots.
            if not cids and not strays:
                return []
            service = ServiceIdentity.load(store, node_key)
        except ConsortiaError as exc:
            raise LedgerDamaged(exc.message, consortium=None, seqno=None) from None
        if strays:
            raise LedgerDamaged(
                f"storage holds rows of unknown consortia {strays}: rows were moved or added",
                consortium=None,
                seqno=None,
            )
        _check_meta(store, set(cids), service)
        return [
            Auditor(
                store,
                _open(store, node_key, service, cid),
                node_key,
                service.operator_nonce_key(),
                on_entry=on_entry,
            ).run()
            for cid in cids
        ]


#: The platform-level values a build writes; group 1 is a consortium id where there is one.
_META_NAMES: Final = re.compile(
    r"service-keys|recovery-service-backup|operator-nonce/[0-9a-f]{64}"
    r"|recovery/(.+?)(?:/[0-9]+)?|queue/(.+)"
)


def _check_meta(store: AuditStore, cids: set[str], service: ServiceIdentity) -> None:
    """Every platform-level value is one a build writes, for a consortium the store holds;
    the operator's service-key backup (if any) parses and names these service keys. The
    consortium-level ones (recovery records, queue heads) are checked with their ledgers."""

    def fail(message: str) -> LedgerDamaged:
        return LedgerDamaged(message, consortium=None, seqno=None)

    for name in store.meta_names():
        found = _META_NAMES.fullmatch(name)
        cid = None if found is None else (found.group(1) or found.group(2))
        if found is None or (cid is not None and cid not in cids):
            raise fail(
                f"storage holds a platform value {name!r} that no consortium or build of the "
                "platform wrote: a row was renamed or added"
            )
    backup = store.meta_get(BACKUP_META)
    if backup is not None:
        try:
            sealed = ServiceBackup.from_bytes(backup)
        except ConsortiaError as exc:
            raise fail(f"the operator's service-key backup is damaged: {exc.message}") from None
        if sealed.service_key != service.signing.verify_key:
            raise fail(
                "the operator's service-key backup holds other service keys than this "
                "platform's: a recovery from it would sign with keys members do not pin"
            )


def _open(
    store: AuditStore, node_key: bytes, service: ServiceIdentity, cid: str
) -> ConsortiumRuntime:
    try:
        return ConsortiumRuntime.open(
            store,
            cid,
            node_key=node_key,
            sealer=Sealer(service.encryption),
            service_key=service.signing,
            restore=False,
        )
    except ConsortiaError as exc:
        raise LedgerDamaged(exc.message, consortium=cid, seqno=None) from None
