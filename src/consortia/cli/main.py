"""``consortia``: parse arguments, call the engine or the identity helpers, render.

No business rule lives here. Exit codes scripts can trust: 0 success, 1 a refusal or failure
reported by the platform, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from consortia import __version__
from consortia._json import JSONObject
from consortia.cli.action import add_action_commands
from consortia.cli.attest import add_attest_parser, add_service_parser
from consortia.cli.insights import add_insights_parser
from consortia.cli.member import add_action_show, add_member_parsers, add_receipt_fetch
from consortia.cli.node import add_node_parser
from consortia.cli.recovery import add_recovery_parser
from consortia.cli.report import add_report_parser
from consortia.cli.serve import add_serve_parser
from consortia.errors import BadRequest, ConsortiaError
from consortia.governance.parse import parse_roles
from consortia.identity.keyfile import save_member_keys
from consortia.identity.keys import MemberKeys, validate_member_id

__all__ = ["main"]


def _public_path(key_file: Path) -> Path:
    """``vendorA.key.json`` -> ``vendorA.pub.json`` (else the key file's name + ``.pub.json``)."""
    name = key_file.name
    stem = name[: -len(".key.json")] if name.endswith(".key.json") else name
    return key_file.with_name(f"{stem}.pub.json")


def _keygen(args: argparse.Namespace) -> int:
    member = validate_member_id(args.member, what="--member")
    roles = parse_roles(list(args.role or []), what="--role", error=BadRequest)
    out = Path(args.out or f"{member}.key.json")
    pub = _public_path(out)
    if pub.exists() and not args.force:
        raise BadRequest(f"{pub} already exists; use --force to replace it")
    keys = MemberKeys.generate(member)
    save_member_keys(keys, out, overwrite=args.force)
    public: JSONObject = {**keys.public_info(), "roles": list(roles)}
    # The public part is what the consortium needs (creation's --member, addMember's
    # params): no secret in it, so it is written readable, beside the key file.
    pub.write_text(json.dumps(public, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(
            json.dumps({"key_file": str(out), "public_file": str(pub), "member": public}, indent=2)
        )
    else:
        print(f"wrote {out} (mode 0600): private keys of member {member!r}; keep it secret")
        held = ", ".join(roles) if roles else "no role (add --role ROLE)"
        print(f"wrote {pub}: its public part, roles {held}; give this file to the consortium")
        print("  (consortia consortium create --member FILE, or the params of addMember)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    if not args.in_process:
        from consortia.cli.netdemo import run_network_demo

        return run_network_demo(data_dir=Path(args.data) if args.data else None)
    from consortia.cli.demo import run_demo

    return run_demo(data_dir=Path(args.data) if args.data else None)


def _receipt_verify(args: argparse.Namespace) -> int:
    from consortia.cli.verify import receipt_verify

    return receipt_verify(args)


def _ledger_verify(args: argparse.Namespace) -> int:
    from consortia.cli.verify import ledger_verify

    return ledger_verify(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consortia",
        description="Consortia: a Trusted Execution Platform for consortium order management.",
    )
    parser.add_argument("--version", action="version", version=f"consortia {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="start a local server, play a scenario through the SDK, print what each saw"
    )
    demo.add_argument("--data", help="keep the demo's platform in this folder (default: temporary)")
    demo.add_argument("--in-process", action="store_true", help="no server: call the engine")
    demo.set_defaults(run=_demo)

    keygen = sub.add_parser("keygen", help="make a member key file (Ed25519 + X25519, mode 0600)")
    keygen.add_argument("--member", required=True, help="the member id, e.g. telco")
    keygen.add_argument(
        "--role",
        action="append",
        metavar="ROLE",
        help="a role the member is to hold, e.g. supplier (repeat for several; default: none); "
        "written into MEMBER.pub.json",
    )
    keygen.add_argument(
        "--out", help="key file path (default: MEMBER.key.json; the public part goes beside it)"
    )
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.add_argument("--json", action="store_true", help="machine-readable output")
    keygen.set_defaults(run=_keygen)

    receipt = sub.add_parser("receipt", help="work with transaction receipts")
    receipt_sub = receipt.add_subparsers(dest="receipt_command", required=True, metavar="ACTION")
    check = receipt_sub.add_parser(
        "verify", help="verify a receipt offline against the service key you pinned"
    )
    check.add_argument("file", metavar="FILE", help="the receipt (JSON); - reads standard input")
    check.add_argument(
        "--service-key",
        required=True,
        metavar="KEY",
        help="the service's public JWK: a file holding it (or GET /v1/service's answer), "
        "or the JWK JSON itself",
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(run=_receipt_verify)
    add_receipt_fetch(receipt_sub)

    ledger = sub.add_parser("ledger", help="check a platform's stored ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    walk = ledger_sub.add_parser(
        "verify",
        help="walk every consortium's ledger: records decrypt, digests, Merkle nodes and "
        "signed roots match; exit 1 at the first bad seqno",
    )
    walk.add_argument(
        "--data", required=True, metavar="DIR", help="the platform's data directory (node.key)"
    )
    walk.add_argument(
        "--store",
        metavar="URL",
        default=os.environ.get("CONSORTIA_STORE"),
        help="the PostgreSQL store the platform serves from (as `serve --store`; or "
        "CONSORTIA_STORE); default: DIR/ledger.sqlite",
    )
    walk.add_argument("--json", action="store_true", help="machine-readable output")
    walk.add_argument(
        "--entries",
        action="store_true",
        help="also list every entry as a JSON line: consortium, seqno, txid and kind "
        "(genesis, request, ballot, voted, alert); no action names or values",
    )
    walk.set_defaults(run=_ledger_verify)

    add_serve_parser(sub)
    add_attest_parser(sub)
    add_member_parsers(sub)
    add_report_parser(sub)
    add_action_show(add_action_commands(sub))
    add_service_parser(sub)
    add_insights_parser(sub)
    add_recovery_parser(sub)
    add_node_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``consortia`` console command."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConsortiaError as exc:
        print(f"consortia: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return code
