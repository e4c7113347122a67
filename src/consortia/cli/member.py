"""Member commands: ``consortium create``, ``exec``, ``vote``, ``proposals``, ``watch``, ``get``,
``history`` and ``receipt fetch``, over the member SDK (:mod:`consortia.client`).

Exit codes scripts can trust: 0 done (a ``pending`` answer included), 1 the platform refused
(the error code is printed, and in ``--json`` mode it is the ``error.code`` field), 2 bad
usage, 3 the service could not be reached, its TLS certificate is not the pinned one, or it
failed attestation (``attestation_failed``). Every command attests the TEP before its first
request and says on stderr what was established (``NOT ATTESTED`` on the virtual platform).
Every flag of the connection has an environment variable, so a shell session sets them once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consortia._json import JSON, JSONObject, loads_strict
from consortia.attestation import AttestationFailed
from consortia.cli._input import json_arg
from consortia.cli.describe import action_entry, render_action
from consortia.client import (
    MemberClient,
    PinMismatch,
    ServiceUnreachable,
    UntrustedCertificate,
    create_consortium,
)
from consortia.client.attest import Attested, Trust, parse_test_root
from consortia.errors import BadRequest, ConsortiaError
from consortia.identity.keyfile import load_member_keys, load_signing_key
from consortia.identity.keys import VerifyKey

__all__ = ["EXIT_REFUSED", "EXIT_UNREACHABLE", "add_member_parsers", "add_receipt_fetch"]

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3

_HINTS = {
    "bad_signature": "check that --key is this member's current key file",
    "unknown_member": "check --consortium, and that this member was added to it",
    "member_suspended": "this member was removed; ask the consortium to add it again",
    "stale_request": "the request's clock is off: check this machine's time (NTP)",
    "permission_denied": "ask the consortium for execute permission (updatePermissions)",
    "unknown_action": "list the actions with `consortia proposals`/the constitution",
    "rate_limited": "the server is busy: retry in a moment",
    "unavailable": "retry shortly; requests are safe to retry",
    "attestation_failed": "do not use this TEP until it attests; see docs/attestation.md",
}


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    conn = common.add_argument_group(
        "connection (or CONSORTIA_URL, _KEY, _CONSORTIUM, _FINGERPRINT)"
    )
    conn.add_argument("--url", default=_env("CONSORTIA_URL"), help="the TEP, e.g. https://h:8443")
    conn.add_argument("--key", default=_env("CONSORTIA_KEY"), help="this member's key file")
    conn.add_argument("--consortium", default=_env("CONSORTIA_CONSORTIUM"), help="consortium id")
    conn.add_argument(
        "--service-fingerprint",
        default=_env("CONSORTIA_FINGERPRINT"),
        help="pin the server's TLS certificate (SHA-256, as `consortia serve` prints)",
    )
    conn.add_argument(
        "--insecure", action="store_true", help="skip TLS verification (prefer a fingerprint)"
    )
    add_trust_arguments(conn)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    return common


def add_trust_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """``--trust FILE`` and ``--trust-test-root NAME=SHA256``: what this member accepts."""
    group.add_argument(
        "--trust",
        metavar="FILE",
        default=_env("CONSORTIA_TRUST"),
        help="this member's trust file: the measurements it accepts, the minimum TCB, "
        "whether it requires hardware (docs/attestation.md)",
    )
    group.add_argument(
        "--trust-test-root",
        metavar="NAME=SHA256",
        action="append",
        default=[],
        help="accept a simulated-snp TEP signed by this test root (the pin its `consortia "
        "serve` prints); only for a TEP you run yourself",
    )


def trust_of(args: argparse.Namespace) -> Trust | None:
    """The trust the flags describe (None: the defaults of docs/attestation.md)."""
    trust = Trust.load(Path(args.trust)) if getattr(args, "trust", None) else None
    roots = dict(parse_test_root(r) for r in getattr(args, "trust_test_root", None) or [])
    if roots:
        trust = (trust or Trust()).with_test_roots(roots)
    return trust


def announce(attested: Attested) -> None:
    """Say on stderr what this connection established, before anything else happens."""
    print(f"consortia: {attested.summary()}", file=sys.stderr, flush=True)


def _show(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _need(args: argparse.Namespace, *names: str) -> None:
    missing = [n for n in names if not getattr(args, n.replace("-", "_"))]
    if missing:
        flags = ", ".join(f"--{n}" for n in missing)
        env = ", ".join(f"CONSORTIA_{n.upper().replace('-', '_')}" for n in missing)
        raise BadRequest(f"missing {flags} (or set {env})")


class _Attesting:
    """``async with _client(args) as client``: connect (attesting), announce, close."""

    def __init__(self, client: MemberClient) -> None:
        self.client = client

    async def __aenter__(self) -> MemberClient:
        await self.client.connect()
        announce(self.client.attested)
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


def _client(args: argparse.Namespace, *, consortium: bool = True) -> _Attesting:
    """The member's client on ``--url``; ``consortium=False`` for a command that names none."""
    _need(args, "url", "key", *(["consortium"] if consortium else []))
    return _Attesting(
        MemberClient(
            args.url,
            load_member_keys(Path(args.key)),
            args.consortium or "",
            fingerprint=args.service_fingerprint,
            insecure=args.insecure,
            trust=trust_of(args),
        )
    )


