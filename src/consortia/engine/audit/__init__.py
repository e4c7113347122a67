"""``consortia ledger verify``: walk every consortium of a store and check it end to end.

For each consortium, with the node key and nothing else: the keyring and info open; every
record decrypts (its AEAD binds it to its consortium and seqno), matches its digest, names
its own seqno, txid and consortium, and its request hashes to its txid; the Merkle tree
rebuilt from the records equals every stored node and every signed root, each signed by the
service key; and every other row (state versions, key names, nonces, notifications,
proposals) decrypts and agrees with the records. Each record commits to the notification
queue entries stored under it, so an entry deleted (the newest of a queue too), added,
altered or moved is reported at the record that committed to it. So a flipped byte, a
truncated file, or a row deleted, added or moved in storage is reported, with the first bad
seqno where the damage belongs to one.

Verification raises :class:`LedgerDamaged`; it never returns a bool.

The package, one module per part:

- :mod:`~consortia.engine.audit.results`: entry kinds, what a verified consortium reports,
  and :class:`LedgerDamaged`;
- :mod:`~consortia.engine.audit.verify`: :func:`verify_ledger`, the whole store, and the
  platform-level values;
- :mod:`~consortia.engine.audit.auditor`: one consortium's walk: state versions, records,
  leaves, Merkle nodes and signed roots;
- :mod:`~consortia.engine.audit.rows`: the consortium's other rows (directory, proposals,
  nonces, its recovery record);
- :mod:`~consortia.engine.audit.queues`: notification queues against the records that commit
  to them;
- :mod:`~consortia.engine.audit.state`: what the walk gathers as it goes.
"""

from consortia.engine.audit.results import (
    ENTRY_KINDS,
    ConsortiumAudit,
    Entry,
    LedgerDamaged,
    entry_kind,
)
from consortia.engine.audit.verify import verify_ledger

__all__ = [
    "ENTRY_KINDS",
    "ConsortiumAudit",
    "Entry",
    "LedgerDamaged",
    "entry_kind",
    "verify_ledger",
]
