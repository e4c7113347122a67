"""The ``simulated-snp`` platform: real SEV-SNP reports signed by a test key, for tests and demos.

A :class:`TestCA` is a stand-in for AMD's key hierarchy, built exactly like it: a
self-signed RSA root (the "ARK"), an RSA intermediate it signs (the "ASK") and an EC P-384
chip key (the "VCEK") the ASK signs, all with RSASSA-PSS (SHA-384, salt 48), the VCEK
carrying AMD's extensions (structVersion, productName, the four TCB SPLs and hwID, encoded
as AMD encodes them). :class:`SimulatedSnp` produces reports in the firmware's exact
binary layout (version 2 or 3), signed by that VCEK with ECDSA P-384/SHA-384.

Such a report verifies with the same code as a real one, so every path of the verifier runs
in tests; but its root is a key the operator holds, so it proves nothing about the
hardware. Verifiers pin AMD's ARKs by default and refuse it; a client must be told
explicitly to trust this test root (by its :attr:`TestCA.ark_sha256`). The names say so
too: every subject reads "Consortia TEST ... never trusted by default". The VCEK's
productName is the real "Milan-B0" so product-dependent checks behave as on Milan; the
untrusted root, not the product name, is what marks the chain as a test.

Keys: RSA 3072 for the ARK and ASK by default (AMD's are 4096; 3072 keeps generation to a
second or two), a random P-384 key for the VCEK. On disk (:meth:`TestCA.save`) every file
is written owner-only (0600); the ARK's private key is never stored (it is only needed to
sign the ASK, like an offline root), the ASK's is (to issue a VCEK for another TCB).

:func:`build_measurement` is the simulated launch measurement: a SHA-384 over the installed
package's source, so a code change changes it and a TEP upgrade needs a platform-policy vote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from consortia.attestation.evidence import Evidence
from consortia.attestation.report import SnpReport, Tcb, encode_report, signed_part
from consortia.errors import BadRequest
from consortia.identity.keyfile import write_private_file

__all__ = [
    "DEFAULT_TEST_TCB",
    "MEASUREMENT_DOMAIN",
    "TEST_PRODUCT",
    "SimulatedSnp",
    "TestCA",
    "build_measurement",
]

#: The VCEK productName of the test chip (what verifiers read for the product).
TEST_PRODUCT: Final = "Milan-B0"
#: Domain separator that starts the hash of :func:`build_measurement`.
MEASUREMENT_DOMAIN: Final = b"consortia simulated-snp measurement v1\x00"

_AMD_OID: Final = "1.3.6.1.4.1.3704.1"
OID_STRUCT_VERSION: Final = x509.ObjectIdentifier(f"{_AMD_OID}.1")
OID_PRODUCT_NAME: Final = x509.ObjectIdentifier(f"{_AMD_OID}.2")
OID_BL_SPL: Final = x509.ObjectIdentifier(f"{_AMD_OID}.3.1")
OID_TEE_SPL: Final = x509.ObjectIdentifier(f"{_AMD_OID}.3.2")
OID_SNP_SPL: Final = x509.ObjectIdentifier(f"{_AMD_OID}.3.3")
OID_UCODE_SPL: Final = x509.ObjectIdentifier(f"{_AMD_OID}.3.8")
OID_HWID: Final = x509.ObjectIdentifier(f"{_AMD_OID}.4")
# AMD's Milan VCEKs also carry the reserved SPLs .3.4 to .3.7, each INTEGER 0.
_RESERVED_SPLS: Final = tuple(x509.ObjectIdentifier(f"{_AMD_OID}.3.{n}") for n in (4, 5, 6, 7))

_PSS: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
_CHIP_ID_SIZE: Final = 64
_MEASUREMENT_SIZE: Final = 48
_ORG: Final = "Consortia TEST (simulated-snp)"
_NEVER: Final = "never trusted by default"
_ROOT_YEARS: Final = 25
_VCEK_YEARS: Final = 7
_FILES: Final = ("ark.pem", "ask.pem", "vcek.pem", "ask.key", "vcek.key")
_MAX_FILE: Final = 64 * 1024


#: The TCB the test chip reports unless told otherwise (Milan-like values; the microcode SPL
#: above 127 exercises the two-byte DER INTEGER of the VCEK extension).
DEFAULT_TEST_TCB: Final = Tcb(bootloader=4, tee=0, snp=22, microcode=213)
#: The guest policy simulated reports carry: SMT allowed, debug and migration off (ABI 0x30000).
DEFAULT_POLICY: Final = 0x30000
# CPUID family/model/stepping of Milan B0, written in version 3 reports.
_MILAN_CPUID: Final = (0x19, 0x01, 0x00)
# Firmware version the simulated chip claims (major, minor, build).
_FIRMWARE: Final = (1, 55, 21)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_integer(value: int) -> bytes:
    """DER INTEGER of a non-negative ``value`` (as AMD wraps each SPL: ``02 01 16``)."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # room for a 0 sign bit
    return b"\x02" + _der_length(len(body)) + body


