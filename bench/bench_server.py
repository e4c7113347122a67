"""The server side of ``bench/http_load.py``: a real platform served over TLS, in its own process.

It is ``consortia serve`` (same app, uvicorn stack, embedded SQLite store, self-signed TLS)
plus a ``bench`` template whose founders may run, at once and without a vote:

- ``sendNotifications``: a *builtin* action (made public here; the base template keeps it
  internal) that commits a transaction, a nonce and one notification;
- ``benchPut``: a small Starlark action, ``put(params.key, params.value)``, for the
  hot-object and many-objects scenarios;
- ``benchFill``: a Starlark action that writes ``count`` objects at once, to load state with
  10^3 .. 10^6 objects before a run.

With ``--ceiling`` the platform does the same HTTP, parsing and Ed25519 check of each request
but then answers ``committed`` without executing or storing anything: the ceiling that the
real run is compared with. It prints ``URL``, ``OPERATOR`` and ``PID`` lines, then serves
until SIGTERM.

With ``--store URL`` (``postgresql://...``) the ledger lives in that PostgreSQL database
instead of ``DIR/ledger.sqlite`` (``consortia serve --store``); with ``--node ID`` too the
platform is a cluster node on it (``consortia serve --store URL --node ID``) and sequences
each consortium while it holds its lease (``--lease-s``, 10 s by default: longer than any
pause of a loaded run, so the lease never lapses mid-run).

Usage: python bench/bench_server.py --data DIR [--ceiling] [--isolation process|inline]
                                    [--store URL [--node ID] [--lease-s S]]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from consortia.engine import Committed, Outcome, Platform
from consortia.errors import ConsortiaError
from consortia.governance.constitution import (
    ActionDefinition,
    Constitution,
    Member,
    Permission,
)
from consortia.governance.templates import DEFAULT_TEMPLATE, Template, default_constitution
from consortia.identity.keyfile import save_signing_key
from consortia.identity.keys import SigningKey
from consortia.sandbox import ActionRuntime
from consortia.server.run import ServerConfig, serve
from consortia.server.tls import ensure_self_signed
from consortia.telco import TELCO_TEMPLATE
from consortia.wire import parse_action_request, unwrap_body

PUT_CODE = """
def main(params):
    put(params["key"], params["value"])
    return None
"""

FILL_CODE = """
def main(params):
    start = params["start"]
    for i in range(start, start + params["count"]):
        put(params["prefix"] + str(i), {"n": i})
    return None
"""


def bench_constitution(founders: Sequence[Member]) -> Constitution:
    """The default constitution plus the benchmark's three actions, open to every founder."""
    base = default_constitution(founders)
    everyone = tuple(Permission(m.id, True) for m in founders)
    actions = dict(base.actions)
    actions["sendNotifications"] = ActionDefinition(
        "sendNotifications", "public", "builtin", None, everyone
    )
    actions["benchPut"] = ActionDefinition("benchPut", "public", "starlark", PUT_CODE, everyone)
    actions["benchFill"] = ActionDefinition(
        "benchFill",
        "public",
        "starlark",
        FILL_CODE,
        everyone,
        budget={"steps": 100_000, "time_ms": 10_000},
    )
    return dataclasses.replace(base, actions=actions)


BENCH_TEMPLATE = Template("bench", "benchmark actions (bench/bench_server.py)", bench_constitution)
TEMPLATES = {t.name: t for t in (DEFAULT_TEMPLATE, TELCO_TEMPLATE, BENCH_TEMPLATE)}


class CeilingPlatform(Platform):
    """Parses and verifies every request like the real one, then stops: the empty action."""

    def execute_batch(
        self, cid: str, bodies: Sequence[str | bytes]
    ) -> list[Outcome | ConsortiaError]:
        constitution = self.runtime(cid).constitution
        answers: list[Outcome | ConsortiaError] = []
        for body in bodies:
            try:
                jws = unwrap_body(body, self.service.encryption)
                request = parse_action_request(jws, cid)
                jws.verify(constitution.active_member(request.member).signing_key)
                answers.append(Committed(jws.txid, 0))
            except ConsortiaError as exc:
                answers.append(exc)
        return answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--ceiling", action="store_true")
    parser.add_argument("--isolation", choices=("process", "inline"), default="process")
    parser.add_argument("--store", metavar="URL", help="keep the ledger in this PostgreSQL")
    parser.add_argument("--node", metavar="ID", help="as a cluster node of --store")
    parser.add_argument("--lease-s", type=float, default=10.0, metavar="S")
    args = parser.parse_args()
    if args.node is not None and args.store is None:
        parser.error("--node needs --store postgresql://...")
    data: Path = args.data
    data.mkdir(parents=True, exist_ok=True)
    operator = SigningKey.generate()
    save_signing_key(operator, data / "operator.key.jwk")
    cert, key, _ = ensure_self_signed(data, "127.0.0.1")
    cls = CeilingPlatform if args.ceiling else Platform
    sandbox = ActionRuntime(isolation="inline") if args.isolation == "inline" else None
    platform = cls.open(
        data,
        operator_keys=[operator.verify_key],
        templates=TEMPLATES,
        sandbox=sandbox,
        store=args.store,
        node=args.node,
        lease_s=args.lease_s if args.node is not None else None,
    )
    config = ServerConfig(port=0, tls=(cert, key), access_log=False, log_level="warning")

    def bound(url: str) -> None:
        print(f"URL {url}", flush=True)

    try:
        return serve(platform, config, on_bound=bound)
    finally:
        platform.close()
        if sandbox is not None:
            sandbox.close()


if __name__ == "__main__":
    sys.exit(main())
