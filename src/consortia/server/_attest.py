"""The TEP's own attestation: the evidence ``GET /v1/service`` hands to members.

The report data binds what a member relies on next (:mod:`consortia.attestation.binding`):
the service signing and encryption keys, the SHA-256 of the TLS certificate this server
presents, and the software version. The evidence is asked of the provider once per distinct
binding (the keys change only through a recovery) and kept, so a busy ``GET /v1/service``
does not reach the firmware each time.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from consortia import __version__
from consortia._json import JSONObject
from consortia.attestation import binding_document, report_data_for
from consortia.attestation.providers import PlatformProvider, VirtualProvider
from consortia.errors import BadRequest
from consortia.governance.platform_policy import RunningPlatform

__all__ = ["ServiceAttestation", "running_platform", "tls_certificate_sha256"]


def tls_certificate_sha256(cert_file: Path) -> str:
    """Lowercase hex SHA-256 of the DER of the (first) certificate in ``cert_file``."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except (OSError, ValueError) as exc:
        raise BadRequest(f"cannot read the TLS certificate {cert_file}: {exc}") from None
    return cert.fingerprint(hashes.SHA256()).hex()


def running_platform(provider: PlatformProvider) -> RunningPlatform:
    """What the engine's platform-policy gate needs to know of ``provider``'s TEP."""
    summary = provider.describe()
    measurement = summary.get("measurement")
    tcb = summary.get("tcb")
    return RunningPlatform(
        kind=provider.kind,
        measurement=measurement if isinstance(measurement, str) else None,
        tcb={k: v for k, v in tcb.items() if isinstance(v, int)} if isinstance(tcb, dict) else None,
    )


class ServiceAttestation:
    """Evidence over this server's keys and TLS certificate, as ``GET /v1/service`` shows it.

    ``tls_sha256`` is None for plain HTTP, which only the virtual platform may serve: a
    report cannot bind a connection that has no certificate.
    """

    def __init__(
        self, provider: PlatformProvider | None = None, *, tls_sha256: str | None = None
    ) -> None:
        self.provider: PlatformProvider = provider or VirtualProvider()
        if self.provider.kind != "virtual" and tls_sha256 is None:
            raise BadRequest(
                f"the {self.provider.kind} platform binds the TLS certificate into its "
                "report; serve over TLS (drop --no-tls)"
            )
        self.tls_sha256 = tls_sha256
        self.version = __version__
        self._lock = threading.Lock()
        self._cached: tuple[bytes, JSONObject] | None = None

    @property
    def kind(self) -> str:
        """``virtual``, ``sev-snp`` or ``simulated-snp``."""
        return self.provider.kind

    def attestation(self, keys: JSONObject) -> JSONObject | None:
        """``{"evidence": ..., "binding": ...}`` over ``keys`` (``service_key`` and
        ``encryption_key`` JWKs); None on the virtual platform. The provider's
        ``unavailable`` error passes through (the firmware did not answer)."""
        if self.provider.kind == "virtual" or self.tls_sha256 is None:
            return None
        service_key, encryption_key = keys["service_key"], keys["encryption_key"]
        if not isinstance(service_key, dict) or not isinstance(encryption_key, dict):
            raise TypeError("service keys must be JWK objects")
        document = binding_document(service_key, encryption_key, self.tls_sha256, self.version)
        with self._lock:
            if self._cached is not None and self._cached[0] == document:
                return dict(self._cached[1])
        evidence = self.provider.evidence(report_data_for(document))
        if evidence is None:  # a provider that cannot attest after all
            return None
        value: JSONObject = {
            "evidence": evidence.to_json(),
            "binding": {
                "service_key": service_key,
                "encryption_key": encryption_key,
                "tls_certificate_sha256": self.tls_sha256,
                "platform_version": self.version,
            },
        }
        with self._lock:
            self._cached = (document, value)
        return dict(value)
