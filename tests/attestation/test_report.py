"""The SEV-SNP report parser and encoder: the real Milan report, layout, strictness."""

from __future__ import annotations

import dataclasses

import pytest
from snp_vectors import MILAN_MEASUREMENT, milan, sample_report

from consortia.attestation import (
    REPORT_SIZE,
    AttestationFailed,
    Tcb,
    encode_report,
    parse_report,
    report_from_text,
    signed_part,
)


def test_real_milan_report_fields() -> None:
    raw = milan().report
    report = parse_report(raw)
    assert report.version == 2
    assert report.policy == 0x30000
    assert not report.debug
    assert not report.migrate_ma
    assert report.smt
    assert not report.single_socket
    assert report.signature_algo == 1
    assert report.vmpl == 0
    assert report.measurement.hex() == MILAN_MEASUREMENT
    assert report.report_data == raw[0x50:0x90]
    assert report.chip_id == raw[0x1A0:0x1E0]
    assert report.reported_tcb == Tcb(bootloader=3, tee=0, snp=8, microcode=115)
    assert report.launch_tcb == report.reported_tcb
    assert (report.current_major, report.current_minor, report.current_build) == (1, 52, 4)
    assert report.cpuid_fam_id is None
    assert report.signing_key == 0
    assert report.raw == raw
    assert encode_report(report) == raw
    assert signed_part(raw) == raw[:0x2A0]


def test_encode_parse_round_trip_v2() -> None:
    report = sample_report(report_data=b"\x07" * 64, policy=0x1B0000, guest_svn=5, vmpl=1)
    raw = encode_report(report)
    assert len(raw) == REPORT_SIZE
    assert raw[0x04:0x08] == (5).to_bytes(4, "little")
    assert raw[0x08:0x10] == (0x1B0000).to_bytes(8, "little")
    assert raw[0x50:0x90] == b"\x07" * 64
    # TCB_VERSION Milan layout: boot loader byte 0, TEE 1, SNP 6, microcode 7.
    assert raw[0x180:0x188] == bytes([3, 0, 0, 0, 0, 0, 8, 115])
    parsed = parse_report(raw)
    assert parsed == report
    assert parsed.debug and parsed.migrate_ma and parsed.smt


def test_version_3_with_cpuid_round_trip() -> None:
    report = sample_report(version=3, cpuid_fam_id=0x19, cpuid_mod_id=0x01, cpuid_step=0x01)
    raw = encode_report(report)
    assert raw[0x188:0x18B] == bytes([0x19, 0x01, 0x01])
    parsed = parse_report(raw)
    assert parsed == report
    assert parsed.cpuid_fam_id == 0x19


def test_turin_tcb_layout() -> None:
    tcb = Tcb(bootloader=2, tee=3, snp=4, microcode=5, fmc=1)
    report = sample_report(
        version=3,
        cpuid_fam_id=0x1A,
        cpuid_mod_id=2,
        cpuid_step=0,
        reported_tcb=tcb,
        current_tcb=tcb,
        committed_tcb=tcb,
        launch_tcb=tcb,
    )
    raw = encode_report(report)
    assert raw[0x180:0x188] == bytes([1, 2, 3, 4, 0, 0, 0, 5])
    assert parse_report(raw).reported_tcb == tcb
    # A version 2 report does not name its CPU: the caller says it is a Turin.
    v2 = dataclasses.replace(
        report, version=2, cpuid_fam_id=None, cpuid_mod_id=None, cpuid_step=None
    )
    raw2 = encode_report(v2)
    assert parse_report(raw2, product="Turin").reported_tcb == tcb
    with pytest.raises(AttestationFailed, match=r"reserved bytes .* TCB_VERSION"):
        parse_report(raw2)


@pytest.mark.parametrize("size", [0, 1, 0x2A0, REPORT_SIZE - 1, REPORT_SIZE + 1, 4096])
def test_wrong_length_refused_with_sizes(size: int) -> None:
    with pytest.raises(AttestationFailed, match=f"exactly {REPORT_SIZE} bytes .* got {size}"):
        parse_report(bytes(size))


@pytest.mark.parametrize("version", [0, 1, 4, 5, 0xFFFFFFFF])
def test_other_versions_refused(version: int) -> None:
    raw = bytearray(encode_report(sample_report()))
    raw[0:4] = version.to_bytes(4, "little")
    with pytest.raises(AttestationFailed, match=f"report.version: .* got {version}"):
        parse_report(bytes(raw))


@pytest.mark.parametrize("offset", [0x4C, 0x188, 0x19F, 0x1EB, 0x1EF, 0x1F8, 0x29F, 0x330, 0x49F])
def test_reserved_bytes_must_be_zero(offset: int) -> None:
    raw = bytearray(encode_report(sample_report()))
    raw[offset] = 0x01
    with pytest.raises(AttestationFailed, match=f"byte 0x{offset:03X} is 0x01"):
        parse_report(bytes(raw))


