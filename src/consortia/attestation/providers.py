"""Where the TEP's attestation evidence comes from: one small interface, three platforms.

A :class:`PlatformProvider` has a ``kind`` (``virtual``, ``sev-snp`` or ``simulated-snp``),
gives :class:`~consortia.attestation.evidence.Evidence` over 64 bytes of report data (none
for ``virtual``) and a summary for ``GET /v1/service`` (:meth:`PlatformProvider.describe`):
``{"kind", "attested", "hardware", "measurement"?, "tcb"?, ...}``, with ``measurement`` in
lowercase hex and ``tcb`` keyed as the platform policy's ``min_tcb``, so the engine's
``RunningPlatform(kind=..., measurement=..., tcb=...)`` can be built from it.

* :class:`VirtualProvider`: no hardware protection, no evidence.
* :class:`SimulatedSnpProvider`: reports signed by a :class:`~.simulated.TestCA` kept in
  ``data_dir/simulated-snp/`` (created on first use), measuring the installed package
  (:func:`~.simulated.build_measurement`). Proves nothing; for tests and demos.
* :class:`SevSnpProvider`: the real firmware through configfs-tsm (:mod:`.configfs`).

The VCEK on a real guest: the host may put VCEK, ASK and ARK in the report's certificate
table (``auxblob``), but often does not (notably on cloud VMs). The VCEK must then be
fetched from AMD's Key Distribution Service, ``https://kdsintf.amd.com/vcek/v1/{product}/
{chip_id hex}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`` (DER), and the ASK and ARK from
``https://kdsintf.amd.com/vcek/v1/{product}/cert_chain`` (PEM, ASK then ARK). This module
makes no network call: fetch those once (:func:`kds_vcek_url` gives the address) and pass the
files as ``vcek_file`` and ``chain_file``; a file given overrides the host's certificate.
"""

from __future__ import annotations

import base64
import threading
import uuid
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from consortia._json import JSONObject
from consortia.attestation.configfs import (
    ARK_GUID,
    ASK_GUID,
    DEFAULT_TSM_ROOT,
    VCEK_GUID,
    VLEK_GUID,
    ConfigfsOps,
    parse_cert_table,
    request_report,
)
from consortia.attestation.errors import AttestationFailed
from consortia.attestation.evidence import Evidence
from consortia.attestation.report import SnpReport, Tcb, parse_report
from consortia.attestation.simulated import (
    DEFAULT_TEST_TCB,
    SimulatedSnp,
    TestCA,
    build_measurement,
)
from consortia.errors import Unavailable

__all__ = [
    "KDS_BASE",
    "Evidence",
    "PlatformProvider",
    "SevSnpProvider",
    "SimulatedSnpProvider",
    "VirtualProvider",
    "kds_vcek_url",
]

#: AMD's Key Distribution Service, VCEK interface.
KDS_BASE: Final = "https://kdsintf.amd.com/vcek/v1"
_MAX_CERT_FILE: Final = 64 * 1024
_PEM_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"


@runtime_checkable
class PlatformProvider(Protocol):
    """The TEP's platform: its kind, its evidence, its summary."""

    @property
    def kind(self) -> str:
        """``virtual``, ``sev-snp`` or ``simulated-snp``."""
        ...

    def evidence(self, report_data: bytes) -> Evidence | None:
        """A report over ``report_data`` (64 bytes) with its certificates; None if the
        platform cannot attest (``virtual``)."""
        ...

    def describe(self) -> JSONObject:
        """The platform summary ``GET /v1/service`` shows."""
        ...


def _check_report_data(report_data: bytes) -> bytes:
    if not isinstance(report_data, bytes) or len(report_data) != 64:
        size = len(report_data) if isinstance(report_data, bytes) else type(report_data).__name__
        raise ValueError(f"report data must be 64 bytes, got {size}")
    return report_data


def _summary(kind: str, report: SnpReport | None, *, hardware: bool) -> JSONObject:
    out: JSONObject = {"kind": kind, "attested": report is not None, "hardware": hardware}
    if report is not None:
        tcb: JSONObject = dict(report.reported_tcb.to_json())
        out.update(
            {
                "measurement": report.measurement.hex(),
                "tcb": tcb,
                "report_version": report.version,
                "policy": f"0x{report.policy:x}",
                "debug": report.debug,
            }
        )
    return out


class VirtualProvider:
    """No hardware protection of data in use, and so no evidence."""

    kind: Final = "virtual"

    def __repr__(self) -> str:
        return "VirtualProvider()"

    def evidence(self, report_data: bytes) -> Evidence | None:
        """Always None: a virtual TEP cannot attest."""
        _check_report_data(report_data)
        return None

    def describe(self) -> JSONObject:
        """``{"kind": "virtual", "attested": false, "hardware": false}``."""
        return _summary(self.kind, None, hardware=False)


