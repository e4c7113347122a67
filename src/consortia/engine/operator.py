"""The platform operator's credentials: who may create consortia and read the metrics.

An operator signs consortium-creation requests (PROTOCOL.md section 8) and bearer tokens
for operator endpoints with one of the keys the platform was started with. Operator nonces
are platform-wide, stored as keyed meta entries: each consortium's own nonces are keyed by
its ledger secret, which a consortium being created does not have yet.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from consortia.engine.service import ServiceIdentity
from consortia.errors import BadSignature, Replay
from consortia.identity.jws import ParsedJWS
from consortia.identity.jwt import read_token, verify_token
from consortia.identity.keys import VerifyKey
from consortia.ledger.store import Store

__all__ = ["OperatorGate", "operator_nonce_name"]


def operator_nonce_name(key: bytes, nonce: str) -> str:
    """The platform-wide meta entry that marks an operator nonce used (its value is the
    creation's txid). Keyed (:meth:`ServiceIdentity.operator_nonce_key`; the node key in
    stores written before): storage learns no nonce."""
    digest = hmac.new(key, b"operator-nonce\x00" + nonce.encode(), hashlib.sha256)
    return "operator-nonce/" + digest.hexdigest()


class OperatorGate:
    """Checks what an operator signs against the operator keys this platform trusts."""

    def __init__(
        self,
        keys: Sequence[VerifyKey],
        *,
        store: Store,
        service: ServiceIdentity,
        node_key: bytes,
        clock: Callable[[], int],
    ) -> None:
        self.keys = tuple(keys)
        self._store = store
        self._service = service
        self._node_key = node_key
        self._clock = clock

    def verify(self, jws: ParsedJWS) -> None:
        """Raise ``bad_signature`` unless one operator key signed ``jws``."""
        for key in self.keys:
            try:
                jws.verify(key)
            except BadSignature:
                continue
            return
        raise BadSignature("the request is not signed by an operator key this platform trusts")

    def verify_token(self, token: str, *, audience: str) -> None:
        """Check a bearer JWT signed by an operator key (``kid`` and ``iss`` "operator")
        for ``audience`` (e.g. ``metrics``); raises ``bad_signature`` or the claim's error."""
        parsed = read_token(token)
        if parsed.kid != "operator":
            raise BadSignature("this endpoint takes a bearer token signed by an operator key")
        for key in self.keys:
            try:
                verify_token(parsed, key, audience=audience, now=self._clock())
            except BadSignature:
                continue
            return
        raise BadSignature("the token is not signed by an operator key this platform trusts")

    def nonce_name(self, nonce: str, txid: str) -> str:
        """The meta entry of an operator nonce; ``replay`` if another request used it."""
        name = operator_nonce_name(self._service.operator_nonce_key(), nonce)
        # A store written before the marks were keyed by the service key has them under the
        # node key; until a recovery replaces it, those still count.
        used_by = self._store.meta_get(name) or self._store.meta_get(
            operator_nonce_name(self._node_key, nonce)
        )
        if used_by is not None and used_by != txid.encode():
            raise Replay(
                f"operator nonce already used by creation request {used_by.decode()}; sign "
                "each creation request with a fresh nonce"
            )
        return name