def test_cpuid_bytes_are_reserved_in_v2_only() -> None:
    raw = bytearray(
        encode_report(sample_report(version=3, cpuid_fam_id=0, cpuid_mod_id=0, cpuid_step=0))
    )
    raw[0x189] = 0x11
    assert parse_report(bytes(raw)).cpuid_mod_id == 0x11
    raw[0:4] = (2).to_bytes(4, "little")
    with pytest.raises(AttestationFailed, match="reserved bytes 0x188"):
        parse_report(bytes(raw))


def test_reserved_flag_bits_and_tcb_bytes_refused() -> None:
    raw = bytearray(encode_report(sample_report()))
    raw[0x48] = 0x20
    with pytest.raises(AttestationFailed, match=r"report.flags: reserved bits"):
        parse_report(bytes(raw))
    raw = bytearray(encode_report(sample_report()))
    raw[0x1E0 + 3] = 1
    with pytest.raises(AttestationFailed, match=r"report.committed_tcb: reserved bytes"):
        parse_report(bytes(raw))


def test_flags_fields() -> None:
    report = parse_report(encode_report(sample_report(flags=0b00111)))
    assert report.author_key_en
    assert report.mask_chip_key
    assert report.signing_key == 1


def test_not_bytes_refused() -> None:
    with pytest.raises(AttestationFailed, match="expected bytes, got str"):
        parse_report("00" * REPORT_SIZE)  # type: ignore[arg-type]


def test_report_from_text_hex_and_binary() -> None:
    raw = encode_report(sample_report())
    hex_text = raw.hex()
    spaced = "\n".join(hex_text[i : i + 64] for i in range(0, len(hex_text), 64)) + "\n"
    assert report_from_text(spaced) == parse_report(raw)
    assert report_from_text(spaced.upper().encode()) == parse_report(raw)
    assert report_from_text(raw) == parse_report(raw)
    with pytest.raises(AttestationFailed, match="not hex"):
        report_from_text("zz" * REPORT_SIZE)
    with pytest.raises(AttestationFailed, match="got 5"):
        report_from_text("00" * 5)


def test_encode_refuses_bad_fields() -> None:
    with pytest.raises(AttestationFailed, match=r"report.measurement: expected 48 bytes, got 47"):
        encode_report(sample_report(measurement=bytes(47)))
    with pytest.raises(AttestationFailed, match=r"report.vmpl"):
        encode_report(sample_report(vmpl=2**32))
    with pytest.raises(AttestationFailed, match="version 2 report has no CPUID"):
        encode_report(sample_report(cpuid_fam_id=0x19))
    with pytest.raises(AttestationFailed, match="version 3 report needs a byte"):
        encode_report(sample_report(version=3))
    with pytest.raises(AttestationFailed, match=r"report.version"):
        encode_report(sample_report(version=4))


def test_tcb_json_and_comparison() -> None:
    tcb = Tcb(bootloader=3, tee=0, snp=8, microcode=115)
    assert Tcb.from_json(tcb.to_json()) == tcb
    turin = Tcb(bootloader=1, tee=1, snp=1, microcode=1, fmc=2)
    assert turin.to_json()["fmc"] == 2
    assert Tcb.from_json(turin.to_json()) == turin
    assert tcb.meets(tcb)
    assert tcb.meets(Tcb(bootloader=2, tee=0, snp=8, microcode=100))
    assert tcb.shortfall(Tcb(bootloader=3, tee=0, snp=9, microcode=116)) == (
        "tcb.snp: expected at least 9, got 8; tcb.microcode: expected at least 116, got 115"
    )
    assert not tcb.meets(turin)  # no FMC at all is below an FMC minimum
    assert Tcb.from_u64(tcb.to_u64()) == tcb
    assert Tcb.from_u64(turin.to_u64(), turin=True) == turin


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "expected an object"),
        ({"bootloader": 1, "tee": 1, "snp": 1}, "missing keys \\['microcode'\\]"),
        ({"bootloader": 1, "tee": 1, "snp": 1, "microcode": 1, "x": 1}, "unknown keys \\['x'\\]"),
        (
            {"bootloader": 256, "tee": 1, "snp": 1, "microcode": 1},
            "tcb.bootloader: expected an integer 0..255",
        ),
        ({"bootloader": True, "tee": 1, "snp": 1, "microcode": 1}, "tcb.bootloader"),
        ({"bootloader": 1, "tee": "1", "snp": 1, "microcode": 1}, "tcb.tee"),
    ],
)
def test_tcb_from_json_refusals(value: object, fragment: str) -> None:
    with pytest.raises(AttestationFailed, match=fragment):
        Tcb.from_json(value)
