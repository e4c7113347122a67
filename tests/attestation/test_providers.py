"""Platform providers: virtual, simulated SNP on a data directory, real SNP through
configfs-tsm (against a fake that behaves like the kernel), the evidence JSON and the
GHCB certificate table."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
import struct
import uuid
from pathlib import Path

import pytest

from consortia.attestation.chain import verify_chain
from consortia.attestation.configfs import (
    ARK_GUID,
    ASK_GUID,
    VCEK_GUID,
    VLEK_GUID,
    ConfigfsOps,
    build_cert_table,
    parse_cert_table,
    request_report,
)
from consortia.attestation.errors import AttestationFailed
from consortia.attestation.evidence import Evidence
from consortia.attestation.providers import (
    PlatformProvider,
    SevSnpProvider,
    SimulatedSnpProvider,
    VirtualProvider,
    kds_vcek_url,
)
from consortia.attestation.report import Tcb, parse_report
from consortia.attestation.simulated import SimulatedSnp, TestCA, build_measurement
from consortia.errors import Unavailable

NOW = dt.datetime.now(dt.UTC)
MEASUREMENT = hashlib.sha384(b"provider test build").digest()


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA.generate(rsa_bits=2048)


@pytest.fixture(scope="module")
def snp(ca: TestCA) -> SimulatedSnp:
    return SimulatedSnp(ca, MEASUREMENT)


def _der(pem: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def _verify(evidence: Evidence, ca: TestCA) -> None:
    info = verify_chain(
        evidence.vcek_pem.encode(),
        evidence.ask_pem.encode(),
        evidence.ark_pem.encode(),
        now=NOW,
        roots={"consortia-test": ca.ark_sha256},
    )
    assert info.hw_id == parse_report(evidence.report).chip_id


class FakeTsm(ConfigfsOps):
    """configfs-tsm as the kernel behaves: an entry comes with its attributes, writing
    ``inblob`` makes ``outblob`` (a report over the written data) and ``auxblob``."""

    def __init__(
        self,
        snp: SimulatedSnp,
        auxblob: bytes,
        *,
        provider: str = "sev_guest",
        racing: bool = False,
    ) -> None:
        self.snp = snp
        self.auxblob = auxblob
        self.provider = provider
        self.racing = racing
        self.inblobs: list[bytes] = []
        self.reads = 0

    def mkdir(self, path: Path) -> None:
        path.mkdir()
        (path / "provider").write_text(self.provider + "\n")
        (path / "generation").write_text("0\n")

    def rmdir(self, path: Path) -> None:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()

    def write(self, path: Path, data: bytes) -> None:
        super().write(path, data) if path.exists() else path.write_bytes(data)
        if path.name == "inblob":
            self.inblobs.append(data)
            (path.parent / "outblob").write_bytes(self.snp.report_bytes(data))
            (path.parent / "auxblob").write_bytes(self.auxblob)
            (path.parent / "generation").write_text("1\n")

    def read(self, path: Path, *, limit: int) -> bytes:
        if path.name == "generation":
            self.reads += 1
            if self.racing and self.reads > 1:
                return b"2\n"
        return super().read(path, limit=limit)


def _table(ca: TestCA) -> bytes:
    return build_cert_table(
        {
            VCEK_GUID: _der(ca.vcek_pem),
            ASK_GUID: _der(ca.ask_pem),
            ARK_GUID: _der(ca.ark_pem),
        }
    )


# --- the evidence JSON -------------------------------------------------------------------


def test_evidence_json_round_trip(snp: SimulatedSnp) -> None:
    evidence = snp.report(bytes(64))
    wire = evidence.to_json()
    assert set(wire) == {"platform", "report", "vcek_pem", "ask_pem", "ark_pem"}
    assert isinstance(wire["report"], str)
    assert "=" not in wire["report"]
    assert Evidence.from_json(wire) == evidence
    assert evidence.chain_pem == snp.ca.chain_pem()
    assert "bytes" in repr(evidence)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"platform": "virtual"}, "platform"),
        ({"report": "AAAA"}, "1184 bytes"),
        ({"report": "AA=="}, "padding"),
        ({"report": 7}, "base64url"),
        ({"vcek_pem": "not a pem"}, "PEM"),
        ({"ask_pem": None}, "PEM string"),
        ({"extra": 1}, "unknown members"),
    ],
)
def test_malformed_evidence_is_refused(
    snp: SimulatedSnp, change: dict[str, object], message: str
) -> None:
    wire: dict[str, object] = dict(snp.report(bytes(64)).to_json())
    wire.update(change)
    with pytest.raises(AttestationFailed, match=message):
        Evidence.from_json(wire)


def test_evidence_must_be_an_object_with_every_member(snp: SimulatedSnp) -> None:
    with pytest.raises(AttestationFailed, match="JSON object"):
        Evidence.from_json([1, 2])
    wire = dict(snp.report(bytes(64)).to_json())
    del wire["ark_pem"]
    with pytest.raises(AttestationFailed, match="missing"):
        Evidence.from_json(wire)
    two = dict(snp.report(bytes(64)).to_json())
    two["vcek_pem"] = snp.ca.vcek_pem + snp.ca.ask_pem
    with pytest.raises(AttestationFailed, match="exactly one"):
        Evidence.from_json(two)


# --- virtual and simulated ---------------------------------------------------------------


def test_virtual_gives_no_evidence() -> None:
    provider = VirtualProvider()
    assert isinstance(provider, PlatformProvider)
    assert provider.kind == "virtual"
    assert provider.evidence(bytes(64)) is None
    assert provider.describe() == {"kind": "virtual", "attested": False, "hardware": False}
    with pytest.raises(ValueError, match="64 bytes"):
        provider.evidence(b"short")


def test_simulated_provider_makes_its_ca_on_first_use(tmp_path: Path) -> None:
    provider = SimulatedSnpProvider(tmp_path, rsa_bits=2048)
    assert isinstance(provider, PlatformProvider)
    assert not (tmp_path / "simulated-snp").exists()  # nothing until first use
    evidence = provider.evidence(b"\x05" * 64)
    directory = tmp_path / "simulated-snp"
    assert sorted(p.name for p in directory.iterdir()) == [
        "ark.pem",
        "ask.key",
        "ask.pem",
        "vcek.key",
        "vcek.pem",
    ]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in directory.iterdir())
    report = parse_report(evidence.report)
    assert report.measurement == build_measurement()
    assert report.report_data == b"\x05" * 64
    again = SimulatedSnpProvider(tmp_path)
    assert again.ark_sha256 == provider.ark_sha256
    info = verify_chain(
        evidence.vcek_pem.encode(),
        evidence.ask_pem.encode(),
        evidence.ark_pem.encode(),
        now=NOW,
        roots={"test": again.ark_sha256},
    )
    assert info.root_name == "test"


def test_simulated_describe(ca: TestCA, tmp_path: Path) -> None:
    ca.save(tmp_path / "simulated-snp")
    provider = SimulatedSnpProvider(tmp_path, measurement=MEASUREMENT)
    summary = provider.describe()
    assert summary["kind"] == "simulated-snp"
    assert summary["hardware"] is False
    assert summary["measurement"] == MEASUREMENT.hex()
    assert summary["tcb"] == ca.tcb.to_json()
    assert summary["test_ark_sha256"] == ca.ark_sha256
    assert summary["product"] == "Milan-B0"
    assert "prove nothing" in str(summary["note"])
    _verify(provider.evidence(bytes(64)), ca)


# --- real SNP through configfs-tsm --------------------------------------------------------


def test_configfs_provider_reads_report_and_certificate_table(
    ca: TestCA, snp: SimulatedSnp, tmp_path: Path
) -> None:
    fake = FakeTsm(snp, _table(ca))
    provider = SevSnpProvider(tmp_path, ops=fake)
    assert isinstance(provider, PlatformProvider)
    data = b"\x42" * 64
    evidence = provider.evidence(data)
    assert fake.inblobs == [data]
    assert evidence.platform == "sev-snp"
    assert parse_report(evidence.report).report_data == data
    _verify(evidence, ca)
    assert list(tmp_path.iterdir()) == []  # the entry was removed
    summary = provider.describe()
    assert summary["kind"] == "sev-snp"
    assert summary["hardware"] is True
    assert summary["measurement"] == MEASUREMENT.hex()
    assert summary["chip_id"] == ca.chip_id.hex()


def test_describe_requests_a_report_when_none_yet(
    ca: TestCA, snp: SimulatedSnp, tmp_path: Path
) -> None:
    fake = FakeTsm(snp, b"")
    summary = SevSnpProvider(tmp_path, ops=fake).describe()
    assert fake.inblobs == [bytes(64)]
    assert summary["tcb"] == ca.tcb.to_json()


def test_missing_configfs_is_unavailable(tmp_path: Path) -> None:
    provider = SevSnpProvider(tmp_path / "no-such-dir")
    with pytest.raises(Unavailable, match=r"configfs-tsm not found at .*simulated-snp"):
        provider.evidence(bytes(64))
    with pytest.raises(Unavailable, match="CONFIG_TSM_REPORTS"):
        request_report(bytes(64), root=tmp_path / "no-such-dir")


def test_other_tsm_provider_is_unavailable(snp: SimulatedSnp, tmp_path: Path) -> None:
    fake = FakeTsm(snp, b"", provider="tdx_guest")
    with pytest.raises(Unavailable, match="tdx_guest"):
        SevSnpProvider(tmp_path, ops=fake).evidence(bytes(64))
    assert list(tmp_path.iterdir()) == []


def test_racing_writer_is_detected(ca: TestCA, snp: SimulatedSnp, tmp_path: Path) -> None:
    fake = FakeTsm(snp, _table(ca), racing=True)
    with pytest.raises(Unavailable, match="changed while being read"):
        SevSnpProvider(tmp_path, ops=fake).evidence(bytes(64))
    assert list(tmp_path.iterdir()) == []


def test_no_vcek_in_the_table_names_the_kds_address(
    ca: TestCA, snp: SimulatedSnp, tmp_path: Path
) -> None:
    root = tmp_path / "tsm"
    root.mkdir()
    provider = SevSnpProvider(root, ops=FakeTsm(snp, b""))
    url = kds_vcek_url("Milan", ca.chip_id, ca.tcb)
    assert url.startswith("https://kdsintf.amd.com/vcek/v1/Milan/" + ca.chip_id.hex())
    assert url.endswith("?blSPL=04&teeSPL=00&snpSPL=22&ucodeSPL=213")
    turin = kds_vcek_url("Turin", ca.chip_id, Tcb(bootloader=1, tee=2, snp=3, microcode=4, fmc=5))
    assert turin == (
        f"https://kdsintf.amd.com/vcek/v1/Turin/{ca.chip_id[:8].hex()}"
        "?fmcSPL=05&blSPL=01&teeSPL=02&snpSPL=03&ucodeSPL=04"
    )
    with pytest.raises(Unavailable, match="no VCEK") as caught:
        provider.evidence(bytes(64))
    assert url in caught.value.message
    # The operator fetched the VCEK (DER, as KDS serves it) and the chain (PEM): now it works.
    vcek_file = tmp_path / "vcek.der"
    vcek_file.write_bytes(_der(ca.vcek_pem))
    chain_file = tmp_path / "cert_chain.pem"
    chain_file.write_text(ca.ask_pem + ca.ark_pem)
    provider = SevSnpProvider(
        root, vcek_file=vcek_file, chain_file=chain_file, ops=FakeTsm(snp, b"")
    )
    _verify(provider.evidence(bytes(64)), ca)
    # A VCEK alone is not enough.
    only_vcek = SevSnpProvider(root, vcek_file=vcek_file, ops=FakeTsm(snp, b""))
    with pytest.raises(Unavailable, match="cert_chain"):
        only_vcek.evidence(bytes(64))


def test_bad_certificate_files_are_refused(ca: TestCA, tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="cannot read"):
        SevSnpProvider(tmp_path, vcek_file=tmp_path / "absent.der")
    chain = tmp_path / "chain.pem"
    chain.write_text(ca.ask_pem)
    with pytest.raises(Unavailable, match="expected the ASK then the ARK"):
        SevSnpProvider(tmp_path, chain_file=chain)
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello")
    with pytest.raises(Unavailable, match="neither a PEM nor a DER"):
        SevSnpProvider(tmp_path, vcek_file=junk)


def test_vlek_only_table_is_unsupported(ca: TestCA, snp: SimulatedSnp, tmp_path: Path) -> None:
    table = build_cert_table({VLEK_GUID: _der(ca.vcek_pem)})
    with pytest.raises(Unavailable, match="VLEK"):
        SevSnpProvider(tmp_path, ops=FakeTsm(snp, table)).evidence(bytes(64))


def test_malformed_auxblob_is_unavailable(snp: SimulatedSnp, tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match=r"certificate table .* malformed"):
        SevSnpProvider(tmp_path, ops=FakeTsm(snp, b"\x01" * 30)).evidence(bytes(64))


# --- the certificate table ---------------------------------------------------------------


def test_cert_table_round_trip() -> None:
    certs = {VCEK_GUID: b"\x30vcek", ASK_GUID: b"\x30ask", ARK_GUID: b"\x30ark"}
    blob = build_cert_table(certs)
    assert parse_cert_table(blob) == certs
    assert parse_cert_table(b"") == {}
    assert parse_cert_table(bytes(24)) == {}
    # The GUID is stored in RFC 4122 byte order, as AMD's tools and the kernel do.
    assert blob[:16] == bytes.fromhex("63da758de6644564adc5f4b93be8accd")


def _entry(guid: uuid.UUID, offset: int, length: int) -> bytes:
    return struct.pack("<16sII", guid.bytes, offset, length)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x00" * 10, "truncated"),
        (_entry(VCEK_GUID, 48, 4) + b"abcd", "truncated"),  # no terminator
        (_entry(VCEK_GUID, 48, 100) + bytes(24) + b"abcd", "past the blob"),
        (_entry(VCEK_GUID, 0, 4) + bytes(24) + b"abcd", "inside the table"),
        (_entry(VCEK_GUID, 48, 0) + bytes(24), "length 0"),
        (_entry(VCEK_GUID, 72, 2) * 2 + bytes(24) + b"ab", "twice"),
        (bytes(16) + struct.pack("<II", 48, 4) + bytes(24) + b"abcd", "zero GUID"),
    ],
)
def test_malformed_cert_tables_are_refused(blob: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cert_table(blob)


def test_cert_table_entry_count_is_capped() -> None:
    entries = b"".join(_entry(uuid.UUID(int=i + 1), 0, 1) for i in range(65))
    with pytest.raises(ValueError, match="more than 64"):
        parse_cert_table(entries + bytes(24))


def test_request_report_wants_64_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        request_report(b"x", root=tmp_path)
