"""Joining a cluster (docs/cluster.md): the join key's fingerprint and the sealed bundle.

A joining node sends the public half of a throwaway X25519 key; the operator approves the
request by comparing :func:`join_key_fingerprint` as the new node prints it and as the
running node shows it; the running node answers with the node key and the cluster's TLS
files sealed to that key, which :func:`open_join_bundle` opens on the new node.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from consortia._json import loads_strict
from consortia.errors import BadRequest
from consortia.identity._b64 import b64url_decode
from consortia.identity.box import open_anonymous
from consortia.identity.keys import EncryptionKey

__all__ = ["JoinBundle", "join_key_fingerprint", "open_join_bundle"]

_CONTEXT = b"consortia-join-key/1:"


def join_key_fingerprint(raw: bytes) -> str:
    """What the operator compares: SHA-256 of the join key (first 128 bits, grouped)."""
    digest = hashlib.sha256(_CONTEXT + raw).hexdigest().upper()
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class JoinBundle:
    """What a joining node is handed: the node key and, on TLS, the certificate and key."""

    node_key: bytes
    tls_cert: str | None
    tls_key: str | None

    def __repr__(self) -> str:  # never the secrets
        return f"JoinBundle(tls={self.tls_cert is not None})"


def open_join_bundle(sealed: bytes, key: EncryptionKey) -> JoinBundle:
    """Open the answer to an approved join with the join key; raises if it does not open
    or is not a bundle."""
    doc = loads_strict(open_anonymous(sealed, key), what="join bundle")
    if not isinstance(doc, dict) or not isinstance(doc.get("node_key"), str):
        raise BadRequest("the join answer holds no node key")
    cert, tls_key = doc.get("tls_cert"), doc.get("tls_key")
    if (cert is None) != (tls_key is None) or not all(
        v is None or isinstance(v, str) for v in (cert, tls_key)
    ):
        raise BadRequest("the join answer's TLS files are incomplete")
    node_key = b64url_decode(str(doc["node_key"]), what="node key")
    return JoinBundle(
        node_key,
        cert if isinstance(cert, str) else None,
        tls_key if isinstance(tls_key, str) else None,
    )
