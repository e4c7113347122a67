"""``consortia attest``: a saved report checked offline, and the TEP at a URL attested.

``attest verify`` runs on AMD's real Milan report and chain (from ``../shared``, skipped
where absent); ``attest --url`` against TLS servers in a thread of this process, one on
simulated SEV-SNP and one on the virtual platform, and an address nothing answers on.
"""

from __future__ import annotations

import json
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from snp_vectors import MILAN_MEASUREMENT, milan

from consortia import Platform, SigningKey
from consortia.attestation.providers import PlatformProvider, SimulatedSnpProvider
from consortia.cli import main
from consortia.server import running_platform
from consortia.server.run import ServerConfig, ServerThread
from consortia.server.tls import certificate_fingerprint, ensure_self_signed

MEASUREMENT = bytes(range(48))


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


# -- attest verify -------------------------------------------------------------------------


@dataclass(frozen=True)
class MilanFiles:
    hex_report: Path
    binary_report: Path
    chain: Path
    short_chain: Path


@pytest.fixture(scope="module")
def milan_files(tmp_path_factory: pytest.TempPathFactory) -> MilanFiles:
    vectors = milan()
    base = tmp_path_factory.mktemp("milan")
    with warnings.catch_warnings():
        # AMD's VCEK has serial number 0, which cryptography warns about.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        pem = b"".join(
            x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
            for der in (vectors.vcek, vectors.ask, vectors.ark)
        )
    files = MilanFiles(
        hex_report=base / "report.hex",
        binary_report=base / "report.bin",
        chain=base / "chain.pem",
        short_chain=base / "short.pem",
    )
    files.hex_report.write_text(vectors.report.hex() + "\n")
    files.binary_report.write_bytes(vectors.report)
    files.chain.write_bytes(pem)
    # The ASK and ARK only (the VCEK left out).
    files.short_chain.write_bytes(pem[pem.index(b"-----END CERTIFICATE-----") + 26 :])
    return files


@pytest.mark.parametrize("form", ["hex", "binary"])
def test_verify_the_milan_report(
    capsys: pytest.CaptureFixture[str], milan_files: MilanFiles, form: str
) -> None:
    report = milan_files.hex_report if form == "hex" else milan_files.binary_report
    run = _cli(capsys, "attest", "verify", str(report), "--endorsements", str(milan_files.chain))
    assert run.code == 0, run.both
    assert "product:      Milan" in run.out
    assert f"measurement:  {MILAN_MEASUREMENT}" in run.out
    assert "verdict:      verified: AMD SEV-SNP report" in run.out
    assert "measurement not checked" in run.out


def test_verify_the_milan_report_with_its_measurement(
    capsys: pytest.CaptureFixture[str], milan_files: MilanFiles
) -> None:
    run = _cli(
        capsys,
        "attest",
        "verify",
        str(milan_files.hex_report),
        "--endorsements",
        str(milan_files.chain),
        "--measurement",
        MILAN_MEASUREMENT.upper(),
    )
    assert run.code == 0, run.both
    assert "verdict:      verified" in run.out and "not checked" not in run.out


def test_verify_another_measurement(
    capsys: pytest.CaptureFixture[str], milan_files: MilanFiles
) -> None:
    run = _cli(
        capsys,
        "attest",
        "verify",
        str(milan_files.hex_report),
        "--endorsements",
        str(milan_files.chain),
        "--measurement",
        "ab" * 48,
    )
    assert run.code == 1
    assert "verdict: REFUSED: attestation_failed: measurement: expected one of" in run.err
    assert MILAN_MEASUREMENT in run.err


def test_verify_chain_of_the_wrong_count(
    capsys: pytest.CaptureFixture[str], milan_files: MilanFiles
) -> None:
    run = _cli(
        capsys,
        "attest",
        "verify",
        str(milan_files.hex_report),
        "--endorsements",
        str(milan_files.short_chain),
    )
    assert run.code == 1
    assert "holds 2 certificates; expected three" in run.err


