"""A node joins a running cluster: it asks, the operator approves, it gets the secrets sealed.

The secrets a cluster node needs are the node key and the cluster's TLS certificate and key
(docs/cluster.md). A joining node never receives them in the clear and no one copies them:

1. The new node makes a throwaway X25519 key pair and sends its public half with its
   node id (``POST /v1/cluster/joins``) to any running node, which keeps the request in
   memory (at most :data:`MAX_PENDING`, each for :data:`PENDING_S` seconds) and answers with
   a join id and the key's fingerprint. The new node prints the same fingerprint.
2. The operator compares the two fingerprints and approves the request with an operator
   token (``POST /v1/cluster/joins/{id}/approve``, audience ``cluster``).
3. The new node asks again (``GET /v1/cluster/joins/{id}``) and gets the secrets sealed to
   its key (``crypto_box_seal``): only the holder of the private half opens them, and it
   writes them with mode 0600. The request is then forgotten.

Only cluster nodes (``serve --node``) answer these endpoints. Joining by attestation (the
running node verifying the new node's report over its join key, and approving on a
matching measurement without the operator) is not built yet: this platform's machines
have no SEV-SNP, so the operator's approval is the path here.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from consortia._json import loads_strict
from consortia.engine import Platform
from consortia.errors import BadRequest, NotFound, RateLimited
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.identity.keys import PublicEncryptionKey, validate_member_id
from consortia.server._http import Handler, bearer, endpoint, json_response, query, read_body
from consortia.wire.join import join_key_fingerprint

__all__ = ["MAX_PENDING", "PENDING_S", "JoinDesk"]

#: Join requests a node keeps waiting for the operator at once.
MAX_PENDING: Final = 16
#: Seconds a join request waits for its approval, then is forgotten.
PENDING_S: Final = 600.0
#: The operator token's audience for approving a join.
JOIN_AUDIENCE: Final = "cluster"


@dataclass
class _Join:
    node: str
    key: PublicEncryptionKey
    until: float
    approved: bool = False


class JoinDesk:
    """The join requests one node holds, and the answers to them."""

    def __init__(self, platform: Platform, tls: tuple[Path, Path] | None) -> None:
        self.platform = platform
        self.tls = tls
        self._joins: dict[str, _Join] = {}

    def _live(self) -> dict[str, _Join]:
        now = time.monotonic()
        for jid in [j for j, join in self._joins.items() if join.until < now]:
            del self._joins[jid]
        return self._joins

    def _find(self, request: Request) -> tuple[str, _Join]:
        jid = str(request.path_params["jid"])
        found = self._live().get(jid)
        if found is None:
            raise NotFound(
                f"no join request {jid[:40]!r} on this node (unknown, or forgotten after "
                f"{PENDING_S:g} s or once answered); ask again with `consortia node join`"
            )
        return jid, found

    def routes(self) -> list[tuple[str, Handler, list[str]]]:
        """(path, handler, methods) of the join endpoints."""

        @endpoint
        async def ask(request: Request) -> Response:
            query(request, ())
            body = loads_strict(
                await read_body(request, "application/json", '{"node": ID, "key": B64URL}'),
                what="join request",
            )
            if not isinstance(body, dict) or set(body) != {"node", "key"}:
                raise BadRequest('a join request is {"node": ID, "key": X25519 public, base64url}')
            node = validate_member_id(body["node"], what="node")
            if not isinstance(body["key"], str):
                raise BadRequest("key: expected the X25519 public key, base64url")
            raw = b64url_decode(body["key"], what="key")
            key = PublicEncryptionKey(raw)
            joins = self._live()
            if len(joins) >= MAX_PENDING:
                raise RateLimited(
                    f"{MAX_PENDING} join requests already wait for the operator here; retry "
                    "once they are approved or forgotten"
                )
            jid = secrets.token_urlsafe(12)
            joins[jid] = _Join(node, key, time.monotonic() + PENDING_S)
            return json_response(
                {"id": jid, "state": "pending", "fingerprint": join_key_fingerprint(raw)}, 202
            )

        @endpoint
        async def approve(request: Request) -> Response:
            query(request, ())
            self.platform.operators.verify_token(
                bearer(request, who="an operator"), audience=JOIN_AUDIENCE
            )
            jid, join = self._find(request)
            join.approved = True
            return json_response(
                {
                    "id": jid,
                    "state": "approved",
                    "node": join.node,
                    "fingerprint": join_key_fingerprint(join.key.raw),
                }
            )

        @endpoint
        async def answer(request: Request) -> Response:
            query(request, ())
            jid, join = self._find(request)
            if not join.approved:
                return json_response({"id": jid, "state": "pending"}, 202)
            files: dict[str, str] = {}
            if self.tls is not None:
                files["tls_cert"] = self.tls[0].read_text(encoding="ascii")
                files["tls_key"] = self.tls[1].read_text(encoding="ascii")
            sealed = self.platform.seal_for_joining(join.key, files)
            del self._joins[jid]  # answered once: the secrets travel one time
            return json_response({"id": jid, "state": "approved", "sealed": b64url_encode(sealed)})

        return [
            ("/v1/cluster/joins", ask, ["POST"]),
            ("/v1/cluster/joins/{jid}/approve", approve, ["POST"]),
            ("/v1/cluster/joins/{jid}", answer, ["GET"]),
        ]
