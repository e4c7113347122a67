"""Verifying SEV-SNP evidence: the report's signature, its VCEK, and everything together.

The report's signature (AMD SEV-SNP ABI specification, table "ATTESTATION_REPORT
Structure", SIGNATURE at 0x2A0, format of table "ECDSA P-384 with SHA-384 Signature") is
ECDSA P-384 over SHA-384 of bytes 0x000..0x29F; r and s are 72-byte little-endian
integers. The VCEK that signs it is bound to one chip and one TCB: its hwID extension must
equal the report's CHIP_ID and its SPL extensions the report's REPORTED_TCB (AMD's VCEK
specification, table "VCEK Certificate Extensions").

A report with CHIP_ID masked (all zero, the guest's MASK_CHIP_ID policy) is refused: the
platform publishes its chip identity, and the check that the VCEK belongs to the chip
that made the report needs it. Only VCEK-signed reports (SIGNING_KEY 0) are accepted; VLEK
is not supported.

:func:`verify_evidence` runs every check in order: parse, chain to a pinned AMD root,
signature, VCEK/report agreement, the member's policy, the key binding. Pure: ``now`` is a
parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from consortia._json import JSON
from consortia.attestation.binding import check_binding
from consortia.attestation.chain import AMD_ARK_SHA256, ChainInfo, load_certificate, verify_chain
from consortia.attestation.errors import AttestationFailed
from consortia.attestation.policy import AttestationPolicy
from consortia.attestation.report import SnpReport, Tcb, parse_report, signed_part

__all__ = [
    "Binding",
    "VerifiedReport",
    "check_vcek_matches",
    "verify_evidence",
    "verify_report_signature",
]

#: SIGNATURE_ALGO value of ECDSA P-384 with SHA-384.
SIG_ALGO_ECDSA_P384_SHA384: Final = 1
_P384_ORDER: Final = int(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    16,
)


def verify_report_signature(
    report: SnpReport, vcek: bytes | x509.Certificate | ec.EllipticCurvePublicKey
) -> None:
    """Raise :class:`AttestationFailed` unless the VCEK signed ``report``.

    ``report`` must come from :func:`parse_report` (the signature covers its raw bytes).
    """
    if report.signature_algo != SIG_ALGO_ECDSA_P384_SHA384:
        raise AttestationFailed(
            f"report.signature_algo: expected 1 (ECDSA P-384 with SHA-384), got "
            f"{report.signature_algo}"
        )
    if len(report.raw) != 0x4A0:
        raise AttestationFailed(
            "report: no raw bytes to check the signature over; parse the report with parse_report"
        )
    if isinstance(vcek, ec.EllipticCurvePublicKey):
        key = vcek
    else:
        public = load_certificate(vcek, what="VCEK").public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise AttestationFailed(
                f"VCEK: its key is {type(public).__name__}, expected ECDSA P-384"
            )
        key = public
    if not isinstance(key.curve, ec.SECP384R1):
        raise AttestationFailed(f"VCEK: its curve is {key.curve.name}, expected secp384r1")
    r, s = report.signature_rs
    if not (0 < r < _P384_ORDER and 0 < s < _P384_ORDER):
        raise AttestationFailed(
            "report.signature: r and s must be between 1 and the P-384 group order; the "
            "signature field is corrupt"
        )
    try:
        key.verify(encode_dss_signature(r, s), signed_part(report.raw), ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as exc:
        raise AttestationFailed(
            "report.signature: the ECDSA P-384 SHA-384 signature over bytes 0x000..0x29F "
            "does not verify with the VCEK; the report was altered or another chip signed "
            "it"
        ) from exc


def check_vcek_matches(report: SnpReport, chain: ChainInfo) -> None:
    """The VCEK belongs to the chip and TCB of ``report`` (hwID = CHIP_ID, SPLs = TCB)."""
    if report.signing_key != 0:
        raise AttestationFailed(
            f"report.signing_key: expected 0 (VCEK), got {report.signing_key}; only "
            "VCEK-signed reports are supported"
        )
    if not any(report.chip_id):
        raise AttestationFailed(
            "report.chip_id: the chip id is masked (all zero); expected the chip's id, which "
            "must match the VCEK's hwID: launch the platform without MASK_CHIP_ID"
        )
    if report.chip_id != chain.hw_id:
        raise AttestationFailed(
            f"report.chip_id: expected the VCEK's hwID {chain.hw_id.hex()}, got "
            f"{report.chip_id.hex()}; the VCEK is for another chip: fetch this chip's VCEK"
        )
    if report.reported_tcb != chain.tcb:
        raise AttestationFailed(
            f"report.reported_tcb: expected the VCEK's TCB {chain.tcb}, got "
            f"{report.reported_tcb}; fetch the VCEK for the reported TCB"
        )


@dataclass(frozen=True)
class Binding:
    """The values the report must bind (see :func:`consortia.attestation.check_binding`)."""

    service_key: Mapping[str, JSON]
    encryption_key: Mapping[str, JSON]
    tls_certificate_sha256: str
    version: str
    published: Mapping[str, object] | None = None


@dataclass(frozen=True)
class VerifiedReport:
    """What verified evidence establishes."""

    platform: str
    product: str
    root_name: str
    version: int
    measurement: str
    reported_tcb: Tcb
    policy: int
    debug: bool
    migrate_ma: bool
    smt: bool
    single_socket: bool
    report_data: bytes
    chip_id: str

    def to_json(self) -> dict[str, object]:
        """A JSON object of every field (bytes as hex)."""
        return {
            "platform": self.platform,
            "product": self.product,
            "root_name": self.root_name,
            "version": self.version,
            "measurement": self.measurement,
            "reported_tcb": self.reported_tcb.to_json(),
            "policy": self.policy,
            "debug": self.debug,
            "migrate_ma": self.migrate_ma,
            "smt": self.smt,
            "single_socket": self.single_socket,
            "report_data": self.report_data.hex(),
            "chip_id": self.chip_id,
        }


def verify_evidence(
    report: bytes | SnpReport,
    *,
    vcek: bytes | x509.Certificate,
    ask: bytes | x509.Certificate,
    ark: bytes | x509.Certificate,
    now: datetime,
    policy: AttestationPolicy | None = None,
    binding: Binding | None = None,
    roots: Mapping[str, str] = AMD_ARK_SHA256,
) -> VerifiedReport:
    """Verify SEV-SNP evidence end to end, or raise :class:`AttestationFailed`.

    Order: parse the report, verify the chain VCEK -> ASK -> pinned ARK at ``now``, the
    report's signature, that the VCEK is this chip's at this TCB, then ``policy`` and
    ``binding`` when given (without them the caller must check those itself).
    """
    raw = report.raw if isinstance(report, SnpReport) else bytes(report)
    chain = verify_chain(vcek, ask, ark, now=now, roots=roots)
    # The TCB layout depends on the CPU generation, which the VCEK names.
    parsed = parse_report(raw, product=chain.product)
    verify_report_signature(parsed, chain.vcek)
    check_vcek_matches(parsed, chain)
    if policy is not None:
        policy.check(parsed)
    if binding is not None:
        check_binding(
            parsed,
            service_key=binding.service_key,
            encryption_key=binding.encryption_key,
            tls_certificate_sha256=binding.tls_certificate_sha256,
            version=binding.version,
            published=binding.published,
        )
    # Hardware only when the matched root is AMD's own (by its pin, not merely its name).
    amd = AMD_ARK_SHA256.get(chain.root_name) == roots.get(chain.root_name)
    return VerifiedReport(
        platform="sev-snp" if amd else "simulated-snp",
        product=chain.product,
        root_name=chain.root_name,
        version=parsed.version,
        measurement=parsed.measurement.hex(),
        reported_tcb=parsed.reported_tcb,
        policy=parsed.policy,
        debug=parsed.debug,
        migrate_ma=parsed.migrate_ma,
        smt=parsed.smt,
        single_socket=parsed.single_socket,
        report_data=parsed.report_data,
        chip_id=parsed.chip_id.hex(),
    )
