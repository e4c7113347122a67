"""Building the one Event a request may leave behind, as the analytics policy allows.

The rule is deny by default: an event names the action, the member, the outcome and error
code, the latency, the object's type and a keyed hash of the object's key. Parameter values
leave only for the fields the constitution's policy grants for that action, and never a state
value. The object hash (:class:`ObjectRefs`) is keyed with a per-platform secret derived
from the node key, so the analytics side can count distinct objects without learning their
names, and cannot test a guessed name either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from types import MappingProxyType

from consortia._json import JSON
from consortia.analytics.events import Event
from consortia.governance.analytics_policy import AnalyticsPolicy

__all__ = [
    "HIDDEN_READ",
    "NO_FIELDS",
    "OBJECT_REF_HEX",
    "ObjectRefs",
    "derive_ref_key",
    "execute_event",
    "granted_fields",
    "object_type",
    "read_event",
]

#: Hex characters of an object reference (64 bits: collisions are negligible per consortium).
OBJECT_REF_HEX = 16
NO_FIELDS: Mapping[str, JSON] = MappingProxyType({})
_REF_LABEL = b"consortia analytics object-ref v1"
_MAX_TYPE = 64


def derive_ref_key(node_key: bytes) -> bytes:
    """The per-platform key of object references, derived one-way from the node key.

    Derived rather than stored: it exists only where the node key does (inside the TEP),
    and knowing it reveals nothing of the node key.
    """
    return hmac.new(node_key, _REF_LABEL, hashlib.sha256).digest()


class ObjectRefs:
    """Keyed hashes of object keys, per consortium (the same key in two consortia differs)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("an object-ref key needs at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "ObjectRefs(<key hidden>)"

    def type_of(self, consortium: str, key: str, declared: tuple[str, ...]) -> str:
        """The object type of ``key`` as an event may carry it: its first segment when the
        policy declares that type, else ``#`` and a keyed hash of it (types still count
        apart, but a segment such as a customer's name never leaves)."""
        segment = object_type(key)
        if segment in declared:
            return segment
        return "#" + self.ref(consortium, "\x00type\x00" + segment)[:8]

    def ref(self, consortium: str, key: str) -> str:
        """16 hex characters naming ``key`` of ``consortium`` without revealing it."""
        message = consortium.encode() + b"\x00" + key.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:OBJECT_REF_HEX]


def object_type(key: str) -> str:
    """The first segment of an object key: ``order`` for ``order/O1``."""
    cut = key.find("/")
    return (key if cut < 0 else key[:cut])[:_MAX_TYPE]


def granted_fields(
    policy: AnalyticsPolicy, action: str | None, params: Mapping[str, JSON] | None
) -> Mapping[str, JSON]:
    """The parameter fields of ``params`` that ``policy`` lets leave for ``action``."""
    if params is None:
        return NO_FIELDS
    names = policy.granted(action)
    if not names:
        return NO_FIELDS
    return MappingProxyType({n: params[n] for n in names if n in params})


def execute_event(
    *,
    policy: AnalyticsPolicy,
    refs: ObjectRefs,
    time: float,
    consortium: str,
    action: str | None,
    member: str | None,
    outcome: str,
    code: str | None,
    latency_ms: float,
    txid: str | None,
    params: Mapping[str, JSON] | None,
    key: str | None,
) -> Event:
    """The event of one executeAction request (or of a proposal's decision)."""
    return Event(
        time=time,
        consortium=consortium,
        kind="execute",
        action=action,
        member=member,
        outcome=outcome,
        code=code,
        latency_ms=latency_ms,
        object_type=None if key is None else refs.type_of(consortium, key, policy.object_types),
        object_ref=None if key is None else refs.ref(consortium, key),
        txid=txid,
        fields=granted_fields(policy, action, params),
    )


#: The code a read hook passes for a read of something hidden from the reader.
HIDDEN_READ = "hidden"


def read_event(
    *,
    policy: AnalyticsPolicy,
    refs: ObjectRefs,
    time: float,
    consortium: str,
    read: str,
    member: str | None,
    code: str | None,
    latency_ms: float,
    key: str | None = None,
    txid: str | None = None,
) -> Event:
    """The event of one member read: ``ok``; ``hidden`` when it asked for something that
    exists but is not for it to see (its answer was ``not_found``: a report reading what it
    may not is no refusal); or ``refused`` with its error code."""
    hidden = code == HIDDEN_READ
    return Event(
        time=time,
        consortium=consortium,
        kind="read",
        action=read,
        member=member,
        outcome="ok" if code is None else ("hidden" if hidden else "refused"),
        code=None if hidden else code,
        latency_ms=latency_ms,
        object_type=None if key is None else refs.type_of(consortium, key, policy.object_types),
        object_ref=None if key is None else refs.ref(consortium, key),
        txid=txid,
        fields=NO_FIELDS,
    )
