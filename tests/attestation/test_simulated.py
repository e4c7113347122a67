"""The simulated-snp platform: a test CA built like AMD's, reports in the firmware's layout
that the real verifier accepts only when told to trust the test root, and the measurement
of the package source."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.utils import CryptographyDeprecationWarning
from snp_vectors import SNP

from consortia.attestation.binding import binding_document, report_data_for
from consortia.attestation.chain import AMD_ARK_SHA256, load_chain_pem, verify_chain
from consortia.attestation.errors import AttestationFailed
from consortia.attestation.policy import AttestationPolicy
from consortia.attestation.report import REPORT_SIZE, Tcb, parse_report, signed_part
from consortia.attestation.simulated import (
    DEFAULT_TEST_TCB,
    SimulatedSnp,
    TestCA,
    build_measurement,
)
from consortia.attestation.verify import Binding, verify_evidence, verify_report_signature
from consortia.errors import BadRequest

NOW = dt.datetime.now(dt.UTC)
TEST_ROOT = "consortia-test"
REAL_VCEK = SNP / "virtee-sev" / "vcek_milan.der"
MEASUREMENT = hashlib.sha384(b"some build").digest()


@pytest.fixture(scope="module")
def ca() -> TestCA:
    # RSA 2048 keeps the module fast; the default (3072) is exercised by the provider test.
    return TestCA.generate(rsa_bits=2048)


@pytest.fixture(scope="module")
def snp(ca: TestCA) -> SimulatedSnp:
    return SimulatedSnp(ca, MEASUREMENT)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_report_parses_with_the_verifiers_parser(ca: TestCA, snp: SimulatedSnp) -> None:
    data = bytes(range(64))
    evidence = snp.report(data)
    assert evidence.platform == "simulated-snp"
    assert len(evidence.report) == REPORT_SIZE
    report = parse_report(evidence.report)
    assert report.version == 2
    assert report.report_data == data
    assert report.measurement == MEASUREMENT
    assert report.chip_id == ca.chip_id
    assert report.reported_tcb == report.current_tcb == report.launch_tcb == DEFAULT_TEST_TCB
    assert report.policy == 0x30000
    assert not report.debug
    assert report.signature_algo == 1
    assert report.signing_key == 0  # VCEK


def test_version_3_carries_milan_cpuid(ca: TestCA) -> None:
    report = parse_report(SimulatedSnp(ca, MEASUREMENT, version=3).report_bytes(bytes(64)))
    assert report.version == 3
    assert (report.cpuid_fam_id, report.cpuid_mod_id, report.cpuid_step) == (0x19, 0x01, 0x00)


def test_signature_is_ecdsa_p384_little_endian_over_the_signed_part(snp: SimulatedSnp) -> None:
    evidence = snp.report(b"\x07" * 64)
    raw = evidence.report
    r = int.from_bytes(raw[0x2A0 : 0x2A0 + 72], "little")
    s = int.from_bytes(raw[0x2E8 : 0x2E8 + 72], "little")
    vcek = x509.load_pem_x509_certificate(evidence.vcek_pem.encode())
    key = vcek.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(encode_dss_signature(r, s), signed_part(raw), ec.ECDSA(hashes.SHA384()))


def test_chain_verifies_only_when_the_test_root_is_trusted_by_name(
    ca: TestCA, snp: SimulatedSnp
) -> None:
    evidence = snp.report(bytes(64))
    certs = (evidence.vcek_pem.encode(), evidence.ask_pem.encode(), evidence.ark_pem.encode())
    info = verify_chain(*certs, now=NOW, roots={TEST_ROOT: ca.ark_sha256})
    assert info.root_name == TEST_ROOT
    assert info.product == "Milan"
    assert info.tcb == DEFAULT_TEST_TCB
    assert info.hw_id == ca.chip_id
    with pytest.raises(AttestationFailed, match="not one of the pinned roots"):
        verify_chain(*certs, now=NOW)
    with pytest.raises(AttestationFailed, match="not one of the pinned roots"):
        verify_chain(*certs, now=NOW, roots=AMD_ARK_SHA256)


def test_verify_report_signature(ca: TestCA, snp: SimulatedSnp) -> None:
    evidence = snp.report(b"\x01" * 64)
    info = verify_chain(
        evidence.vcek_pem.encode(),
        evidence.ask_pem.encode(),
        evidence.ark_pem.encode(),
        now=NOW,
        roots={TEST_ROOT: ca.ark_sha256},
    )
    verify_report_signature(parse_report(evidence.report), info.vcek)
    tampered = bytearray(evidence.report)
    tampered[0x90] ^= 1  # the measurement
    with pytest.raises(AttestationFailed, match="does not verify"):
        verify_report_signature(parse_report(bytes(tampered)), info.vcek)


def test_verify_evidence_end_to_end(ca: TestCA) -> None:
    service_key = {"kty": "OKP", "crv": "Ed25519", "x": "c2VydmljZQ"}
    encryption_key = {"kty": "OKP", "crv": "X25519", "x": "ZW5jcnlwdGlvbg"}
    tls = hashlib.sha256(b"cert").hexdigest()
    document = binding_document(service_key, encryption_key, tls, "0.1.0")
    for version in (2, 3):
        snp = SimulatedSnp(ca, MEASUREMENT, version=version)
        evidence = snp.report(report_data_for(document))
        vcek, ask, ark = (
            evidence.vcek_pem.encode(),
            evidence.ask_pem.encode(),
            evidence.ark_pem.encode(),
        )
        policy = AttestationPolicy(measurements=frozenset({MEASUREMENT.hex()}), min_tcb=ca.tcb)
        binding = Binding(service_key, encryption_key, tls, "0.1.0")
        verified = verify_evidence(
            evidence.report,
            vcek=vcek,
            ask=ask,
            ark=ark,
            now=NOW,
            policy=policy,
            binding=binding,
            roots={TEST_ROOT: ca.ark_sha256},
        )
        assert verified.root_name == TEST_ROOT
        assert verified.measurement == MEASUREMENT.hex()
        assert verified.version == version
        # By default only AMD's roots are pinned: the simulated report is refused.
        with pytest.raises(AttestationFailed, match="not one of the pinned roots"):
            verify_evidence(
                evidence.report,
                vcek=vcek,
                ask=ask,
                ark=ark,
                now=NOW,
                policy=policy,
                binding=binding,
            )


def test_chain_pem_is_vcek_ask_ark(ca: TestCA) -> None:
    certs = load_chain_pem(ca.chain_pem())
    assert [c.subject for c in certs] == [ca.vcek.subject, ca.ask.subject, ca.ark.subject]
    assert certs[2].issuer == certs[2].subject  # the ARK is self-signed
    assert certs[1].issuer == certs[2].subject
    assert certs[0].issuer == certs[1].subject


def test_names_say_test_and_never_trusted(ca: TestCA) -> None:
    for cert in (ca.ark, ca.ask, ca.vcek):
        name = cert.subject.rfc4514_string()
        assert "TEST" in name
        assert "never trusted by default" in name
    assert len({ca.ark.subject, ca.ask.subject, ca.vcek.subject}) == 3
    assert "ARK" in ca.ark.subject.rfc4514_string()
    assert ca.ark_sha256 not in AMD_ARK_SHA256.values()
    assert not TestCA.__test__


def test_another_tcb_gets_its_own_vcek(ca: TestCA) -> None:
    newer = Tcb(bootloader=4, tee=0, snp=23, microcode=213)
    evidence = SimulatedSnp(ca, MEASUREMENT, newer).report(bytes(64))
    assert parse_report(evidence.report).reported_tcb == newer
    info = verify_chain(
        evidence.vcek_pem.encode(),
        evidence.ask_pem.encode(),
        evidence.ark_pem.encode(),
        now=NOW,
        roots={TEST_ROOT: ca.ark_sha256},
    )
    assert info.tcb == newer
    assert evidence.vcek_pem != ca.vcek_pem


def test_extensions_are_encoded_as_amd_encodes_them(ca: TestCA) -> None:
    ours = {
        e.oid.dotted_string: e.value.value
        for e in ca.vcek.extensions
        if isinstance(e.value, x509.UnrecognizedExtension)
    }
    assert ours["1.3.6.1.4.1.3704.1.2"] == b"\x16\x08Milan-B0"
    assert ours["1.3.6.1.4.1.3704.1.3.8"] == b"\x02\x02\x00\xd5"  # 213: a 0 sign byte
    assert ours["1.3.6.1.4.1.3704.1.3.3"] == b"\x02\x01\x16"
    assert ours["1.3.6.1.4.1.3704.1.4"] == ca.chip_id  # bare bytes, not an OCTET STRING
    if not REAL_VCEK.exists():
        pytest.skip(f"{REAL_VCEK} is absent (../shared not checked out): cannot compare")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)  # AMD's serial 0
        real = x509.load_der_x509_certificate(REAL_VCEK.read_bytes())
    theirs = {
        e.oid.dotted_string: e.value.value
        for e in real.extensions
        if isinstance(e.value, x509.UnrecognizedExtension)
    }
    assert set(ours) == set(theirs)
    hwid = "1.3.6.1.4.1.3704.1.4"
    for oid, value in theirs.items():
        if oid != hwid:
            tag = 0x16 if oid == "1.3.6.1.4.1.3704.1.2" else 0x02  # IA5String, INTEGER
            assert ours[oid][0] == value[0] == tag, oid
    assert len(ours[hwid]) == len(theirs[hwid]) == 64


def test_reloaded_ca_has_the_same_pin_and_chip(ca: TestCA, tmp_path: Path) -> None:
    ca.save(tmp_path / "ca")
    again = TestCA.load(tmp_path / "ca")
    assert again.ark_sha256 == ca.ark_sha256
    assert again.chip_id == ca.chip_id
    assert again.tcb == ca.tcb
    assert again.product == ca.product
    assert again.chain_pem() == ca.chain_pem()
    # The reloaded VCEK key signs reports the original chain verifies.
    evidence = SimulatedSnp(again, MEASUREMENT).report(bytes(64))
    assert evidence.vcek_pem == ca.vcek_pem
    test_signature_is_ecdsa_p384_little_endian_over_the_signed_part(
        SimulatedSnp(again, MEASUREMENT)
    )
    assert TestCA.load_or_create(tmp_path / "ca").ark_sha256 == ca.ark_sha256


def test_files_are_owner_only_and_no_ark_key(ca: TestCA, tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    ca.save(directory)
    assert _mode(directory) == 0o700
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["ark.pem", "ask.key", "ask.pem", "vcek.key", "vcek.pem"]
    for path in directory.iterdir():
        assert _mode(path) == 0o600, path
    assert b"PRIVATE KEY" not in (directory / "ark.pem").read_bytes()


def test_loose_or_mismatched_files_are_refused(ca: TestCA, tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    ca.save(directory)
    os.chmod(directory / "vcek.key", 0o644)
    with pytest.raises(BadRequest, match="chmod 600"):
        TestCA.load(directory)
    os.chmod(directory / "vcek.key", 0o600)
    (directory / "ask.pem").unlink()
    with pytest.raises(BadRequest, match="missing"):
        TestCA.load(directory)
    ca.save(directory)
    other = TestCA.generate(rsa_bits=1024)  # only its certificate is used: size is moot
    (directory / "vcek.pem").write_text(other.vcek_pem)
    with pytest.raises(BadRequest, match="does not verify"):
        TestCA.load(directory)


def test_bad_inputs_are_refused(ca: TestCA) -> None:
    with pytest.raises(ValueError, match="48 bytes"):
        SimulatedSnp(ca, b"short")
    with pytest.raises(ValueError, match="version"):
        SimulatedSnp(ca, MEASUREMENT, version=5)
    with pytest.raises(ValueError, match="64 bytes"):
        SimulatedSnp(ca, MEASUREMENT).report(b"too short")
    with pytest.raises(ValueError, match="chip_id"):
        TestCA.generate(chip_id=b"x", rsa_bits=1024)


def _fake_package(root: Path) -> Path:
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "sub" / "mod.py").write_text("def f() -> int:\n    return 2\n")
    (pkg / "sub" / "action.star").write_text("def main(): pass\n")
    return pkg


def test_measurement_follows_the_source(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path)
    first = build_measurement(pkg)
    assert len(first) == 48
    assert build_measurement(pkg) == first
    # Files that are not source, and bytecode caches, do not count.
    (pkg / "README.md").write_text("docs")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "x.py").write_text("cached")
    assert build_measurement(pkg) == first
    (pkg / "sub" / "mod.py").write_text("def f() -> int:\n    return 3\n")
    changed = build_measurement(pkg)
    assert changed != first
    (pkg / "sub" / "action.star").write_text("def main(): fail('no')\n")
    assert build_measurement(pkg) != changed
    (pkg / "sub" / "mod.py").write_text("def f() -> int:\n    return 2\n")
    (pkg / "sub" / "action.star").write_text("def main(): pass\n")
    assert build_measurement(pkg) == first
    (pkg / "sub" / "mod.py").rename(pkg / "sub" / "mod2.py")
    assert build_measurement(pkg) != first


def test_measurement_definition_is_exact(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path)
    h = hashlib.sha384(b"consortia simulated-snp measurement v1\x00")
    for rel in ("__init__.py", "sub/action.star", "sub/mod.py"):
        name = rel.encode()
        data = (pkg / rel).read_bytes()
        h.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
    assert build_measurement(pkg) == h.digest()


def test_measurement_of_the_installed_package() -> None:
    import consortia

    assert build_measurement() == build_measurement(Path(consortia.__file__).parent)
