"""The platform policy: which TEP code a consortium accepts to be served by.

It is part of the constitution (stored under ``gov/platform``, shown in the constitution read
as ``platform_policy`` once voted, changed only by the voted base action
``setPlatformPolicy``), because deciding which build of the trusted platform may hold the
consortium's data in use is a decision of the members, not of the operator. A TEP whose
launch measurement, TCB or platform kind the policy does not accept refuses to serve the
consortium and says why (:func:`check_platform`). Pure data and rules: no I/O, no clock.

JSON form::

    {"measurements": ["<96 lowercase hex>", ...],  # SNP launch measurements; [] = any
     "min_tcb": {"bootloader": n, "tee": n, "snp": n, "microcode": n, "fmc"?: n} | null,
     "allow_virtual": true}                         # may a TEP without hardware serve it

``measurements`` and ``min_tcb`` apply to attested kinds (``sev-snp``, ``simulated-snp``);
``allow_virtual`` to kinds without hardware protection: ``virtual``, and ``simulated-snp``
too (its reports are signed by a key the operator holds, so it proves nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from consortia._json import JSON, JSONObject
from consortia.errors import ActionFailed, ConsortiaError

__all__ = [
    "DEFAULT_PLATFORM_POLICY",
    "MAX_MEASUREMENTS",
    "PLATFORM_KINDS",
    "TCB_COMPONENTS",
    "PlatformPolicy",
    "RunningPlatform",
    "check_platform",
    "parse_platform_policy",
]

#: Most launch measurements one policy lists (an upgrade needs two: the old and the new).
MAX_MEASUREMENTS = 64
#: Kinds of TEP a :class:`RunningPlatform` may be.
PLATFORM_KINDS: tuple[str, ...] = ("virtual", "sev-snp", "simulated-snp")
#: Required components of ``min_tcb`` (SNP's reported TCB version), in the order checked.
TCB_COMPONENTS: tuple[str, ...] = ("bootloader", "tee", "snp", "microcode")
#: Optional components of ``min_tcb`` (``fmc``: only on processors that report it).
_OPTIONAL_TCB: tuple[str, ...] = ("fmc",)
_FIELDS = ("measurements", "min_tcb", "allow_virtual")
_MEASUREMENT = re.compile(r"^[0-9a-f]{96}$")
#: Kinds without hardware protection of data in use: ``allow_virtual`` decides them.
_UNPROTECTED = frozenset({"virtual", "simulated-snp"})
#: Kinds that report a launch measurement and a TCB: the policy's lists apply to them.
_ATTESTED = frozenset({"sev-snp", "simulated-snp"})
_ErrorType = type[ConsortiaError]


@dataclass(frozen=True, slots=True)
class PlatformPolicy:
    """Which TEPs may serve the consortium: measurements, a minimum TCB, virtual or not."""

    #: Accepted SNP launch measurements (lowercase hex of 48 bytes), sorted; empty: any.
    measurements: tuple[str, ...] = ()
    #: The least reported TCB version per component; None: any TCB.
    min_tcb: Mapping[str, int] | None = None
    #: Whether a TEP without hardware protection (virtual, simulated SNP) may serve it.
    allow_virtual: bool = True

    def __post_init__(self) -> None:
        if self.min_tcb is not None:
            object.__setattr__(self, "min_tcb", MappingProxyType(dict(self.min_tcb)))

    @classmethod
    def from_params(cls, params: JSON, *, what: str = "params") -> PlatformPolicy:
        """The policy of ``setPlatformPolicy``'s params; ``action_failed`` naming the field."""
        return parse_platform_policy(params, what=what, error=ActionFailed)

    def to_json(self) -> JSONObject:
        """The policy in its JSON form (the constitution read and ``gov/platform``)."""
        return {
            "measurements": list(self.measurements),
            "min_tcb": None if self.min_tcb is None else dict(self.min_tcb),
            "allow_virtual": self.allow_virtual,
        }


DEFAULT_PLATFORM_POLICY = PlatformPolicy()
"""Any measurement, any TCB, virtual allowed: what a consortium without a voted policy gets."""


@dataclass(frozen=True, slots=True)
class RunningPlatform:
    """What the TEP this engine runs in is: its kind and, when attested, what it reports."""

    #: ``virtual``, ``sev-snp`` or ``simulated-snp``.
    kind: str = "virtual"
    #: The launch measurement (hex), for attested kinds.
    measurement: str | None = None
    #: The reported TCB version per component, for attested kinds.
    tcb: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in PLATFORM_KINDS:
            raise ValueError(
                f"platform kind must be one of {', '.join(PLATFORM_KINDS)}, got {self.kind!r}"
            )
        if self.tcb is not None:
            object.__setattr__(self, "tcb", MappingProxyType(dict(self.tcb)))


def _count(n: int) -> str:
    return "the one" if n == 1 else f"the {n}"


