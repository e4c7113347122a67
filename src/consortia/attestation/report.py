"""The AMD SEV-SNP attestation report: its exact binary layout, both directions.

The layout is the one of AMD's "SEV Secure Nested Paging Firmware ABI Specification"
(publication 56860), Table "ATTESTATION_REPORT Structure" (1,184 bytes, little-endian),
with the "TCB_VERSION Structure" table for the 8-byte TCB fields and the "GUEST_POLICY
Structure" table for the guest policy. Versions 2 and 3 are accepted; version 3 adds the
CPUID family, model and stepping at 0x188..0x18A.

:func:`parse_report` is strict: the length must be exactly 1,184 bytes and every reserved
("must be zero") byte must be zero, so that :func:`encode_report` of a parsed report gives
back exactly the same bytes. Any input, however malformed, raises only
:class:`~consortia.attestation.errors.AttestationFailed`.

The signature (AMD's "Signature" table, ECDSA P-384 with SHA-384) covers bytes
0x000..0x29F (:func:`signed_part`); its r and s are 72-byte little-endian integers at 0x2A0
and 0x2E8. Checking it is :mod:`consortia.attestation.verify`'s work, not this module's.

TCB layout: Milan and Genoa (CPU family 19h) put boot loader, TEE, SNP and microcode SPLs in
bytes 0, 1, 6 and 7; Turin (family 1Ah) adds the FMC SPL and uses bytes 0 (FMC),
1 (boot loader), 2 (TEE), 3 (SNP) and 7 (microcode). A version 2 report does not say which
CPU made it, so the Milan/Genoa layout is assumed unless ``product="Turin"`` is passed or a
version 3 report names family 1Ah. A :class:`Tcb` with ``fmc`` set is in the Turin layout.
"""

from __future__ import annotations

import binascii
import re
import struct
from dataclasses import dataclass, field
from typing import Final

from consortia.attestation.errors import AttestationFailed

__all__ = [
    "REPORT_SIZE",
    "SIGNED_SIZE",
    "SUPPORTED_VERSIONS",
    "SnpReport",
    "Tcb",
    "encode_report",
    "parse_report",
    "report_from_text",
    "signed_part",
]

#: Size of an ATTESTATION_REPORT, in bytes.
REPORT_SIZE: Final = 0x4A0
#: The signed part: bytes 0x000..0x29F.
SIGNED_SIZE: Final = 0x2A0
#: Report versions this verifier understands.
SUPPORTED_VERSIONS: Final = frozenset({2, 3})
#: CPUID family of Turin (Zen 5); Milan and Genoa are 19h.
TURIN_FAMILY: Final = 0x1A
#: Each of r and s is stored in 72 bytes (576 bits), little-endian.
SIG_COMPONENT_SIZE: Final = 72

# Guest policy bits (table "GUEST_POLICY Structure").
POLICY_SMT: Final = 1 << 17
POLICY_RESERVED_ONE: Final = 1 << 16
POLICY_MIGRATE_MA: Final = 1 << 19
POLICY_DEBUG: Final = 1 << 20
POLICY_SINGLE_SOCKET: Final = 1 << 21

# Bits of the 32-bit field at 0x48.
FLAG_AUTHOR_KEY_EN: Final = 1 << 0
FLAG_MASK_CHIP_KEY: Final = 1 << 1
_FLAG_SIGNING_KEY_SHIFT: Final = 2
_FLAGS_KNOWN: Final = 0b11111

_TCB_KEYS: Final = ("bootloader", "tee", "snp", "microcode", "fmc")