def _run(
    work: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if getattr(args, "insecure", False) and not getattr(args, "service_fingerprint", None):
            print(
                "consortia: WARNING: --insecure: the TEP's TLS certificate is not checked, so "
                "whoever sits between you and it can read and change what you send; pin it "
                "with --service-fingerprint instead",
                file=sys.stderr,
            )
        try:
            return asyncio.run(work(args))
        except (ServiceUnreachable, PinMismatch, AttestationFailed) as exc:
            _fail(args, exc)
            return EXIT_UNREACHABLE
        except ConsortiaError as exc:
            _fail(args, exc)
            return EXIT_REFUSED
        except KeyboardInterrupt:
            return 130

    return run


def _fail(args: argparse.Namespace, exc: ConsortiaError) -> None:
    if getattr(args, "json", False):
        print(json.dumps(exc.to_wire()))
        return
    # The TLS refusals say what to do themselves; the code's generic hint would mislead.
    tls = isinstance(exc, PinMismatch | UntrustedCertificate)
    hint = None if tls else _HINTS.get(exc.code)
    txid = f" (txid {exc.txid})" if exc.txid else ""
    print(f"consortia: {exc.code}: {exc.message}{txid}", file=sys.stderr)
    # A platform-policy refusal already says what to do; retrying the same TEP will not help.
    if hint and exc.code not in exc.message and "platform policy" not in exc.message:
        print(f"  hint: {hint}", file=sys.stderr)


def _member_info(path: str) -> JSONObject:
    """A founder from a key file (its public part) or a public-info JSON file."""
    try:
        return load_member_keys(Path(path)).public_info()
    except BadRequest:
        pass
    try:
        doc = loads_strict(Path(path).read_bytes(), what=path)
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror}") from None
    if isinstance(doc, dict) and isinstance(doc.get("member"), dict):
        doc = doc["member"]  # the output of `consortia keygen --json`
    if not isinstance(doc, dict):
        raise BadRequest(f"{path} is neither a key file nor a member's public info")
    return doc


async def _create(args: argparse.Namespace) -> int:
    _need(args, "url", "consortium")
    operator = load_signing_key(Path(args.operator_key))
    answer = await create_consortium(
        args.url,
        operator,
        consortium=args.consortium,
        name=args.name or args.consortium,
        members=[_member_info(m) for m in args.member],
        template=args.template,
        fingerprint=args.service_fingerprint,
        insecure=args.insecure,
        trust=trust_of(args),
        on_attested=announce,
    )
    print(_show(answer) if args.json else f"created consortium {args.consortium}: {_show(answer)}")
    return 0