class SimulatedSnpProvider:
    """Simulated SEV-SNP with a test CA kept in ``data_dir/simulated-snp/`` (0600 files,
    made on first use). ``measurement`` defaults to :func:`build_measurement` of the
    installed package; ``tcb`` to the CA's. Its root is the operator's own: only a client
    told to trust :attr:`ark_sha256` accepts its reports."""

    kind: Final = "simulated-snp"

    def __init__(
        self,
        data_dir: Path,
        *,
        measurement: bytes | None = None,
        tcb: Tcb | None = None,
        version: int = 2,
        policy: int = 0x30000,
        rsa_bits: int = 3072,
    ) -> None:
        self.directory = Path(data_dir) / "simulated-snp"
        self._measurement = measurement
        self._tcb = tcb
        self._version = version
        self._policy = policy
        self._rsa_bits = rsa_bits
        self._lock = threading.Lock()
        self._snp: SimulatedSnp | None = None
        self._summary: JSONObject | None = None

    def __repr__(self) -> str:
        return f"SimulatedSnpProvider({str(self.directory)!r})"

    @property
    def simulator(self) -> SimulatedSnp:
        """The simulated firmware (its CA loaded, or made and saved, on first use)."""
        with self._lock:
            if self._snp is None:
                ca = TestCA.load_or_create(
                    self.directory, tcb=self._tcb or DEFAULT_TEST_TCB, rsa_bits=self._rsa_bits
                )
                measurement = self._measurement or build_measurement()
                self._snp = SimulatedSnp(
                    ca,
                    measurement,
                    self._tcb,
                    policy=self._policy,
                    version=self._version,
                )
            return self._snp

    @property
    def ark_sha256(self) -> str:
        """The pin a client passes to trust this test root (hex SHA-256 of the ARK DER)."""
        return self.simulator.ca.ark_sha256

    def evidence(self, report_data: bytes) -> Evidence:
        """A simulated report over ``report_data``, signed by the test VCEK."""
        return self.simulator.report(_check_report_data(report_data))

    def describe(self) -> JSONObject:
        """Kind, measurement, TCB and the test root's pin; ``hardware`` is false."""
        if self._summary is not None:
            return dict(self._summary)
        snp = self.simulator
        out = _summary(self.kind, parse_report(snp.report_bytes(bytes(64))), hardware=False)
        out["product"] = snp.ca.product
        out["test_ark_sha256"] = snp.ca.ark_sha256
        out["note"] = (
            "simulated SEV-SNP: reports are signed by a test key the operator holds, so they "
            "prove nothing about the hardware; clients refuse them unless told to trust this "
            "test root"
        )
        self._summary = out
        return dict(out)


def kds_vcek_url(product: str, chip_id: bytes, tcb: Tcb) -> str:
    """The AMD KDS address of the VCEK for ``chip_id`` at ``tcb`` (``product``: ``Milan``,
    ``Genoa``; the stepping suffix such as ``-B0`` is dropped)."""
    name = product.split("-", maxsplit=1)[0]
    # Turin names a chip by the first 8 bytes of CHIP_ID and adds the FMC's SPL.
    hw_id = chip_id[:8] if name == "Turin" else chip_id
    fmc = f"fmcSPL={tcb.fmc:02d}&" if name == "Turin" and tcb.fmc is not None else ""
    return (
        f"{KDS_BASE}/{name}/{hw_id.hex()}?{fmc}blSPL={tcb.bootloader:02d}"
        f"&teeSPL={tcb.tee:02d}&snpSPL={tcb.snp:02d}&ucodeSPL={tcb.microcode:02d}"
    )


def _der_to_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def _as_pem(data: bytes, *, what: str) -> str:
    """One certificate, DER or PEM, as PEM text (not parsed: the verifier does that)."""
    stripped = data.strip()
    if stripped.startswith(_PEM_BEGIN):
        if stripped.count(_PEM_BEGIN) != 1:
            raise Unavailable(f"{what} holds {stripped.count(_PEM_BEGIN)} certificates, not one")
        return stripped.decode("ascii", "replace") + "\n"
    if not data or data[0] != 0x30:  # a DER certificate is a SEQUENCE
        raise Unavailable(f"{what} is neither a PEM nor a DER certificate")
    return _der_to_pem(data)


def _split_pem(data: bytes, *, what: str) -> list[str]:
    parts = data.split(_PEM_BEGIN)[1:]
    return [_as_pem(_PEM_BEGIN + part, what=what) for part in parts]


