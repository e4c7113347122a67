"""``consortia``: parse arguments, call the engine or the identity helpers, render.

No business rule lives here. Exit codes scripts can trust: 0 success, 1 a refusal or failure
reported by the platform, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from consortia import __version__
from consortia.cli.action import add_action_commands
from consortia.errors import ConsortiaError
from consortia.identity.keyfile import save_member_keys
from consortia.identity.keys import MemberKeys, validate_member_id

__all__ = ["main"]


def _keygen(args: argparse.Namespace) -> int:
    member = validate_member_id(args.member, what="--member")
    keys = MemberKeys.generate(member)
    out = Path(args.out or f"{member}.key.json")
    save_member_keys(keys, out, overwrite=args.force)
    public = keys.public_info()
    if args.json:
        print(json.dumps({"key_file": str(out), "member": public}, indent=2))
    else:
        print(f"wrote {out} (mode 0600): private keys of member {member!r}; keep it secret")
        print("public part, to give to the consortium (addMember params):")
        print(json.dumps(public, indent=2))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from consortia.cli.demo import run_demo

    return run_demo(data_dir=Path(args.data) if args.data else None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consortia",
        description="Consortia: a Trusted Execution Platform for consortium order management.",
    )
    parser.add_argument("--version", action="version", version=f"consortia {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="play an in-process scenario and print what each member saw")
    demo.add_argument("--data", help="keep the demo's platform in this folder (default: temporary)")
    demo.set_defaults(run=_demo)

    keygen = sub.add_parser("keygen", help="make a member key file (Ed25519 + X25519, mode 0600)")
    keygen.add_argument("--member", required=True, help="the member id, e.g. telco")
    keygen.add_argument("--out", help="key file path (default: MEMBER.key.json)")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.add_argument("--json", action="store_true", help="machine-readable output")
    keygen.set_defaults(run=_keygen)

    add_action_commands(sub)
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
