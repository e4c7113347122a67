"""The member SDK and the member CLI against a real TLS server with a pinned certificate."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from server_harness import serve

from consortia.cli import main
from consortia.cli.main import _parser
from consortia.client import MemberClient, Notification, PinMismatch
from consortia.errors import ConsortiaError
from consortia.identity.keyfile import save_member_keys, save_signing_key
from consortia.identity.keys import MemberKeys, VerifyKey
from consortia.ledger.receipts import verify_receipt
from consortia.server import _stream
from consortia.server.tls import certificate_fingerprint, ensure_self_signed


def test_sdk_calls_reads_and_resumes_its_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key, _ = ensure_self_signed(tmp_path, "127.0.0.1")
    pin = certificate_fingerprint(cert.read_bytes())
    # Streams end after a second (as at token expiry): the SDK must reconnect by itself.
    monkeypatch.setattr(_stream, "token_expiry", lambda token: int(time.time()) + 1)
    with serve(tmp_path, tls=(cert, key)) as s:
        s.vote_in_order_action()

        async def story() -> list[Notification]:
            bad = MemberClient(s.url, s.keys["telco"], "acme", fingerprint="00" * 32)
            with pytest.raises(PinMismatch):
                await bad.connect()
            async with (
                MemberClient(s.url, s.keys["telco"], "acme", fingerprint=pin) as telco,
                MemberClient(s.url, s.keys["installer"], "acme", fingerprint=pin) as installer,
            ):
                result = await telco.call(
                    "recordOrder", {"order": "O-9", "status": "new"}, visible_to=["installer"]
                )
                assert result == {"key": "order/O-9", "status": "new"}
                found: Any = await installer.object("order/O-9")
                assert found["value"]["by"] == "telco"
                with pytest.raises(ConsortiaError) as caught:
                    await telco.submit("noSuchAction", {})
                assert caught.value.code == "unknown_action" and caught.value.txid
                txid = await telco.execute_action(
                    "recordOrder",
                    {"order": "O-9", "status": "x"},
                    visible_to=["installer"],
                    encrypt=True,
                )
                assert len(txid) == 64
                seen: list[Notification] = []
                async with asyncio.timeout(20):
                    async for note in installer.notifications():
                        seen.append(note)
                        if len(seen) == 4:
                            await asyncio.sleep(1.5)  # the stream ends meanwhile
                            await telco.submit(
                                "recordOrder",
                                {"order": "O-10", "status": "y"},
                                visible_to=["installer"],
                            )
                        if note.kind == "notice" and note.body == {"order": "O-10", "status": "y"}:
                            break
                receipt: Any = await installer.receipt(txid)
                assert receipt["txid"] == txid
                # Verified offline against the service key, here the one the TLS pin vouches for.
                verified = await installer.verified_receipt(txid)
                assert verified.txid == txid
                receipt["seqno"] += 1
                with pytest.raises(ConsortiaError):
                    verify_receipt(receipt, VerifyKey.from_jwk(installer.service["service_key"]))
                return seen

        seen = asyncio.run(story())
        assert [n.id for n in seen] == list(range(1, len(seen) + 1))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    if "--json" in argv:
        # A script reads stdout alone; stderr says what was attested (here: nothing).
        assert "NOT ATTESTED" in out.err or code != 0, out.err
        return code, out.out
    return code, out.out + out.err


def test_cli_for_people_and_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, key, _ = ensure_self_signed(tmp_path, "127.0.0.1")
    pin = certificate_fingerprint(cert.read_bytes())
    with serve(tmp_path, tls=(cert, key)) as s:
        files = {}
        for member, keys in s.keys.items():
            files[member] = tmp_path / f"{member}.key.json"
            save_member_keys(keys, files[member])
        conn = ["--url", s.url, "--consortium", "acme", "--service-fingerprint", pin]
        newcomer = MemberKeys.generate("customer").public_info()
        code, out = _cli(
            capsys,
            "exec",
            "addMember",
            *conn,
            "--key",
            str(files["telco"]),
            "--params",
            json.dumps(newcomer),
            "--json",
        )
        assert code == 0 and json.loads(out)["status"] == "pending", out
        proposal = json.loads(out)["proposal"]
        code, out = _cli(capsys, "vote", proposal, "approve", *conn, "--key", str(files["vendor"]))
        assert code == 0 and "approve recorded" in out
        s.vote_in_order_action()
        code, out = _cli(
            capsys, "action", "show", "recordOrder", *conn, "--key", str(files["vendor"])
        )
        assert code == 0 and out.startswith("recordOrder: public starlark action"), out
        assert "params: not declared" in out and "who may run it:" in out
        code, out = _cli(capsys, "action", "show", "nope", *conn, "--key", str(files["vendor"]))
        assert code == 1 and "unknown_action" in out and "recordOrder" in out
        code, out = _cli(
            capsys,
            "exec",
            "recordOrder",
            *conn,
            "--key",
            str(files["telco"]),
            "--params",
            '{"order": "O-1", "status": "new"}',
            "--visible-to",
            "vendor",
            "--json",
        )
        assert code == 0 and json.loads(out)["status"] == "committed"
        code, out = _cli(capsys, "get", "order/O-1", *conn, "--key", str(files["vendor"]))
        assert code == 0 and '"status": "new"' in out
        code, out = _cli(capsys, "history", "order/O-1", *conn, "--key", str(files["installer"]))
        assert code == 0 and "hidden" in out
        code, out = _cli(capsys, "proposals", *conn, "--key", str(files["vendor"]), "--json")
        assert code == 0 and isinstance(json.loads(out), list)
        code, out = _cli(capsys, "watch", *conn, "--key", str(files["telco"]), "--count", "2")
        assert code == 0 and out.count("\n") >= 2
        code, out = _cli(capsys, "exec", "noSuch", *conn, "--key", str(files["telco"]))
        assert code == 1 and "unknown_action" in out
        code, out = _cli(
            capsys,
            "get",
            "k",
            "--url",
            "https://127.0.0.1:1",
            "--consortium",
            "acme",
            "--key",
            str(files["telco"]),
            "--insecure",
        )
        assert code == 3 and "unavailable" in out
        code, out = _cli(
            capsys,
            "get",
            "k",
            *conn[:-2],
            "--key",
            str(files["telco"]),
            "--service-fingerprint",
            "11" * 32,
        )
        assert code == 3 and "pinned" in out
        assert "hint: check that --key" not in out  # a pin mismatch is not a key problem
        # No pin at all on a self-signed certificate: say how to pin, not "retry".
        code, out = _cli(capsys, "get", "k", *conn[:-2], "--key", str(files["telco"]))
        assert code == 3 and "pin it with --service-fingerprint" in out, out
        assert "self-signed certificate" in out and "retry" not in out
        code, out = _cli(capsys, "get", "k", *conn[:-2], "--key", str(files["telco"]), "--insecure")
        assert "WARNING: --insecure" in out
        operator_file = tmp_path / "operator.key.jwk"
        save_signing_key(s.operator, operator_file)
        code, out = _cli(
            capsys,
            "consortium",
            "create",
            "--url",
            s.url,
            "--consortium",
            "beta",
            "--service-fingerprint",
            pin,
            "--operator-key",
            str(operator_file),
            "--member",
            str(files["telco"]),
            "--json",
        )
        assert code == 0 and json.loads(out)["consortium"] == "beta"
        with pytest.raises(SystemExit) as usage:
            main(["vote", "abc", "maybe"])
        assert usage.value.code == 2


def test_every_option_with_a_default_says_it_in_its_help() -> None:
    """`consortia X --help` shows each default, so no one needs the source to learn it."""

    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing: list[str] = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += walk(sub, f"{path} {name}")
            elif (
                action.option_strings
                and action.default not in (None, False, "", [], argparse.SUPPRESS)
                and "default" not in (action.help or "")
            ):
                missing.append(f"{path} {action.option_strings[-1]}")
        return missing

    assert walk(_parser(), "consortia") == []