def _read_cert_file(path: Path, *, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise Unavailable(f"cannot read the {what} file {path}: {e.strerror or e}") from None
    if len(data) > _MAX_CERT_FILE:
        raise Unavailable(f"the {what} file {path} is over 64 KiB; expected certificates")
    return data


class SevSnpProvider:
    """Real SEV-SNP: reports from the firmware through configfs-tsm at ``root``.

    ``vcek_file`` (DER or PEM, as KDS serves it) and ``chain_file`` (PEM, ASK then ARK, as
    KDS's ``cert_chain``) supply certificates the host's table lacks (or override it);
    ``product`` (``Milan``, ``Genoa``) only names the product in the KDS address of an error
    message. ``ops`` replaces the file-system calls (tests).
    """

    kind: Final = "sev-snp"

    def __init__(
        self,
        root: Path = DEFAULT_TSM_ROOT,
        *,
        vcek_file: Path | None = None,
        chain_file: Path | None = None,
        product: str = "Milan",
        privlevel: int | None = None,
        ops: ConfigfsOps | None = None,
    ) -> None:
        self.root = Path(root)
        self.product = product
        self._privlevel = privlevel
        self._ops = ops
        self._vcek: str | None = None
        self._ask: str | None = None
        self._ark: str | None = None
        if vcek_file is not None:
            self._vcek = _as_pem(
                _read_cert_file(Path(vcek_file), what="VCEK"), what=f"VCEK file {vcek_file}"
            )
        if chain_file is not None:
            chain = _split_pem(
                _read_cert_file(Path(chain_file), what="ASK/ARK chain"), what=str(chain_file)
            )
            if len(chain) != 2:
                raise Unavailable(
                    f"chain file {chain_file} holds {len(chain)} certificates; expected the "
                    "ASK then the ARK (KDS's cert_chain)"
                )
            self._ask, self._ark = chain
        self._last: SnpReport | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SevSnpProvider({str(self.root)!r})"

    def evidence(self, report_data: bytes) -> Evidence:
        """A firmware report over ``report_data`` with the VCEK, ASK and ARK.

        Raises :class:`~consortia.errors.Unavailable` when configfs-tsm is absent or fails,
        the host's certificate table is malformed, or a certificate is missing (the message
        gives the KDS address of the VCEK).
        """
        tsm = request_report(
            _check_report_data(report_data),
            root=self.root,
            privlevel=self._privlevel,
            ops=self._ops,
        )
        try:
            report = parse_report(tsm.report)
        except AttestationFailed as e:
            raise Unavailable(f"the firmware's report does not parse: {e.message}") from None
        try:
            table = parse_cert_table(tsm.auxblob)
        except ValueError as e:
            raise Unavailable(f"the host's certificate table (auxblob) is malformed: {e}") from None
        with self._lock:
            self._last = report
        vcek = self._vcek or self._from_table(table, VCEK_GUID, "VCEK")
        ask = self._ask or self._from_table(table, ASK_GUID, "ASK")
        ark = self._ark or self._from_table(table, ARK_GUID, "ARK")
        if vcek is None:
            if VLEK_GUID in table:
                raise Unavailable(
                    "the host supplied a VLEK, not a VCEK; VLEK-signed reports are not supported"
                )
            url = kds_vcek_url(self.product, report.chip_id, report.reported_tcb)
            raise Unavailable(
                "the host supplied no VCEK certificate: fetch it from AMD's Key Distribution "
                f"Service ({url}) and pass it with the VCEK file option"
            )
        if ask is None or ark is None:
            name = self.product.split("-")[0]
            raise Unavailable(
                "the host supplied no ASK/ARK certificates: fetch them from "
                f"{KDS_BASE}/{name}/cert_chain and pass the file with the chain file option"
            )
        return Evidence(
            platform=self.kind, report=tsm.report, vcek_pem=vcek, ask_pem=ask, ark_pem=ark
        )

    @staticmethod
    def _from_table(table: dict[uuid.UUID, bytes], guid: uuid.UUID, what: str) -> str | None:
        data = table.get(guid)
        return None if data is None else _as_pem(data, what=f"the host's {what} ({guid})")

    def describe(self) -> JSONObject:
        """Kind, measurement and TCB of the last report (one is requested, over zero report
        data, if none was yet)."""
        with self._lock:
            last = self._last
        if last is None:
            tsm = request_report(
                bytes(64), root=self.root, privlevel=self._privlevel, ops=self._ops
            )
            try:
                last = parse_report(tsm.report)
            except AttestationFailed as e:
                raise Unavailable(f"the firmware's report does not parse: {e.message}") from None
            with self._lock:
                self._last = last
        out = _summary(self.kind, last, hardware=True)
        out["chip_id"] = last.chip_id.hex()
        return out
