"""A member's attestation policy: which measurements, which minimum TCB, which guest policy.

The trust file a member keeps (JSON)::

    {"measurements": ["<96 hex digits>", ...], "min_tcb": {"bootloader": 3, "tee": 0,
     "snp": 8, "microcode": 115}, "require_hardware": true}

``measurements`` are the launch digests (the report's MEASUREMENT, table
"ATTESTATION_REPORT Structure", 0x090) of the platform builds the member accepts;
``min_tcb`` the lowest TCB_VERSION accepted for the report's REPORTED_TCB; the guest
policy (table "GUEST_POLICY Structure") must forbid debugging and migration agents unless
``allow_debug`` / ``allow_migrate_ma`` say otherwise. ``require_hardware`` (default true) is
read by the member SDK: whether a simulated platform is acceptable at all.

:meth:`AttestationPolicy.check` raises :class:`AttestationFailed` naming the field, what
was expected and what the report says. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from consortia.attestation.errors import AttestationFailed
from consortia.attestation.report import (
    POLICY_RESERVED_ONE,
    SnpReport,
    Tcb,
)

__all__ = ["AttestationPolicy"]

_MEASUREMENT: Final = re.compile(r"[0-9a-f]{96}")
_KEYS: Final = frozenset(
    {"measurements", "min_tcb", "require_hardware", "allow_debug", "allow_migrate_ma"}
)


def _measurements(values: Iterable[object]) -> frozenset[str]:
    out = set()
    for value in values:
        if not isinstance(value, str) or not _MEASUREMENT.fullmatch(value):
            raise AttestationFailed(
                f"policy.measurements: expected 96 lowercase hex digits (a 48-byte SNP "
                f"launch measurement), got {value!r}"
            )
        out.add(value)
    return frozenset(out)


@dataclass(frozen=True)
class AttestationPolicy:
    """What a member accepts of the platform's attestation report."""

    measurements: frozenset[str]
    min_tcb: Tcb | None = None
    allow_debug: bool = False
    allow_migrate_ma: bool = False
    require_hardware: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.measurements, str):
            raise AttestationFailed(
                "policy.measurements: expected a set of hex strings, got one string"
            )
        object.__setattr__(self, "measurements", _measurements(self.measurements))

    def check(self, report: SnpReport) -> None:
        """Raise :class:`AttestationFailed` unless ``report`` meets this policy."""
        if not report.policy & POLICY_RESERVED_ONE:
            raise AttestationFailed(
                f"policy.reserved: bit 16 of the guest policy must be 1, the report has "
                f"guest policy 0x{report.policy:X}; the report is malformed"
            )
        if report.debug and not self.allow_debug:
            raise AttestationFailed(
                f"policy.debug: expected off, the report allows debugging (guest policy "
                f"0x{report.policy:X}); the host could read the platform's memory: launch "
                "it without the DEBUG policy bit"
            )
        if report.migrate_ma and not self.allow_migrate_ma:
            raise AttestationFailed(
                f"policy.migrate_ma: expected off, the report allows a migration agent "
                f"(guest policy 0x{report.policy:X}); launch without the MIGRATE_MA bit"
            )
        measurement = report.measurement.hex()
        if measurement not in self.measurements:
            raise AttestationFailed(
                f"measurement: expected one of {sorted(self.measurements)}, got "
                f"{measurement}; this is not a platform build the member trusts (add its "
                "measurement to the trust file only after checking the build)"
            )
        if self.min_tcb is not None:
            shortfall = report.reported_tcb.shortfall(self.min_tcb)
            if shortfall is not None:
                raise AttestationFailed(
                    f"reported_tcb below the minimum ({shortfall}; minimum "
                    f"{self.min_tcb}, reported {report.reported_tcb}); the platform's "
                    "firmware must be updated"
                )

    def to_json(self) -> dict[str, object]:
        """The trust file's object (keys sorted measurements, booleans explicit)."""
        out: dict[str, object] = {
            "measurements": sorted(self.measurements),
            "min_tcb": None if self.min_tcb is None else self.min_tcb.to_json(),
            "require_hardware": self.require_hardware,
        }
        if self.allow_debug:
            out["allow_debug"] = True
        if self.allow_migrate_ma:
            out["allow_migrate_ma"] = True
        return out

    @classmethod
    def from_json(cls, value: object) -> AttestationPolicy:
        """Read a trust file's object; unknown keys and ill-typed values are refused."""
        if not isinstance(value, dict):
            raise AttestationFailed(f"policy: expected a JSON object, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in _KEYS)
        if unknown:
            raise AttestationFailed(f"policy: unknown keys {unknown}; expected {sorted(_KEYS)}")
        measurements = value.get("measurements")
        if not isinstance(measurements, list):
            raise AttestationFailed(
                "policy.measurements: expected a list of hex strings, got "
                f"{type(measurements).__name__}"
            )
        flags = {}
        for key, default in (
            ("require_hardware", True),
            ("allow_debug", False),
            ("allow_migrate_ma", False),
        ):
            flag = value.get(key, default)
            if not isinstance(flag, bool):
                raise AttestationFailed(f"policy.{key}: expected true or false, got {flag!r}")
            flags[key] = flag
        raw_tcb = value.get("min_tcb")
        return cls(
            measurements=_measurements(measurements),
            min_tcb=None if raw_tcb is None else Tcb.from_json(raw_tcb),
            **flags,
        )