@dataclass(frozen=True)
class Tcb:
    """A TCB_VERSION: the security patch levels (SPLs) of the platform's components.

    ``fmc`` (the firmware's first mutable code) exists on Turin only; ``None`` means the
    Milan/Genoa layout. Every SPL is one byte (0..255).
    """

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None = None

    def __post_init__(self) -> None:
        for name in _TCB_KEYS:
            value = getattr(self, name)
            if value is None and name == "fmc":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
                raise AttestationFailed(
                    f"tcb.{name}: expected an integer 0..255, got {value!r}; "
                    "a security patch level is one byte"
                )

    @property
    def is_turin(self) -> bool:
        """Whether this TCB uses the Turin layout (it has an FMC SPL)."""
        return self.fmc is not None

    def to_u64(self) -> int:
        """The 8-byte little-endian TCB_VERSION as an integer."""
        if self.fmc is not None:
            raw = bytes([self.fmc, self.bootloader, self.tee, self.snp, 0, 0, 0, self.microcode])
        else:
            raw = bytes([self.bootloader, self.tee, 0, 0, 0, 0, self.snp, self.microcode])
        return int.from_bytes(raw, "little")

    @classmethod
    def from_u64(cls, value: int, *, turin: bool = False, what: str = "tcb") -> Tcb:
        """Decode a TCB_VERSION; reserved bytes must be zero."""
        raw = value.to_bytes(8, "little")
        reserved = (4, 5, 6) if turin else (2, 3, 4, 5)
        if any(raw[i] for i in reserved):
            layout = "Turin" if turin else "Milan/Genoa"
            raise AttestationFailed(
                f"{what}: reserved bytes {list(reserved)} of the TCB_VERSION must be zero in "
                f"the {layout} layout, got {raw.hex()}; if this report comes from another CPU "
                "generation, say which (product=...)"
            )
        if turin:
            return cls(bootloader=raw[1], tee=raw[2], snp=raw[3], microcode=raw[7], fmc=raw[0])
        return cls(bootloader=raw[0], tee=raw[1], snp=raw[6], microcode=raw[7])

    def to_json(self) -> dict[str, int]:
        """``{"bootloader":..,"tee":..,"snp":..,"microcode":..}`` (plus ``"fmc"`` on Turin)."""
        out = {
            "bootloader": self.bootloader,
            "tee": self.tee,
            "snp": self.snp,
            "microcode": self.microcode,
        }
        if self.fmc is not None:
            out["fmc"] = self.fmc
        return out

    @classmethod
    def from_json(cls, value: object) -> Tcb:
        """Read :meth:`to_json`'s shape; unknown or missing keys are refused."""
        if not isinstance(value, dict):
            raise AttestationFailed(
                f"tcb: expected an object with bootloader, tee, snp, microcode, got "
                f"{type(value).__name__}"
            )
        unknown = sorted(str(k) for k in value if k not in _TCB_KEYS)
        if unknown:
            raise AttestationFailed(f"tcb: unknown keys {unknown}; expected only {list(_TCB_KEYS)}")
        missing = [k for k in _TCB_KEYS[:4] if k not in value]
        if missing:
            raise AttestationFailed(f"tcb: missing keys {missing}; give every SPL")
        return cls(
            bootloader=value["bootloader"],
            tee=value["tee"],
            snp=value["snp"],
            microcode=value["microcode"],
            fmc=value.get("fmc"),
        )

    def shortfall(self, minimum: Tcb) -> str | None:
        """Where this TCB is below ``minimum`` ("tcb.snp: expected at least 8, got 7"), or
        ``None`` if every component meets it. An FMC minimum is met only by an FMC SPL."""
        problems = []
        for name in _TCB_KEYS:
            want = getattr(minimum, name)
            if want is None:
                continue
            have = getattr(self, name)
            if have is None or have < want:
                problems.append(f"tcb.{name}: expected at least {want}, got {have}")
        return "; ".join(problems) if problems else None

    def meets(self, minimum: Tcb) -> bool:
        """Whether every component is at least the one of ``minimum``."""
        return self.shortfall(minimum) is None

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.to_json().items()]
        return "Tcb(" + ", ".join(parts) + ")"


def _zero(n: int) -> bytes:
    return bytes(n)


@dataclass(frozen=True)
class SnpReport:
    """One ATTESTATION_REPORT, field by field (names of AMD's table, in snake case).

    Byte fields are ``bytes`` of their exact size; ``raw`` is the report as parsed (empty
    for a report built in code; :func:`encode_report` never reads it).
    """

    version: int
    guest_svn: int
    policy: int
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: Tcb
    platform_info: int
    flags: int
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: Tcb
    chip_id: bytes
    committed_tcb: Tcb
    current_build: int
    current_minor: int
    current_major: int
    committed_build: int
    committed_minor: int
    committed_major: int
    launch_tcb: Tcb
    signature_r: bytes = field(default_factory=lambda: _zero(SIG_COMPONENT_SIZE))
    signature_s: bytes = field(default_factory=lambda: _zero(SIG_COMPONENT_SIZE))
    cpuid_fam_id: int | None = None
    cpuid_mod_id: int | None = None
    cpuid_step: int | None = None
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def debug(self) -> bool:
        """Guest policy bit 20: the host may debug (read) the guest."""
        return bool(self.policy & POLICY_DEBUG)

    @property
    def migrate_ma(self) -> bool:
        """Guest policy bit 19: a migration agent may be associated."""
        return bool(self.policy & POLICY_MIGRATE_MA)

    @property
    def smt(self) -> bool:
        """Guest policy bit 17: simultaneous multithreading is allowed."""
        return bool(self.policy & POLICY_SMT)

    @property
    def single_socket(self) -> bool:
        """Guest policy bit 21: the guest may run on a single socket only."""
        return bool(self.policy & POLICY_SINGLE_SOCKET)

    @property
    def author_key_en(self) -> bool:
        """Flags bit 0: the author key digest is present."""
        return bool(self.flags & FLAG_AUTHOR_KEY_EN)

    @property
    def mask_chip_key(self) -> bool:
        """Flags bit 1: the chip id was masked (all zero) at the guest's request."""
        return bool(self.flags & FLAG_MASK_CHIP_KEY)

    @property
    def signing_key(self) -> int:
        """Flags bits 4:2: 0 VCEK, 1 VLEK, 7 none."""
        return (self.flags >> _FLAG_SIGNING_KEY_SHIFT) & 0b111

    @property
    def signature_rs(self) -> tuple[int, int]:
        """The ECDSA (r, s) integers (little-endian in the report)."""
        return (
            int.from_bytes(self.signature_r, "little"),
            int.from_bytes(self.signature_s, "little"),
        )


