"""Attestation over HTTPS with simulated-snp: the SDK attests before it sends anything.

A member pins what the report binds (the service key and the TLS certificate) without a
fingerprint to copy; a host that relays the report with other keys or its own certificate
is refused; a policy vote that drops the running measurement makes the TEP refuse the
consortium, saying why; on the virtual platform every member command says nothing is
attested, and a trust file that requires hardware refuses it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import serve

from consortia._json import JSONObject
from consortia.attestation import AttestationFailed
from consortia.attestation.evidence import Evidence
from consortia.attestation.providers import SimulatedSnpProvider
from consortia.cli import main
from consortia.client import MemberClient
from consortia.client.attest import Trust
from consortia.errors import ConsortiaError
from consortia.identity.keyfile import save_member_keys
from consortia.server.tls import certificate_fingerprint, ensure_self_signed


@pytest.fixture(scope="module")
def snp(tmp_path_factory: pytest.TempPathFactory) -> SimulatedSnpProvider:
    """One simulated firmware (its test CA made once) for the module."""
    provider = SimulatedSnpProvider(tmp_path_factory.mktemp("snp"), rsa_bits=2048)
    provider.describe()
    return provider


def _trust(snp: SimulatedSnpProvider, **kw: Any) -> Trust:
    return Trust(test_roots={"lab": snp.ark_sha256}, **kw)


def _tls(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, _ = ensure_self_signed(directory, "127.0.0.1")
    return cert, key


def test_sdk_attests_pins_and_commits(tmp_path: Path, snp: SimulatedSnpProvider) -> None:
    with serve(tmp_path, tls=_tls(tmp_path / "tls"), provider=snp) as s:
        s.vote_in_order_action()
        info = s.http.get("/v1/service").json()
        assert info["platform"] == "simulated-snp"
        assert set(info["attestation"]) == {"evidence", "binding"}

        async def story() -> None:
            # Not told to trust the test root: refused, and told which pin it would be.
            with pytest.raises(AttestationFailed, match=snp.ark_sha256):
                await MemberClient(s.url, s.keys["telco"], "acme").connect()
            # A trust file that requires hardware refuses simulated SEV-SNP outright.
            hard = MemberClient(s.url, s.keys["telco"], "acme", trust=Trust(require_hardware=True))
            with pytest.raises(AttestationFailed, match="require_hardware"):
                await hard.connect()
            # A measurement the member does not list.
            other = _trust(snp, measurements=frozenset({"ab" * 48}))
            with pytest.raises(AttestationFailed, match=r"^measurement: expected one of"):
                await MemberClient(s.url, s.keys["telco"], "acme", trust=other).connect()
            measurement = snp.describe()["measurement"]
            assert isinstance(measurement, str)
            trust = _trust(snp, measurements=frozenset({measurement}))
            async with MemberClient(s.url, s.keys["telco"], "acme", trust=trust) as telco:
                attested = telco.attested
                assert attested.attested and attested.platform == "simulated-snp"
                assert attested.measurement_checked
                assert attested.service_key == info["service_key"]
                assert "SIMULATED" in attested.summary()
                result = await telco.call(
                    "recordOrder", {"order": "O-1", "status": "new"}, visible_to=["vendor"]
                )
                assert result == {"key": "order/O-1", "status": "new"}
                txid = await telco.execute_action(
                    "recordOrder", {"order": "O-1", "status": "x"}, encrypt=True
                )
                # The receipt verifies against the key the report bound, not a copied one.
                assert (await telco.verified_receipt(txid)).txid == txid

        asyncio.run(story())


class _Replay(BaseHTTPRequestHandler):
    """A host that answers GET /v1/service with a document it copied from a real TEP."""

    document: bytes = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(self.document)))
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _replaying(document: JSONObject, tls: tuple[Path, Path]) -> Iterator[str]:
    handler = type("Replay", (_Replay,), {"document": json.dumps(document).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls[0]), str(tls[1]))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Relayed:
    """A provider that hands out another TEP's evidence, whatever report data it is given."""

    kind = "simulated-snp"

    def __init__(self, real: SimulatedSnpProvider, evidence: Evidence) -> None:
        self.real, self.captured = real, evidence

    def evidence(self, report_data: bytes) -> Evidence:
        return self.captured

    def describe(self) -> JSONObject:
        return self.real.describe()


