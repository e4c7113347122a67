"""The Linux configfs-tsm report interface and the SNP certificate table: the only I/O of
attestation.

An SEV-SNP guest asks its firmware for a signed report through configfs-tsm
(``/sys/kernel/config/tsm/report``, kernel ``CONFIG_TSM_REPORTS``, Linux 6.7 and later):
make an entry directory, write the 64 bytes of report data to its ``inblob``, read the
signed report from ``outblob`` and the host-supplied certificates from ``auxblob``, check
``provider`` (``sev_guest``) and ``generation`` (unchanged while reading, so no other writer
raced us), then remove the entry. :func:`request_report` does exactly that;
:class:`ConfigfsOps` is the file-system seam that tests replace with a fake that behaves
like the kernel.

The ``auxblob`` is the GHCB certificate table (AMD 56421, "SNP Extended Guest Request"):
entries of a 16-byte GUID (RFC 4122 byte order), a little-endian u32 offset and a u32
length, ended by an all-zero entry; offsets count from the start of the blob. It is often
empty, notably on cloud VMs: the VCEK then comes from AMD's Key Distribution Service (see
:mod:`consortia.attestation.providers`). :func:`parse_cert_table` is pure and strict.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from consortia.errors import Unavailable

__all__ = [
    "ARK_GUID",
    "ASK_GUID",
    "DEFAULT_TSM_ROOT",
    "VCEK_GUID",
    "VLEK_GUID",
    "ConfigfsOps",
    "TsmReport",
    "build_cert_table",
    "parse_cert_table",
    "request_report",
]

#: Where configfs-tsm reports live on a guest with ``CONFIG_TSM_REPORTS``.
DEFAULT_TSM_ROOT: Final = Path("/sys/kernel/config/tsm/report")
#: Certificate table GUIDs (GHCB specification, AMD 56421).
VCEK_GUID: Final = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd")
ASK_GUID: Final = uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782")
ARK_GUID: Final = uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae")
VLEK_GUID: Final = uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1")

_ENTRY: Final = struct.Struct("<16sII")  # guid, offset, length
_MAX_ENTRIES: Final = 64
# A report is 1,184 bytes and a certificate table a few KiB; the caps stop a wrong path
# (or a misbehaving fake) from filling memory.
_MAX_OUTBLOB: Final = 64 * 1024
_MAX_AUXBLOB: Final = 1024 * 1024
_REPORT_DATA_SIZE: Final = 64
_SNP_PROVIDER: Final = "sev_guest"


def parse_cert_table(blob: bytes) -> dict[uuid.UUID, bytes]:
    """The certificates of a GHCB certificate table, by GUID (empty blob: no certificates).

    Raises :class:`ValueError` naming what is wrong: a truncated table, a missing
    terminator, an entry pointing outside the blob or into the table, an empty or
    duplicated entry.
    """
    if not blob:
        return {}
    entries: list[tuple[uuid.UUID, int, int]] = []
    pos = 0
    while True:
        if pos + _ENTRY.size > len(blob):
            raise ValueError(
                f"certificate table is truncated: entry {len(entries)} needs bytes "
                f"{pos}..{pos + _ENTRY.size} but the blob has {len(blob)} (no all-zero "
                "terminator entry)"
            )
        raw_guid, offset, length = _ENTRY.unpack_from(blob, pos)
        pos += _ENTRY.size
        if raw_guid == bytes(16):
            if offset or length:
                raise ValueError(
                    f"certificate table entry {len(entries)} has a zero GUID but offset "
                    f"{offset} and length {length} (a terminator is all zeros)"
                )
            break
        if len(entries) >= _MAX_ENTRIES:
            raise ValueError(f"certificate table has more than {_MAX_ENTRIES} entries")
        entries.append((uuid.UUID(bytes=raw_guid), offset, length))
    table_end = pos
    certs: dict[uuid.UUID, bytes] = {}
    for index, (guid, offset, length) in enumerate(entries):
        if guid in certs:
            raise ValueError(f"certificate table lists {guid} twice")
        if length == 0:
            raise ValueError(f"certificate table entry {index} ({guid}) has length 0")
        if offset < table_end:
            raise ValueError(
                f"certificate table entry {index} ({guid}) starts at byte {offset}, inside "
                f"the table (which ends at byte {table_end})"
            )
        if offset + length > len(blob):
            raise ValueError(
                f"certificate table entry {index} ({guid}) spans bytes "
                f"{offset}..{offset + length}, past the blob's {len(blob)} bytes"
            )
        certs[guid] = blob[offset : offset + length]
    return certs


def build_cert_table(certs: dict[uuid.UUID, bytes]) -> bytes:
    """A GHCB certificate table holding ``certs`` in order (the inverse of
    :func:`parse_cert_table`; what a host would supply, used by tests and the simulator)."""
    header_size = (len(certs) + 1) * _ENTRY.size
    header = bytearray()
    body = bytearray()
    for guid, data in certs.items():
        header += _ENTRY.pack(guid.bytes, header_size + len(body), len(data))
        body += data
    header += bytes(_ENTRY.size)
    return bytes(header + body)


class ConfigfsOps:
    """The file-system calls :func:`request_report` makes; tests subclass it to fake the
    kernel (whose entry directories come with their attribute files and whose ``outblob``
    appears once ``inblob`` is written)."""

    def is_dir(self, path: Path) -> bool:
        """Whether ``path`` is a directory."""
        return path.is_dir()

    def mkdir(self, path: Path) -> None:
        """Create the report entry ``path``."""
        os.mkdir(path, 0o700)

    def rmdir(self, path: Path) -> None:
        """Remove the report entry ``path``."""
        os.rmdir(path)

    def write(self, path: Path, data: bytes) -> None:
        """Write ``data`` to the attribute ``path`` in one write (configfs commits on close)."""
        fd = os.open(path, os.O_WRONLY)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(errno.EIO, f"short write to {path}: {written} of {len(data)} bytes")

    def read(self, path: Path, *, limit: int) -> bytes:
        """Read the attribute ``path`` (at most ``limit`` bytes)."""
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"{path} holds more than {limit} bytes")
        return data


@dataclass(frozen=True, slots=True)
class TsmReport:
    """What one configfs-tsm request returned."""

    #: The signed attestation report (``outblob``).
    report: bytes
    #: The certificate table (``auxblob``); empty when the host supplied none.
    auxblob: bytes
    #: The ``provider`` attribute (``sev_guest`` on SEV-SNP), or None if absent.
    provider: str | None
    #: The ``generation`` attribute after the request, or None if absent.
    generation: int | None


def _missing_message(root: Path) -> str:
    return (
        f"configfs-tsm not found at {root}: this host is not an SEV-SNP guest or the kernel "
        "lacks CONFIG_TSM_REPORTS (or configfs is not mounted at /sys/kernel/config); use "
        "--platform virtual or simulated-snp"
    )


def _read_text(ops: ConfigfsOps, path: Path) -> str | None:
    try:
        return ops.read(path, limit=256).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return None


def _generation(ops: ConfigfsOps, entry: Path) -> int | None:
    text = _read_text(ops, entry / "generation")
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise Unavailable(
            f"configfs-tsm {entry}/generation reads {text[:40]!r}, not a number"
        ) from None


def request_report(
    report_data: bytes,
    *,
    root: Path = DEFAULT_TSM_ROOT,
    privlevel: int | None = None,
    ops: ConfigfsOps | None = None,
) -> TsmReport:
    """Ask the firmware, through configfs-tsm under ``root``, for a report over
    ``report_data`` (exactly 64 bytes); ``privlevel`` is the VMPL to request (None: the
    kernel's default).

    Raises :class:`~consortia.errors.Unavailable` when the interface is absent, not SNP's
    (``provider`` is not ``sev_guest``), not permitted, fails, or is raced by another writer.
    """
    if len(report_data) != _REPORT_DATA_SIZE:
        raise ValueError(f"report data must be {_REPORT_DATA_SIZE} bytes, got {len(report_data)}")
    ops = ops or ConfigfsOps()
    if not ops.is_dir(root):
        raise Unavailable(_missing_message(root))
    entry = root / f"consortia-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        ops.mkdir(entry)
    except PermissionError:
        raise Unavailable(
            f"configfs-tsm at {root} refused to create a report entry (permission denied): "
            "run the TEP as root or grant it write access to that directory"
        ) from None
    except OSError as e:
        raise Unavailable(f"configfs-tsm at {root}: cannot create a report entry: {e}") from None
    try:
        provider = _read_text(ops, entry / "provider")
        if provider is not None and provider != _SNP_PROVIDER:
            raise Unavailable(
                f"configfs-tsm at {root} is served by {provider[:40]!r}, not {_SNP_PROVIDER!r}: "
                "this guest is not an SEV-SNP guest; use --platform virtual or simulated-snp"
            )
        try:
            if privlevel is not None:
                ops.write(entry / "privlevel", str(privlevel).encode("ascii"))
            ops.write(entry / "inblob", report_data)
            before = _generation(ops, entry)
            report = ops.read(entry / "outblob", limit=_MAX_OUTBLOB)
            try:
                auxblob = ops.read(entry / "auxblob", limit=_MAX_AUXBLOB)
            except FileNotFoundError:
                auxblob = b""  # kernels before 6.8 have no auxblob
            after = _generation(ops, entry)
        except Unavailable:
            raise
        except OSError as e:
            raise Unavailable(
                f"configfs-tsm at {root}: the report request failed: {e.strerror or e}"
            ) from None
        if before != after:
            raise Unavailable(
                f"configfs-tsm entry {entry.name} changed while being read (generation "
                f"{before} -> {after}); retry"
            )
        if not report:
            raise Unavailable(f"configfs-tsm at {root} returned an empty report")
        return TsmReport(report=report, auxblob=auxblob, provider=provider, generation=after)
    finally:
        # A failed removal leaves an entry of the kernel's that holds no secret.
        with contextlib.suppress(OSError):
            ops.rmdir(entry)
