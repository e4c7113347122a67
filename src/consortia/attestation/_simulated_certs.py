"""The simulated chip's certificates: AMD's VCEK extensions and signatures, as AMD makes them.

Helpers of :class:`~consortia.attestation.simulated_ca.TestCA`: the AMD extension OIDs, their
DER encoding (each SPL and structVersion a DER INTEGER, productName an IA5String, hwID the
raw 64 bytes), issuing a VCEK for a TCB under the test ASK, reading the TCB back from a
VCEK, the test subjects ("Consortia TEST ... never trusted by default") and the RSASSA-PSS
(SHA-384, salt 48) check of one certificate against its issuer.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from consortia.attestation.report import Tcb
from consortia.errors import BadRequest

__all__ = [
    "NEVER_TRUSTED",
    "OID_BL_SPL",
    "OID_HWID",
    "OID_PRODUCT_NAME",
    "OID_SNP_SPL",
    "OID_STRUCT_VERSION",
    "OID_TEE_SPL",
    "OID_UCODE_SPL",
    "PSS",
    "amd_extension",
    "ca_subject",
    "cert_pem",
    "issue_vcek",
    "key_pem",
    "key_usage",
    "vcek_tcb",
    "verify_pss",
]

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

PSS: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
_ORG: Final = "Consortia TEST (simulated-snp)"
NEVER_TRUSTED: Final = "never trusted by default"
_VCEK_YEARS: Final = 7


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


def amd_extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes:
    try:
        ext = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        raise BadRequest(f"VCEK lacks the AMD extension {oid.dotted_string}") from None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise BadRequest(f"VCEK extension {oid.dotted_string} is not an AMD extension")
    return value.value


def ca_subject(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "simulated-snp"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def verify_pss(child: x509.Certificate, issuer: x509.Certificate, *, what: str) -> None:
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or child.signature_hash_algorithm is None:
        raise BadRequest(f"{what}: the issuer key is not RSA or the signature has no hash")
    try:
        key.verify(child.signature, child.tbs_certificate_bytes, PSS, hashes.SHA384())
    except InvalidSignature:
        raise BadRequest(f"{what}: the signature does not verify with its issuer") from None


def key_usage(*, crl_sign: bool) -> x509.KeyUsage:
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


def issue_vcek(
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
        .subject_name(ca_subject(f"Consortia TEST VCEK ({product}) — {NEVER_TRUSTED}"))
        .issuer_name(ask.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * _VCEK_YEARS))
    )
    for oid, value in amd:
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    return builder.sign(ask_key, hashes.SHA384(), rsa_padding=PSS), key


def vcek_tcb(vcek: x509.Certificate) -> Tcb:
    def spl(oid: x509.ObjectIdentifier) -> int:
        return _parse_der_integer(amd_extension(vcek, oid), what=f"VCEK {oid.dotted_string}")

    return Tcb(
        bootloader=spl(OID_BL_SPL),
        tee=spl(OID_TEE_SPL),
        snp=spl(OID_SNP_SPL),
        microcode=spl(OID_UCODE_SPL),
    )
