"""Strategies and helpers of the boundary fuzz tests (test_fuzz_boundary_*.py).

Every parser either succeeds or raises a :class:`ConsortiaError`; any other exception
escaping a parser is a bug, and :func:`only_consortia_errors` lets it fail the test.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator

from hypothesis import strategies as st

from consortia._json import JSON, canonical
from consortia.errors import ConsortiaError
from consortia.identity.jws import sign_compact
from consortia.identity.keys import MemberKeys

#: Example budgets per test: the whole folder must run in well under 40 s.
FAST = 40
MEDIUM = 80

_SAFE = 2**53 - 1

#: Scalars, including the ones the strict parser refuses (huge ints, NaN, lone surrogates).
wild_scalars: st.SearchStrategy[JSON] = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-_SAFE, _SAFE)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["", "a", "\ud800", "operator", "EdDSA", "OKP", "Ed25519", "X25519"])
)
safe_scalars: st.SearchStrategy[JSON] = (
    st.none()
    | st.booleans()
    | st.integers(-_SAFE, _SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
keys = st.text(max_size=12) | st.sampled_from(
    ["alg", "kid", "typ", "crv", "kty", "x", "d", "use", "epk", "iat", "member", "consortium"]
)


def json_values(scalars: st.SearchStrategy[JSON] = safe_scalars) -> st.SearchStrategy[JSON]:
    """Random JSON (a recursive strategy, a few levels deep)."""
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=15,
    )


json_objects: st.SearchStrategy[dict[str, JSON]] = st.dictionaries(keys, json_values(), max_size=8)
wild_objects: st.SearchStrategy[dict[str, JSON]] = st.dictionaries(
    keys, json_values(wild_scalars), max_size=8
)

b64_alphabet = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60
)
#: Text that looks like compact JOSE: base64url-ish segments joined by dots.
jose_like = st.lists(b64_alphabet | st.text(max_size=8), min_size=1, max_size=6).map(".".join)


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def dumps(value: object) -> bytes:
    """``json.dumps`` bytes (allows NaN and lone surrogates, so refused values encode too)."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8", "surrogatepass")


def b64_json(value: object) -> str:
    """Base64url of :func:`dumps`."""
    return b64(dumps(value))


@st.composite
def mutations(draw: st.DrawFn, text: str) -> str:
    """``text`` damaged one way: a flipped character, a truncation, swapped, dropped or
    duplicated dot-separated segments, or an insertion."""
    kind = draw(st.sampled_from(["flip", "truncate", "swap", "drop", "insert", "dup"]))
    if kind == "flip" and text:
        i = draw(st.integers(0, len(text) - 1))
        char = draw(st.characters(codec="ascii") | st.characters())
        return text[:i] + char + text[i + 1 :]
    if kind == "truncate":
        return text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    parts = text.split(".")
    if kind == "swap" and len(parts) > 1:
        i, j = draw(st.integers(0, len(parts) - 1)), draw(st.integers(0, len(parts) - 1))
        parts[i], parts[j] = parts[j], parts[i]
        return ".".join(parts)
    if kind == "drop" and len(parts) > 1:
        del parts[draw(st.integers(0, len(parts) - 1))]
        return ".".join(parts)
    if kind == "dup":
        i = draw(st.integers(0, len(parts) - 1))
        parts.insert(i, parts[i])
        return ".".join(parts)
    i = draw(st.integers(0, len(text)))
    return text[:i] + draw(st.text(min_size=1, max_size=3)) + text[i:]


@contextlib.contextmanager
def only_consortia_errors() -> Iterator[None]:
    """Let a :class:`ConsortiaError` pass (a refusal is fine); anything else fails the test."""
    with contextlib.suppress(ConsortiaError):
        yield


_KEYS: dict[str, MemberKeys] = {}


def member_keys(member: str = "alice") -> MemberKeys:
    """One generated key set per member id, reused across examples."""
    if member not in _KEYS:
        _KEYS[member] = MemberKeys.generate(member)
    return _KEYS[member]


def signed(payload: JSON | bytes, *, member: str = "alice", typ: str | None = None) -> str:
    """A validly signed compact JWS over ``payload`` (JSON is encoded canonically when
    possible, else with :func:`dumps`, so NaN and friends can be signed too)."""
    keys = member_keys(member)
    if isinstance(payload, bytes):
        body = payload
    else:
        try:
            body = canonical(payload)
        except (TypeError, ValueError, OverflowError):
            body = dumps(payload)
    return sign_compact(body, keys.signing, kid=member, typ=typ)
