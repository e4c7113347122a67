"""Test data for the SEV-SNP verifier: AMD's public vectors and a test chain of our own.

The public vectors (a real Milan report, its VCEK and AMD's ASK/ARK) are read from
``../shared/vectors/attestation`` beside the repository, never copied into it; tests that
need them skip, saying so, where that directory is absent. :class:`OwnChain` makes a
VCEK -> ASK -> ARK chain with the verifier's exact algorithms (RSASSA-PSS SHA-384, salt 48;
an ECDSA P-384 VCEK with AMD's extensions) and signs reports in the exact binary layout.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from consortia.attestation import SnpReport, Tcb, encode_report, load_chain_pem, signed_part

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "attestation"
SNP = SHARED / "sev-snp"
#: Inside the Milan VCEK's validity (2023-04-03 .. 2030-04-03).
NOW = datetime(2025, 6, 1, tzinfo=UTC)
MILAN_MEASUREMENT = (
    "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d"
    "3e1a0dc39b2c60bd95b9c480cd81841f"
)


def require_shared() -> Path:
    """The shared vectors directory, or skip the test saying why."""
    if not SNP.is_dir():
        pytest.skip(
            f"public SEV-SNP vectors absent: {SNP} (../shared/vectors/attestation beside "
            "the repository) is needed for this test"
        )
    return SNP


@dataclass(frozen=True)
class MilanVectors:
    report: bytes
    vcek: bytes
    ask: bytes
    ark: bytes


def milan() -> MilanVectors:
    """The real Milan report and its chain (DER), or skip."""
    base = require_shared()
    report = bytes.fromhex((base / "virtee-sev" / "report_milan.hex").read_text().strip())
    ask, ark = load_chain_pem((base / "virtee-sev" / "cert_chain_milan").read_bytes())
    return MilanVectors(
        report=report,
        vcek=(base / "virtee-sev" / "vcek_milan.der").read_bytes(),
        ask=ask.public_bytes(serialization.Encoding.DER),
        ark=ark.public_bytes(serialization.Encoding.DER),
    )


def amd_root(product: str, role: str) -> bytes:
    """AMD's ARK or ASK of a product (DER), or skip."""
    base = require_shared()
    (cert,) = load_chain_pem((base / "amd-roots" / f"{product}-{role}.pem").read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
_ARC = "1.3.6.1.4.1.3704.1"


@functools.cache
def _rsa_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Consortia test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _der_int(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return bytes([0x02, len(body)]) + body


def _ext(oid: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value)


@dataclass(frozen=True)
class OwnChain:
    """A self-made chain; ``roots`` pins its ARK under the name ``"test"``."""

    vcek_key: ec.EllipticCurvePrivateKey
    vcek: bytes
    ask: bytes
    ark: bytes

    @property
    def roots(self) -> dict[str, str]:
        return {"test": hashlib.sha256(self.ark).hexdigest()}

    def sign(self, report: SnpReport) -> bytes:
        """``report`` encoded and signed with this chain's VCEK."""
        unsigned = encode_report(report)
        der = self.vcek_key.sign(signed_part(unsigned), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(der)
        signed = dataclasses.replace(
            report,
            signature_r=r.to_bytes(72, "little"),
            signature_s=s.to_bytes(72, "little"),
        )
        return encode_report(signed)


TEST_CHIP_ID = bytes(range(1, 65))
TEST_TCB = Tcb(bootloader=3, tee=0, snp=8, microcode=115)


def make_chain(
    *,
    product_name: str = "Milan-B0",
    tcb: Tcb = TEST_TCB,
    hw_id: bytes = TEST_CHIP_ID,
    vcek_valid: tuple[datetime, datetime] = (NOW - timedelta(days=30), NOW + timedelta(days=30)),
    root: str = "root",
) -> OwnChain:
    """A chain VCEK -> ASK -> ARK made with the test keys (cached, so fast)."""
    ark_key, ask_key = _rsa_key(f"{root}-ark"), _rsa_key(f"{root}-ask")
    vcek_key = _ec_key("vcek")
    start, end = NOW - timedelta(days=3650), NOW + timedelta(days=3650)

    def build(
        subject: str,
        issuer: str,
        key: object,
        signer: rsa.RSAPrivateKey,
        valid: tuple[datetime, datetime],
    ) -> x509.CertificateBuilder:
        assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name(issuer))
            .public_key(key)
            .serial_number(1)
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
        )

    ark = build(f"ARK-{root}", f"ARK-{root}", ark_key.public_key(), ark_key, (start, end)).sign(
        ark_key, hashes.SHA384(), rsa_padding=_PSS
    )
    ask = build(f"SEV-{root}", f"ARK-{root}", ask_key.public_key(), ark_key, (start, end)).sign(
        ark_key, hashes.SHA384(), rsa_padding=_PSS
    )
    exts = [
        _ext(f"{_ARC}.1", _der_int(1 if tcb.fmc is not None else 0)),
        _ext(f"{_ARC}.2", bytes([0x16, len(product_name)]) + product_name.encode()),
        _ext(f"{_ARC}.3.1", _der_int(tcb.bootloader)),
        _ext(f"{_ARC}.3.2", _der_int(tcb.tee)),
        _ext(f"{_ARC}.3.3", _der_int(tcb.snp)),
        _ext(f"{_ARC}.3.8", _der_int(tcb.microcode)),
        _ext(f"{_ARC}.4", hw_id),
    ]
    if tcb.fmc is not None:
        exts.append(_ext(f"{_ARC}.3.9", _der_int(tcb.fmc)))
    builder = build("SEV-VCEK", f"SEV-{root}", vcek_key.public_key(), ask_key, vcek_valid)
    for ext in exts:
        builder = builder.add_extension(ext, critical=False)
    vcek = builder.sign(ask_key, hashes.SHA384(), rsa_padding=_PSS)
    der = serialization.Encoding.DER
    return OwnChain(
        vcek_key=vcek_key,
        vcek=vcek.public_bytes(der),
        ask=ask.public_bytes(der),
        ark=ark.public_bytes(der),
    )


def sample_report(**changes: object) -> SnpReport:
    """A plausible version 2 report (unsigned) for the test chain's chip and TCB."""
    base = SnpReport(
        version=2,
        guest_svn=0,
        policy=0x30000,
        family_id=bytes(16),
        image_id=bytes(16),
        vmpl=0,
        signature_algo=1,
        current_tcb=TEST_TCB,
        platform_info=1,
        flags=0,
        report_data=bytes(64),
        measurement=bytes.fromhex(MILAN_MEASUREMENT),
        host_data=bytes(32),
        id_key_digest=bytes(48),
        author_key_digest=bytes(48),
        report_id=bytes(range(32)),
        report_id_ma=b"\xff" * 32,
        reported_tcb=TEST_TCB,
        chip_id=TEST_CHIP_ID,
        committed_tcb=TEST_TCB,
        current_build=4,
        current_minor=52,
        current_major=1,
        committed_build=4,
        committed_minor=52,
        committed_major=1,
        launch_tcb=TEST_TCB,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
