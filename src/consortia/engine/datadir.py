"""The data folder of a platform: every file's name, spelt once.

``consortia serve --data DIR`` (and every offline command given ``--data``) keeps here:

============================  =======  =====================================================
``ledger.sqlite``             0644     the encrypted ledger (SQLite, WAL)
``node.key``                  0600     the node key that wraps every consortium's keyring
``analytics.duckdb``          0644     redacted analytics events (unless ``--no-analytics``)
``tls-cert.pem``              0644     the self-signed TLS certificate (made on first start)
``tls-key.pem``               0600     its private key
``operator.key.jwk``          0600     the operator's private key, when ``serve`` made it
``operator.pub.jwk``          0644     the operator's public key ``serve`` trusts
``simulated-snp/``            0700     the test CA of ``--platform simulated-snp``
============================  =======  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "ANALYTICS_FILE",
    "LEDGER_FILE",
    "NODE_KEY_FILE",
    "OPERATOR_PRIVATE_FILE",
    "OPERATOR_PUBLIC_FILE",
    "SIMULATED_SNP_DIR",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "DataDir",
]

LEDGER_FILE: Final = "ledger.sqlite"
NODE_KEY_FILE: Final = "node.key"
ANALYTICS_FILE: Final = "analytics.duckdb"
TLS_CERT_FILE: Final = "tls-cert.pem"
TLS_KEY_FILE: Final = "tls-key.pem"
OPERATOR_PRIVATE_FILE: Final = "operator.key.jwk"
OPERATOR_PUBLIC_FILE: Final = "operator.pub.jwk"
SIMULATED_SNP_DIR: Final = "simulated-snp"


@dataclass(frozen=True, slots=True)
class DataDir:
    """Paths of one data folder's files (nothing is created or read here)."""

    root: Path

    @property
    def ledger(self) -> Path:
        """The encrypted ledger."""
        return self.root / LEDGER_FILE

    @property
    def node_key(self) -> Path:
        """The node key (0600)."""
        return self.root / NODE_KEY_FILE

    @property
    def analytics(self) -> Path:
        """The analytics store."""
        return self.root / ANALYTICS_FILE

    @property
    def operator_private(self) -> Path:
        """The operator's private key, when ``serve`` made the pair (0600)."""
        return self.root / OPERATOR_PRIVATE_FILE

    @property
    def operator_public(self) -> Path:
        """The operator's public key the server trusts."""
        return self.root / OPERATOR_PUBLIC_FILE
