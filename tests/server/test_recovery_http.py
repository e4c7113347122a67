"""Recovery members can drive: shares over HTTPS to a TEP that lost its node key.

A platform is served (server_harness), its members keep their shares with
``consortia recovery save``, the operator seals the service keys with ``consortia recovery
backup``; then a copy of the storage without ``node.key`` is served in recovery mode and the
members submit their shares with ``consortia recovery submit`` and the SDK.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from server_harness import JOSE, serve

from consortia import MemberKeys, Platform
from consortia.cli import main
from consortia.client import PinMismatch
from consortia.client.recovery import (
    holder_proof,
    recovery_status,
    share_submission,
    submit_recovery_share,
)
from consortia.engine.audit import verify_ledger
from consortia.engine.recovery import RecoverySession
from consortia.identity.keyfile import load_member_keys, save_member_keys
from consortia.identity.keys import SigningKey
from consortia.ledger.nodekey import load_node_key
from consortia.ledger.recovery import open_share, sign_holder_proof, sign_submission
from consortia.ledger.sqlite import SQLiteStore
from consortia.server._recovery import MAX_SHARE_BYTES, RecoveryServer
from consortia.server.run import ServerConfig
from consortia.server.tls import certificate_fingerprint, ensure_self_signed
from testkit import storage_fingerprint


@dataclass
class Disaster:
    """What is left after the node key is lost, and what members and operator kept."""

    copy: Path
    keyfiles: dict[str, Path]
    shares: dict[str, Path]
    keys: dict[str, MemberKeys]
    backup_key: Path
    service_key: dict[str, str]
    tls: tuple[Path, Path]
    pin: str


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def _disaster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], other: tuple[str, ...] = ("bob", "carol")
) -> Disaster:
    """acme (3 founders) and, unless ``other`` is empty, a second consortium, served; each
    member saves its share over HTTPS, the operator backs the service keys up; node key lost."""
    cert, key, _ = ensure_self_signed(tmp_path, "127.0.0.1")
    pin = certificate_fingerprint(cert.read_bytes())
    operator_recovery = MemberKeys.generate("operator-recovery")
    backup_key = tmp_path / "operator-recovery.key.json"
    save_member_keys(operator_recovery, backup_key)
    keyfiles: dict[str, Path] = {}
    shares: dict[str, Path] = {}
    with serve(tmp_path, tls=(cert, key)) as s:
        if other:
            s.cid = "other"
            s.create(other)
            s.cid = "acme"
        service_key = dict(s.http.get("/v1/service").json()["service_key"])
        for member, member_keys in s.keys.items():
            keyfiles[member] = tmp_path / f"{member}.key.json"
            save_member_keys(member_keys, keyfiles[member])
            cid = "other" if member in other else "acme"
            shares[member] = tmp_path / f"{member}.share.json"
            code, out = _cli(
                capsys,
                "recovery",
                "save",
                "--url",
                s.url,
                "--key",
                str(keyfiles[member]),
                "--consortium",
                cid,
                "--pin",
                pin,
                "--out",
                str(shares[member]),
            )
            assert code == 0 and f"to {shares[member]}" in out, out
        keys = dict(s.keys)
        data = tmp_path / "tep"
        code, out = _cli(
            capsys, "recovery", "backup", "--data", str(data), "--to", str(backup_key), "--json"
        )
        assert code == 0, out
        assert json.loads(out)["service_key"] == service_key
        assert operator_recovery.encryption.to_jwk()["d"] not in out
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    (copy / "node.key").unlink()
    return Disaster(copy, keyfiles, shares, keys, backup_key, service_key, (cert, key), pin)


@contextmanager
def _recovering(d: Disaster) -> Iterator[tuple[RecoveryServer, httpx.Client]]:
    session = RecoverySession(d.copy)
    session.restore_service(load_member_keys(d.backup_key).encryption)
    config = ServerConfig(port=0, tls=d.tls, access_log=False, log_level="warning")
    server = RecoveryServer(session, config).start()
    http = httpx.Client(base_url=server.url, timeout=10, verify=False)  # noqa: S501 - raw checks
    try:
        yield server, http
    finally:
        http.close()
        server.stop()
        session.close()


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def test_members_recover_a_tep_over_https(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _disaster(tmp_path, capsys)
    db = d.copy / "ledger.sqlite"
    with _recovering(d) as (server, http):
        # Progress: counts for all, no consortium or member ids unless asked for one.
        first = http.get("/v1/recovery")
        assert first.status_code == 200
        assert first.json() == {
            "complete": False,
            "consortia": 2,
            "ready": 0,
            "service_key": d.service_key,
        }
        assert "acme" not in first.text and "telco" not in first.text
        telco_notice = json.loads(d.shares["telco"].read_text())
        proof = {"authorization": f"Bearer {holder_proof(d.keys['telco'], telco_notice)}"}
        mine = http.get("/v1/recovery", headers=proof).json()["consortium"]
        assert mine == {"consortium": "acme", "received": 0, "threshold": 2}
        # A proof from someone who holds no share names nothing, whatever it claims.
        held = open_share(telco_notice["sealed"], d.keys["telco"])
        stranger = sign_holder_proof(MemberKeys.generate("telco"), held, now=int(time.time()))
        nobody = sign_holder_proof(
            MemberKeys.generate("telco"), replace(held, cid="nope"), now=int(time.time())
        )
        refusals = [
            _error(http.get("/v1/recovery", headers={"authorization": f"Bearer {t}"}), 401, code)
            for t, code in ((stranger, "bad_signature"), (nobody, "bad_signature"))
        ]
        assert refusals[0].replace("'acme'", "'nope'") == refusals[1]
        _error(
            http.get("/v1/recovery", headers={"authorization": "Bearer x.y.z"}), 400, "bad_request"
        )
        _error(http.get("/v1/recovery", params={"bogus": "1"}), 400, "bad_request")

        # Every other endpoint: the protocol's error, saying why, with Retry-After.
        for response in (
            http.get("/v1/service"),
            http.get("/healthz"),
            http.post("/v1/consortia/acme/actions", headers=JOSE, content="x.y.z"),
            http.get("/"),
        ):
            assert "recovering" in _error(response, 503, "unavailable")
            assert response.headers["retry-after"] == "30"
        _error(http.post("/v1/recovery"), 400, "bad_request")

        # Bad shares: refused with a code that says what, changing nothing.
        before = storage_fingerprint(db)
        telco_share = share_submission(d.keys["telco"], json.loads(d.shares["telco"].read_text()))
        shares = "/v1/recovery/shares"
        wrong_type = http.post(shares, content=telco_share, headers={"content-type": "text/plain"})
        assert "application/jose" in _error(wrong_type, 400, "bad_request")
        _error(http.post(shares, content="not-a-jws", headers=JOSE), 400, "bad_request")
        big = "a" * (MAX_SHARE_BYTES + 1)
        assert "under" in _error(http.post(shares, content=big, headers=JOSE), 400, "bad_request")
        stolen = open_share(json.loads(d.shares["telco"].read_text())["sealed"], d.keys["telco"])
        stranger = sign_submission(MemberKeys.generate("telco"), stolen)
        message = _error(http.post(shares, content=stranger, headers=JOSE), 401, "bad_signature")
        assert "holds no current recovery share" in message
        assert storage_fingerprint(db) == before

        # The CLI: a member sends its saved share and sees its consortium's progress.
        member = ["--url", server.url, "--pin", d.pin]
        code, out = _cli(
            capsys,
            "recovery",
            "submit",
            *member,
            "--key",
            str(d.keyfiles["telco"]),
            "--share",
            str(d.shares["telco"]),
        )
        assert code == 0 and "'acme' has 1 of 2 shares" in out, out
        code, out = _cli(
            capsys,
            "recovery",
            "submit",
            *member,
            "--key",
            str(d.keyfiles["telco"]),
            "--share",
            str(d.shares["telco"]),
        )
        assert code == 1 and "replay" in out and "counts once" in out, out
        code, out = _cli(
            capsys,
            "recovery",
            "submit",
            "--url",
            server.url,
            "--pin",
            "00" * 32,
            "--key",
            str(d.keyfiles["vendor"]),
            "--share",
            str(d.shares["vendor"]),
        )
        assert code == 3, out
        status = ["--key", str(d.keyfiles["telco"]), "--share", str(d.shares["telco"]), "--json"]
        code, out = _cli(capsys, "recovery", "status", *member, *status)
        assert code == 0 and json.loads(out)["consortium"]["received"] == 1, out

        # The SDK: bob sends his; k-1 shares in each consortium finish nothing.
        bob = share_submission(d.keys["bob"], json.loads(d.shares["bob"].read_text()))
        progress = asyncio.run(submit_recovery_share(server.url, bob, fingerprint=d.pin))
        assert progress["consortium"] == {"consortium": "other", "received": 1, "threshold": 2}
        assert progress["complete"] is False and progress["ready"] == 0
        with pytest.raises(PinMismatch):
            asyncio.run(recovery_status(server.url, fingerprint="11" * 32))
        assert not (d.copy / "node.key").exists()

        # From the notifications a member kept (`consortia watch --json` lines), checking
        # first that the recovering TEP comes back with the service key it pinned.
        kept = tmp_path / "vendor.watch.jsonl"
        lines = [
            {"id": 1, "kind": "notice", "body": {"event": "consortium_created"}},
            {"id": 2, "kind": "notice", "body": json.loads(d.shares["vendor"].read_text())},
        ]
        kept.write_text("".join(json.dumps(line) + "\n" for line in lines))
        code, out = _cli(
            capsys,
            "recovery",
            "submit",
            *member,
            "--key",
            str(d.keyfiles["vendor"]),
            "--from-notifications",
            str(kept),
            "--service-key",
            json.dumps(d.service_key),
        )
        assert code == 0 and "'acme' has 2 of 2 shares; 1 of 2 consortia" in out, out
        wrong_key = json.dumps(dict(SigningKey.generate().public_jwk()))
        carol = ["--key", str(d.keyfiles["carol"]), "--share", str(d.shares["carol"])]
        code, out = _cli(capsys, "recovery", "submit", *member, *carol, "--service-key", wrong_key)
        assert code == 1 and "was not sent" in out, out
        bob_proof = holder_proof(d.keys["bob"], json.loads(d.shares["bob"].read_text()))
        other = http.get("/v1/recovery", headers={"authorization": f"Bearer {bob_proof}"}).json()
        assert other["consortium"]["received"] == 1 and other["complete"] is False
        assert not (d.copy / "node.key").exists()

        # The last share completes the recovery in its own request.
        code, out = _cli(capsys, "recovery", "submit", *member, *carol, "--json")
        assert code == 0 and json.loads(out)["complete"] is True, out
        assert (d.copy / "node.key").exists()
        assert http.get("/v1/recovery").json()["complete"] is True
        late = share_submission(d.keys["installer"], json.loads(d.shares["installer"].read_text()))
        assert "already recovered" in _error(
            http.post(shares, content=late, headers=JOSE), 400, "bad_request"
        )
        assert "has recovered" in _error(http.get("/v1/service"), 503, "unavailable")

    # The operator restarts normally: same service key, every ledger verifies.
    platform = Platform.open(d.copy, analytics=False)
    try:
        assert platform.service_info()["service_key"] == d.service_key
        assert platform.member_view("other", "carol").notifications()
    finally:
        platform.close()
    store = SQLiteStore(db, read_only=True)
    try:
        assert [a.consortium for a in verify_ledger(store, load_node_key(d.copy / "node.key"))] == [
            "acme",
            "other",
        ]
    finally:
        store.close()


def test_recovery_serve_command_exits_when_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _disaster(tmp_path, capsys, other=())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "consortia",
        "recovery",
        "serve",
        "--data",
        str(d.copy),
        "--backup-key",
        str(d.backup_key),
        "--port",
        "0",
        "--exit-when-complete",
        "--no-access-log",
    ]
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert process.stdout is not None
        seen: list[str] = []
        url = pin = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "fingerprint:" in line:
                pin = line.rsplit(" ", 1)[-1].strip()
            if "recovery mode, serving " in line:
                url = line.rsplit(" ", 1)[-1].strip()
        assert url and pin, "".join(seen)
        assert "1 consortia to recover" in "".join(seen)
        for member in ("installer", "telco"):
            body = share_submission(d.keys[member], json.loads(d.shares[member].read_text()))
            answer = asyncio.run(submit_recovery_share(url, body, fingerprint=pin))
        assert answer["complete"] is True
        assert process.wait(timeout=30) == 0
        rest = process.stdout.read()
        assert "recovered: start the platform with `consortia serve" in rest, rest
        # Nothing secret reached the operator's terminal.
        output = "".join(seen) + rest
        for member in ("installer", "telco"):
            assert d.keys[member].encryption.to_jwk()["d"] not in output
            assert json.loads(d.shares[member].read_text())["sealed"] not in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    Platform.open(d.copy, analytics=False).close()
