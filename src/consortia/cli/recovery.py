"""``consortia recovery``: disaster recovery driven by the members, with the operator.

Operator, on the TEP's host:

- ``backup --data DIR --to KEYFILE`` (while the TEP has its node key): seal the service keys
  to the X25519 key of KEYFILE (a key file of ``consortia keygen``, kept offline) into the
  storage. No consortium's recovery record holds them, so a recovery needs this.
- ``serve --data COPY --backup-key KEYFILE``: on a copy of the storage without ``node.key``,
  serve only the recovery endpoints over TLS until k members of every consortium submitted
  their shares; the recovery then finishes and the operator starts ``consortia serve``.

Member:

- ``save`` (while the TEP runs): keep the newest recovery share notice in a file.
- ``submit --share FILE`` (or ``--from-notifications FILE``, what ``consortia watch --json``
  printed): open the share, sign it, send it; prints the consortium's progress.
- ``status``: the progress; with ``--key`` and the share file, one's own consortium's count
  (shown only to a share holder: a recovering TEP names no consortium to anyone else).

Exit codes as for the member commands: 0 done, 1 refused, 2 bad usage, 3 unreachable or
not the pinned certificate. No share or key is ever printed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from consortia._json import JSON, JSONObject, loads_strict
from consortia.cli._input import read_input
from consortia.cli.member import _need, _run, add_trust_arguments, announce, trust_of
from consortia.cli.serve import _tls
from consortia.client import MemberClient
from consortia.client.recovery import (
    fetch_share_notice,
    holder_proof,
    newest_share_notice,
    recovery_status,
    share_submission,
    submit_recovery_share,
)
from consortia.engine.datadir import DataDir
from consortia.engine.recovery import RecoverySession, backup_service_keys
from consortia.errors import BadRequest, BadSignature
from consortia.identity.keyfile import load_member_keys, write_private_file
from consortia.identity.keys import PublicEncryptionKey, VerifyKey
from consortia.server.run import ServerConfig

__all__ = ["add_recovery_parser"]


def _say(text: str) -> None:
    print(text, flush=True)


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _recipient(path: str) -> PublicEncryptionKey:
    """The X25519 public key of a key file, or of a member's public-info JSON."""
    try:
        return load_member_keys(Path(path)).encryption.public_key
    except BadRequest:
        pass
    doc = loads_strict(read_input(path, "--to file"), what=path)
    if isinstance(doc, dict) and isinstance(doc.get("member"), dict):
        doc = doc["member"]  # the output of `consortia keygen --json`
    if not isinstance(doc, dict) or "encryption_key" not in doc:
        raise BadRequest(
            f"{path} is neither a key file (0600) nor public info with an encryption_key"
        )
    return PublicEncryptionKey.from_jwk(doc["encryption_key"], what=f"{path}: encryption_key")


# -- operator -------------------------------------------------------------------------------