# (name, offset, size) of every byte string field.
_BYTES_FIELDS: Final = (
    ("family_id", 0x10, 16),
    ("image_id", 0x20, 16),
    ("report_data", 0x50, 64),
    ("measurement", 0x90, 48),
    ("host_data", 0xC0, 32),
    ("id_key_digest", 0xE0, 48),
    ("author_key_digest", 0x110, 48),
    ("report_id", 0x140, 32),
    ("report_id_ma", 0x160, 32),
    ("chip_id", 0x1A0, 64),
    ("signature_r", 0x2A0, SIG_COMPONENT_SIZE),
    ("signature_s", 0x2E8, SIG_COMPONENT_SIZE),
)
# (name, offset, struct format) of every integer field.
_INT_FIELDS: Final = (
    ("version", 0x00, "<I"),
    ("guest_svn", 0x04, "<I"),
    ("policy", 0x08, "<Q"),
    ("vmpl", 0x30, "<I"),
    ("signature_algo", 0x34, "<I"),
    ("platform_info", 0x40, "<Q"),
    ("flags", 0x48, "<I"),
    ("current_build", 0x1E8, "<B"),
    ("current_minor", 0x1E9, "<B"),
    ("current_major", 0x1EA, "<B"),
    ("committed_build", 0x1EC, "<B"),
    ("committed_minor", 0x1ED, "<B"),
    ("committed_major", 0x1EE, "<B"),
)
_TCB_FIELDS: Final = (
    ("current_tcb", 0x38),
    ("reported_tcb", 0x180),
    ("committed_tcb", 0x1E0),
    ("launch_tcb", 0x1F0),
)
_CPUID_FIELDS: Final = (("cpuid_fam_id", 0x188), ("cpuid_mod_id", 0x189), ("cpuid_step", 0x18A))
# Reserved (must be zero) ranges, [start, end); 0x188..0x18A are reserved in version 2.
_RESERVED: Final = (
    (0x4C, 0x50),
    (0x18B, 0x1A0),
    (0x1EB, 0x1EC),
    (0x1EF, 0x1F0),
    (0x1F8, 0x2A0),
    (0x330, REPORT_SIZE),
)
_RESERVED_V2: Final = (0x188, 0x18B)


def signed_part(data: bytes) -> bytes:
    """Bytes 0x000..0x29F of a report: what the VCEK signs."""
    if len(data) < SIGNED_SIZE:
        raise AttestationFailed(
            f"report: expected at least {SIGNED_SIZE} bytes to sign, got {len(data)}"
        )
    return bytes(data[:SIGNED_SIZE])


