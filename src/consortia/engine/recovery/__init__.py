"""Disaster recovery: issuing members' recovery shares, and recovering without the node key.

Issuing (:func:`issue_shares`): when a consortium is created, and in every commit batch that
changes its active members, their keys or the threshold (``addMember``, ``removeMember``,
``refreshTrustKeys``, ``setRecoveryThreshold``), a fresh 32-byte recovery key wraps the
keyring; the key is split k-of-n over the active members (k voted with
``setRecoveryThreshold``, by default ⌊n/2⌋+1) and each share, sealed to the member's X25519
key, rides in a ``notice`` notification (``{"event": "recovery_share", ...}``) of the same
commit. The wrapped keyring and the holder digests go to the meta table as the epoch's
:class:`~consortia.ledger.recovery.RecoveryRecord` *in* that commit's storage transaction
(with the pointer to it and the previous epoch's withdrawal), so a delivered share always
has its record and a crash leaves either the old epoch or the new one.

The platform-wide service keys (they sign every consortium's roots and box every member's
notifications) are in no consortium's record: k members of one consortium must not get a
key that works on the others. They are recovered only through the operator: while the TEP
still has its node key, the operator seals them to a key of its own
(:func:`backup_service_keys`, ``consortia recovery backup``), and a recovery opens that
backup with the operator's private key (:meth:`RecoverySession.restore_service`), checked
against the newest signed root of every consortium: first as stored, then at finish against
the row's MAC, which only the unwrapped keyring authenticates.

Recovering (:class:`RecoverySession`): on a copy of the data directory with no node key,
members submit their shares signed; each must come from a holder the record names. With
k shares per consortium and the service keys restored, :meth:`RecoverySession.finish`
unwraps every keyring, checks the submitters against the recovered constitution, writes a
new node key and re-wraps the keyrings and the (same) service keys under it. With k-1 it
refuses and writes nothing.

The package, one module per part:

- :mod:`~consortia.engine.recovery.shares`: issuing a consortium's shares in a commit batch;
- :mod:`~consortia.engine.recovery.backup`: the operator's sealed service-key backup;
- :mod:`~consortia.engine.recovery.progress`: how far a recovery is, as members see it;
- :mod:`~consortia.engine.recovery.intake`: receiving members' shares and the service keys;
- :mod:`~consortia.engine.recovery.session`: :class:`RecoverySession`, finishing a recovery
  (unwrapping the keyrings, writing the new node key), and :func:`recover`.
"""

from consortia.engine.recovery.backup import BACKUP_META, ServiceBackup, backup_service_keys
from consortia.engine.recovery.progress import ConsortiumProgress, RecoveryProgress
from consortia.engine.recovery.session import RecoverySession, recover
from consortia.engine.recovery.shares import issue_shares

__all__ = [
    "BACKUP_META",
    "ConsortiumProgress",
    "RecoveryProgress",
    "RecoverySession",
    "ServiceBackup",
    "backup_service_keys",
    "issue_shares",
    "recover",
]
