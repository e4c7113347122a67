"""End-to-end verification: the real Milan report, and every refusal with its own message."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from snp_vectors import MILAN_MEASUREMENT, NOW, TEST_TCB, amd_root, make_chain, milan, sample_report

from consortia.attestation import (
    AttestationFailed,
    AttestationPolicy,
    Binding,
    Tcb,
    binding_document,
    check_binding,
    parse_report,
    report_data_for,
    verify_chain,
    verify_evidence,
    verify_report_signature,
)

MILAN_POLICY = AttestationPolicy(
    measurements=frozenset({MILAN_MEASUREMENT}),
    min_tcb=Tcb(bootloader=3, tee=0, snp=8, microcode=115),
)
SERVICE = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
ENCRYPTION = {"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}
TLS = hashlib.sha256(b"certificate").hexdigest()


def test_real_milan_report_verifies_end_to_end() -> None:
    v = milan()
    result = verify_evidence(
        v.report, vcek=v.vcek, ask=v.ask, ark=v.ark, now=NOW, policy=MILAN_POLICY
    )
    assert result.platform == "sev-snp"
    assert result.product == "Milan"
    assert result.root_name == "Milan"
    assert result.version == 2
    assert result.policy == 0x30000
    assert not result.debug
    assert result.measurement == MILAN_MEASUREMENT
    assert result.chip_id == v.report[0x1A0:0x1E0].hex()
    assert result.to_json()["reported_tcb"] == {
        "bootloader": 3,
        "tee": 0,
        "snp": 8,
        "microcode": 115,
    }


def test_every_flipped_byte_of_the_signed_part_refused() -> None:
    v = milan()
    chain = verify_chain(v.vcek, v.ask, v.ark, now=NOW)
    for offset in range(0x2A0):
        damaged = bytearray(v.report)
        damaged[offset] ^= 0x01
        with pytest.raises(AttestationFailed) as info:
            verify_report_signature(parse_report(bytes(damaged)), chain.vcek)
        assert info.value.message.startswith("report"), (offset, info.value.message)


@pytest.mark.parametrize("offset", [*range(0x2A0, 0x330, 5), 0x2CF, 0x32F, 0x330, 0x400, 0x49F])
def test_flipped_byte_in_the_signature_refused(offset: int) -> None:
    v = milan()
    damaged = bytearray(v.report)
    damaged[offset] ^= 0x80
    fragment = "report.signature" if offset < 0x330 else "reserved bytes 0x330"
    with pytest.raises(AttestationFailed, match=fragment):
        verify_evidence(bytes(damaged), vcek=v.vcek, ask=v.ask, ark=v.ark, now=NOW)


def test_wrong_ark_and_expired_vcek_refused() -> None:
    v = milan()
    with pytest.raises(AttestationFailed, match="ASK: issuer"):
        verify_evidence(v.report, vcek=v.vcek, ask=v.ask, ark=amd_root("genoa", "ark"), now=NOW)
    with pytest.raises(AttestationFailed, match="VCEK: expired"):
        verify_evidence(
            v.report, vcek=v.vcek, ask=v.ask, ark=v.ark, now=datetime(2031, 1, 1, tzinfo=UTC)
        )
    own = make_chain()
    with pytest.raises(AttestationFailed, match="not one of the pinned roots"):
        verify_evidence(v.report, vcek=own.vcek, ask=own.ask, ark=own.ark, now=NOW)


def test_report_signed_by_another_vcek_refused() -> None:
    v = milan()
    own = make_chain()
    with pytest.raises(AttestationFailed, match=r"report.signature: .* does not verify"):
        verify_report_signature(parse_report(own.sign(sample_report())), v.vcek)


def test_lower_tcb_than_minimum_refused() -> None:
    v = milan()
    policy = dataclasses.replace(
        MILAN_POLICY, min_tcb=Tcb(bootloader=3, tee=0, snp=9, microcode=115)
    )
    with pytest.raises(AttestationFailed, match=r"tcb.snp: expected at least 9, got 8"):
        verify_evidence(v.report, vcek=v.vcek, ask=v.ask, ark=v.ark, now=NOW, policy=policy)


def test_unlisted_measurement_refused() -> None:
    v = milan()
    policy = AttestationPolicy(measurements=frozenset({"ab" * 48}))
    with pytest.raises(
        AttestationFailed,
        match=f"measurement: expected one of \\['{'ab' * 48}'\\], got {MILAN_MEASUREMENT}",
    ):
        verify_evidence(v.report, vcek=v.vcek, ask=v.ask, ark=v.ark, now=NOW, policy=policy)


def _own(**changes: object) -> tuple[bytes, dict[str, Any]]:
    own = make_chain()
    return own.sign(sample_report(**changes)), {
        "vcek": own.vcek,
        "ask": own.ask,
        "ark": own.ark,
        "roots": own.roots,
        "now": NOW,
    }


def test_own_chain_verifies_and_debug_policy_refused() -> None:
    raw, chain = _own()
    own = verify_evidence(raw, policy=MILAN_POLICY, **chain)
    # A root that is not AMD's own makes the report simulated, whatever its name says.
    assert own.root_name == "test" and own.platform == "simulated-snp"
    raw, chain = _own(policy=0x30000 | 1 << 20)
    with pytest.raises(
        AttestationFailed,
        match=r"policy.debug: expected off, the report allows debugging \(guest policy 0x130000\)",
    ):
        verify_evidence(raw, policy=MILAN_POLICY, **chain)
    assert verify_evidence(
        raw, policy=dataclasses.replace(MILAN_POLICY, allow_debug=True), **chain
    ).debug
    raw, chain = _own(policy=0x30000 | 1 << 19)
    with pytest.raises(AttestationFailed, match=r"policy.migrate_ma: expected off"):
        verify_evidence(raw, policy=MILAN_POLICY, **chain)
    raw, chain = _own(policy=0x20000)
    with pytest.raises(AttestationFailed, match=r"policy.reserved: bit 16"):
        verify_evidence(raw, policy=MILAN_POLICY, **chain)


def test_vcek_of_another_chip_or_tcb_refused() -> None:
    raw, chain = _own(chip_id=b"\x09" * 64)
    with pytest.raises(AttestationFailed, match=r"report.chip_id: expected the VCEK's hwID"):
        verify_evidence(raw, **chain)
    raw, chain = _own(chip_id=bytes(64))
    with pytest.raises(AttestationFailed, match="chip id is masked"):
        verify_evidence(raw, **chain)
    raw, chain = _own(reported_tcb=dataclasses.replace(TEST_TCB, snp=9))
    with pytest.raises(AttestationFailed, match=r"report.reported_tcb: expected the VCEK's TCB"):
        verify_evidence(raw, **chain)
    raw, chain = _own(flags=1 << 2)
    with pytest.raises(AttestationFailed, match=r"report.signing_key: expected 0"):
        verify_evidence(raw, **chain)
    raw, chain = _own(signature_algo=2)
    with pytest.raises(AttestationFailed, match=r"report.signature_algo: expected 1"):
        verify_evidence(raw, **chain)


def test_turin_v2_report_parsed_with_the_vceks_layout() -> None:
    tcb = Tcb(bootloader=2, tee=3, snp=4, microcode=5, fmc=1)
    own = make_chain(product_name="Turin", tcb=tcb)
    raw = own.sign(
        sample_report(reported_tcb=tcb, current_tcb=tcb, committed_tcb=tcb, launch_tcb=tcb)
    )
    result = verify_evidence(raw, vcek=own.vcek, ask=own.ask, ark=own.ark, roots=own.roots, now=NOW)
    assert result.reported_tcb == tcb
    assert result.product == "Turin"


def test_binding_document_is_canonical() -> None:
    doc = binding_document(SERVICE, ENCRYPTION, TLS, "1.2.3")
    assert doc.startswith(b'{"encryption_key":{"crv":"X25519"')
    assert b'"platform_version":"1.2.3"' in doc
    assert report_data_for(doc) == hashlib.sha512(doc).digest()
    with pytest.raises(
        AttestationFailed, match="tls_certificate_sha256: expected 64 lowercase hex"
    ):
        binding_document(SERVICE, ENCRYPTION, "AB" * 32, "1")


def test_binding_checked_and_mismatches_named() -> None:
    doc = binding_document(SERVICE, ENCRYPTION, TLS, "1.2.3")
    raw, chain = _own(report_data=report_data_for(doc))
    published = {
        "service_key": SERVICE,
        "encryption_key": ENCRYPTION,
        "tls_certificate_sha256": TLS,
        "platform_version": "1.2.3",
    }
    good = Binding(SERVICE, ENCRYPTION, TLS, "1.2.3", published=published)
    verify_evidence(raw, binding=good, **chain)
    report = parse_report(raw)
    other_tls = hashlib.sha256(b"another").hexdigest()
    with pytest.raises(
        AttestationFailed, match=r"binding.tls_certificate_sha256: the platform published"
    ):
        check_binding(
            report,
            service_key=SERVICE,
            encryption_key=ENCRYPTION,
            tls_certificate_sha256=other_tls,
            version="1.2.3",
            published=published,
        )
    with pytest.raises(AttestationFailed, match=r"binding.report_data: expected SHA-512"):
        check_binding(
            report,
            service_key=SERVICE,
            encryption_key=ENCRYPTION,
            tls_certificate_sha256=other_tls,
            version="1.2.3",
        )
    with pytest.raises(AttestationFailed, match=r"binding.service_key: the platform published"):
        check_binding(
            report,
            service_key=ENCRYPTION,
            encryption_key=ENCRYPTION,
            tls_certificate_sha256=TLS,
            version="1.2.3",
            published=published,
        )
    with pytest.raises(AttestationFailed, match=r"binding.platform_version"):
        verify_evidence(raw, binding=dataclasses.replace(good, version="1.2.4"), **chain)
    # The real report binds none of ours.
    v = milan()
    with pytest.raises(AttestationFailed, match=r"binding.report_data"):
        verify_evidence(
            v.report,
            vcek=v.vcek,
            ask=v.ask,
            ark=v.ark,
            now=NOW,
            binding=Binding(SERVICE, ENCRYPTION, TLS, "1.2.3"),
        )


def test_policy_json_round_trip_and_refusals() -> None:
    as_json = MILAN_POLICY.to_json()
    assert as_json == {
        "measurements": [MILAN_MEASUREMENT],
        "min_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115},
        "require_hardware": True,
    }
    assert AttestationPolicy.from_json(as_json) == MILAN_POLICY
    with pytest.raises(AttestationFailed, match=r"policy.measurements: expected 96 lowercase hex"):
        AttestationPolicy.from_json({"measurements": ["AB" * 48]})
    with pytest.raises(AttestationFailed, match="policy: unknown keys \\['x'\\]"):
        AttestationPolicy.from_json({"measurements": [], "x": 1})
    with pytest.raises(AttestationFailed, match=r"policy.require_hardware: expected true or false"):
        AttestationPolicy.from_json({"measurements": [], "require_hardware": 1})
