"""``consortia receipt verify`` and ``consortia ledger verify``: read files, call, render.

The checks themselves live in :mod:`consortia.ledger.receipts` (offline, pure) and
:mod:`consortia.engine.audit` (a whole store); this module only finds their inputs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict
from pathlib import Path

from consortia._json import JSON, loads_strict
from consortia.cli._input import read_input
from consortia.engine.audit import ENTRY_KINDS, ConsortiumAudit, Entry, LedgerDamaged, verify_ledger
from consortia.engine.datadir import DataDir
from consortia.identity.keyfile import load_public_jwk
from consortia.identity.keys import VerifyKey
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.receipts import verify_receipt
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import AuditStore

__all__ = ["ledger_verify", "receipt_verify"]

#: A receipt is a few kilobytes; the cap keeps a wrong path from reading a huge file.
_MAX_RECEIPT_BYTES = 1 << 20


def _read_receipt(name: str) -> JSON:
    data = read_input(name, "receipt", limit=_MAX_RECEIPT_BYTES)
    return loads_strict(data, what=f"receipt {name}")


def service_key_from(argument: str) -> VerifyKey:
    """The pinned service key: a JWK as JSON text, or a file holding one.

    The document of ``GET /v1/service`` is accepted too: its ``service_key`` is used.
    """
    if argument.lstrip().startswith("{"):
        doc = loads_strict(argument, what="--service-key")
    else:
        doc = load_public_jwk(Path(argument))
    if isinstance(doc, dict) and "kty" not in doc and "service_key" in doc:
        doc = doc["service_key"]
    return VerifyKey.from_jwk(doc, what="--service-key")


def receipt_verify(args: argparse.Namespace) -> int:
    """Verify one receipt offline against the pinned service key; 0 when it holds."""
    key = service_key_from(args.service_key)
    verified = verify_receipt(_read_receipt(args.file), key)
    if args.json:
        print(json.dumps({"ok": True, **verified.to_json()}, indent=2))
        return 0
    signed = datetime.datetime.fromtimestamp(verified.signed_at, tz=datetime.UTC)
    print(
        f"receipt OK: transaction {verified.txid} is seqno {verified.seqno} of consortium "
        f"{verified.consortium!r}\n"
        f"  in the tree of {verified.tree_size} transactions with root {verified.root},\n"
        f"  signed by the service key at {signed.isoformat()}"
    )
    return 0


def _kinds(audit: ConsortiumAudit) -> str:
    return ", ".join(f"{audit.kinds.get(kind, 0)} {kind}" for kind in ENTRY_KINDS)


def _notifications(audit: ConsortiumAudit) -> str:
    notes = []
    if audit.notifications_before_commitments:
        notes.append(f"{audit.notifications_before_commitments} stored before records committed")
    if audit.notifications_awaiting_record:
        notes.append(f"{audit.notifications_awaiting_record} awaiting the next record")
    return f"{audit.notifications} notifications" + (f" ({', '.join(notes)})" if notes else "")


def _recovery(audit: ConsortiumAudit) -> str:
    if audit.recovery_epoch is None:
        return "no recovery record"
    older = "" if audit.recovery_committed else " (issued by an older build: parsed, not matched)"
    return f"recovery record of epoch {audit.recovery_epoch}{older}"


def ledger_verify(args: argparse.Namespace) -> int:
    """Walk the whole ledger in a data directory; 0 when every check holds, 1 otherwise."""
    data = Path(args.data)
    node_key = load_node_key(DataDir(data).node_key)
    store: AuditStore
    if getattr(args, "store", None):
        from consortia.ledger.postgres import PostgresStore  # psycopg only when asked

        store = PostgresStore(args.store, read_only=True)
    else:
        store = SQLiteStore(DataDir(data).ledger, read_only=True)

    def listed(entry: Entry) -> None:
        print(json.dumps(asdict(entry)))

    try:
        audits = verify_ledger(store, node_key, on_entry=listed if args.entries else None)
    except LedgerDamaged as exc:
        if args.json:
            body = {"ok": False, "consortium": exc.consortium, "seqno": exc.seqno}
            print(json.dumps({**body, "reason": exc.message}, indent=2))
        print(f"ledger verify FAILED: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        # With --entries the whole output is JSON lines: the summary is the last one.
        summary = {"ok": True, "consortia": [asdict(a) for a in audits]}
        print(json.dumps(summary, indent=None if args.entries else 2))
        return 0
    for audit in audits:
        print(
            f"consortium {audit.consortium!r}: {audit.tree_size} transactions "
            f"({_kinds(audit)}), "
            f"{audit.signed_roots} signed roots, {audit.versions} state versions, "
            f"{_notifications(audit)}, {audit.proposals} proposals, {_recovery(audit)}: OK "
            f"(root {audit.root})"
        )
    print(f"ledger OK: {len(audits)} consortia verified in {store.path}")
    return 0
