"""The embedded deployment's TLS: a self-signed certificate made once, pinned by fingerprint.

Members pin the SHA-256 fingerprint of the certificate (printed at every start) instead of
trusting a CA: ``consortia … --service-fingerprint`` or ``MemberClient(fingerprint=…)``.
Operators with a real certificate pass ``--tls-cert/--tls-key`` instead.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consortia.engine.datadir import TLS_CERT_FILE, TLS_KEY_FILE
from consortia.identity.keyfile import write_private_file

__all__ = ["CERT_FILE", "KEY_FILE", "certificate_fingerprint", "ensure_self_signed"]

CERT_FILE: Final = TLS_CERT_FILE
KEY_FILE: Final = TLS_KEY_FILE
#: Validity of a self-signed certificate; a new one is made when it has expired.
VALIDITY_DAYS: Final = 825


def certificate_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER bytes, as colon-separated uppercase hex (as OpenSSL)."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    ips = {"127.0.0.1", "::1"}
    hostname = socket.gethostname()
    if hostname and hostname != "localhost":
        names.append(x509.DNSName(hostname))
    try:
        ips.add(str(ipaddress.ip_address(host)))
    except ValueError:
        if host and host not in ("localhost", hostname):
            names.append(x509.DNSName(host))
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in sorted(ips)]
    return names


def ensure_self_signed(
    folder: Path, host: str, *, now: datetime.datetime | None = None
) -> tuple[Path, Path, bool]:
    """The certificate and key in ``folder``, made first if missing or expired.

    Returns (certificate path, key path, whether it was made now). An ECDSA P-256 key:
    small and fast to handshake; names are localhost, the loopback addresses, this host's
    name and ``host``.
    """
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    now = now or datetime.datetime.now(datetime.UTC)
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc > now + datetime.timedelta(days=1):
            return cert_path, key_path, False
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "consortia TEP (self-signed)")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_private_file(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path, True
