"""``consortia demo`` (``make demo``): a real server on a free local port, played through the SDK.

The story of :mod:`consortia.cli.demo` (three founders create a consortium, vote a customer
in, vote in a Starlark action, pass an order along with visibility constraints), but every
step crosses HTTPS with a pinned self-signed certificate, and one member listens over SSE
while it happens; then a Telco consortium (:mod:`consortia.cli.telcodemo`) ends with each
member's reports. The server is a child process, stopped by SIGTERM at the end (and killed
if it will not stop), so nothing is left running.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from consortia._json import JSON, JSONObject
from consortia.cli.demo import CID, MEMBERS, record_order_amendment
from consortia.cli.serve import OPERATOR_PRIVATE
from consortia.cli.telcodemo import telco_story
from consortia.client import MemberClient, Notification, ServiceUnreachable, create_consortium
from consortia.errors import ConsortiaError
from consortia.identity.keyfile import load_signing_key
from consortia.identity.keys import MemberKeys

__all__ = ["run_network_demo"]

_START_TIMEOUT = 30.0


def _show(value: JSON) -> str:
    return json.dumps(value, sort_keys=True)


class _ServerProcess:
    """``consortia serve`` as a child process; its announced URL and fingerprint."""

    def __init__(self, data: Path) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "consortia",
                "serve",
                "--data",
                str(data),
                "--port",
                "0",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.url = ""
        self.fingerprint = ""
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        stdout = self.process.stdout
        if stdout is None:
            return
        for line in stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_ready(self) -> None:
        while not self.url:
            try:
                line = self.lines.get(timeout=_START_TIMEOUT)
            except queue.Empty:
                raise ServiceUnreachable("the server did not start in time") from None
            if line is None:
                raise ServiceUnreachable("the server exited before it was ready")
            print(f"  server| {line}")
            if line.startswith("TLS certificate SHA-256 fingerprint: "):
                self.fingerprint = line.rsplit(" ", 1)[1]
            if line.startswith("consortia: serving "):
                self.url = line.rsplit(" ", 1)[1]

    def stop(self) -> int:
        """SIGTERM, then wait; kill if it will not stop. Its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


async def _connect(url: str, keys: MemberKeys, fingerprint: str) -> MemberClient:
    client = MemberClient(url, keys, CID, fingerprint=fingerprint)
    for _ in range(100):  # the port is bound before the app is up: wait a moment for it
        try:
            await client.connect()
            return client
        except ServiceUnreachable:
            await asyncio.sleep(0.1)
    await client.connect()
    return client


async def _story(url: str, fingerprint: str, data: Path) -> None:
    keys = {m: MemberKeys.generate(m) for m in (*MEMBERS, "customer")}
    print("1. The operator creates the consortium with three founders (template 'default').")
    operator = load_signing_key(data / OPERATOR_PRIVATE)
    founders: list[JSONObject] = [keys[m].public_info() for m in MEMBERS]
    created = await create_consortium(
        url,
        operator,
        consortium=CID,
        name="Acme fiber roll-out",
        members=founders,
        fingerprint=fingerprint,
    )
    print(f"  genesis: {_show(created)}")
    clients = {m: await _connect(url, keys[m], fingerprint) for m in MEMBERS}
    # What every member command says first (`consortia serve --platform sev-snp` attests).
    print(f"  each member's SDK: {clients['telco'].attested.summary()}")
    live: list[Notification] = []

    async def listen() -> None:
        async for note in clients["installer"].notifications():
            live.append(note)
            print(f"      (installer, live over SSE: [{note.id}] {note.kind} {note.action})")

    listener = asyncio.create_task(listen())
    try:
        print("2. The Telco proposes the enterprise customer as a member; the vendor approves.")
        pending = await clients["telco"].submit("addMember", keys["customer"].public_info())
        print(f"  telco -> addMember: {pending.status}, proposal {pending.proposal}")
        vote = await clients["vendor"].vote(str(pending.proposal))
        print(f"  vendor -> voteFor: {vote.status}, seqno {vote.seqno}")
        clients["customer"] = await _connect(url, keys["customer"], fingerprint)

        print("3. The Telco proposes a Starlark action 'recordOrder'; the installer approves.")
        amend = record_order_amendment()
        pending = await clients["telco"].submit("amendConstitution", amend)
        await clients["installer"].vote(str(pending.proposal))
        print(f"  amendConstitution approved: proposal {pending.proposal}")

        print("4. The order object passes M1 -> M2 -> M3 with visibility constraints.")
        steps = [
            ("telco", "acknowledged", ["vendor"]),
            ("vendor", "shipped", ["installer"]),
            ("installer", "installed", ["telco", "vendor"]),
        ]
        for member, status, visible in steps:
            result = await clients[member].call(
                "recordOrder", {"order": "O-1", "status": status}, visible_to=visible
            )
            shown = _show(result)
            print(f"  {member:>9} -> recordOrder {status!r} visible to {visible}: result {shown}")
        await asyncio.sleep(0.3)  # let the listener print the last live events
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    await _report(clients)
    print(f"\nThe installer received {len(live)} notifications live over SSE.")
    await telco_story(url, fingerprint, operator, step=5)


async def _report(clients: dict[str, MemberClient]) -> None:
    print("\nWhat each member saw (opened notifications, then reads of order/O-1):")
    for member, client in clients.items():
        print(f"\n== {member} ==")
        for note in await client.notification_page():
            print(
                f"  [{note.id}] {note.kind:<12} {note.action or '-':<18} {_show(note.body)[:100]}"
            )
        try:
            print(f"  order/O-1 now: {_show(await client.object('order/O-1'))}")
        except ConsortiaError as exc:
            print(f"  order/O-1 now: ({exc.code})")
        try:
            history = await client.history("order/O-1")
        except ConsortiaError as exc:
            print(f"    history: ({exc.code})")
            history = []
        for entry in history if isinstance(history, list) else []:
            if isinstance(entry, dict):
                shown = (
                    entry.get("value")
                    if entry.get("visible")
                    else (f"hidden, digest {str(entry.get('digest'))[:16]}...")
                )
                print(f"    seqno {entry.get('seqno')}: {_show(shown)}")
        await client.aclose()


def run_network_demo(data_dir: Path | None = None) -> int:
    """Start a server, play the story through the SDK, stop the server. The exit code."""
    with tempfile.TemporaryDirectory(prefix="consortia-demo-") as tmp:
        data = data_dir or Path(tmp) / "tep"
        print("0. Starting `consortia serve` on a free local port (TLS, self-signed, pinned).")
        server = _ServerProcess(data)
        code = 0
        try:
            server.wait_ready()
            asyncio.run(_story(server.url, server.fingerprint, data))
        except ConsortiaError as exc:
            print(f"demo stopped: {exc.code}: {exc.message}")
            code = 1
        finally:
            status = server.stop()
            print(f"\nserver stopped by SIGTERM: exit status {status}")
        return code or (0 if status == 0 else 1)
