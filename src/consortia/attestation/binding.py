"""Binding the platform's keys into its attestation report.

The 64 bytes of REPORT_DATA (table "ATTESTATION_REPORT Structure", 0x050) are chosen by the
guest when it asks for a report. The platform puts there the SHA-512 of a binding document,
the RFC 8785 canonical JSON of::

    {"service_key": <JWK>, "encryption_key": <JWK>,
     "tls_certificate_sha256": "<hex>", "platform_version": "<version>"}

so a verified report vouches for exactly those keys, that TLS certificate and that
software version. The document is published beside the report; :func:`check_binding`
compares each published value with what the verifier sees on its own connection (so the
refusal names the value that differs), then the hash with the report. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Final

from consortia._json import JSON, canonical
from consortia.attestation.errors import AttestationFailed
from consortia.attestation.report import SnpReport
from consortia.errors import BadRequest

__all__ = ["binding_document", "check_binding", "report_data_for"]

_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_KEYS: Final = ("service_key", "encryption_key", "tls_certificate_sha256", "platform_version")


def _document_value(
    service_key: Mapping[str, JSON],
    encryption_key: Mapping[str, JSON],
    tls_certificate_sha256: str,
    version: str,
) -> dict[str, JSON]:
    if not isinstance(tls_certificate_sha256, str) or not _SHA256_HEX.fullmatch(
        tls_certificate_sha256
    ):
        raise AttestationFailed(
            "binding.tls_certificate_sha256: expected 64 lowercase hex digits (SHA-256 of "
            f"the certificate's DER), got {tls_certificate_sha256!r}"
        )
    if not isinstance(version, str) or not version:
        raise AttestationFailed(
            f"binding.platform_version: expected a non-empty string, got {version!r}"
        )
    for name, key in (("service_key", service_key), ("encryption_key", encryption_key)):
        if not isinstance(key, Mapping) or not key:
            raise AttestationFailed(f"binding.{name}: expected a JWK object, got {key!r}")
    return {
        "service_key": dict(service_key),
        "encryption_key": dict(encryption_key),
        "tls_certificate_sha256": tls_certificate_sha256,
        "platform_version": version,
    }


def binding_document(
    service_key: Mapping[str, JSON],
    encryption_key: Mapping[str, JSON],
    tls_certificate_sha256: str,
    version: str,
) -> bytes:
    """The canonical (RFC 8785) JSON bytes the report data commits to."""
    value = _document_value(service_key, encryption_key, tls_certificate_sha256, version)
    try:
        return canonical(value)
    except (BadRequest, TypeError, ValueError) as exc:
        raise AttestationFailed(
            f"binding: the bound values are not canonical JSON ({exc}); JWKs must be plain "
            "JSON objects"
        ) from exc


def report_data_for(document: bytes) -> bytes:
    """REPORT_DATA for a binding document: its SHA-512 (64 bytes)."""
    return hashlib.sha512(document).digest()


def check_binding(
    report: SnpReport,
    *,
    service_key: Mapping[str, JSON],
    encryption_key: Mapping[str, JSON],
    tls_certificate_sha256: str,
    version: str,
    published: Mapping[str, object] | None = None,
) -> None:
    """Raise :class:`AttestationFailed` unless ``report`` binds exactly these values.

    The keyword values are the verifier's own: the keys it will use, the SHA-256 of THIS
    connection's TLS certificate, the version it expects. ``published`` is the binding
    document published beside the report (if any): each of its values is compared first,
    so a mismatch names what differs; then the report data is compared with the hash.
    """
    expected = _document_value(service_key, encryption_key, tls_certificate_sha256, version)
    if published is not None:
        if not isinstance(published, Mapping):
            raise AttestationFailed(
                f"binding: the published document must be an object, got {type(published).__name__}"
            )
        extra = sorted(str(k) for k in published if k not in _KEYS)
        if extra:
            raise AttestationFailed(
                f"binding: the published document has unknown keys {extra}; expected {list(_KEYS)}"
            )
        for key in _KEYS:
            if key not in published:
                raise AttestationFailed(
                    f"binding.{key}: missing from the published document; expected "
                    f"{expected[key]!r}"
                )
            if published[key] != expected[key]:
                raise AttestationFailed(
                    f"binding.{key}: the platform published {published[key]!r}, expected "
                    f"{expected[key]!r} (what this connection sees); the report does not "
                    "vouch for the keys or certificate in use: do not trust this connection"
                )
    want = report_data_for(
        binding_document(service_key, encryption_key, tls_certificate_sha256, version)
    )
    if not hmac.compare_digest(want, report.report_data):
        raise AttestationFailed(
            f"binding.report_data: expected SHA-512 of the binding document {want.hex()}, "
            f"the report has {report.report_data.hex()}; the report does not bind this "
            "platform's keys, TLS certificate and version: do not trust this connection"
        )
