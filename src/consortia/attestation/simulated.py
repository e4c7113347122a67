"""The ``simulated-snp`` platform: real SEV-SNP reports signed by a test key, for tests and demos.

:class:`SimulatedSnp` produces reports in the firmware's exact binary layout (version 2 or
3), signed with ECDSA P-384/SHA-384 by the VCEK of a :class:`~consortia.attestation.
simulated_ca.TestCA` (a stand-in for AMD's key hierarchy, built exactly like it; see
:mod:`consortia.attestation.simulated_ca`).

Such a report verifies with the same code as a real one, so every path of the verifier runs
in tests; but its root is a key the operator holds, so it proves nothing about the
hardware. Verifiers pin AMD's ARKs by default and refuse it; a client must be told
explicitly to trust this test root (by its :attr:`TestCA.ark_sha256`). The names say so
too: every subject reads "Consortia TEST ... never trusted by default".

:func:`build_measurement` is the simulated launch measurement: a SHA-384 over the installed
package's source, so a code change changes it and a TEP upgrade needs a platform-policy vote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from consortia.attestation._simulated_certs import cert_pem
from consortia.attestation.evidence import Evidence
from consortia.attestation.report import SnpReport, Tcb, encode_report, signed_part
from consortia.attestation.simulated_ca import DEFAULT_TEST_TCB, TEST_PRODUCT, TestCA

__all__ = [
    "DEFAULT_TEST_TCB",
    "MEASUREMENT_DOMAIN",
    "TEST_PRODUCT",
    "SimulatedSnp",
    "TestCA",
    "build_measurement",
]

#: Domain separator that starts the hash of :func:`build_measurement`.
MEASUREMENT_DOMAIN: Final = b"consortia simulated-snp measurement v1\x00"
_MEASUREMENT_SIZE: Final = 48
#: The guest policy simulated reports carry: SMT allowed, debug and migration off (ABI 0x30000).
DEFAULT_POLICY: Final = 0x30000
# CPUID family/model/stepping of Milan B0, written in version 3 reports.
_MILAN_CPUID: Final = (0x19, 0x01, 0x00)
# Firmware version the simulated chip claims (major, minor, build).
_FIRMWARE: Final = (1, 55, 21)


class SimulatedSnp:
    """A simulated SEV-SNP guest: firmware that signs reports with a :class:`TestCA`'s VCEK.

    ``measurement`` is the 48-byte launch measurement to report (see
    :func:`build_measurement`), ``tcb`` the reported TCB (default: the CA's), ``policy``
    the guest policy, ``version`` the report format (2 or 3).
    """

    def __init__(
        self,
        ca: TestCA,
        measurement: bytes,
        tcb: Tcb | None = None,
        *,
        policy: int = DEFAULT_POLICY,
        version: int = 2,
        vmpl: int = 0,
        host_data: bytes = bytes(32),
        guest_svn: int = 0,
        report_id: bytes | None = None,
    ) -> None:
        if len(measurement) != _MEASUREMENT_SIZE:
            raise ValueError(
                f"measurement must be {_MEASUREMENT_SIZE} bytes, got {len(measurement)}"
            )
        if version not in (2, 3):
            raise ValueError(f"report version must be 2 or 3, got {version}")
        self.ca = ca
        self.measurement = bytes(measurement)
        self.tcb = tcb or ca.tcb
        self.policy = policy
        self.version = version
        self.vmpl = vmpl
        self.host_data = bytes(host_data)
        self.guest_svn = guest_svn
        #: Per guest, as the firmware assigns one at launch.
        self.report_id = report_id or secrets.token_bytes(32)
        # Issue (or find) the VCEK now so report() does no RSA work.
        ca.vcek_for(self.tcb)

    def __repr__(self) -> str:
        return (
            f"SimulatedSnp(measurement={self.measurement.hex()[:16]}..., tcb={self.tcb}, "
            f"version={self.version})"
        )

    def report_bytes(self, report_data: bytes) -> bytes:
        """The signed 1,184-byte report over ``report_data`` (64 bytes)."""
        if len(report_data) != 64:
            raise ValueError(f"report data must be 64 bytes, got {len(report_data)}")
        major, minor, build = _FIRMWARE
        cpuid: dict[str, int | None] = {}
        if self.version >= 3:
            fam, model, step = _MILAN_CPUID
            cpuid = {"cpuid_fam_id": fam, "cpuid_mod_id": model, "cpuid_step": step}
        unsigned = SnpReport(
            version=self.version,
            guest_svn=self.guest_svn,
            policy=self.policy,
            family_id=bytes(16),
            image_id=bytes(16),
            vmpl=self.vmpl,
            signature_algo=1,  # ECDSA P-384 with SHA-384
            current_tcb=self.tcb,
            platform_info=0x1,  # SMT enabled
            flags=0,  # signed by the VCEK; chip id not masked; no author key
            report_data=bytes(report_data),
            measurement=self.measurement,
            host_data=self.host_data,
            id_key_digest=bytes(48),
            author_key_digest=bytes(48),
            report_id=self.report_id,
            report_id_ma=b"\xff" * 32,  # no migration agent
            reported_tcb=self.tcb,
            chip_id=self.ca.chip_id,
            committed_tcb=self.tcb,
            current_build=build,
            current_minor=minor,
            current_major=major,
            committed_build=build,
            committed_minor=minor,
            committed_major=major,
            launch_tcb=self.tcb,
            **cpuid,  # type: ignore[arg-type]
        )
        body = signed_part(encode_report(unsigned))
        _, key = self.ca.vcek_for(self.tcb)
        r, s = decode_dss_signature(key.sign(body, ec.ECDSA(hashes.SHA384())))
        signed = dataclasses.replace(
            unsigned, signature_r=r.to_bytes(72, "little"), signature_s=s.to_bytes(72, "little")
        )
        return encode_report(signed)

    def report(self, report_data: bytes) -> Evidence:
        """:meth:`report_bytes` with the certificate chain, as :class:`Evidence`."""
        vcek, _ = self.ca.vcek_for(self.tcb)
        return Evidence(
            platform="simulated-snp",
            report=self.report_bytes(report_data),
            vcek_pem=cert_pem(vcek),
            ask_pem=self.ca.ask_pem,
            ark_pem=self.ca.ark_pem,
        )


def _source_files(root: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith((".py", ".star")):
                path = Path(dirpath) / name
                yield path.relative_to(root).as_posix(), path


def build_measurement(directory: Path | None = None) -> bytes:
    """The simulated launch measurement of the package in ``directory`` (default: the
    installed ``consortia`` package), 48 bytes.

    SHA-384 of :data:`MEASUREMENT_DOMAIN` followed, for every ``*.py`` and ``*.star`` file
    under the directory (``__pycache__`` skipped), in order of relative POSIX path (compared
    as strings), by: the path's UTF-8 length as 8 bytes big-endian, the path, the file's
    length as 8 bytes big-endian, the file's bytes.
    """
    if directory is None:
        # This file lives in consortia/attestation/; the package is its parent's parent.
        directory = Path(__file__).resolve().parent.parent
    h = hashlib.sha384(MEASUREMENT_DOMAIN)
    for rel, path in sorted(_source_files(Path(directory))):
        name = rel.encode("utf-8")
        data = path.read_bytes()
        h.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
    return h.digest()
