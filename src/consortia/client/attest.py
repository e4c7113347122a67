"""What a member checks of the TEP before its first request: the attestation.

``GET /v1/service`` carries ``platform`` and ``attestation``: null on the ``virtual``
platform, else ``{"evidence": {...}, "binding": {...}}`` (PROTOCOL.md section 5,
docs/attestation.md). :func:`verify_service` decides, purely, what that proves on *this*
connection, whose TLS certificate the caller hashed itself:

* ``sev-snp``: the report verifies to a pinned AMD root (VCEK -> ASK -> ARK), its
  signature, its TCB agreement with the VCEK, debug and migration agent off, the member's
  measurements and minimum TCB when its trust file lists them, and a binding of exactly
  the service keys published beside it and the certificate this connection presented.
* ``simulated-snp``: the same checks, but its root is a test CA the operator holds, so it is
  refused unless the member trusts that root by name (``test_roots`` in the trust file, or
  ``--trust-test-root NAME=SHA256``), and always when the trust file requires hardware.
* ``virtual``: nothing to verify; accepted (the TLS pin is all there is) unless the trust
  file requires hardware.

Every refusal is :class:`~consortia.attestation.AttestationFailed` naming what differs.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Final

from cryptography.hazmat.primitives import hashes

from consortia._json import JSON, JSONObject
from consortia.attestation import (
    AMD_ARK_SHA256,
    AttestationFailed,
    AttestationPolicy,
    Binding,
    VerifiedReport,
    verify_evidence,
)
from consortia.attestation.chain import load_certificate
from consortia.attestation.evidence import Evidence
from consortia.attestation.report import Tcb, parse_report

__all__ = ["Attested", "Trust", "parse_test_root", "verify_service"]

_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_ROOT_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_TRUST_KEYS: Final = frozenset(
    {"measurements", "min_tcb", "require_hardware", "allow_debug", "allow_migrate_ma"}
    | {"test_roots"}
)
_MAX_TRUST_FILE: Final = 256 * 1024


def parse_test_root(text: str) -> tuple[str, str]:
    """``NAME=SHA256`` (the pin ``consortia serve --platform simulated-snp`` prints)."""
    name, sep, pin = text.partition("=")
    pin = pin.strip().lower().replace(":", "")
    if not sep or not _ROOT_NAME.fullmatch(name) or not _SHA256_HEX.fullmatch(pin):
        raise AttestationFailed(
            f"test root {text[:80]!r}: expected NAME=SHA256, a name of letters, digits, '.', "
            "'_' or '-' and the 64 hex digits `consortia serve --platform simulated-snp` prints"
        )
    return name, pin


@dataclass(frozen=True)
class Trust:
    """A member's trust file: what it accepts of the TEP it talks to.

    ``{"measurements": [hex, ...], "min_tcb": {...}, "require_hardware": true,
    "test_roots": {"lab": "<sha256 of the test ARK>"}}``; every key is optional.
    ``measurements`` absent means any measurement (each command prints the one it saw);
    ``require_hardware`` (default true in a file) refuses ``virtual`` and ``simulated-snp``.
    """

    measurements: frozenset[str] | None = None
    min_tcb: Tcb | None = None
    require_hardware: bool = False
    allow_debug: bool = False
    allow_migrate_ma: bool = False
    test_roots: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_roots", MappingProxyType(dict(self.test_roots)))
        if self.require_hardware and self.test_roots:
            raise AttestationFailed(
                "trust: require_hardware is true, so no test root can be trusted; drop "
                "test_roots or set require_hardware to false"
            )
        if self.measurements is not None:
            # Let the policy check the spelling of every measurement.
            AttestationPolicy(measurements=self.measurements)

    @classmethod
    def from_json(cls, value: object) -> Trust:
        """Read a trust file's object; unknown keys and ill-typed values are refused."""
        if not isinstance(value, dict):
            raise AttestationFailed(f"trust: expected a JSON object, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in _TRUST_KEYS)
        if unknown:
            raise AttestationFailed(
                f"trust: unknown keys {unknown}; expected {sorted(_TRUST_KEYS)}"
            )
        roots = value.get("test_roots", {})
        if not isinstance(roots, dict):
            raise AttestationFailed("trust.test_roots: expected an object of NAME: SHA256")
        test_roots = dict(parse_test_root(f"{k}={v}") for k, v in roots.items())
        rest = {k: v for k, v in value.items() if k != "test_roots"}
        has_measurements = "measurements" in rest
        rest.setdefault("measurements", [])
        policy = AttestationPolicy.from_json(rest)
        return cls(
            measurements=policy.measurements if has_measurements else None,
            min_tcb=policy.min_tcb,
            require_hardware=policy.require_hardware,
            allow_debug=policy.allow_debug,
            allow_migrate_ma=policy.allow_migrate_ma,
            test_roots=test_roots,
        )

    @classmethod
    def load(cls, path: Path) -> Trust:
        """Read a trust file (JSON); :class:`AttestationFailed` naming the file when bad."""
        try:
            with Path(path).open("rb") as f:
                data = f.read(_MAX_TRUST_FILE + 1)
        except OSError as e:
            raise AttestationFailed(
                f"cannot read the trust file {path}: {e.strerror or e}"
            ) from None
        if len(data) > _MAX_TRUST_FILE:
            raise AttestationFailed(f"trust file {path}: over 256 KiB; expected a small JSON")
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise AttestationFailed(f"trust file {path}: not JSON ({e})") from None
        try:
            return cls.from_json(value)
        except AttestationFailed as e:
            raise AttestationFailed(f"trust file {path}: {e.message}") from None

    def with_test_roots(self, extra: Mapping[str, str]) -> Trust:
        """This trust with more test roots trusted by name (``--trust-test-root``)."""
        return dataclasses.replace(self, test_roots={**self.test_roots, **extra})

    def roots(self) -> Mapping[str, str]:
        """AMD's pinned roots and the test roots trusted by name (as ``test:NAME``)."""
        out = dict(AMD_ARK_SHA256)
        out.update({f"test:{name}": pin for name, pin in self.test_roots.items()})
        return out


@dataclass(frozen=True)
class Attested:
    """What a member established about the TEP on one connection."""

    #: ``virtual``, ``sev-snp`` or ``simulated-snp``.
    platform: str
    #: The verified report; None on ``virtual``.
    report: VerifiedReport | None
    #: The service keys the report binds (or, on ``virtual``, the ones published).
    service_key: JSONObject
    encryption_key: JSONObject
    #: SHA-256 of the TLS certificate the report binds (None on ``virtual``).
    tls_certificate_sha256: str | None
    #: Whether the measurement was checked against the member's own list.
    measurement_checked: bool = False

    @property
    def attested(self) -> bool:
        """Whether a verified report vouches for the keys and certificate."""
        return self.report is not None

    def summary(self) -> str:
        """One line a member command prints before anything else."""
        report = self.report
        if report is None:
            return (
                "NOT ATTESTED: the TEP runs on the virtual platform; nothing protects data in "
                "use from whoever runs the host, and trust rests on the TLS pin alone"
            )
        checked = (
            "in your trust file"
            if self.measurement_checked
            else "NOT checked: list it in your trust file"
        )
        what = (
            "SIMULATED SEV-SNP (a test root you trust by name; no hardware protection)"
            if self.platform == "simulated-snp"
            else f"AMD SEV-SNP {report.product}"
        )
        tcb = ", ".join(f"{k} {v}" for k, v in report.reported_tcb.to_json().items())
        return (
            f"attested: {what}, measurement {report.measurement} ({checked}), TCB "
            f"{tcb}; the service key and TLS certificate are bound to the report"
        )

    def to_json(self) -> JSONObject:
        """The verdict as JSON (``consortia attest --json``)."""
        out: JSONObject = {
            "platform": self.platform,
            "attested": self.attested,
            "measurement_checked": self.measurement_checked,
            "service_key": self.service_key,
            "encryption_key": self.encryption_key,
            "tls_certificate_sha256": self.tls_certificate_sha256,
        }
        if self.report is not None:
            report: JSON = json.loads(json.dumps(self.report.to_json()))
            out["report"] = report
        return out


def _jwk(service: Mapping[str, object], name: str) -> JSONObject:
    value = service.get(name)
    if not isinstance(value, dict) or not value:
        raise AttestationFailed(f"service.{name}: expected a JWK object, got {value!r:.80}")
    return value


def verify_service(
    service: Mapping[str, object],
    *,
    tls_certificate_sha256: str | None,
    trust: Trust | None,
    now: datetime,
) -> Attested:
    """Verify ``GET /v1/service`` as seen on a connection whose certificate hashes to
    ``tls_certificate_sha256`` (None for plain HTTP); raise :class:`AttestationFailed`."""
    trust = trust or Trust()
    platform = service.get("platform")
    attestation = service.get("attestation")
    service_key, encryption_key = _jwk(service, "service_key"), _jwk(service, "encryption_key")
    if attestation is None:
        if platform != "virtual":
            raise AttestationFailed(
                f"attestation: the TEP says it runs on {platform!r:.40} but publishes no "
                "evidence; do not trust this connection"
            )
        if trust.require_hardware:
            raise AttestationFailed(
                "platform: expected attested hardware (your trust file sets "
                "require_hardware), the TEP runs on the virtual platform, where nothing "
                "protects data in use; do not send it anything"
            )
        return Attested("virtual", None, service_key, encryption_key, None)
    if not isinstance(attestation, Mapping) or set(attestation) != {"evidence", "binding"}:
        raise AttestationFailed(
            "attestation: expected an object with exactly 'evidence' and 'binding'"
        )
    evidence = Evidence.from_json(attestation["evidence"], what="attestation.evidence")
    published = attestation["binding"]
    if not isinstance(published, Mapping):
        raise AttestationFailed("attestation.binding: expected an object")
    if evidence.platform != platform:
        raise AttestationFailed(
            f"attestation.evidence.platform: expected {platform!r:.40} (the service's "
            f"platform), got {evidence.platform!r}"
        )
    if tls_certificate_sha256 is None:
        raise AttestationFailed(
            "binding.tls_certificate_sha256: this connection has no TLS certificate (plain "
            "HTTP), so no report can vouch for it; use the https:// address"
        )
    if platform == "simulated-snp":
        if trust.require_hardware:
            raise AttestationFailed(
                "platform: expected attested hardware (your trust file sets "
                "require_hardware), the TEP runs on simulated SEV-SNP, whose reports are "
                "signed by a test key its operator holds"
            )
        if not trust.test_roots:
            pin = _ark_pin(evidence)
            raise AttestationFailed(
                f"root: the TEP runs on simulated SEV-SNP, signed by a test root ({pin}) "
                "that proves nothing about the hardware; trust it only if you run this TEP "
                f"yourself, by name: --trust-test-root NAME={pin}"
            )
    version = published.get("platform_version")
    if not isinstance(version, str):
        raise AttestationFailed(
            f"binding.platform_version: expected a version string, got {version!r:.40}"
        )
    binding = Binding(
        service_key=service_key,
        encryption_key=encryption_key,
        tls_certificate_sha256=tls_certificate_sha256,
        version=version,
        published=published,
    )
    verified = verify_evidence(
        evidence.report,
        vcek=evidence.vcek_pem.encode("ascii", "replace"),
        ask=evidence.ask_pem.encode("ascii", "replace"),
        ark=evidence.ark_pem.encode("ascii", "replace"),
        now=now,
        policy=_policy(trust, evidence),
        binding=binding,
        roots=trust.roots(),
    )
    if verified.platform != platform:
        raise AttestationFailed(
            f"root: the service says {platform!r} but the report chains to "
            f"{verified.root_name!r}, which makes it {verified.platform!r}; do not trust "
            "this connection"
        )
    return Attested(
        platform=verified.platform,
        report=verified,
        service_key=service_key,
        encryption_key=encryption_key,
        tls_certificate_sha256=tls_certificate_sha256,
        measurement_checked=trust.measurements is not None,
    )


def _ark_pin(evidence: Evidence) -> str:
    ark = load_certificate(evidence.ark_pem.encode("ascii", "replace"), what="ARK")
    return ark.fingerprint(hashes.SHA256()).hex()


def _policy(trust: Trust, evidence: Evidence) -> AttestationPolicy:
    """The trust as a verifier policy; without own measurements, the report's is accepted
    (the caller reports it as not checked)."""
    measurements = trust.measurements
    if measurements == frozenset():
        raise AttestationFailed(
            'measurement: your trust file lists no measurements ("measurements": []), so '
            "it accepts no build; list the measurements you accept, or leave the key out to "
            "accept any (each command then prints the one it saw)"
        )
    if measurements is None:
        measurements = frozenset({parse_report(evidence.report).measurement.hex()})
    return AttestationPolicy(
        measurements=measurements,
        min_tcb=trust.min_tcb,
        allow_debug=trust.allow_debug,
        allow_migrate_ma=trust.allow_migrate_ma,
        require_hardware=trust.require_hardware,
    )
