"""``consortia node join`` and ``consortia node approve``: a new node joins a cluster.

The new node asks a running node with a throwaway X25519 key and prints the key's
fingerprint; the operator approves that request at the running node after comparing the
fingerprint; the new node then receives the node key and the cluster's TLS files sealed to
its key and writes them into its data folder with mode 0600 (docs/cluster.md, "Joining").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

from consortia.client import error_from_response, tls_verify
from consortia.engine.datadir import TLS_CERT_FILE, TLS_KEY_FILE
from consortia.errors import BadRequest, ConsortiaError
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.keyfile import load_signing_key, write_private_file
from consortia.identity.keys import EncryptionKey, validate_member_id
from consortia.ledger.nodekey import save_node_key
from consortia.server.tls import certificate_fingerprint
from consortia.wire.join import join_key_fingerprint, open_join_bundle
from consortia.wire.tokens import sign_operator_token

__all__ = ["add_node_parser"]


async def _client(args: argparse.Namespace) -> httpx.AsyncClient:
    verify = await tls_verify(args.url, fingerprint=args.service_fingerprint, insecure=False)
    return httpx.AsyncClient(base_url=args.url, verify=verify, timeout=httpx.Timeout(10.0))


def _check(answer: httpx.Response, *ok: int) -> dict[str, object]:
    if answer.status_code not in ok:
        raise error_from_response(answer, answer.content)
    doc = answer.json()
    if not isinstance(doc, dict):
        raise BadRequest("the node answered something that is not a join answer")
    return doc


async def _join(args: argparse.Namespace) -> int:
    data = Path(args.data)
    node = validate_member_id(args.node, what="--node")
    if (data / "node.key").exists():
        raise BadRequest(f"{data / 'node.key'} exists: this folder already belongs to a node")
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = EncryptionKey.generate()
    raw = key.public_key.raw
    async with await _client(args) as http:
        asked = _check(
            await http.post("/v1/cluster/joins", json={"node": node, "key": b64url_encode(raw)}),
            202,
        )
        jid = str(asked["id"])
        fingerprint = join_key_fingerprint(raw)
        if asked.get("fingerprint") != fingerprint:
            raise BadRequest("the node shows another fingerprint for this request: stop here")
        print(
            f"consortia: join request {jid} for node {node!r}, key fingerprint {fingerprint}\n"
            f"consortia: the operator checks the fingerprint and runs: consortia node approve "
            f"--url {args.url} --service-fingerprint … --operator-key … {jid}",
            file=sys.stderr,
            flush=True,
        )
        deadline = time.monotonic() + args.wait
        while True:
            doc = _check(await http.get(f"/v1/cluster/joins/{jid}"), 200, 202)
            if doc.get("state") == "approved":
                break
            if time.monotonic() > deadline:
                raise BadRequest(
                    f"join request {jid} was not approved within {args.wait:g} s; ask again"
                )
            await asyncio.sleep(1.0)
    bundle = open_join_bundle(b64url_decode(str(doc["sealed"]), what="sealed"), key)
    if bundle.tls_cert is not None and bundle.tls_key is not None:
        if args.service_fingerprint is not None:
            got = certificate_fingerprint(bundle.tls_cert.encode("ascii"))
            if got.replace(":", "").lower() != args.service_fingerprint.replace(":", "").lower():
                raise BadRequest(
                    "the TLS certificate handed over is not the one this node was pinned to"
                )
        write_private_file(data / TLS_KEY_FILE, bundle.tls_key.encode("ascii"), overwrite=False)
        (data / TLS_CERT_FILE).write_text(bundle.tls_cert, encoding="ascii")
    if not save_node_key(data / "node.key", bundle.node_key):
        raise BadRequest(f"{data / 'node.key'} appeared meanwhile; it was left as it is")
    print(
        f"consortia: node {node!r} joined: node key and TLS files in {data} (mode 0600); "
        f"start it with: consortia serve --data {data} --store … --node {node}",
        file=sys.stderr,
    )
    return 0


async def _approve(args: argparse.Namespace) -> int:
    operator = load_signing_key(Path(args.operator_key))
    token = sign_operator_token(operator, audience="cluster", now=int(time.time()))
    async with await _client(args) as http:
        doc = _check(
            await http.post(
                f"/v1/cluster/joins/{args.join_id}/approve",
                headers={"authorization": f"Bearer {token}"},
            ),
            200,
        )
    print(f"consortia: approved node {doc.get('node')!r}, key fingerprint {doc.get('fingerprint')}")
    return 0


def _run(
    work: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if not args.url or not args.service_fingerprint:
            print("consortia node: give --url and --service-fingerprint", file=sys.stderr)
            return 2
        try:
            return asyncio.run(work(args))
        except ConsortiaError as exc:
            print(f"consortia: {exc.code}: {exc.message}", file=sys.stderr)
            return 1

    return run


def add_node_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``consortia node join|approve``."""
    node = sub.add_parser("node", help="join a node to a cluster (docs/cluster.md)")
    node_sub = node.add_subparsers(dest="node_command", required=True, metavar="ACTION")
    for name, help_text in (
        ("join", "ask a running node for the cluster's secrets; wait for the operator"),
        ("approve", "the operator: approve a join request at a running node"),
    ):
        p = node_sub.add_parser(name, help=help_text)
        p.add_argument("--url", default=os.environ.get("CONSORTIA_URL"), help="a running node")
        p.add_argument(
            "--service-fingerprint",
            default=os.environ.get("CONSORTIA_FINGERPRINT"),
            help="its TLS certificate's SHA-256, as `consortia serve` prints (required)",
        )
        if name == "join":
            p.add_argument("--data", required=True, metavar="DIR", help="the new node's folder")
            p.add_argument("--node", required=True, metavar="ID", help="the new node's id")
            p.add_argument(
                "--wait",
                type=float,
                default=600.0,
                metavar="S",
                help="seconds to wait for the approval (default: %(default)s)",
            )
            p.set_defaults(run=_run(_join))
        else:
            p.add_argument(
                "--operator-key", required=True, metavar="FILE", help="the operator's private JWK"
            )
            p.add_argument("join_id", metavar="JOIN_ID", help="as `consortia node join` printed")
            p.set_defaults(run=_run(_approve))