def parse_report(data: bytes, *, product: str | None = None) -> SnpReport:
    """Parse a 1,184-byte ATTESTATION_REPORT (version 2 or 3), strictly.

    ``product`` (e.g. ``"Milan"``, ``"Turin"``, from the VCEK) picks the TCB layout; see the
    module docstring. Raises :class:`AttestationFailed` for anything malformed.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise AttestationFailed(
            f"report: expected bytes, got {type(data).__name__}; pass the binary report"
        )
    data = bytes(data)
    if len(data) != REPORT_SIZE:
        raise AttestationFailed(
            f"report: expected exactly {REPORT_SIZE} bytes (an SEV-SNP ATTESTATION_REPORT), "
            f"got {len(data)}; pass the whole binary report, not a prefix or a container"
        )
    (version,) = struct.unpack_from("<I", data, 0)
    if version not in SUPPORTED_VERSIONS:
        raise AttestationFailed(
            f"report.version: expected one of {sorted(SUPPORTED_VERSIONS)}, got {version}; "
            "this verifier does not understand that report format"
        )
    reserved = list(_RESERVED)
    if version == 2:
        reserved.append(_RESERVED_V2)
    for start, end in reserved:
        chunk = data[start:end]
        if any(chunk):
            first = start + next(i for i, b in enumerate(chunk) if b)
            raise AttestationFailed(
                f"report: reserved bytes 0x{start:03X}..0x{end - 1:03X} must be zero, byte "
                f"0x{first:03X} is 0x{data[first]:02X}; the report is corrupt or of an "
                "unknown format"
            )
    values: dict[str, object] = {}
    for name, offset, fmt in _INT_FIELDS:
        (values[name],) = struct.unpack_from(fmt, data, offset)
    (flags,) = struct.unpack_from("<I", data, 0x48)
    if flags & ~_FLAGS_KNOWN:
        raise AttestationFailed(
            f"report.flags: reserved bits 31:5 must be zero, got 0x{flags:08X}; the report "
            "is corrupt or of an unknown format"
        )
    for name, offset, size in _BYTES_FIELDS:
        values[name] = data[offset : offset + size]
    if version >= 3:
        for name, offset in _CPUID_FIELDS:
            values[name] = data[offset]
    turin = _is_turin(product, values.get("cpuid_fam_id"))
    for name, offset in _TCB_FIELDS:
        (raw_tcb,) = struct.unpack_from("<Q", data, offset)
        values[name] = Tcb.from_u64(raw_tcb, turin=turin, what=f"report.{name}")
    return SnpReport(raw=data, **values)  # type: ignore[arg-type]


def _is_turin(product: str | None, family: object) -> bool:
    if product is not None:
        return product.split("-")[0].lower() == "turin"
    return family == TURIN_FAMILY


def encode_report(report: SnpReport) -> bytes:
    """The 1,184 bytes of ``report`` (signature fields included; reserved bytes zero).

    The inverse of :func:`parse_report`: ``encode_report(parse_report(b)) == b``.
    """
    if report.version not in SUPPORTED_VERSIONS:
        raise AttestationFailed(
            f"report.version: expected one of {sorted(SUPPORTED_VERSIONS)}, got {report.version}"
        )
    out = bytearray(REPORT_SIZE)
    for name, offset, fmt in _INT_FIELDS:
        value = getattr(report, name)
        try:
            struct.pack_into(fmt, out, offset, value)
        except struct.error as exc:
            raise AttestationFailed(
                f"report.{name}: {value!r} does not fit {struct.calcsize(fmt)} bytes"
            ) from exc
    for name, offset, size in _BYTES_FIELDS:
        value = getattr(report, name)
        if not isinstance(value, bytes) or len(value) != size:
            raise AttestationFailed(
                f"report.{name}: expected {size} bytes, got "
                f"{len(value) if isinstance(value, bytes) else type(value).__name__}"
            )
        out[offset : offset + size] = value
    for name, offset in _CPUID_FIELDS:
        value = getattr(report, name)
        if report.version >= 3:
            if not isinstance(value, int) or not 0 <= value <= 255:
                raise AttestationFailed(
                    f"report.{name}: a version 3 report needs a byte, got {value!r}"
                )
            out[offset] = value
        elif value is not None:
            raise AttestationFailed(
                f"report.{name}: a version 2 report has no CPUID fields, got {value!r}"
            )
    for name, offset in _TCB_FIELDS:
        tcb = getattr(report, name)
        struct.pack_into("<Q", out, offset, tcb.to_u64())
    return bytes(out)


_HEX_SPACE = re.compile(rb"\s+")


def report_from_text(data: str | bytes) -> SnpReport:
    """Parse a report given as binary (1,184 bytes) or as hex text (whitespace allowed)."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    if isinstance(data, str) or len(raw) != REPORT_SIZE:
        compact = _HEX_SPACE.sub(b"", raw)
        if compact[:2].lower() == b"0x":
            compact = compact[2:]
        try:
            raw = binascii.unhexlify(compact)
        except (binascii.Error, ValueError) as exc:
            raise AttestationFailed(
                f"report: expected {REPORT_SIZE} binary bytes or {2 * REPORT_SIZE} hex "
                f"digits, got {len(data)} {'characters' if isinstance(data, str) else 'bytes'}"
                " that are not hex"
            ) from exc
    return parse_report(raw)