def test_a_relay_with_other_keys_or_its_own_certificate_is_refused(
    tmp_path: Path, snp: SimulatedSnpProvider
) -> None:
    trust = _trust(snp)
    with serve(tmp_path / "a", tls=_tls(tmp_path / "tls-a"), provider=snp) as real:
        copied = real.http.get("/v1/service").json()
        evidence = Evidence.from_json(copied["attestation"]["evidence"])
        keys = real.keys["telco"]

        async def connect(url: str) -> None:
            await MemberClient(url, keys, "acme", trust=trust).connect()

        # 1. The same report, served by a TEP with other keys and its own certificate: the
        #    binding it publishes is its own, which the report's data does not hash to.
        relay = _Relayed(snp, evidence)
        with serve(tmp_path / "b", tls=_tls(tmp_path / "tls-b"), provider=relay) as other:
            assert other.http.get("/v1/service").json()["service_key"] != copied["service_key"]
            with pytest.raises(AttestationFailed, match=r"^binding\.report_data"):
                asyncio.run(connect(other.url))
        # 2. The real TEP's whole document, keys and binding included, copied by a host
        #    with its own certificate: this connection's certificate is not the bound one.
        with (
            _replaying(copied, _tls(tmp_path / "tls-c")) as url,
            pytest.raises(AttestationFailed, match=r"^binding\.tls_certificate_sha256"),
        ):
            asyncio.run(connect(url))
        # 3. The copied document with the relay's certificate hash written into its
        #    binding: the values now match the connection, the report does not.
        forged: Any = json.loads(json.dumps(copied))
        cert_c = (tmp_path / "tls-c" / "tls-cert.pem").read_bytes()
        forged["attestation"]["binding"]["tls_certificate_sha256"] = (
            certificate_fingerprint(cert_c).replace(":", "").lower()
        )
        with (
            _replaying(forged, _tls(tmp_path / "tls-c")) as url,
            pytest.raises(AttestationFailed, match=r"^binding\.report_data"),
        ):
            asyncio.run(connect(url))
        # The real TEP still attests.
        asyncio.run(connect(real.url))


