"""A member's trust file and :func:`verify_service`: what ``GET /v1/service`` proves.

Pure: the service documents are built here from a simulated-snp provider's evidence over a
binding of made-up keys and a made-up TLS certificate hash; every refusal is matched on the
part of its message that names what differs.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consortia._json import JSONObject
from consortia.attestation import (
    AttestationFailed,
    Tcb,
    binding_document,
    parse_report,
    report_data_for,
)
from consortia.attestation.providers import SimulatedSnpProvider
from consortia.client.attest import Attested, Trust, parse_test_root, verify_service

SERVICE_KEY: JSONObject = {"kty": "OKP", "crv": "Ed25519", "x": "c2VydmljZS1rZXk"}
ENCRYPTION_KEY: JSONObject = {"kty": "OKP", "crv": "X25519", "x": "ZW5jcnlwdGlvbi1rZXk"}
OTHER_KEY: JSONObject = {"kty": "OKP", "crv": "Ed25519", "x": "b3RoZXIta2V5"}
TLS_SHA = "ab" * 32
OTHER_TLS_SHA = "cd" * 32
VERSION = "1.2.3"
MEASUREMENT = bytes(range(48))
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def snp(tmp_path_factory: pytest.TempPathFactory) -> SimulatedSnpProvider:
    """One simulated firmware (its test CA made once) for the module."""
    return SimulatedSnpProvider(
        tmp_path_factory.mktemp("snp"), measurement=MEASUREMENT, rsa_bits=2048
    )


@pytest.fixture(scope="module")
def service(snp: SimulatedSnpProvider) -> JSONObject:
    """``GET /v1/service`` of a simulated-snp TEP with the keys above and TLS_SHA."""
    document = binding_document(SERVICE_KEY, ENCRYPTION_KEY, TLS_SHA, VERSION)
    evidence = snp.evidence(report_data_for(document))
    return {
        "service_key": SERVICE_KEY,
        "encryption_key": ENCRYPTION_KEY,
        "platform": "simulated-snp",
        "attestation": {
            "evidence": evidence.to_json(),
            "binding": {
                "service_key": SERVICE_KEY,
                "encryption_key": ENCRYPTION_KEY,
                "tls_certificate_sha256": TLS_SHA,
                "platform_version": VERSION,
            },
        },
    }


def _lab(snp: SimulatedSnpProvider, **kw: Any) -> Trust:
    return Trust(test_roots={"lab": snp.ark_sha256}, **kw)


def _virtual() -> JSONObject:
    return {
        "service_key": SERVICE_KEY,
        "encryption_key": ENCRYPTION_KEY,
        "platform": "virtual",
        "attestation": None,
    }


def _verify(doc: JSONObject, trust: Trust | None, *, tls: str | None = TLS_SHA) -> Attested:
    return verify_service(doc, tls_certificate_sha256=tls, trust=trust, now=NOW)


def _write(tmp_path: Path, value: object) -> Path:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(value))
    return path


# -- the trust file ------------------------------------------------------------------------


def test_trust_file_read_with_every_key(tmp_path: Path) -> None:
    pin = "0f" * 32
    path = _write(
        tmp_path,
        {
            "measurements": [MEASUREMENT.hex()],
            "min_tcb": {"bootloader": 1, "tee": 0, "snp": 2, "microcode": 3},
            "require_hardware": False,
            "allow_debug": True,
            "allow_migrate_ma": True,
            "test_roots": {"lab": pin.upper()},
        },
    )
    trust = Trust.load(path)
    assert trust.measurements == frozenset({MEASUREMENT.hex()})
    assert trust.min_tcb == Tcb(bootloader=1, tee=0, snp=2, microcode=3)
    assert not trust.require_hardware and trust.allow_debug and trust.allow_migrate_ma
    assert dict(trust.test_roots) == {"lab": pin}
    assert trust.roots()["test:lab"] == pin
    # AMD's own roots stay pinned beside the test root.
    assert len(trust.roots()) > 1
    assert all(not name.startswith("test:") for name in Trust().roots())


def test_trust_file_defaults_to_requiring_hardware(tmp_path: Path) -> None:
    trust = Trust.load(_write(tmp_path, {}))
    assert trust.require_hardware and trust.measurements is None and not trust.test_roots


def test_trust_file_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(AttestationFailed, match=r"unknown keys \['measurment'\]") as caught:
        Trust.load(_write(tmp_path, {"measurment": []}))
    assert caught.value.code == "attestation_failed"
    assert str(tmp_path / "trust.json") in caught.value.message


def test_trust_file_bad_measurement_spelling(tmp_path: Path) -> None:
    upper = MEASUREMENT.hex().upper()
    path = _write(tmp_path, {"measurements": [upper], "require_hardware": False})
    with pytest.raises(AttestationFailed, match=r"measurements: expected 96 lowercase hex"):
        Trust.load(path)
    with pytest.raises(AttestationFailed, match=r"measurements: expected 96 lowercase hex"):
        Trust(measurements=frozenset({"ab" * 47}))
    with pytest.raises(AttestationFailed, match=r"measurements: expected a list"):
        Trust.from_json({"measurements": MEASUREMENT.hex()})


@pytest.mark.parametrize("explicit", [True, False])
def test_trust_file_test_roots_with_require_hardware(tmp_path: Path, explicit: bool) -> None:
    value: JSONObject = {"test_roots": {"lab": "0f" * 32}}
    if explicit:
        value["require_hardware"] = True
    with pytest.raises(AttestationFailed, match=r"require_hardware is true, so no test root"):
        Trust.load(_write(tmp_path, value))
    with pytest.raises(AttestationFailed, match=r"require_hardware is true, so no test root"):
        Trust(require_hardware=True, test_roots={"lab": "0f" * 32})
    with pytest.raises(AttestationFailed, match=r"require_hardware is true, so no test root"):
        Trust(require_hardware=True).with_test_roots({"lab": "0f" * 32})


def test_trust_file_bad_test_roots(tmp_path: Path) -> None:
    with pytest.raises(AttestationFailed, match=r"test_roots: expected an object"):
        Trust.from_json({"test_roots": ["lab"], "require_hardware": False})
    with pytest.raises(AttestationFailed, match=r"test root 'lab=12': expected NAME=SHA256"):
        Trust.from_json({"test_roots": {"lab": "12"}, "require_hardware": False})
    with pytest.raises(AttestationFailed, match=r"expected a JSON object, got list"):
        Trust.load(_write(tmp_path, []))
    with pytest.raises(AttestationFailed, match=r"require_hardware: expected true or false"):
        Trust.from_json({"require_hardware": "yes"})


def test_trust_file_not_json(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_text("measurements = []\n")
    with pytest.raises(AttestationFailed, match=r"trust file .*trust\.json: not JSON"):
        Trust.load(path)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(AttestationFailed, match=r"not JSON"):
        Trust.load(path)


def test_trust_file_over_size(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"measurements": [], "pad": " " * (256 * 1024)}))
    with pytest.raises(AttestationFailed, match=r"over 256 KiB"):
        Trust.load(path)


def test_trust_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(AttestationFailed, match=r"cannot read the trust file .*absent\.json"):
        Trust.load(path)
    with pytest.raises(AttestationFailed, match=r"cannot read the trust file"):
        Trust.load(tmp_path)  # a directory


def test_parse_test_root() -> None:
    pin = "0F:" * 31 + "0F"
    assert parse_test_root(f"lab-1.x={pin}") == ("lab-1.x", "0f" * 32)
    for bad in ("lab", f"={'0f' * 32}", f"-lab={'0f' * 32}", f"lab={'0f' * 31}", "lab=zz"):
        with pytest.raises(AttestationFailed, match=r"expected NAME=SHA256"):
            parse_test_root(bad)


def test_with_test_roots_adds_and_keeps() -> None:
    trust = Trust(test_roots={"a": "01" * 32}).with_test_roots({"b": "02" * 32})
    assert dict(trust.test_roots) == {"a": "01" * 32, "b": "02" * 32}
    assert trust.roots()["test:a"] == "01" * 32 and trust.roots()["test:b"] == "02" * 32


# -- verify_service: virtual ---------------------------------------------------------------


def test_virtual_accepted_by_default() -> None:
    for trust in (None, Trust()):
        attested = _verify(_virtual(), trust, tls=None)
        assert attested.platform == "virtual" and not attested.attested
        assert attested.report is None and attested.tls_certificate_sha256 is None
        assert attested.service_key == SERVICE_KEY
        assert attested.summary().startswith("NOT ATTESTED")
        assert attested.to_json()["attested"] is False


def test_virtual_refused_when_hardware_required() -> None:
    with pytest.raises(AttestationFailed, match=r"^platform: expected attested hardware"):
        _verify(_virtual(), Trust(require_hardware=True))


def test_claims_sev_snp_without_evidence() -> None:
    doc = {**_virtual(), "platform": "sev-snp"}
    with pytest.raises(AttestationFailed, match=r"runs on 'sev-snp' but publishes no evidence"):
        _verify(doc, None)


def test_missing_service_key() -> None:
    doc = {**_virtual(), "service_key": "nope"}
    with pytest.raises(AttestationFailed, match=r"^service\.service_key: expected a JWK"):
        _verify(doc, None)


# -- verify_service: simulated-snp ---------------------------------------------------------


def test_simulated_refused_without_test_root(
    service: JSONObject, snp: SimulatedSnpProvider
) -> None:
    for trust in (None, Trust()):
        with pytest.raises(AttestationFailed, match=r"--trust-test-root NAME=") as caught:
            _verify(service, trust)
        assert snp.ark_sha256 in caught.value.message


def test_simulated_refused_when_hardware_required(service: JSONObject) -> None:
    with pytest.raises(AttestationFailed, match=r"require_hardware.*simulated SEV-SNP"):
        _verify(service, Trust(require_hardware=True))


def test_simulated_refused_with_another_test_root(
    service: JSONObject, snp: SimulatedSnpProvider
) -> None:
    pattern = rf"^ARK: its SHA-256 {snp.ark_sha256} is not one of the pinned roots .*test:lab"
    with pytest.raises(AttestationFailed, match=pattern):
        _verify(service, Trust(test_roots={"lab": "0f" * 32}))


def test_simulated_accepted_with_test_root(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    attested = _verify(service, _lab(snp))
    assert attested.attested and attested.platform == "simulated-snp"
    assert not attested.measurement_checked
    assert attested.report is not None
    assert attested.report.measurement == MEASUREMENT.hex()
    assert attested.report.root_name == "test:lab"
    assert attested.tls_certificate_sha256 == TLS_SHA
    assert attested.service_key == SERVICE_KEY and attested.encryption_key == ENCRYPTION_KEY
    assert "SIMULATED" in attested.summary() and "NOT checked" in attested.summary()
    verdict = attested.to_json()
    assert verdict["attested"] is True and verdict["platform"] == "simulated-snp"
    json.dumps(verdict)


def test_simulated_measurement_listed(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    attested = _verify(service, _lab(snp, measurements=frozenset({MEASUREMENT.hex()})))
    assert attested.measurement_checked
    assert "in your trust file" in attested.summary()


def test_simulated_measurement_not_listed(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    other = _lab(snp, measurements=frozenset({"ab" * 48}))
    with pytest.raises(AttestationFailed, match=r"^measurement: expected one of") as caught:
        _verify(service, other)
    assert MEASUREMENT.hex() in caught.value.message


def test_an_empty_measurement_list_accepts_no_build_and_says_so(
    service: JSONObject, snp: SimulatedSnpProvider
) -> None:
    with pytest.raises(AttestationFailed, match=r"lists no measurements .* leave the key out"):
        _verify(service, _lab(snp, measurements=frozenset()))


def test_trust_file_from_json_accepts(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    trust = Trust.from_json({"require_hardware": False, "test_roots": {"lab": snp.ark_sha256}})
    assert _verify(service, trust).platform == "simulated-snp"


def test_binding_with_another_service_key(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    doc = {**service, "service_key": OTHER_KEY}
    with pytest.raises(AttestationFailed, match=r"^binding\.service_key: the platform published"):
        _verify(doc, _lab(snp))


def test_binding_with_another_encryption_key(
    service: JSONObject, snp: SimulatedSnpProvider
) -> None:
    doc = {**service, "encryption_key": OTHER_KEY}
    with pytest.raises(AttestationFailed, match=r"^binding\.encryption_key: the platform"):
        _verify(doc, _lab(snp))


def test_published_binding_rewritten_to_match(
    service: JSONObject, snp: SimulatedSnpProvider
) -> None:
    """A relay that rewrites the keys and the published binding alike: the report data differ."""
    doc: Any = copy.deepcopy(service)
    doc["service_key"] = OTHER_KEY
    doc["attestation"]["binding"]["service_key"] = OTHER_KEY
    with pytest.raises(AttestationFailed, match=r"^binding\.report_data: expected SHA-512"):
        _verify(doc, _lab(snp))


def test_another_tls_certificate(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    with pytest.raises(AttestationFailed, match=r"^binding\.tls_certificate_sha256: the platform"):
        _verify(service, _lab(snp), tls=OTHER_TLS_SHA)


def test_plain_http_with_evidence(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    with pytest.raises(AttestationFailed, match=r"no TLS certificate \(plain HTTP\)"):
        _verify(service, _lab(snp), tls=None)


def test_sev_snp_label_on_simulated_report(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    doc: Any = copy.deepcopy(service)
    doc["platform"] = "sev-snp"
    doc["attestation"]["evidence"]["platform"] = "sev-snp"
    with pytest.raises(AttestationFailed, match=r"^root: the service says 'sev-snp'.*test:lab"):
        _verify(doc, _lab(snp))
    # Without the test root it does not chain to any pinned root at all.
    with pytest.raises(AttestationFailed, match=r"^ARK: its SHA-256 .* not one of the pinned"):
        _verify(doc, None)


def test_evidence_platform_differs_from_service(
    service: JSONObject, snp: SimulatedSnpProvider
) -> None:
    doc: Any = copy.deepcopy(service)
    doc["attestation"]["evidence"]["platform"] = "sev-snp"
    with pytest.raises(AttestationFailed, match=r"^attestation\.evidence\.platform: expected"):
        _verify(doc, _lab(snp))


def test_min_tcb_above_the_report(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    report = parse_report(snp.evidence(bytes(64)).report)
    tcb = report.reported_tcb
    at = Tcb(bootloader=tcb.bootloader, tee=tcb.tee, snp=tcb.snp, microcode=tcb.microcode)
    assert _verify(service, _lab(snp, min_tcb=at)).attested
    above = Tcb(bootloader=tcb.bootloader, tee=tcb.tee, snp=tcb.snp + 1, microcode=tcb.microcode)
    with pytest.raises(AttestationFailed, match=r"^reported_tcb below the minimum"):
        _verify(service, _lab(snp, min_tcb=above))


def _with_attestation(service: JSONObject, attestation: object) -> JSONObject:
    return {**service, "attestation": attestation}  # type: ignore[dict-item]


def _mangled(service: JSONObject) -> list[tuple[object, str]]:
    att: Any = service["attestation"]
    evidence = att["evidence"]
    return [
        ("a string", r"exactly 'evidence' and 'binding'"),
        ([att["evidence"], att["binding"]], r"exactly 'evidence' and 'binding'"),
        ({"evidence": evidence}, r"exactly 'evidence' and 'binding'"),
        ({**att, "extra": 1}, r"exactly 'evidence' and 'binding'"),
        ({**att, "binding": "x"}, r"^attestation\.binding: expected an object"),
        ({**att, "evidence": "x"}, r"^attestation\.evidence: expected a JSON object"),
        (
            {**att, "evidence": {k: v for k, v in evidence.items() if k != "vcek_pem"}},
            r"missing members \['vcek_pem'\]",
        ),
        ({**att, "evidence": {**evidence, "x": 1}}, r"unknown members \['x'\]"),
        ({**att, "evidence": {**evidence, "report": "AAAA"}}, r"expected 1184 bytes"),
        ({**att, "evidence": {**evidence, "ark_pem": "nope"}}, r"ark_pem: expected exactly one"),
        ({**att, "evidence": {**evidence, "ask_pem": 7}}, r"ask_pem: expected a PEM string"),
        ({**att, "evidence": {**evidence, "platform": "virtual"}}, r"platform: expected one of"),
        (
            {**att, "binding": {**att["binding"], "extra": 1}},
            r"^binding: the published document has unknown keys \['extra'\]",
        ),
        (
            {
                **att,
                "binding": {k: v for k, v in att["binding"].items() if k != "platform_version"},
            },
            r"^binding\.platform_version",
        ),
    ]


def test_malformed_attestation_shapes(service: JSONObject, snp: SimulatedSnpProvider) -> None:
    cases = _mangled(service)
    for attestation, message in cases:
        with pytest.raises(AttestationFailed, match=message):
            _verify(_with_attestation(service, attestation), _lab(snp))
    # The originals still verify (nothing above mutated them).
    assert _verify(service, _lab(snp)).attested
