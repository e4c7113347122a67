"""The OpenAPI 3.1 document served at ``/v1/openapi.json``, built from one small table.

PROTOCOL.md stays the contract; this document lets generic HTTP tooling find the endpoints,
their parameters and their answers. The table is checked against the app's routes by a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortia._json import JSONObject
from consortia.wire import MAX_BATCH_REQUESTS

__all__ = ["OPERATIONS", "Operation", "openapi_document"]


@dataclass(frozen=True, slots=True)
class Operation:
    """One endpoint: method, path, what it does, how it authenticates, what it answers."""

    method: str
    path: str
    summary: str
    auth: str  # "none", "bearer" (member JWT), "jws" (signed body) or "batch" (signed bodies)
    query: tuple[str, ...] = ()
    answers: tuple[int, ...] = (200,)


OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "Liveness: 200 while the service accepts requests", "none"),
    Operation("get", "/metrics", "Prometheus metrics (text exposition format)", "none"),
    Operation("get", "/v1/openapi.json", "This document", "none"),
    Operation("get", "/v1/service", "Service keys, platform kind and templates", "none"),
    Operation(
        "get",
        "/v1/consortia",
        "The consortia in which the caller is an active member (a member token with aud "
        "'consortia'); an empty list when there is none",
        "bearer",
    ),
    Operation(
        "post", "/v1/consortia", "Create a consortium (operator-signed JWS)", "jws", (), (201,)
    ),
    Operation(
        "post",
        "/v1/consortia/{cid}/actions",
        "executeAction: a member-signed JWS, or a JWE wrapping one",
        "jws",
        (),
        (200, 202),
    ),
    Operation(
        "post",
        "/v1/consortia/{cid}/actions/batch",
        "Several executeAction requests, each signed on its own; one answer per request",
        "batch",
    ),
    Operation("get", "/v1/consortia/{cid}/constitution", "Actions and members", "bearer"),
    Operation(
        "get",
        "/v1/consortia/{cid}/proposals",
        "Open proposals the caller may see",
        "bearer",
        ("status",),
    ),
    Operation("get", "/v1/consortia/{cid}/proposals/{pid}", "One proposal by id", "bearer"),
    Operation("get", "/v1/consortia/{cid}/transactions/{txid}", "A committed record", "bearer"),
    Operation(
        "get",
        "/v1/consortia/{cid}/transactions/{txid}/receipt",
        "A receipt for any committed transaction",
        "bearer",
    ),
    Operation(
        "get",
        "/v1/consortia/{cid}/object",
        "Newest visible version of a key",
        "bearer",
        ("key",),
    ),
    Operation(
        "get",
        "/v1/consortia/{cid}/history",
        "The versions of a key, hidden ones as digests; after (a seqno) and limit make a page",
        "bearer",
        ("key", "after", "limit"),
    ),
    Operation(
        "get",
        "/v1/consortia/{cid}/keys",
        "The keys directly under a prefix that the caller may read, with their newest visible "
        "values; limit (1-1000, default 100) and the opaque cursor of the previous page's next",
        "bearer",
        ("prefix", "limit", "cursor"),
    ),
    Operation(
        "get",
        "/v1/consortia/{cid}/notifications",
        "The caller's notifications after an id: a JSON list, or SSE with "
        "Accept: text/event-stream (resume with Last-Event-ID)",
        "bearer",
        ("after", "limit"),
    ),
    Operation(
        "get",
        "/v1/consortia/{cid}/insights",
        "Analytics insights as the constitution lets the caller see them (the document "
        "`consortia insights --json` prints); bucket: seconds per time bucket, since: unix "
        "seconds; not_found when analytics is off",
        "bearer",
        ("bucket", "since"),
    ),
)

_ERROR_SCHEMA: JSONObject = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
        "txid": {"type": "string"},
    },
}


def _operation(op: Operation) -> JSONObject:
    parameters: list[JSONObject] = [
        {"name": name[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path.split("/")
        if name.startswith("{")
    ]
    parameters += [
        {"name": name, "in": "query", "required": name == "key", "schema": {"type": "string"}}
        for name in op.query
    ]
    responses: JSONObject = {
        str(code): {"description": "success", "content": {"application/json": {}}}
        for code in op.answers
    }
    responses["default"] = {
        "description": "a refusal; the code is one of PROTOCOL.md section 3",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    doc: JSONObject = {"summary": op.summary, "parameters": list(parameters)}
    if op.auth == "bearer":
        doc["security"] = [{"memberToken": []}]
    if op.auth == "jws":
        doc["requestBody"] = {
            "required": True,
            "content": {"application/jose": {"schema": {"type": "string", "maxLength": 1048576}}},
        }
    if op.auth == "batch":
        batch: JSONObject = {
            "type": "object",
            "required": ["requests"],
            "additionalProperties": False,
            "properties": {
                "requests": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH_REQUESTS,
                    "items": {"type": "string", "minLength": 1},
                }
            },
        }
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": batch}}}
    doc["responses"] = responses
    return doc


def openapi_document(version: str) -> JSONObject:
    """The whole document."""
    paths: JSONObject = {}
    for op in OPERATIONS:
        entry = paths.setdefault(op.path, {})
        if isinstance(entry, dict):
            entry[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Consortia Trusted Execution Platform",
            "version": version,
            "description": "Wire protocol v1: see PROTOCOL.md and docs/protocol-notes.md.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR_SCHEMA},
            "securitySchemes": {
                "memberToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