def test_verify_garbage_report(
    capsys: pytest.CaptureFixture[str], milan_files: MilanFiles, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.hex"
    garbage.write_text("this is not a report\n")
    run = _cli(capsys, "attest", "verify", str(garbage), "--endorsements", str(milan_files.chain))
    assert run.code == 1
    assert "REFUSED: attestation_failed: report: expected 1184 binary bytes" in run.err
    run = _cli(
        capsys,
        "attest",
        "verify",
        str(garbage),
        "--endorsements",
        str(milan_files.chain),
        "--json",
    )
    assert run.code == 1
    refused = json.loads(run.out)
    assert refused["verdict"] == "refused"
    assert refused["error"]["code"] == "attestation_failed"
    assert refused["error"]["message"].startswith("report: expected 1184 binary bytes")


def test_verify_missing_files(
    capsys: pytest.CaptureFixture[str], milan_files: MilanFiles, tmp_path: Path
) -> None:
    absent = tmp_path / "absent"
    run = _cli(capsys, "attest", "verify", str(absent), "--endorsements", str(milan_files.chain))
    assert run.code == 1 and "cannot read the report" in run.err
    run = _cli(
        capsys, "attest", "verify", str(milan_files.hex_report), "--endorsements", str(absent)
    )
    assert run.code == 1 and "cannot read the endorsements" in run.err


def test_verify_json(capsys: pytest.CaptureFixture[str], milan_files: MilanFiles) -> None:
    run = _cli(
        capsys,
        "attest",
        "verify",
        str(milan_files.binary_report),
        "--endorsements",
        str(milan_files.chain),
        "--measurement",
        MILAN_MEASUREMENT,
        "--json",
    )
    assert run.code == 0, run.both
    verdict = json.loads(run.out)
    assert verdict["verdict"] == "verified" and verdict["measurement_checked"] is True
    assert verdict["report"]["measurement"] == MILAN_MEASUREMENT


# -- attest --url --------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    fingerprint: str


@contextmanager
def _serving(data: Path, provider: PlatformProvider | None) -> Iterator[Server]:
    tls_dir = data / "tls"
    tls_dir.mkdir(parents=True)
    cert, key, _ = ensure_self_signed(tls_dir, "127.0.0.1")
    platform = Platform.open(
        data / "tep",
        operator_keys=[SigningKey.generate().verify_key],
        running=None if provider is None else running_platform(provider),
    )
    config = ServerConfig(
        port=0, tls=(cert, key), access_log=False, log_level="warning", provider=provider
    )
    thread = ServerThread(platform, config).start()
    try:
        yield Server(thread.url, certificate_fingerprint(cert.read_bytes()))
    finally:
        thread.stop()
        platform.close()


@pytest.fixture(scope="module")
def snp(tmp_path_factory: pytest.TempPathFactory) -> SimulatedSnpProvider:
    provider = SimulatedSnpProvider(
        tmp_path_factory.mktemp("snp"), measurement=MEASUREMENT, rsa_bits=2048
    )
    provider.describe()
    return provider


@pytest.fixture(scope="module")
def snp_server(
    tmp_path_factory: pytest.TempPathFactory, snp: SimulatedSnpProvider
) -> Iterator[Server]:
    with _serving(tmp_path_factory.mktemp("snp-server"), snp) as server:
        yield server


@pytest.fixture(scope="module")
def virtual_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with _serving(tmp_path_factory.mktemp("virtual-server"), None) as server:
        yield server


def test_url_simulated_refused_without_test_root(
    capsys: pytest.CaptureFixture[str], snp_server: Server, snp: SimulatedSnpProvider
) -> None:
    assert snp_server.url.startswith("https://")
    run = _cli(capsys, "attest", "--url", snp_server.url)
    assert run.code == 1
    assert "REFUSED: attestation_failed: root: the TEP runs on simulated SEV-SNP" in run.err
    assert f"--trust-test-root NAME={snp.ark_sha256}" in run.err
    run = _cli(capsys, "attest", "--url", snp_server.url, "--json")
    assert run.code == 1
    assert json.loads(run.out)["verdict"] == "refused"


def test_url_simulated_attested_with_test_root(
    capsys: pytest.CaptureFixture[str], snp_server: Server, snp: SimulatedSnpProvider
) -> None:
    root = f"lab={snp.ark_sha256}"
    run = _cli(capsys, "attest", "--url", snp_server.url, "--trust-test-root", root)
    assert run.code == 0, run.both
    assert "platform:     simulated-snp" in run.out
    assert f"measurement:  {MEASUREMENT.hex()}" in run.out
    assert "measurement check: NOT checked" in run.out
    assert "verdict:      attested: SIMULATED SEV-SNP" in run.out
    fingerprint = snp_server.fingerprint.replace(":", "").lower()
    assert f"tls cert:     sha256 {fingerprint}" in run.out

    run = _cli(capsys, "attest", "--url", snp_server.url, "--trust-test-root", root, "--json")
    assert run.code == 0, run.both
    verdict = json.loads(run.out)
    assert verdict["verdict"] == "attested" and verdict["attested"] is True
    assert verdict["platform"] == "simulated-snp"
    assert verdict["tls_certificate_sha256"] == fingerprint
    assert verdict["report"]["measurement"] == MEASUREMENT.hex()


def test_url_simulated_with_trust_file(
    capsys: pytest.CaptureFixture[str],
    snp_server: Server,
    snp: SimulatedSnpProvider,
    tmp_path: Path,
) -> None:
    trust = tmp_path / "trust.json"
    trust.write_text(
        json.dumps(
            {
                "measurements": [MEASUREMENT.hex()],
                "require_hardware": False,
                "test_roots": {"lab": snp.ark_sha256},
            }
        )
    )
    run = _cli(capsys, "attest", "--url", snp_server.url, "--trust", str(trust), "--json")
    assert run.code == 0, run.both
    assert json.loads(run.out)["measurement_checked"] is True
    trust.write_text(json.dumps({"measurements": ["ab" * 48], "require_hardware": False}))
    run = _cli(
        capsys,
        "attest",
        "--url",
        snp_server.url,
        "--trust",
        str(trust),
        "--trust-test-root",
        f"lab={snp.ark_sha256}",
    )
    assert run.code == 1
    assert "REFUSED: attestation_failed: measurement: expected one of" in run.err


def test_url_simulated_wrong_fingerprint(
    capsys: pytest.CaptureFixture[str], snp_server: Server, snp: SimulatedSnpProvider
) -> None:
    run = _cli(
        capsys,
        "attest",
        "--url",
        snp_server.url,
        "--trust-test-root",
        f"lab={snp.ark_sha256}",
        "--service-fingerprint",
        "00" * 32,
    )
    assert run.code == 3, run.both
    assert "REFUSED" in run.err


def test_url_virtual_not_attested(
    capsys: pytest.CaptureFixture[str], virtual_server: Server
) -> None:
    pin = ("--service-fingerprint", virtual_server.fingerprint)
    run = _cli(capsys, "attest", "--url", virtual_server.url, *pin)
    assert run.code == 1, run.both
    assert "platform:     virtual" in run.out
    assert "verdict:      NOT ATTESTED" in run.out
    run = _cli(capsys, "attest", "--url", virtual_server.url, *pin, "--json")
    assert run.code == 1
    verdict = json.loads(run.out)
    assert verdict["verdict"] == "not_attested" and verdict["attested"] is False


def test_url_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = _cli(capsys, "attest", "--url", f"https://127.0.0.1:{port}")
    assert run.code == 3, run.both
    assert "REFUSED" in run.err
    run = _cli(capsys, "attest", "--url", f"https://127.0.0.1:{port}", "--json")
    assert run.code == 3
    assert json.loads(run.out)["verdict"] == "refused"


def test_url_missing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSORTIA_URL", raising=False)
    run = _cli(capsys, "attest")
    assert run.code == 2 and "give --url URL" in run.err
