"""The AMD certificate chain of an SEV-SNP report: VCEK -> ASK -> ARK, with a pinned ARK.

AMD's "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification"
(publication 57230) defines the chain: the AMD Root Key (ARK) is self-signed and signs the
AMD SEV Key (ASK), which signs the chip's VCEK; all three signatures are RSASSA-PSS with
SHA-384, MGF1-SHA-384 and a 48-byte salt. The VCEK's public key is ECDSA P-384 and signs
the attestation reports. The VCEK carries the chip's TCB and hardware id in AMD's
extensions (table "VCEK Certificate Extensions", arc 1.3.6.1.4.1.3704.1): structVersion
(.1), productName (.2, e.g. "Milan-B0"), blSPL (.3.1), teeSPL (.3.2), snpSPL (.3.3),
spl_4..spl_7 (.3.4-.3.7), ucodeSPL (.3.8), fmcSPL (.3.9, Turin) and hwID (.4, the chip id).

:func:`verify_chain` trusts nothing in the certificates themselves: the ARK must be one of
the pinned roots (SHA-256 of its DER), every signature, the issuer/subject names and the
validity periods (at a ``now`` the caller passes) must hold. It is pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import SignatureAlgorithmOID

from consortia.attestation.errors import AttestationFailed
from consortia.attestation.report import Tcb

__all__ = [
    "AMD_ARK_SHA256",
    "ChainInfo",
    "load_certificate",
    "load_chain_pem",
    "verify_chain",
]

#: SHA-256 of the DER of AMD's ARK of each product (from AMD's Key Distribution Service).
AMD_ARK_SHA256: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Milan": "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
        "Genoa": "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
        "Turin": "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
    }
)

_AMD_ARC: Final = "1.3.6.1.4.1.3704.1"
_OID_STRUCT_VERSION: Final = f"{_AMD_ARC}.1"
_OID_PRODUCT_NAME: Final = f"{_AMD_ARC}.2"
_OID_BL_SPL: Final = f"{_AMD_ARC}.3.1"
_OID_TEE_SPL: Final = f"{_AMD_ARC}.3.2"
_OID_SNP_SPL: Final = f"{_AMD_ARC}.3.3"
_OID_UCODE_SPL: Final = f"{_AMD_ARC}.3.8"
_OID_FMC_SPL: Final = f"{_AMD_ARC}.3.9"
_OID_HW_ID: Final = f"{_AMD_ARC}.4"

#: What ``cryptography`` raises for a malformed certificate.
_PARSE_ERRORS: Final = (
    ValueError,
    TypeError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    UnsupportedAlgorithm,
)

_PSS: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


@dataclass(frozen=True)
class ChainInfo:
    """What a verified chain says about the chip.

    ``product`` is the VCEK's productName without its stepping ("Milan" of "Milan-B0");
    ``root_name`` the name of the pinned root the ARK matched; ``tcb`` the TCB the VCEK was
    issued for; ``hw_id`` the chip id (64 bytes; Turin's 8-byte id is zero-padded, as in the
    report); ``vcek`` the verified VCEK (its public key checks the report's signature).
    """

    product: str
    root_name: str
    tcb: Tcb
    hw_id: bytes
    vcek: x509.Certificate
    product_name: str


def load_certificate(
    data: bytes | x509.Certificate, *, what: str = "certificate"
) -> x509.Certificate:
    """One X.509 certificate from DER or PEM bytes (or an already-loaded certificate)."""
    if isinstance(data, x509.Certificate):
        return data
    if not isinstance(data, bytes | bytearray):
        raise AttestationFailed(f"{what}: expected DER or PEM bytes, got {type(data).__name__}")
    raw = bytes(data)
    try:
        with warnings.catch_warnings():
            # AMD issues every VCEK with serial number 0, which RFC 5280 disallows; a
            # malformed name attribute only warns too. Neither matters to what is checked.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            if raw.lstrip().startswith(b"-----BEGIN"):
                certs = x509.load_pem_x509_certificates(raw)
                if len(certs) != 1:
                    raise AttestationFailed(
                        f"{what}: expected one PEM certificate, got {len(certs)}"
                    )
                cert = certs[0]
            else:
                cert = x509.load_der_x509_certificate(raw)
            _parse_fully(cert)
            return cert
    except _PARSE_ERRORS as exc:
        raise AttestationFailed(
            f"{what}: not a valid X.509 certificate in DER or PEM ({exc}); pass the "
            "certificate exactly as AMD's Key Distribution Service or the host gave it"
        ) from exc


def _parse_fully(cert: x509.Certificate) -> None:
    """Parse every field the verifier reads now (``cryptography`` parses lazily), so a
    malformed certificate is refused here, with one message, not midway through a check."""
    # Accessing a field parses it; a malformed one raises ValueError.
    _ = (cert.issuer, cert.subject, cert.not_valid_before_utc, cert.not_valid_after_utc)
    _ = (cert.signature_algorithm_oid, cert.signature_algorithm_parameters, cert.signature)
    _ = (cert.tbs_certificate_bytes, cert.public_key(), list(cert.extensions))
    for name in (cert.issuer, cert.subject):
        _ = [attribute.value for attribute in name]


def load_chain_pem(text: str | bytes) -> list[x509.Certificate]:
    """The certificates of a PEM bundle, in file order (expected: VCEK, then ASK, then ARK).

    The order is not checked here; :func:`verify_chain` takes each one by its role.
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certs = x509.load_pem_x509_certificates(raw)
            for cert in certs:
                _parse_fully(cert)
            return certs
    except _PARSE_ERRORS as exc:
        raise AttestationFailed(
            f"certificate chain: not a PEM bundle of X.509 certificates ({exc}); expected "
            "the VCEK, then the ASK, then the ARK, each as -----BEGIN CERTIFICATE-----"
        ) from exc


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _tlv(data: bytes, offset: int, what: str) -> tuple[int, int]:
    """(start of the value, end) of the DER TLV at ``offset``."""
    if offset + 2 > len(data):
        raise AttestationFailed(f"{what}: truncated DER")
    first = data[offset + 1]
    if first < 0x80:
        return offset + 2, offset + 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or offset + 2 + count > len(data):
        raise AttestationFailed(f"{what}: malformed DER length")
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    start = offset + 2 + count
    return start, start + length


def _check_algorithm_identifiers(cert: x509.Certificate, what: str) -> None:
    """The unsigned outer signatureAlgorithm must equal the signed one inside the TBS."""
    der, tbs = _der(cert), cert.tbs_certificate_bytes
    body, _ = _tlv(der, 0, what)
    if der[body : body + len(tbs)] != tbs:
        raise AttestationFailed(f"{what}: malformed certificate structure")
    outer_start = body + len(tbs)
    _, outer_end = _tlv(der, outer_start, what)
    position, _ = _tlv(tbs, 0, what)
    if tbs[position] == 0xA0:  # [0] version
        position = _tlv(tbs, position, what)[1]
    position = _tlv(tbs, position, what)[1]  # serialNumber
    _, inner_end = _tlv(tbs, position, what)
    signature_start, _ = _tlv(der, outer_end, what)
    if der[outer_end] != 0x03 or der[signature_start] != 0:
        raise AttestationFailed(
            f"{what}: the signature BIT STRING must have no unused bits; the certificate "
            "was altered"
        )
    if der[outer_start:outer_end] != tbs[position:inner_end]:
        raise AttestationFailed(
            f"{what}: the signature algorithm outside the signed part differs from the one "
            "inside it; the certificate was altered"
        )


def _check_signed_by(cert: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    """``cert`` is signed by ``issuer`` with RSASSA-PSS SHA-384, salt 48, and names it."""
    _check_algorithm_identifiers(cert, what)
    if cert.issuer != issuer.subject:
        raise AttestationFailed(
            f"{what}: issuer is {cert.issuer.rfc4514_string()!r}, expected the subject of "
            f"its signer {issuer.subject.rfc4514_string()!r}; the certificates are not one "
            "chain"
        )
    if cert.signature_algorithm_oid != SignatureAlgorithmOID.RSASSA_PSS:
        raise AttestationFailed(
            f"{what}: signature algorithm is {cert.signature_algorithm_oid.dotted_string}, "
            "expected RSASSA-PSS (1.2.840.113549.1.1.10) as AMD signs"
        )
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AttestationFailed(
            f"{what}: its signer's key is {type(key).__name__}, expected an RSA key"
        )
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, _PSS, hashes.SHA384())
    except InvalidSignature as exc:
        raise AttestationFailed(
            f"{what}: the RSASSA-PSS SHA-384 signature does not verify with the key of "
            f"{issuer.subject.rfc4514_string()!r}; the certificate was altered or is not "
            "issued by this signer"
        ) from exc


def _check_validity(cert: x509.Certificate, now: datetime, what: str) -> None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        raise AttestationFailed(
            f"{what}: not yet valid: valid from {start.isoformat()} to {end.isoformat()}, "
            f"now is {now.isoformat()}; check the clock"
        )
    if now > end:
        raise AttestationFailed(
            f"{what}: expired: valid from {start.isoformat()} to {end.isoformat()}, now is "
            f"{now.isoformat()}; fetch a current certificate from AMD's Key Distribution "
            "Service"
        )


def _der_integer(raw: bytes, what: str) -> int:
    """A small DER INTEGER (tag 2, short length, non-negative), as AMD encodes SPLs."""
    if len(raw) < 3 or raw[0] != 0x02 or raw[1] != len(raw) - 2 or raw[1] > 8:
        raise AttestationFailed(f"VCEK extension {what}: expected a DER INTEGER, got {raw.hex()}")
    value = int.from_bytes(raw[2:], "big", signed=True)
    if value < 0:
        raise AttestationFailed(f"VCEK extension {what}: negative value {value}")
    return value


def _extensions(cert: x509.Certificate) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for ext in cert.extensions:
        value = ext.value
        if isinstance(value, x509.UnrecognizedExtension):
            out[ext.oid.dotted_string] = value.value
    return out


def _vcek_product(exts: Mapping[str, bytes]) -> str:
    raw = exts.get(_OID_PRODUCT_NAME)
    if raw is None:
        raise AttestationFailed(
            f"VCEK: no productName extension ({_OID_PRODUCT_NAME}); expected an AMD VCEK"
        )
    # IA5String (tag 0x16), short length; some issuers store the bare text.
    if len(raw) >= 2 and raw[0] == 0x16 and raw[1] == len(raw) - 2:
        raw = raw[2:]
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise AttestationFailed(f"VCEK productName: expected ASCII text, got {raw.hex()}") from exc
    if not name or not name.isprintable():
        raise AttestationFailed(f"VCEK productName: expected a product name, got {name!r}")
    return name


def _vcek_tcb(exts: Mapping[str, bytes], turin: bool) -> Tcb:
    def spl(oid: str, name: str) -> int:
        raw = exts.get(oid)
        if raw is None:
            raise AttestationFailed(
                f"VCEK: no {name} extension ({oid}); expected an AMD VCEK with its TCB"
            )
        value = _der_integer(raw, name)
        if value > 255:
            raise AttestationFailed(f"VCEK extension {name}: expected 0..255, got {value}")
        return value

    return Tcb(
        bootloader=spl(_OID_BL_SPL, "blSPL"),
        tee=spl(_OID_TEE_SPL, "teeSPL"),
        snp=spl(_OID_SNP_SPL, "snpSPL"),
        microcode=spl(_OID_UCODE_SPL, "ucodeSPL"),
        fmc=spl(_OID_FMC_SPL, "fmcSPL") if turin else None,
    )


def _vcek_hw_id(exts: Mapping[str, bytes]) -> bytes:
    raw = exts.get(_OID_HW_ID)
    if raw is None:
        raise AttestationFailed(
            f"VCEK: no hwID extension ({_OID_HW_ID}); expected an AMD VCEK (a VLEK has "
            "none and is not supported)"
        )
    # AMD stores the bare bytes; accept a DER OCTET STRING wrapping them too.
    if len(raw) in (10, 66) and raw[0] == 0x04 and raw[1] == len(raw) - 2:
        raw = raw[2:]
    if len(raw) not in (8, 64):
        raise AttestationFailed(f"VCEK hwID: expected 64 bytes (8 on Turin), got {len(raw)}")
    return raw.ljust(64, b"\x00")


def verify_chain(
    vcek: bytes | x509.Certificate,
    ask: bytes | x509.Certificate,
    ark: bytes | x509.Certificate,
    *,
    now: datetime,
    roots: Mapping[str, str] = AMD_ARK_SHA256,
) -> ChainInfo:
    """Check VCEK -> ASK -> ARK and return what the VCEK says about the chip.

    ``roots`` maps a root's name to the SHA-256 (hex) of its ARK's DER; the ARK given must
    be one of them. ``now`` must be timezone-aware. Raises :class:`AttestationFailed`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise AttestationFailed(
            "verify_chain: now must be a timezone-aware datetime (e.g. datetime.now(UTC))"
        )
    vcek_cert = load_certificate(vcek, what="VCEK")
    ask_cert = load_certificate(ask, what="ASK")
    ark_cert = load_certificate(ark, what="ARK")

    pin = hashlib.sha256(_der(ark_cert)).hexdigest()
    root_name = next((name for name, digest in roots.items() if digest.lower() == pin), None)
    if root_name is None:
        raise AttestationFailed(
            f"ARK: its SHA-256 {pin} is not one of the pinned roots {sorted(roots)}; "
            "expected AMD's ARK for this product (subject "
            f"{ark_cert.subject.rfc4514_string()!r}); the chain does not lead to a trusted "
            "root"
        )
    _check_signed_by(ark_cert, ark_cert, f"ARK ({root_name})")
    _check_signed_by(ask_cert, ark_cert, "ASK")
    _check_signed_by(vcek_cert, ask_cert, "VCEK")
    for cert, what in ((ark_cert, "ARK"), (ask_cert, "ASK"), (vcek_cert, "VCEK")):
        _check_validity(cert, now, what)

    key = vcek_cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise AttestationFailed(
            f"VCEK: its public key is {type(key).__name__}, expected ECDSA P-384"
        )
    exts = _extensions(vcek_cert)
    product_name = _vcek_product(exts)
    product = product_name.split("-")[0]
    if product in AMD_ARK_SHA256 and root_name in AMD_ARK_SHA256 and product != root_name:
        raise AttestationFailed(
            f"VCEK: its product is {product_name!r} but its chain leads to the {root_name} "
            f"ARK; expected the {product} ARK"
        )
    turin = product.lower() == "turin"
    return ChainInfo(
        product=product,
        root_name=root_name,
        tcb=_vcek_tcb(exts, turin),
        hw_id=_vcek_hw_id(exts),
        vcek=vcek_cert,
        product_name=product_name,
    )
