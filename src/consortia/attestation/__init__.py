"""Attestation: verifying AMD SEV-SNP evidence that the platform runs the code it claims.

Pure (no I/O, time is a parameter): :mod:`~consortia.attestation.report` (the binary
ATTESTATION_REPORT), :mod:`~consortia.attestation.chain` (VCEK -> ASK -> pinned ARK),
:mod:`~consortia.attestation.verify` (the report signature and everything together),
:mod:`~consortia.attestation.policy` (a member's trust file),
:mod:`~consortia.attestation.binding` (report data binding the platform's keys).
"""

from __future__ import annotations

from consortia.attestation.binding import binding_document, check_binding, report_data_for
from consortia.attestation.chain import (
    AMD_ARK_SHA256,
    ChainInfo,
    load_certificate,
    load_chain_pem,
    verify_chain,
)
from consortia.attestation.errors import AttestationFailed
from consortia.attestation.policy import AttestationPolicy
from consortia.attestation.report import (
    REPORT_SIZE,
    SIGNED_SIZE,
    SnpReport,
    Tcb,
    encode_report,
    parse_report,
    report_from_text,
    signed_part,
)
from consortia.attestation.verify import (
    Binding,
    VerifiedReport,
    check_vcek_matches,
    verify_evidence,
    verify_report_signature,
)

__all__ = [
    "AMD_ARK_SHA256",
    "REPORT_SIZE",
    "SIGNED_SIZE",
    "AttestationFailed",
    "AttestationPolicy",
    "Binding",
    "ChainInfo",
    "SnpReport",
    "Tcb",
    "VerifiedReport",
    "binding_document",
    "check_binding",
    "check_vcek_matches",
    "encode_report",
    "load_certificate",
    "load_chain_pem",
    "parse_report",
    "report_data_for",
    "report_from_text",
    "signed_part",
    "verify_chain",
    "verify_evidence",
    "verify_report_signature",
]