def test_dropping_the_running_measurement_stops_the_tep_serving_the_consortium(
    tmp_path: Path, snp: SimulatedSnpProvider
) -> None:
    trust = _trust(snp)
    with serve(tmp_path, tls=_tls(tmp_path / "tls"), provider=snp) as s:
        s.vote_in_order_action()
        running = snp.describe()["measurement"]
        assert isinstance(running, str)
        policy: JSONObject = {"measurements": ["ab" * 48], "min_tcb": None, "allow_virtual": True}
        pending = s.act("telco", "setPlatformPolicy", policy)
        assert pending.status_code == 202, pending.text
        ballot = {"proposal": pending.json()["proposal"], "ballot": "approve"}
        assert s.act("vendor", "voteFor", ballot).status_code == 200

        async def story() -> None:
            async with MemberClient(s.url, s.keys["installer"], "acme", trust=trust) as m:
                # Attestation still succeeds: the TEP is what it says; the consortium's
                # members decided it may no longer serve them.
                assert m.attested.attested
                with pytest.raises(ConsortiaError) as caught:
                    await m.call("recordOrder", {"order": "O-2", "status": "new"})
                assert caught.value.code == "unavailable"
                assert running in caught.value.message
                assert "platform policy" in caught.value.message
                with pytest.raises(ConsortiaError) as read:
                    await m.object("order/O-2")
                assert read.value.code == "unavailable"

        asyncio.run(story())
        assert s.http.get("/v1/service").status_code == 200


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_member_commands_say_what_was_attested(
    tmp_path: Path, snp: SimulatedSnpProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = _tls(tmp_path / "tls")
    pin = certificate_fingerprint(cert.read_bytes())
    hardware = tmp_path / "trust.json"
    hardware.write_text(json.dumps({"measurements": [], "require_hardware": True}))
    with serve(tmp_path / "v", tls=(cert, key)) as s:
        key_file = tmp_path / "telco.key.json"
        save_member_keys(s.keys["telco"], key_file)
        conn = ["--url", s.url, "--consortium", "acme", "--key", str(key_file)]
        code, out, err = _cli(capsys, "proposals", *conn, "--service-fingerprint", pin)
        assert code == 0, err
        assert "NOT ATTESTED: the TEP runs on the virtual platform" in err
        code, out, err = _cli(capsys, "proposals", *conn, "--trust", str(hardware), "--json")
        assert code == 3
        assert json.loads(out)["error"]["code"] == "attestation_failed"
        assert "require_hardware" in json.loads(out)["error"]["message"]
    with serve(tmp_path / "s", tls=_tls(tmp_path / "tls-s"), provider=snp) as s:
        key_file = tmp_path / "telco-s.key.json"
        save_member_keys(s.keys["telco"], key_file)
        conn = ["--url", s.url, "--consortium", "acme", "--key", str(key_file)]
        code, out, err = _cli(capsys, "proposals", *conn)
        assert code == 3 and "attestation_failed" in err and snp.ark_sha256 in err
        code, out, err = _cli(
            capsys, "proposals", *conn, "--trust-test-root", f"lab={snp.ark_sha256}"
        )
        assert code == 0, err
        assert "attested: SIMULATED SEV-SNP" in err and "NOT checked" in err
        # No fingerprint was given: the attested certificate is pinned, so a plain
        # CA-verified client would have refused this self-signed server.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{s.url}/v1/service")


def test_serve_refuses_a_platform_it_cannot_attest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from consortia.attestation.providers import SevSnpProvider
    from consortia.cli import serve as serve_cli

    # This machine's configfs-tsm may or may not exist: point the provider at a folder that
    # certainly lacks it, as on any host that is not an SEV-SNP guest.
    absent = tmp_path / "no-tsm"
    monkeypatch.setattr(serve_cli, "SevSnpProvider", lambda **kw: SevSnpProvider(absent, **kw))
    data = tmp_path / "tep"
    code, _, err = _cli(capsys, "serve", "--data", str(data), "--platform", "sev-snp")
    assert code == 1
    assert "unavailable: configfs-tsm not found" in err and "--platform virtual" in err
    assert not (data / "operator.key.jwk").exists()  # refused before anything was made
    for argv, message in (
        (["--platform", "simulated-snp", "--no-tls"], "needs TLS: drop --no-tls"),
        (["--vcek-file", "x.der"], "belong to --platform sev-snp"),
    ):
        code, _, err = _cli(capsys, "serve", "--data", str(data), *argv)
        assert code == 1 and message in err, err


def test_serve_verifies_its_own_evidence_before_it_serves(
    tmp_path: Path,
    snp: SimulatedSnpProvider,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    from consortia.cli import serve as serve_cli

    class WrongVcek(SimulatedSnpProvider):
        """Its reports come with another chip's VCEK (a host that supplied the wrong one)."""

        def __init__(self, data_dir: Path) -> None:
            super().__init__(data_dir, rsa_bits=2048)

        def evidence(self, report_data: bytes) -> Evidence:
            own = super().evidence(report_data)
            return dataclasses.replace(own, vcek_pem=snp.evidence(report_data).vcek_pem)

    monkeypatch.setattr(serve_cli, "SimulatedSnpProvider", WrongVcek)
    data = tmp_path / "tep"
    code, _, err = _cli(capsys, "serve", "--data", str(data), "--platform", "simulated-snp")
    assert code == 1
    assert "own evidence does not verify, so no member would accept it" in err, err
    assert not (data / "tls-cert.pem").exists()
