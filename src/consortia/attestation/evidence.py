"""Attestation evidence as the TEP hands it out: a report and the certificates that sign it.

JSON form (what ``GET /v1/service`` or an attestation endpoint carries)::

    {"platform": "sev-snp" | "simulated-snp",
     "report": "<base64url, no padding, of the 1,184-byte ATTESTATION_REPORT>",
     "vcek_pem": "-----BEGIN CERTIFICATE-----...", "ask_pem": "...", "ark_pem": "..."}

Binary values are base64url without padding, as everywhere on the wire
(:mod:`consortia.identity._b64`). :meth:`Evidence.from_json` checks only the shape; the
verifier (:mod:`consortia.attestation.verify`) decides what the evidence proves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from consortia._json import JSONObject
from consortia.attestation.errors import AttestationFailed
from consortia.attestation.report import REPORT_SIZE
from consortia.errors import BadRequest
from consortia.identity._b64 import b64url_decode, b64url_encode

__all__ = ["EVIDENCE_PLATFORMS", "Evidence"]

#: Platform kinds that produce evidence (``virtual`` produces none).
EVIDENCE_PLATFORMS: Final = ("sev-snp", "simulated-snp")
_FIELDS: Final = ("platform", "report", "vcek_pem", "ask_pem", "ark_pem")
_MAX_PEM: Final = 16 * 1024
_ONE_PEM: Final = re.compile(
    r"\s*-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*"
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A signed SNP report (binary) and its VCEK, ASK and ARK certificates (PEM)."""

    #: ``sev-snp`` or ``simulated-snp``.
    platform: str
    #: The 1,184-byte ATTESTATION_REPORT.
    report: bytes
    vcek_pem: str
    ask_pem: str
    ark_pem: str

    def __repr__(self) -> str:
        return f"Evidence(platform={self.platform!r}, report=<{len(self.report)} bytes>)"

    @property
    def chain_pem(self) -> str:
        """VCEK, ASK and ARK, PEM, in that order."""
        return self.vcek_pem + self.ask_pem + self.ark_pem

    def to_json(self) -> JSONObject:
        """The JSON form of the module docstring."""
        return {
            "platform": self.platform,
            "report": b64url_encode(self.report),
            "vcek_pem": self.vcek_pem,
            "ask_pem": self.ask_pem,
            "ark_pem": self.ark_pem,
        }

    @classmethod
    def from_json(cls, value: object, *, what: str = "evidence") -> Evidence:
        """Read :meth:`to_json`'s form; :class:`AttestationFailed` naming the bad field."""
        if not isinstance(value, Mapping):
            raise AttestationFailed(
                f"{what}: expected a JSON object with {list(_FIELDS)}, got {type(value).__name__}"
            )
        missing = [k for k in _FIELDS if k not in value]
        unknown = sorted(str(k) for k in value if k not in _FIELDS)
        if missing:
            raise AttestationFailed(f"{what}: missing members {missing}")
        if unknown:
            raise AttestationFailed(f"{what}: unknown members {unknown}; expected {list(_FIELDS)}")
        platform = value["platform"]
        if platform not in EVIDENCE_PLATFORMS:
            raise AttestationFailed(
                f"{what}.platform: expected one of {list(EVIDENCE_PLATFORMS)}, got "
                f"{str(platform)[:40]!r}"
            )
        try:
            report = b64url_decode(value["report"], what=f"{what}.report")
        except BadRequest as e:
            raise AttestationFailed(e.message) from None
        if len(report) != REPORT_SIZE:
            raise AttestationFailed(
                f"{what}.report: expected {REPORT_SIZE} bytes (an SEV-SNP report), got "
                f"{len(report)}"
            )
        pems = [_pem_field(value[k], what=f"{what}.{k}") for k in _FIELDS[2:]]
        return cls(
            platform=platform, report=report, vcek_pem=pems[0], ask_pem=pems[1], ark_pem=pems[2]
        )


def _pem_field(value: object, *, what: str) -> str:
    if not isinstance(value, str):
        raise AttestationFailed(f"{what}: expected a PEM string, got {type(value).__name__}")
    if len(value) > _MAX_PEM:
        raise AttestationFailed(f"{what}: {len(value)} characters; a certificate is under 16 KiB")
    if _ONE_PEM.fullmatch(value) is None:
        raise AttestationFailed(
            f"{what}: expected exactly one PEM certificate (-----BEGIN CERTIFICATE----- ... "
            "-----END CERTIFICATE-----)"
        )
    return value
