"""The test CA of ``simulated-snp``: a stand-in for AMD's ARK -> ASK -> VCEK hierarchy.

A :class:`TestCA` is built exactly like AMD's key hierarchy: a self-signed RSA root (the
"ARK"), an RSA intermediate it signs (the "ASK") and an EC P-384 chip key (the "VCEK") the
ASK signs, all with RSASSA-PSS (SHA-384, salt 48), the VCEK carrying AMD's extensions
(structVersion, productName, the four TCB SPLs and hwID, encoded as AMD encodes them: see
:mod:`consortia.attestation._simulated_certs`).

Its root is a key the operator holds, so it proves nothing about the hardware: verifiers
pin AMD's ARKs by default and refuse it, and a client must be told explicitly to trust it
(by its :attr:`TestCA.ark_sha256`). The VCEK's productName is the real "Milan-B0" so
product-dependent checks behave as on Milan; the untrusted root, not the product name, is
what marks the chain as a test.

Keys: RSA 3072 for the ARK and ASK by default (AMD's are 4096; 3072 keeps generation to a
second or two), a random P-384 key for the VCEK. On disk (:meth:`TestCA.save`) every file
is written owner-only (0600); the ARK's private key is never stored (it is only needed to
sign the ASK, like an offline root), the ASK's is (to issue a VCEK for another TCB).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import ClassVar, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from consortia.attestation._simulated_certs import (
    NEVER_TRUSTED,
    OID_HWID,
    OID_PRODUCT_NAME,
    PSS,
    amd_extension,
    ca_subject,
    cert_pem,
    issue_vcek,
    key_pem,
    key_usage,
    vcek_tcb,
    verify_pss,
)
from consortia.attestation.report import Tcb
from consortia.errors import BadRequest
from consortia.identity.keyfile import write_private_file

__all__ = ["DEFAULT_TEST_TCB", "TEST_PRODUCT", "TestCA"]

#: The VCEK productName of the test chip (what verifiers read for the product).
TEST_PRODUCT: Final = "Milan-B0"
_CHIP_ID_SIZE: Final = 64
_ROOT_YEARS: Final = 25
_FILES: Final = ("ark.pem", "ask.pem", "vcek.pem", "ask.key", "vcek.key")
_MAX_FILE: Final = 64 * 1024

#: The TCB the test chip reports unless told otherwise (Milan-like values; the microcode SPL
#: above 127 exercises the two-byte DER INTEGER of the VCEK extension).
DEFAULT_TEST_TCB: Final = Tcb(bootloader=4, tee=0, snp=22, microcode=213)


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
        self.product = amd_extension(vcek, OID_PRODUCT_NAME)[2:].decode("ascii", "replace")
        self.chip_id = amd_extension(vcek, OID_HWID)
        self.tcb = vcek_tcb(vcek)
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
        ark_name = ca_subject(f"Consortia TEST ARK ({product}) — {NEVER_TRUSTED}")
        ask_name = ca_subject(f"Consortia TEST ASK ({product}) — {NEVER_TRUSTED}")
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
            .add_extension(key_usage(crl_sign=True), critical=True)
            .add_extension(ark_ski, critical=False)
            .sign(ark_key, hashes.SHA384(), rsa_padding=PSS)
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
            .add_extension(key_usage(crl_sign=False), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ask_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ark_ski),
                critical=False,
            )
            .sign(ark_key, hashes.SHA384(), rsa_padding=PSS)
        )
        del ark_key  # an offline root: never kept, never stored
        vcek, vcek_key = issue_vcek(ask, ask_key, tcb=tcb, product=product, chip_id=chip_id)
        return cls(ark=ark, ask=ask, vcek=vcek, ask_key=ask_key, vcek_key=vcek_key)

    @property
    def ark_sha256(self) -> str:
        """Hex SHA-256 of the ARK's DER: what a client pins to trust this test root."""
        return hashlib.sha256(self.ark.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def ark_pem(self) -> str:
        """The ARK certificate, PEM."""
        return cert_pem(self.ark)

    @property
    def ask_pem(self) -> str:
        """The ASK certificate, PEM."""
        return cert_pem(self.ask)

    @property
    def vcek_pem(self) -> str:
        """The VCEK certificate (for :attr:`tcb`), PEM."""
        return cert_pem(self.vcek)

    def chain_pem(self, tcb: Tcb | None = None) -> str:
        """VCEK (for ``tcb``, default :attr:`tcb`), ASK and ARK, PEM, in that order."""
        vcek, _ = self.vcek_for(tcb or self.tcb)
        return cert_pem(vcek) + self.ask_pem + self.ark_pem

    def vcek_for(self, tcb: Tcb) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The VCEK certificate and key for ``tcb`` (as a real chip derives one per TCB):
        the stored one for :attr:`tcb`, else a new one the ASK signs (kept in memory)."""
        with self._lock:
            found = self._vceks.get(tcb)
            if found is None:
                found = issue_vcek(
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
            "ask.key": key_pem(self._ask_key),
            "vcek.key": key_pem(self._vcek_key),
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
        verify_pss(ark, ark, what=f"{directory}/ark.pem")
        verify_pss(ask, ark, what=f"{directory}/ask.pem")
        verify_pss(vcek, ask, what=f"{directory}/vcek.pem")
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
