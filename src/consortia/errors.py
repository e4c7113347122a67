"""One error tree for the whole platform.

Every refusal carries a stable ``code`` from PROTOCOL.md section 3 (the wire contract) and a
human message that says what was wrong and what was expected. The HTTP status belongs to the
edge (the server); :data:`HTTP_STATUS` is the one table it reads.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "HTTP_STATUS",
    "ActionFailed",
    "BadRequest",
    "BadSignature",
    "BudgetExceeded",
    "ConsortiaError",
    "MemberSuspended",
    "NotFound",
    "NotPublic",
    "PermissionDenied",
    "RateLimited",
    "Replay",
    "ScopeViolation",
    "StaleRequest",
    "Unavailable",
    "UnknownAction",
    "UnknownMember",
    "VoteRejected",
    "error_for_code",
]


class ConsortiaError(Exception):
    """A refusal with a stable wire ``code`` and a message for people.

    ``txid`` is set by the engine when the request's JWS parsed, so the answer can name it.
    """

    code: ClassVar[str] = "unavailable"

    def __init__(self, message: str, *, txid: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.txid = txid

    def with_txid(self, txid: str | None) -> ConsortiaError:
        """Return this error tagged with the request's txid (self, for chaining)."""
        self.txid = txid
        return self

    def to_wire(self) -> dict[str, object]:
        """The error body of PROTOCOL.md section 2."""
        body: dict[str, object] = {"error": {"code": self.code, "message": self.message}}
        if self.txid is not None:
            body["txid"] = self.txid
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class BadRequest(ConsortiaError):
    """Not a JWS/JWE, bad JSON, a missing or ill-typed field, a consortium mismatch."""

    code = "bad_request"


class BadSignature(ConsortiaError):
    """The signature does not verify with the member's current signing key."""

    code = "bad_signature"


class UnknownMember(ConsortiaError):
    """No such member in this consortium."""

    code = "unknown_member"


class MemberSuspended(ConsortiaError):
    """The member is suspended or removed."""

    code = "member_suspended"


class StaleRequest(ConsortiaError):
    """``iat`` (or a token's validity) is outside the accepted window."""

    code = "stale_request"


class Replay(ConsortiaError):
    """The nonce was already used by a different request of this member."""

    code = "replay"


class UnknownAction(ConsortiaError):
    """No such action in the constitution."""

    code = "unknown_action"


class NotPublic(ConsortiaError):
    """The action is internal: only action code may call it."""

    code = "not_public"


class PermissionDenied(ConsortiaError):
    """The member is not permitted, or is outside the permission's validity dates."""

    code = "permission_denied"


class VoteRejected(ConsortiaError):
    """The proposal for this request was rejected."""

    code = "vote_rejected"


class ActionFailed(ConsortiaError):
    """The action's own validation failed; nothing was changed."""

    code = "action_failed"


class BudgetExceeded(ConsortiaError):
    """The action ran past its step, time or memory budget; nothing was changed."""

    code = "budget_exceeded"


class ScopeViolation(ConsortiaError):
    """An action called a public action, or updatePermissions targeted itself."""

    code = "scope_violation"


class NotFound(ConsortiaError):
    """Unknown consortium, transaction, object or proposal."""

    code = "not_found"


class RateLimited(ConsortiaError):
    """Too many requests."""

    code = "rate_limited"


class Unavailable(ConsortiaError):
    """The platform cannot commit now; retry with the same nonce."""

    code = "unavailable"


_ALL: tuple[type[ConsortiaError], ...] = (
    BadRequest,
    BadSignature,
    UnknownMember,
    MemberSuspended,
    StaleRequest,
    Replay,
    UnknownAction,
    NotPublic,
    PermissionDenied,
    VoteRejected,
    ActionFailed,
    BudgetExceeded,
    ScopeViolation,
    NotFound,
    RateLimited,
    Unavailable,
)

#: PROTOCOL.md section 3: wire code -> HTTP status. Only the edge should read this.
HTTP_STATUS: dict[str, int] = {
    "bad_request": 400,
    "bad_signature": 401,
    "unknown_member": 401,
    "member_suspended": 403,
    "stale_request": 401,
    "replay": 409,
    "unknown_action": 404,
    "not_public": 403,
    "permission_denied": 403,
    "vote_rejected": 403,
    "action_failed": 422,
    "budget_exceeded": 422,
    "scope_violation": 422,
    "not_found": 404,
    "rate_limited": 429,
    "unavailable": 503,
}

_BY_CODE: dict[str, type[ConsortiaError]] = {cls.code: cls for cls in _ALL}


def error_for_code(code: str, message: str, *, txid: str | None = None) -> ConsortiaError:
    """Rebuild an error from its wire code (e.g. an answer stored for a retried request)."""
    cls = _BY_CODE.get(code, Unavailable)
    return cls(message, txid=txid)