async def _exec(args: argparse.Namespace) -> int:
    params = json_arg(args.params, "--params") if args.params else {}
    if not isinstance(params, dict):
        raise BadRequest('--params must be a JSON object, e.g. \'{"order": "O-1"}\' or @FILE')
    visible = [v for v in (args.visible_to or "").split(",") if v]
    async with _client(args) as client:
        if args.wait:
            result = await client.call(args.action, params, visible_to=visible)
            print(_show({"result": result}) if args.json else f"result: {_show(result)}")
            return 0
        answer = await client.submit(args.action, params, visible_to=visible, encrypt=args.encrypt)
    doc: JSONObject = {"status": answer.status, "txid": answer.txid}
    if answer.seqno is not None:
        doc["seqno"] = answer.seqno
    if answer.proposal is not None:
        doc["proposal"] = answer.proposal
    if args.json:
        print(_show(doc))
    elif answer.status == "pending":
        print(f"pending: proposal {answer.proposal} waits for votes (`consortia vote ID approve`)")
    else:
        print(f"committed: txid {answer.txid} seqno {answer.seqno}")
    return 0


def _iso(seconds: JSON) -> str:
    """A NumericDate as a person reads it: ISO 8601 in UTC."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return "-"
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _proposal_id(client: MemberClient, given: str) -> str:
    """A full proposal id from a unique prefix of an open one (ids are 64 hex digits)."""
    if len(given) == 64:
        return given
    if not given or any(c not in "0123456789abcdef" for c in given):
        raise BadRequest(f"{given!r} is not a proposal id or the start of one (lowercase hex)")
    found = await client.proposals()
    ids = [
        str(p.get("proposal"))
        for p in (found if isinstance(found, list) else [])
        if isinstance(p, dict) and str(p.get("proposal", "")).startswith(given)
    ]
    if not ids:
        raise BadRequest(f"no open proposal this member may see starts with {given!r}")
    if len(ids) > 1:
        raise BadRequest(f"{given!r} starts {len(ids)} open proposals: give more of the id")
    return ids[0]


def _decided(proposal: JSON) -> str:
    """What the proposal's state says after a ballot, for a person."""
    if not isinstance(proposal, dict):
        return "its state could not be read"
    status, action = proposal.get("status"), proposal.get("action")
    if status == "open":
        count = proposal.get("tally")
        summary = count.get("summary") if isinstance(count, dict) else None
        return f"still open: {summary or 'waiting for ballots'}"
    if status == "approved":
        return f"approved: the {action} request ran, seqno {proposal.get('seqno')}"
    if status == "failed":
        failure = f"{proposal.get('error')}: {proposal.get('reason')}"
        return f"approved, but the {action} request failed ({failure})"
    return f"{status}: {proposal.get('reason')}; the {action} request did not run"


