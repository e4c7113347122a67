"""The AMD certificate chain: the real Milan and Turin chains, pins, names, validity."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from snp_vectors import NOW, TEST_CHIP_ID, amd_root, make_chain, milan, require_shared

from consortia.attestation import (
    AMD_ARK_SHA256,
    AttestationFailed,
    Tcb,
    load_certificate,
    load_chain_pem,
    verify_chain,
)


def test_pins_are_the_sha256_of_amds_arks() -> None:
    for product in ("milan", "genoa", "turin"):
        ark = amd_root(product, "ark")
        assert hashlib.sha256(ark).hexdigest() == AMD_ARK_SHA256[product.capitalize()]


def test_real_milan_chain() -> None:
    v = milan()
    info = verify_chain(v.vcek, v.ask, v.ark, now=NOW)
    assert info.product == "Milan"
    assert info.product_name == "Milan-B0"
    assert info.root_name == "Milan"
    assert info.tcb == Tcb(bootloader=3, tee=0, snp=8, microcode=115)
    assert info.hw_id == v.report[0x1A0:0x1E0]


def test_real_turin_chain_has_fmc_and_short_hw_id() -> None:
    base = require_shared() / "virtee-sev"
    ask, ark = load_chain_pem((base / "cert_chain_turin").read_bytes())
    info = verify_chain((base / "vcek_turin.der").read_bytes(), ask, ark, now=NOW)
    assert info.product == "Turin"
    assert info.root_name == "Turin"
    assert info.tcb.fmc == 0
    assert info.tcb.microcode == 9
    assert len(info.hw_id) == 64
    assert info.hw_id[8:] == bytes(56)


def test_pem_inputs_accepted() -> None:
    v = milan()
    pem = [
        load_certificate(d).public_bytes(serialization.Encoding.PEM) for d in (v.vcek, v.ask, v.ark)
    ]
    assert verify_chain(*pem, now=NOW).root_name == "Milan"
    assert len(load_chain_pem(b"".join(pem))) == 3


def test_genoa_ark_with_milan_chain_refused() -> None:
    v = milan()
    with pytest.raises(
        AttestationFailed, match=r"ASK: issuer is .*ARK-Milan.* expected the subject"
    ):
        verify_chain(v.vcek, v.ask, amd_root("genoa", "ark"), now=NOW)


def test_genoa_ask_with_milan_vcek_refused() -> None:
    v = milan()
    with pytest.raises(AttestationFailed, match=r"VCEK: issuer is .*SEV-Milan"):
        verify_chain(v.vcek, amd_root("genoa", "ask"), amd_root("genoa", "ark"), now=NOW)


def test_unpinned_self_made_root_refused_naming_its_sha256() -> None:
    own = make_chain()
    pin = hashlib.sha256(own.ark).hexdigest()
    with pytest.raises(AttestationFailed, match=f"ARK: its SHA-256 {pin} is not one of the pinned"):
        verify_chain(own.vcek, own.ask, own.ark, now=NOW)
    assert verify_chain(own.vcek, own.ask, own.ark, now=NOW, roots=own.roots).root_name == "test"


def test_amd_ark_refused_when_not_in_roots() -> None:
    v = milan()
    with pytest.raises(AttestationFailed, match="not one of the pinned roots \\['Genoa'\\]"):
        verify_chain(v.vcek, v.ask, v.ark, now=NOW, roots={"Genoa": AMD_ARK_SHA256["Genoa"]})


def test_expired_and_not_yet_valid_vcek_refused_with_dates() -> None:
    v = milan()
    with pytest.raises(
        AttestationFailed, match=r"VCEK: expired: valid from 2023-04-03.* to 2030-04-03"
    ):
        verify_chain(v.vcek, v.ask, v.ark, now=datetime(2030, 4, 4, tzinfo=UTC))
    with pytest.raises(AttestationFailed, match="VCEK: not yet valid: valid from 2023-04-03"):
        verify_chain(v.vcek, v.ask, v.ark, now=datetime(2022, 1, 1, tzinfo=UTC))
    with pytest.raises(AttestationFailed, match="timezone-aware"):
        verify_chain(v.vcek, v.ask, v.ark, now=datetime(2025, 1, 1))


def test_expired_own_vcek_refused() -> None:
    own = make_chain(vcek_valid=(NOW - timedelta(days=10), NOW - timedelta(days=1)))
    with pytest.raises(AttestationFailed, match="VCEK: expired"):
        verify_chain(own.vcek, own.ask, own.ark, now=NOW, roots=own.roots)


def test_swapped_roles_refused() -> None:
    v = milan()
    with pytest.raises(AttestationFailed, match="not one of the pinned roots"):
        verify_chain(v.vcek, v.ark, v.ask, now=NOW)


def _flips(data: bytes, stride: int) -> list[int]:
    return sorted(set(range(0, len(data), stride)) | {len(data) - 1})


@pytest.mark.parametrize("role", ["vcek", "ask", "ark"])
def test_flipped_byte_in_each_certificate_refused(role: str) -> None:
    v = milan()
    certs = {"vcek": v.vcek, "ask": v.ask, "ark": v.ark}
    original = certs[role]
    stride = 7 if role == "vcek" else 23
    for offset in _flips(original, stride):
        damaged = bytearray(original)
        damaged[offset] ^= 0x01
        certs[role] = bytes(damaged)
        with pytest.raises(AttestationFailed) as info:
            verify_chain(certs["vcek"], certs["ask"], certs["ark"], now=NOW)
        message = info.value.message
        if role == "ark":
            assert "ARK" in message, (offset, message)
        elif role == "ask":
            assert message.startswith(("ASK", "ARK", "VCEK: issuer")), (offset, message)
        else:
            assert message.startswith("VCEK"), (offset, message)
    certs[role] = original
    verify_chain(certs["vcek"], certs["ask"], certs["ark"], now=NOW)


def test_vcek_extensions_read_from_own_chain() -> None:
    tcb = Tcb(bootloader=9, tee=8, snp=200, microcode=255, fmc=7)
    own = make_chain(product_name="Turin", tcb=tcb, hw_id=TEST_CHIP_ID[:8])
    info = verify_chain(own.vcek, own.ask, own.ark, now=NOW, roots=own.roots)
    assert info.tcb == tcb
    assert info.product == "Turin"
    assert info.hw_id == TEST_CHIP_ID[:8] + bytes(56)


def test_vcek_with_product_of_another_root_refused() -> None:
    own = make_chain(product_name="Genoa-B1")
    roots = {"Milan": hashlib.sha256(own.ark).hexdigest()}
    with pytest.raises(
        AttestationFailed, match="product is 'Genoa-B1' but its chain leads to the Milan"
    ):
        verify_chain(own.vcek, own.ask, own.ark, now=NOW, roots=roots)


def test_garbage_certificates_refused() -> None:
    v = milan()
    with pytest.raises(AttestationFailed, match=r"VCEK: not a valid X.509"):
        verify_chain(b"junk", v.ask, v.ark, now=NOW)
    with pytest.raises(AttestationFailed, match="certificate chain: not a PEM bundle"):
        load_chain_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(AttestationFailed, match="ASK: expected one PEM certificate, got 2"):
        two = b"".join(
            load_certificate(c).public_bytes(serialization.Encoding.PEM) for c in (v.ask, v.ark)
        )
        verify_chain(v.vcek, two, v.ark, now=NOW)
