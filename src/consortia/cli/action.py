"""``consortia action check FILE``: help for action authors, with nothing committed.

Compiles the code exactly as amendConstitution would (syntax, structure, size, literal
``call`` targets), then, if asked, runs ``main(params)`` against a given state in the same
sandbox the platform uses and prints the result, the writes and the notices.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from consortia._json import JSONObject
from consortia.cli._input import json_arg
from consortia.errors import BadRequest, ConsortiaError
from consortia.sandbox import ActionRuntime, MemoryHost

__all__ = ["add_action_commands"]


#: The file a pack's actions share (the Telco pack's helpers), found beside the action.
SHARED_CODE = "common.star"


def _shared_code(path: Path) -> Path | None:
    """The pack's shared code beside ``path``, unless ``path`` is that file itself."""
    shared = path.parent / SHARED_CODE
    return shared if path.name != SHARED_CODE and shared.is_file() else None


def _check(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        code = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read {path}: {exc}") from None
    name = args.name or path.stem
    shared = _shared_code(path)
    if shared is not None:
        # A pack's action travels with its shared helpers (action code cannot load()), in
        # the order the pack's template votes it: the action's own code first.
        code = code.rstrip("\n") + "\n\n\n" + shared.read_text(encoding="utf-8")
    params = json_arg(args.params, "--params") or {}
    state = json_arg(args.state, "--state") or {}
    if not isinstance(params, dict) or not isinstance(state, dict):
        raise BadRequest("--params and --state must be JSON objects")
    report: JSONObject = {"action": name, "shared_code": None if shared is None else str(shared)}
    with ActionRuntime(isolation="process") as runtime:
        compiled = runtime.compile(name, code)
        report["compiled"] = True
        report["code_hash"] = compiled.code_hash
        report["literal_calls"] = list(compiled.literal_calls)
        if args.execute:
            members = [m for m in args.members.split(",") if m]
            host = MemoryHost(
                caller=args.caller,
                members=members,
                visible_to=[v for v in args.visible_to.split(",") if v],
                state=state,
                now=args.now,
            )
            report["result"] = runtime.run(compiled, params, host)
            report["writes"] = [
                {
                    "key": w.key,
                    "value": w.value,
                    "visible_to": list(w.visible_to or []),
                    "deleted": w.deleted,
                }
                for w in host.writes
            ]
            report["notices"] = [{"members": list(n.members), "body": n.body} for n in host.notices]
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        with_shared = "" if shared is None else f" with the pack's shared {shared.name}"
        print(f"{name}: compiles{with_shared} (code hash {compiled.code_hash[:16]}...)")
        if compiled.literal_calls:
            print(f"  calls: {', '.join(compiled.literal_calls)} (each must be internal)")
        if args.execute:
            print(f"  result: {json.dumps(report['result'], sort_keys=True)}")
            for write in report["writes"]:  # type: ignore[union-attr]
                print(f"  write:  {json.dumps(write, sort_keys=True)}")
            for notice in report["notices"]:  # type: ignore[union-attr]
                print(f"  notice: {json.dumps(notice, sort_keys=True)}")
    return 0


def _safe_check(args: argparse.Namespace) -> int:
    try:
        return _check(args)
    except ConsortiaError as exc:
        # Same codes the platform would answer: action_failed, budget_exceeded, ...
        print(f"{args.file}: {exc.code}: {exc.message}")
        return 1


def add_action_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Register ``consortia action check``; the verbs, for ``action show`` to join."""
    action = sub.add_parser("action", help="tools for action authors")
    verbs = action.add_subparsers(dest="verb", required=True, metavar="VERB")
    check = verbs.add_parser(
        "check", help="compile a Starlark action, and optionally run it on a given state"
    )
    check.add_argument("file", help="the action's Starlark source")
    check.add_argument("--name", help="action name (default: the file's stem)")
    check.add_argument("--run", dest="execute", action="store_true", help="also run main(params)")
    check.add_argument("--params", help="params JSON, or @FILE")
    check.add_argument("--state", help="state as a JSON object {key: value}, or @FILE")
    check.add_argument("--caller", default="alice", help="caller() (default: alice)")
    check.add_argument(
        "--members",
        default="alice,bob,carol",
        help="members(), comma-separated (default: %(default)s)",
    )
    check.add_argument("--visible-to", default="", help="visible_to(), comma-separated")
    check.add_argument(
        "--now", type=int, default=1_700_000_000, help="now() (NumericDate; default: %(default)s)"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(run=_safe_check)
    return verbs