def check_platform(policy: PlatformPolicy | None, running: RunningPlatform) -> str | None:
    """Why ``policy`` does not accept the TEP ``running`` describes; None when it does.

    ``None`` is the default policy, which accepts every TEP. Several reasons are joined
    with "; " so an operator learns everything to fix at once.
    """
    if policy is None:
        return None
    reasons: list[str] = []
    if running.kind in _UNPROTECTED and not policy.allow_virtual:
        what = (
            "the virtual platform (no hardware protection)"
            if running.kind == "virtual"
            else "simulated SEV-SNP (no hardware protection: its reports are signed by a "
            "key the operator holds)"
        )
        reasons.append(
            f"this TEP runs on {what}; the consortium's platform policy requires attested "
            "hardware (allow_virtual: false)"
        )
    if running.kind in _ATTESTED:
        if policy.measurements:
            accepted = f"{_count(len(policy.measurements))} the platform policy accepts"
            measurement = running.measurement
            if measurement is None:
                reasons.append(
                    f"this TEP reports no launch measurement; it must be one of {accepted}"
                )
            elif measurement.lower() not in policy.measurements:
                reasons.append(
                    f"this TEP's measurement {measurement} is not among {accepted} (measurements)"
                )
        if policy.min_tcb is not None:
            reasons += _tcb_reasons(policy.min_tcb, running.tcb)
    return "; ".join(reasons) if reasons else None


def _tcb_reasons(minimum: Mapping[str, int], tcb: Mapping[str, int] | None) -> list[str]:
    if tcb is None:
        return ["this TEP reports no TCB version; the platform policy requires a minimum (min_tcb)"]
    reasons: list[str] = []
    for component in (*TCB_COMPONENTS, *_OPTIONAL_TCB):
        least = minimum.get(component)
        if least is None:
            continue
        actual = tcb.get(component)
        if actual is None:
            reasons.append(
                f"this TEP reports no TCB {component}; the policy's minimum is {least} (min_tcb)"
            )
        elif actual < least:
            reasons.append(
                f"this TEP's reported TCB {component} {actual} is below the policy's minimum "
                f"{least} (min_tcb)"
            )
    return reasons


# -- parsing ------------------------------------------------------------------------------------


def _measurements(value: JSON, what: str, error: _ErrorType) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_MEASUREMENTS:
        raise error(
            f"{what} must be a list of at most {MAX_MEASUREMENTS} launch measurements "
            "([] accepts any measurement)"
        )
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str) or _MEASUREMENT.fullmatch(item) is None:
            given = (
                f"a string of {len(item)} characters"
                if isinstance(item, str)
                else type(item).__name__
            )
            raise error(
                f"{what}[{index}] must be an SEV-SNP launch measurement: 96 lowercase hex "
                f"digits (48 bytes); got {given}"
            )
        if item in seen:
            raise error(f"{what} lists {item[:16]}… twice")
        seen.add(item)
    return tuple(sorted(seen))


def _min_tcb(value: JSON, what: str, error: _ErrorType) -> Mapping[str, int] | None:
    if value is None:
        return None
    expected = ", ".join((*TCB_COMPONENTS, *(f"{c}?" for c in _OPTIONAL_TCB)))
    if not isinstance(value, dict):
        raise error(f"{what} must be null or an object with {expected}; got {type(value).__name__}")
    missing = [c for c in TCB_COMPONENTS if c not in value]
    if missing:
        raise error(f"{what} is missing {', '.join(repr(m) for m in missing)}; expected {expected}")
    unknown = sorted(k for k in value if k not in TCB_COMPONENTS and k not in _OPTIONAL_TCB)
    if unknown:
        raise error(
            f"{what} has unknown component(s) {', '.join(repr(u[:40]) for u in unknown)}; "
            f"expected {expected}"
        )
    out: dict[str, int] = {}
    for component in (*TCB_COMPONENTS, *_OPTIONAL_TCB):
        if component not in value:
            continue
        raw = value[component]
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 255:
            raise error(f"{what}.{component} must be an integer from 0 to 255; got {raw!r:.40}")
        out[component] = raw
    return MappingProxyType(out)


def parse_platform_policy(
    value: JSON, *, what: str = "params", error: _ErrorType = ActionFailed
) -> PlatformPolicy:
    """Parse a policy from untrusted JSON; every field is required, so a vote is explicit.

    Raises ``error`` (``action_failed`` by default) naming the field, what was expected and
    what was given.
    """
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON object with {', '.join(_FIELDS)}")
    missing = [f for f in _FIELDS if f not in value]
    if missing:
        raise error(
            f"{what} is missing {', '.join(repr(m) for m in missing)}; a platform policy names "
            f"all of {', '.join(_FIELDS)} (the whole policy is replaced)"
        )
    unknown = sorted(k for k in value if k not in _FIELDS)
    if unknown:
        raise error(
            f"{what} has unknown field(s) {', '.join(repr(u[:40]) for u in unknown)}; "
            f"expected {', '.join(_FIELDS)}"
        )
    allow_virtual = value["allow_virtual"]
    if not isinstance(allow_virtual, bool):
        raise error(f"{what}.allow_virtual must be true or false; got {allow_virtual!r:.40}")
    return PlatformPolicy(
        measurements=_measurements(value["measurements"], f"{what}.measurements", error),
        min_tcb=_min_tcb(value["min_tcb"], f"{what}.min_tcb", error),
        allow_virtual=allow_virtual,
    )