async def _vote(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        pid = await _proposal_id(client, args.proposal)
        answer = await client.vote(pid, args.ballot)
        after = await client.proposal(pid)
    if args.json:
        doc: JSONObject = {"status": answer.status, "txid": answer.txid, "seqno": answer.seqno}
        doc["proposal"] = after
        print(_show(doc))
    else:
        print(f"{args.ballot} recorded for proposal {pid[:12]}… (txid {answer.txid[:12]}…)")
        print(f"  the proposal is {_decided(after)}")
    return 0


async def _proposals(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        found = await client.proposals()
    items = found if isinstance(found, list) else []
    if args.json:
        print(_show(items))
        return 0
    if not items:
        print("no open proposals")
        return 0
    rows = []
    for p in items:
        if isinstance(p, dict):
            count = p.get("tally")
            summary = count.get("summary") if isinstance(count, dict) else ""
            rows.append(
                [
                    str(p.get("proposal"))[:12],
                    str(p.get("action")),
                    str(p.get("requester")),
                    _iso(p.get("created_at")),
                    str(summary)[:60],
                ]
            )
    print(_table(rows, ["proposal", "action", "requester", "created", "tally"]))
    print("vote with the id's first characters: consortia vote PROPOSAL approve|reject")
    return 0


async def _watch(args: argparse.Namespace) -> int:
    seen = 0
    async with _client(args) as client:
        async for note in client.notifications(after=args.after):
            if args.json:
                print(
                    _show(
                        {
                            "id": note.id,
                            "kind": note.kind,
                            "txid": note.txid,
                            "txref": note.txref,
                            "action": note.action,
                            "body": note.body,
                        }
                    ),
                    flush=True,
                )
            else:
                print(
                    f"[{note.id}] {note.kind:<12} {note.action or '-':<18} {_show(note.body)}",
                    flush=True,
                )
            seen += 1
            if args.count and seen >= args.count:
                break
    return 0


async def _get(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        found = await client.object(args.key_name)
    if args.json or not isinstance(found, dict):
        print(_show(found))
    else:
        print(
            f"{found.get('key')} = {_show(found.get('value'))}  "
            f"(seqno {found.get('seqno')}, txid {found.get('txid')})"
        )
    return 0


async def _history(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        found = await client.history(args.key_name, after=args.after, limit=args.limit)
    items = found if isinstance(found, list) else []
    if args.json:
        print(_show(items))
        return 0
    rows = [
        [
            str(v.get("seqno")),
            str(v.get("txid")),  # whole: it is what `consortia receipt fetch` takes
            _show(v.get("value"))
            if v.get("visible")
            else f"(hidden, digest {str(v.get('digest'))[:16]}…)",
        ]
        for v in items
        if isinstance(v, dict)
    ]
    print(_table(rows, ["seqno", "txid", "value"]))
    return 0


async def _keys(args: argparse.Namespace) -> int:
    entries: list[JSON] = []
    following: JSON = None
    async with _client(args) as client:
        if args.all:
            entries = [e async for e in client.all_keys(args.prefix, page=args.limit)]
        else:
            page = await client.list_keys(args.prefix, limit=args.limit, cursor=args.cursor)
            if isinstance(page, dict):
                listed = page.get("keys")
                entries = listed if isinstance(listed, list) else []
                following = page.get("next")
    if args.json:
        print(_show({"prefix": args.prefix, "keys": entries, "next": following}))
        return 0
    rows = [
        [str(e.get("key")), str(e.get("seqno")), _show(e.get("value"))[:60]]
        for e in entries
        if isinstance(e, dict)
    ]
    print(_table(rows, ["key", "seqno", "value"]) if rows else f"no keys under {args.prefix!r}")
    if isinstance(following, str):
        print(f"more: --cursor {following}  (or --all)")
    return 0


async def _memberships(args: argparse.Namespace) -> int:
    async with _client(args, consortium=False) as connected:
        found = await connected.memberships()
    items = found if isinstance(found, list) else []
    if args.json:
        print(_show(items))
        return 0
    rows = []
    for m in items:
        if isinstance(m, dict):
            roles = m.get("roles")
            held = ", ".join(map(str, roles)) if isinstance(roles, list) else ""
            rows.append([str(m.get("consortium")), str(m.get("name")), str(m.get("member")), held])
    print(_table(rows, ["consortium", "name", "member", "roles"]) if rows else "no consortia")
    return 0


async def _receipt(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        receipt = await client.receipt(args.txid)
        service = client.service
    if args.out:
        Path(args.out).write_text(json.dumps(receipt, indent=2) + "\n")
    if args.verify:
        # The CLI may use the ledger's offline checker; the SDK itself stays protocol-only.
        from consortia.ledger.receipts import verify_receipt

        key = VerifyKey.from_jwk(service.get("service_key"), what="service_key")
        checked = verify_receipt(receipt, key)
        if not args.json:
            print(
                f"receipt OK: {checked.txid} is seqno {checked.seqno} of a tree of "
                f"{checked.tree_size}, root {checked.root}"
            )
    if args.json or not args.verify:
        print(json.dumps(receipt, indent=None if args.json else 2))
    return 0


def add_receipt_fetch(receipt_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``consortia receipt fetch TXID [--verify]`` beside ``receipt verify FILE``."""
    fetch = receipt_sub.add_parser(
        "fetch", parents=[_common()], help="fetch a receipt from the TEP (and verify it)"
    )
    fetch.add_argument("txid")
    fetch.add_argument("--verify", action="store_true", help="verify it against the service key")
    fetch.add_argument("--out", metavar="FILE", help="also write it to FILE")
    fetch.set_defaults(run=_run(_receipt))


def add_member_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The member-facing subcommands."""
    common = _common()
    cons = sub.add_parser("consortium", help="create a consortium (operator)")
    cons_sub = cons.add_subparsers(dest="consortium_command", required=True, metavar="ACTION")
    create = cons_sub.add_parser(
        "create", parents=[common], help="create one, signed by the operator"
    )
    create.add_argument(
        "--operator-key", required=True, metavar="FILE", help="operator's private JWK"
    )
    create.add_argument("--name", help="display name (default: the id)")
    create.add_argument(
        "--template", default="default", help="genesis template (default: %(default)s)"
    )
    create.add_argument(
        "--member",
        action="append",
        required=True,
        metavar="FILE",
        help="a founder: key file or public-info JSON (repeat per founder)",
    )
    create.set_defaults(run=_run(_create))

    exe = sub.add_parser("exec", parents=[common], help="execute an action")
    exe.add_argument("action")
    exe.add_argument(
        "--params", help="the params as a JSON object, or @FILE (@- reads stdin) (default: {})"
    )
    exe.add_argument("--visible-to", metavar="IDS", help="comma-separated member ids")
    exe.add_argument("--encrypt", action="store_true", help="send it as a JWE to the service key")
    exe.add_argument("--wait", action="store_true", help="wait for and print the action's result")
    exe.set_defaults(run=_run(_exec))

    vote = sub.add_parser("vote", parents=[common], help="vote on a proposal")
    vote.add_argument("proposal", help="the proposal id, or a unique start of an open one")
    vote.add_argument("ballot", choices=["approve", "reject"])
    vote.set_defaults(run=_run(_vote))

    props = sub.add_parser("proposals", parents=[common], help="list open proposals")
    props.set_defaults(run=_run(_proposals))

    watch = sub.add_parser("watch", parents=[common], help="live notifications, opened")
    watch.add_argument("--after", type=int, default=0, help="start after this notification id")
    watch.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    watch.set_defaults(run=_run(_watch))

    get = sub.add_parser("get", parents=[common], help="read the newest visible value of a key")
    get.add_argument("key_name", metavar="KEY")
    get.set_defaults(run=_run(_get))

    hist = sub.add_parser("history", parents=[common], help="every version of a key")
    hist.add_argument("key_name", metavar="KEY")
    hist.add_argument(
        "--after", type=int, metavar="SEQNO", help="only versions after this seqno (a page)"
    )
    hist.add_argument("--limit", type=int, metavar="N", help="at most N versions (default: all)")
    hist.set_defaults(run=_run(_history))

    keys = sub.add_parser(
        "keys", parents=[common], help="list the keys under a prefix that this member may read"
    )
    keys.add_argument("prefix", metavar="PREFIX", help="e.g. resourceOrder/PO1/ ('' for the top)")
    keys.add_argument(
        "--limit", type=int, default=100, metavar="N", help="keys per page (default: 100)"
    )
    keys.add_argument("--cursor", help="resume where a previous page ended (its 'next')")
    keys.add_argument("--all", action="store_true", help="follow every page to the end")
    keys.set_defaults(run=_run(_keys))

    mine = sub.add_parser(
        "memberships",
        parents=[common],
        help="the consortia of this TEP in which this key is an active member (--consortium "
        "not needed)",
    )
    mine.set_defaults(run=_run(_memberships))


async def _action_show(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        constitution = await client.constitution()
    entry = action_entry(constitution, args.name)
    print(_show(entry) if args.json else render_action(entry))
    return 0


def add_action_show(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``consortia action show NAME``: one action of the live constitution, for people."""
    show = verbs.add_parser(
        "show",
        parents=[_common()],
        help="who may run an action, its voting, its parameters and an example (from the TEP)",
    )
    show.add_argument("name", help="the action, e.g. updateDeviceOrder")
    show.set_defaults(run=_run(_action_show))
