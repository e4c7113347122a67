"""Batched submission: several independently signed executeAction bodies in one request.

``POST /v1/consortia/{cid}/actions/batch`` with ``Content-Type: application/json`` and the
body ``{"requests": [<compact JWS or JWE>, ...]}`` (1 to :data:`MAX_BATCH_REQUESTS`, the
whole body at most ``MAX_BODY_BYTES``). Each element is exactly what ``POST .../actions``
would take, signed by whichever member signed it: nothing about it changes, and the batch
itself carries no authority. The answer (200) is ``{"answers": [...]}``, one per request in
order, each the body the single endpoint would have answered plus ``"http"``, the status it
would have had: so a refused request among committed ones is answered, not hidden, and the
others still commit.
A request is retried on its own exactly as a single one is (same JWS, same answer).

Pure: :func:`batch_body` (member) and :func:`parse_batch_body` (server).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from consortia._json import JSON, loads_strict
from consortia.errors import BadRequest
from consortia.wire.envelope import MAX_BODY_BYTES

__all__ = ["BATCH_MEDIA_TYPE", "MAX_BATCH_REQUESTS", "batch_body", "parse_batch_body"]

#: Most requests one batch may carry (one group commit takes up to 256).
MAX_BATCH_REQUESTS: Final = 64
BATCH_MEDIA_TYPE: Final = "application/json"


def batch_body(requests: Sequence[str]) -> bytes:
    """The body of a batched submission of ``requests`` (compact JWS or JWE texts)."""
    if not 1 <= len(requests) <= MAX_BATCH_REQUESTS:
        raise BadRequest(f"a batch carries 1 to {MAX_BATCH_REQUESTS} requests, not {len(requests)}")
    quoted = ",".join(f'"{text}"' for text in _compact(requests))
    body = ('{"requests":[' + quoted + "]}").encode("ascii")
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"the batch is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    return body


def parse_batch_body(data: bytes) -> list[bytes]:
    """The request bodies of a batch; raises :class:`BadRequest` saying what is wrong."""
    doc = loads_strict(data, what="the batch body")
    if not isinstance(doc, dict) or set(doc) != {"requests"}:
        raise BadRequest(
            'a batch body is {"requests": [<compact JWS or JWE>, ...]} and nothing else'
        )
    requests: JSON = doc["requests"]
    if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_BATCH_REQUESTS:
        raise BadRequest(
            f"'requests' must be a list of 1 to {MAX_BATCH_REQUESTS} compact JWS or JWE"
        )
    bodies = []
    for index, item in enumerate(requests):
        if not isinstance(item, str) or not item:
            raise BadRequest(f"requests[{index}] must be a compact JWS or JWE (a string)")
        bodies.append(item.encode("utf-8"))
    return bodies


def _compact(requests: Sequence[str]) -> list[str]:
    """Compact serializations are base64url and dots: checked, so quoting needs no escapes."""
    allowed = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    for index, text in enumerate(requests):
        if not text or not set(text) <= allowed:
            raise BadRequest(f"requests[{index}] is not a compact JWS or JWE")
    return list(requests)