def _der_ia5(text: str) -> bytes:
    body = text.encode("ascii")
    return b"\x16" + _der_length(len(body)) + body


def _parse_der_integer(data: bytes, *, what: str) -> int:
    if len(data) < 3 or data[0] != 0x02 or data[1] != len(data) - 2 or data[1] > 8:
        raise BadRequest(f"{what}: expected a short DER INTEGER, got {data[:16].hex()}")
    return int.from_bytes(data[2:], "big", signed=True)


def _amd_extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes:
    try:
        ext = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        raise BadRequest(f"VCEK lacks the AMD extension {oid.dotted_string}") from None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise BadRequest(f"VCEK extension {oid.dotted_string} is not an AMD extension")
    return value.value


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "simulated-snp"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _verify_pss(child: x509.Certificate, issuer: x509.Certificate, *, what: str) -> None:
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or child.signature_hash_algorithm is None:
        raise BadRequest(f"{what}: the issuer key is not RSA or the signature has no hash")
    try:
        key.verify(child.signature, child.tbs_certificate_bytes, _PSS, hashes.SHA384())
    except InvalidSignature:
        raise BadRequest(f"{what}: the signature does not verify with its issuer") from None


class TestCA:
    """A test stand-in for AMD's ARK -> ASK -> VCEK hierarchy of one chip (never trusted
    by default: a verifier must be told to trust :attr:`ark_sha256`).

    Build one with :meth:`generate`, keep it with :meth:`save` and reopen it with
    :meth:`load` (or :meth:`load_or_create`). The VCEK's extensions give :attr:`tcb`,
    :attr:`chip_id` and :attr:`product`.
    """

    __test__: ClassVar[bool] = False  # not a pytest test class, despite its name

    def __init__(
        self,
        *,
        ark: x509.Certificate,
        ask: x509.Certificate,
        vcek: x509.Certificate,
        ask_key: rsa.RSAPrivateKey,
        vcek_key: ec.EllipticCurvePrivateKey,
    ) -> None:
        """Assemble a CA from its parts; prefer :meth:`generate` or :meth:`load`, which
        check that the parts belong together."""
        self.ark = ark
        self.ask = ask
        self.vcek = vcek
        self._ask_key = ask_key
        self._vcek_key = vcek_key
        self.product = _amd_extension(vcek, OID_PRODUCT_NAME)[2:].decode("ascii", "replace")
        self.chip_id = _amd_extension(vcek, OID_HWID)
        self.tcb = _vcek_tcb(vcek)
        self._lock = threading.Lock()
        self._vceks: dict[Tcb, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {
            self.tcb: (vcek, vcek_key)
        }

    def __repr__(self) -> str:
        return f"TestCA(product={self.product!r}, tcb={self.tcb}, ark_sha256={self.ark_sha256})"

    @classmethod
    def generate(
        cls,
        *,
        tcb: Tcb = DEFAULT_TEST_TCB,
        product: str = TEST_PRODUCT,
        chip_id: bytes | None = None,
        rsa_bits: int = 3072,
        now: dt.datetime | None = None,
    ) -> TestCA:
        """A fresh hierarchy: RSA-``rsa_bits`` ARK and ASK, a P-384 VCEK for ``tcb`` and
        ``chip_id`` (random 64 bytes by default), valid from ``now`` minus a day."""
        if chip_id is None:
            chip_id = secrets.token_bytes(_CHIP_ID_SIZE)
        if len(chip_id) != _CHIP_ID_SIZE:
            raise ValueError(f"chip_id must be {_CHIP_ID_SIZE} bytes, got {len(chip_id)}")
        start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
        ark_key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        ask_key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        ark_name = _name(f"Consortia TEST ARK ({product}) — {_NEVER}")
        ask_name = _name(f"Consortia TEST ASK ({product}) — {_NEVER}")
        root_end = start + dt.timedelta(days=365 * _ROOT_YEARS)
        ark_ski = x509.SubjectKeyIdentifier.from_public_key(ark_key.public_key())
        ark = (
            x509.CertificateBuilder()
            .subject_name(ark_name)
            .issuer_name(ark_name)
            .public_key(ark_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(root_end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(crl_sign=True), critical=True)
            .add_extension(ark_ski, critical=False)
            .sign(ark_key, hashes.SHA384(), rsa_padding=_PSS)
        )
        ask = (
            x509.CertificateBuilder()
            .subject_name(ask_name)
            .issuer_name(ark_name)
            .public_key(ask_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(root_end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(crl_sign=False), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ask_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ark_ski),
                critical=False,
            )
            .sign(ark_key, hashes.SHA384(), rsa_padding=_PSS)
        )
        del ark_key  # an offline root: never kept, never stored
        vcek, vcek_key = _issue_vcek(ask, ask_key, tcb=tcb, product=product, chip_id=chip_id)
        return cls(ark=ark, ask=ask, vcek=vcek, ask_key=ask_key, vcek_key=vcek_key)

    @property
    def ark_sha256(self) -> str:
        """Hex SHA-256 of the ARK's DER: what a client pins to trust this test root."""
        return hashlib.sha256(self.ark.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def ark_pem(self) -> str:
        """The ARK certificate, PEM."""
        return _pem(self.ark)

    @property
    def ask_pem(self) -> str:
        """The ASK certificate, PEM."""
        return _pem(self.ask)

    @property
    def vcek_pem(self) -> str:
        """The VCEK certificate (for :attr:`tcb`), PEM."""
        return _pem(self.vcek)

    def chain_pem(self, tcb: Tcb | None = None) -> str:
        """VCEK (for ``tcb``, default :attr:`tcb`), ASK and ARK, PEM, in that order."""
        vcek, _ = self.vcek_for(tcb or self.tcb)
        return _pem(vcek) + self.ask_pem + self.ark_pem

    def vcek_for(self, tcb: Tcb) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The VCEK certificate and key for ``tcb`` (as a real chip derives one per TCB):
        the stored one for :attr:`tcb`, else a new one the ASK signs (kept in memory)."""
        with self._lock:
            found = self._vceks.get(tcb)
            if found is None:
                found = _issue_vcek(
                    self.ask, self._ask_key, tcb=tcb, product=self.product, chip_id=self.chip_id
                )
                self._vceks[tcb] = found
            return found

    def save(self, directory: Path) -> None:
        """Write the certificates and the ASK and VCEK private keys to ``directory``
        (created 0700 if absent), every file 0600."""
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        contents = {
            "ark.pem": self.ark_pem.encode("ascii"),
            "ask.pem": self.ask_pem.encode("ascii"),
            "vcek.pem": self.vcek_pem.encode("ascii"),
            "ask.key": _key_pem(self._ask_key),
            "vcek.key": _key_pem(self._vcek_key),
        }
        for name in _FILES:
            write_private_file(directory / name, contents[name])

    @classmethod
    def load(cls, directory: Path) -> TestCA:
        """Reopen a CA :meth:`save` wrote; refuses missing, loose (not 0600) or mismatched
        files with :class:`~consortia.errors.BadRequest`."""
        directory = Path(directory)
        data = {name: _read_private(directory / name) for name in _FILES}
        try:
            ark = x509.load_pem_x509_certificate(data["ark.pem"])
            ask = x509.load_pem_x509_certificate(data["ask.pem"])
            vcek = x509.load_pem_x509_certificate(data["vcek.pem"])
            ask_key = serialization.load_pem_private_key(data["ask.key"], password=None)
            vcek_key = serialization.load_pem_private_key(data["vcek.key"], password=None)
        except ValueError as e:
            raise BadRequest(f"test CA in {directory} is unreadable: {e}") from None
        if not isinstance(ask_key, rsa.RSAPrivateKey) or not isinstance(
            vcek_key, ec.EllipticCurvePrivateKey
        ):
            raise BadRequest(f"test CA in {directory}: ask.key must be RSA, vcek.key EC P-384")
        _verify_pss(ark, ark, what=f"{directory}/ark.pem")
        _verify_pss(ask, ark, what=f"{directory}/ask.pem")
        _verify_pss(vcek, ask, what=f"{directory}/vcek.pem")
        if ask_key.public_key() != ask.public_key() or vcek_key.public_key() != vcek.public_key():
            raise BadRequest(
                f"test CA in {directory}: a private key does not match its certificate"
            )
        return cls(ark=ark, ask=ask, vcek=vcek, ask_key=ask_key, vcek_key=vcek_key)

    @classmethod
    def load_or_create(
        cls, directory: Path, *, tcb: Tcb = DEFAULT_TEST_TCB, rsa_bits: int = 3072
    ) -> TestCA:
        """:meth:`load` ``directory`` if it holds a CA, else :meth:`generate` one and
        :meth:`save` it there."""
        directory = Path(directory)
        if (directory / "ark.pem").exists():
            return cls.load(directory)
        ca = cls.generate(tcb=tcb, rsa_bits=rsa_bits)
        ca.save(directory)
        return ca


def _key_usage(*, crl_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _issue_vcek(
    ask: x509.Certificate,
    ask_key: rsa.RSAPrivateKey,
    *,
    tcb: Tcb,
    product: str,
    chip_id: bytes,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A VCEK for ``tcb`` and ``chip_id``, with AMD's extensions encoded as AMD encodes
    them: each SPL and structVersion a DER INTEGER, productName an IA5String, hwID the raw
    64 bytes (not wrapped in an OCTET STRING)."""
    if tcb.fmc is not None:
        raise ValueError("the test CA simulates a Milan-layout chip: give a Tcb without fmc")
    key = ec.generate_private_key(ec.SECP384R1())
    start = ask.not_valid_before_utc
    amd: list[tuple[x509.ObjectIdentifier, bytes]] = [
        (OID_STRUCT_VERSION, _der_integer(0)),
        (OID_PRODUCT_NAME, _der_ia5(product)),
        (OID_BL_SPL, _der_integer(tcb.bootloader)),
        (OID_TEE_SPL, _der_integer(tcb.tee)),
        *((oid, _der_integer(0)) for oid in _RESERVED_SPLS),
        (OID_SNP_SPL, _der_integer(tcb.snp)),
        (OID_UCODE_SPL, _der_integer(tcb.microcode)),
        (OID_HWID, chip_id),
    ]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(f"Consortia TEST VCEK ({product}) — {_NEVER}"))
        .issuer_name(ask.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * _VCEK_YEARS))
    )
    for oid, value in amd:
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    return builder.sign(ask_key, hashes.SHA384(), rsa_padding=_PSS), key


def _vcek_tcb(vcek: x509.Certificate) -> Tcb:
    def spl(oid: x509.ObjectIdentifier) -> int:
        return _parse_der_integer(_amd_extension(vcek, oid), what=f"VCEK {oid.dotted_string}")

    return Tcb(
        bootloader=spl(OID_BL_SPL),
        tee=spl(OID_TEE_SPL),
        snp=spl(OID_SNP_SPL),
        microcode=spl(OID_UCODE_SPL),
    )


def _read_private(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise BadRequest(f"test CA file {path} is missing") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadRequest(f"test CA file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise BadRequest(
                f"test CA file {path} has mode {stat.S_IMODE(info.st_mode):04o}: group or "
                f"others can access it; run `chmod 600 {path}` and try again"
            )
        if info.st_size > _MAX_FILE:
            raise BadRequest(f"test CA file {path} is {info.st_size} bytes; expected under 64 KiB")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(_MAX_FILE + 1)
    finally:
        os.close(fd)


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
            vcek_pem=_pem(vcek),
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