def _backup(args: argparse.Namespace) -> int:
    data = Path(args.data)
    backup = backup_service_keys(data, _recipient(args.to))
    if args.out:
        write_private_file(Path(args.out), backup.to_bytes())
    doc: JSONObject = {
        "stored_in": str(DataDir(data).ledger),
        "file": args.out,
        "recipient": dict(backup.recipient.to_jwk()),
        "service_key": dict(backup.service_key.to_jwk()),
    }
    if args.json:
        print(json.dumps(doc))
        return 0
    _say(
        f"sealed the service keys (service key x={backup.service_key.to_jwk()['x']}) to the "
        f"X25519 key x={backup.recipient.to_jwk()['x']} of {args.to}, in "
        f"{data / 'ledger.sqlite'}" + (f" and {args.out}" if args.out else "")
    )
    _say(
        "keep that key file's private part away from this host: a recovery without the node "
        "key needs it (`consortia recovery serve --backup-key`), and it opens the service keys"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from consortia.server._recovery import RecoveryServer

    data = Path(args.data)
    session = RecoverySession(data)
    try:
        backup = read_input(args.backup, "--backup") if args.backup else None
        service_key = session.restore_service(
            load_member_keys(Path(args.backup_key)).encryption, backup
        )
        progress = session.progress()
        _say(
            f"recovery: {len(progress.consortia)} consortia to recover; the service keys "
            f"(service key x={service_key.to_jwk()['x']}) opened from the operator's backup "
            "and match every consortium's newest signed root"
        )
        tls = _tls(args, data)
        config = ServerConfig(
            host=args.host,
            port=args.port,
            tls=tls,
            access_log=not args.no_access_log,
            log_level=args.log_level,
        )
        server = RecoveryServer(session, config, exit_when_complete=args.exit_when_complete)
        code = server.run(on_bound=lambda url: _say(f"consortia: recovery mode, serving {url}"))
    finally:
        session.close()
    if session.complete:
        _say(f"recovered: start the platform with `consortia serve --data {data}`")
    else:
        _say(
            "stopped before the recovery completed: nothing was written and the shares "
            "received are forgotten; start it again and have the members submit again"
        )
    return code


# -- member ---------------------------------------------------------------------------------


async def _save(args: argparse.Namespace) -> int:
    _need(args, "url", "key", "consortium")
    client = MemberClient(
        args.url,
        load_member_keys(Path(args.key)),
        args.consortium,
        fingerprint=args.service_fingerprint,
        insecure=args.insecure,
        trust=trust_of(args),
    )
    async with client:
        announce(client.attested)
        notice = await fetch_share_notice(client)
    out = Path(args.out or f"{client.member}.{args.consortium}.recovery-share.json")
    # Only this member's key opens the sealed share; 0600 all the same.
    write_private_file(out, (json.dumps(notice, indent=2, sort_keys=True) + "\n").encode())
    summary: JSONObject = {
        "file": str(out),
        "consortium": notice.get("consortium"),
        "epoch": notice.get("epoch"),
        "threshold": notice.get("threshold"),
        "holders": notice.get("holders"),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        _say(
            f"saved the recovery share of epoch {notice.get('epoch')} of "
            f"{notice.get('consortium')!r} ({notice.get('threshold')} of "
            f"{notice.get('holders')} members recover it) to {out}"
        )
    return 0


def _bodies(data: bytes, what: str) -> list[JSON]:
    """Notification bodies of a share file: one body, a list, or ``watch --json`` lines."""
    try:
        docs: list[JSON] = [loads_strict(data, what=what)]
    except BadRequest:
        docs = [loads_strict(line, what=what) for line in data.splitlines() if line.strip()]
    if len(docs) == 1 and isinstance(docs[0], list):
        docs = list(docs[0])
    # A `consortia watch --json` line carries the opened body under "body".
    return [d["body"] if isinstance(d, dict) and "body" in d else d for d in docs]


def _line(progress: JSON) -> str:
    if not isinstance(progress, dict):
        return str(progress)
    if progress.get("complete"):
        return "the TEP has recovered (every consortium had its shares); its operator restarts it"
    text = f"{progress.get('ready')} of {progress.get('consortia')} consortia have their shares"
    mine = progress.get("consortium")
    if isinstance(mine, dict):
        text = (
            f"{mine.get('consortium')!r} has {mine.get('received')} of "
            f"{mine.get('threshold')} shares; " + text
        )
        if mine.get("problem"):
            text += f"\n  problem: {mine['problem']}"
    return text


def _notice(args: argparse.Namespace) -> JSON:
    source = args.share or args.from_notifications
    return newest_share_notice(_bodies(read_input(source, "share file"), source), args.consortium)


async def _submit(args: argparse.Namespace) -> int:
    _need(args, "url", "key")
    keys = load_member_keys(Path(args.key))
    submission = share_submission(keys, _notice(args))
    pin, insecure = args.service_fingerprint, args.insecure
    if args.service_key:
        from consortia.cli.verify import service_key_from  # the receipt commands' parser

        pinned = service_key_from(args.service_key)
        status = await recovery_status(args.url, fingerprint=pin, insecure=insecure)
        announced = status.get("service_key")
        if announced is None or VerifyKey.from_jwk(announced) != pinned:
            raise BadSignature(
                "this recovering TEP would not come back with the service key you pinned; "
                "your share was not sent: ask the operator"
            )
    progress = await submit_recovery_share(args.url, submission, fingerprint=pin, insecure=insecure)
    if args.json:
        print(json.dumps(progress))
    else:
        _say(f"share accepted: {_line(progress)}")
    return 0


async def _status(args: argparse.Namespace) -> int:
    _need(args, "url")
    proof = None
    if args.share or args.from_notifications:
        _need(args, "key")
        proof = holder_proof(load_member_keys(Path(args.key)), _notice(args))
    progress = await recovery_status(
        args.url, proof=proof, fingerprint=args.service_fingerprint, insecure=args.insecure
    )
    print(json.dumps(progress) if args.json else _line(progress))
    return 0


# -- parsers --------------------------------------------------------------------------------


def _connection(parser: argparse.ArgumentParser, *, consortium: str) -> None:
    conn = parser.add_argument_group("connection (or CONSORTIA_URL, _KEY, _FINGERPRINT)")
    conn.add_argument("--url", default=_env("CONSORTIA_URL"), help="the TEP, e.g. https://h:8443")
    conn.add_argument(
        "--service-fingerprint",
        "--pin",
        dest="service_fingerprint",
        default=_env("CONSORTIA_FINGERPRINT"),
        metavar="FINGERPRINT",
        help="pin the server's TLS certificate (SHA-256, as the server printed it)",
    )
    conn.add_argument(
        "--insecure", action="store_true", help="skip TLS verification (prefer a fingerprint)"
    )
    parser.add_argument("--consortium", default=_env("CONSORTIA_CONSORTIUM"), help=consortium)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _share_source(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--key", default=_env("CONSORTIA_KEY"), help="this member's key file")
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--share", metavar="FILE", help="the file `recovery save` wrote (- stdin)")
    source.add_argument(
        "--from-notifications",
        metavar="FILE",
        help="notifications you kept, as `consortia watch --json` prints them; newest share",
    )


def add_recovery_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``recovery`` subcommand and its actions."""
    recovery = sub.add_parser("recovery", help="disaster recovery with the members' shares")
    actions = recovery.add_subparsers(dest="recovery_command", required=True, metavar="ACTION")

    backup = actions.add_parser(
        "backup", help="operator: seal the service keys to your offline key (node key needed)"
    )
    backup.add_argument("--data", required=True, metavar="DIR", help="the platform's folder")
    backup.add_argument(
        "--to",
        required=True,
        metavar="KEYFILE",
        help="the operator's recovery key: a `consortia keygen` key file or its public info",
    )
    backup.add_argument("--out", metavar="FILE", help="also write the sealed backup to FILE")
    backup.add_argument("--json", action="store_true", help="machine-readable output")
    backup.set_defaults(run=_backup)

    serve = actions.add_parser(
        "serve", help="operator: serve only the recovery endpoints on a copy without node.key"
    )
    serve.add_argument("--data", required=True, metavar="DIR", help="the copy of the storage")
    serve.add_argument(
        "--backup-key",
        required=True,
        metavar="KEYFILE",
        help="the key file `recovery backup --to` sealed the service keys to",
    )
    serve.add_argument(
        "--backup", metavar="FILE", help="the sealed backup, if not in the storage (--out)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8443, help="port, 0 for any free one (default: %(default)s)"
    )
    serve.add_argument("--tls-cert", metavar="PEM", help="a real certificate (with --tls-key)")
    serve.add_argument("--tls-key", metavar="PEM", help="its private key")
    serve.add_argument("--no-tls", action="store_true", help="plain HTTP: development only")
    serve.add_argument(
        "--exit-when-complete",
        action="store_true",
        help="stop (exit 0) once recovered, e.g. to chain `&& consortia serve`",
    )
    serve.add_argument("--no-access-log", action="store_true", help="no line per request")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="how much the server logs (default: %(default)s); never keys, names or values",
    )
    serve.set_defaults(run=_serve)

    save = actions.add_parser(
        "save", help="member: keep your newest recovery share (while the TEP runs)"
    )
    _connection(save, consortium="the consortium whose share to keep")
    add_trust_arguments(save)
    save.add_argument("--key", default=_env("CONSORTIA_KEY"), help="this member's key file")
    save.add_argument(
        "--out", metavar="FILE", help="default: MEMBER.CONSORTIUM.recovery-share.json"
    )
    save.set_defaults(run=_run(_save))

    submit = actions.add_parser(
        "submit", help="member: sign your share and send it to the recovering TEP"
    )
    _connection(submit, consortium="which share, when the file holds several consortia's")
    _share_source(submit, required=True)
    submit.add_argument(
        "--service-key",
        metavar="KEY",
        help="the service key you pinned (JWK or file): send nothing unless the recovering "
        "TEP comes back with it",
    )
    submit.set_defaults(run=_run(_submit))

    status = actions.add_parser(
        "status", help="the recovery's progress (with --key and your share: your consortium's)"
    )
    _connection(status, consortium="which share, when the file holds several consortia's")
    _share_source(status, required=False)
    status.set_defaults(run=_run(_status))
