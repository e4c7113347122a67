"""JSON at the trust boundary: strict parsing and RFC 8785 canonical bytes.

Everything that crosses into the platform is parsed here, so one set of rules holds for
requests, stored records and action values: UTF-8 only, no duplicate object keys, no NaN or
Infinity, integers inside the IEEE-754 safe range (so every language reads the same number),
and a bounded nesting depth.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import TypeAlias

import rfc8785

from consortia.errors import ActionFailed, BadRequest, ConsortiaError

__all__ = [
    "JSON",
    "MAX_DEPTH",
    "JSONObject",
    "canonical",
    "check_value",
    "copy_json",
    "json_list",
    "loads_strict",
    "require_fields",
]

JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None
JSONObject: TypeAlias = dict[str, JSON]

#: Deepest nesting accepted anywhere (objects and arrays both count).
MAX_DEPTH = 32
_SAFE_INT = 2**53 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A ``\uD800``..``\uDFFF`` escape in JSON text (over-matches ``\\uD800``: that is safe).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_duplicates(pairs: list[tuple[str, JSON]]) -> JSONObject:
    obj: JSONObject = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BadRequest(f"duplicate JSON object key {key!r}")
            seen.add(key)
    return obj


def _no_constant(name: str) -> JSON:
    raise BadRequest(f"{name} is not valid JSON; send a finite number")


class _HugeInteger:
    """An integer literal too long to be exact in IEEE-754, kept unconverted until the check.

    Python refuses to convert integer text over 4,300 digits (a ``ValueError`` from inside the
    decoder, with no path), and anything over 16 digits is outside the safe range anyway; so
    the decoder keeps its length and :func:`check_value` refuses it with the path.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


#: Longest integer literal converted at parse: 16 digits covers every safe integer.
_MAX_INT_DIGITS = 16


def _parse_int(text: str) -> JSON:
    digits = len(text) - text.startswith("-")
    if digits > _MAX_INT_DIGITS:
        return _HugeInteger(digits)  # type: ignore[return-value]  # refused by check_value
    return int(text)


def _describe_int(value: int) -> str:
    """An integer for a message: its digits when short, its size otherwise (``str`` of a
    huge integer is slow, and over 4,300 digits it raises)."""
    bits = value.bit_length()
    return str(value) if bits <= 64 else f"of about {int(bits * 0.30103) + 1} digits"


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_int=_parse_int
)


def _nesting_depth(text: str) -> int:
    """Deepest bracket nesting outside strings, without recursion (cheap pre-check)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_strict(data: bytes | str, *, what: str = "JSON") -> JSON:
    """Parse untrusted JSON, raising :class:`BadRequest` that says what was wrong."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    else:
        text = data
    # Nesting cannot exceed the number of opening brackets: count first, walk only if needed.
    if text.count("[") + text.count("{") > MAX_DEPTH and _nesting_depth(text) > MAX_DEPTH:
        raise BadRequest(f"{what} nests deeper than {MAX_DEPTH} levels")
    if text.startswith("\ufeff"):  # as json.loads, which this skips to reuse one decoder
        raise BadRequest(f"{what} is not valid JSON: it starts with a byte order mark")
    try:
        value: JSON = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except (ValueError, RecursionError):
        # Whatever else the decoder refuses is refused here, never deeper in a batch.
        raise BadRequest(f"{what} is not valid JSON as this platform reads it") from None
    # UTF-8 cannot carry a lone surrogate, so one can only come from an escape (or from str
    # input). Without either, the quick walk decides; the full one names what was wrong.
    suspect = _SURROGATE_ESCAPE.search(text) is not None or (
        not isinstance(data, bytes) and _SURROGATE.search(text) is not None
    )
    if suspect or not _parsed_value_ok(value):
        check_value(value, what=what)
    return value


def _scalars(value: JSON) -> Iterator[JSON]:
    """Every scalar inside ``value`` (strings, numbers, booleans, nulls), without recursion."""
    stack: list[JSON] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def _parsed_value_ok(value: JSON) -> bool:
    """Whether a value just parsed from text of bounded depth, with no lone surrogates, is
    within this platform's rules (safe integers, finite floats); builds no error paths."""
    for item in _scalars(value):
        if isinstance(item, _HugeInteger):
            return False
        if isinstance(item, int):
            if not -_SAFE_INT <= item <= _SAFE_INT:
                return False
        elif isinstance(item, float) and not math.isfinite(item):
            return False
    return True


def check_value(value: object, *, what: str = "value", depth: int = 0) -> JSON:
    """Check that ``value`` is JSON-compatible as this platform defines it; return it.

    Raises :class:`BadRequest` naming the first offending part.
    """
    if depth > MAX_DEPTH:
        raise BadRequest(f"{what} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise BadRequest(f"{what}: a string holds a lone UTF-16 surrogate (not Unicode text)")
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_SAFE_INT <= value <= _SAFE_INT:
            raise BadRequest(
                f"{what}: integer {_describe_int(value)} is outside ±(2**53-1); "
                "send large numbers as strings"
            )
        return value
    if isinstance(value, _HugeInteger):
        raise BadRequest(
            f"{what}: an integer of {value.digits} digits is outside ±(2**53-1) (RFC 7493); "
            "send large numbers as strings"
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest(f"{what}: {value} is not a finite number")
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, what=f"{what}[{index}]", depth=depth + 1)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadRequest(f"{what}: object key {key!r} is not a string")
            if _SURROGATE.search(key):
                raise BadRequest(f"{what}: an object key holds a lone UTF-16 surrogate")
            check_value(item, what=f"{what}.{key}", depth=depth + 1)
        return value
    raise BadRequest(f"{what}: {type(value).__name__} is not a JSON value")


def _has_float(value: JSON) -> bool:
    """Whether ``value`` holds a float anywhere (JCS formats numbers as ECMAScript does)."""
    return any(isinstance(item, float) for item in _scalars(value))


#: A character at or above U+E000: JCS sorts keys by UTF-16 code units, Python by code points,
#: and the two orders differ only for keys holding such characters.
_ABOVE_E000 = re.compile("[\ue000-\U0010ffff]")


def canonical(value: JSON) -> bytes:
    """RFC 8785 (JCS) bytes of ``value``: the one encoding that is hashed or signed.

    The pure-Python JCS encoder walks strings character by character. The standard
    library's encoder writes exactly the same bytes for everything but floats and for object
    keys at or above U+E000, so it is used whenever the value holds no float and its output
    no such character (one scan of the output, not one per key); about ten times faster.
    """
    if not _has_float(value):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if _ABOVE_E000.search(text) is None:
            return text.encode("utf-8")
    return rfc8785.dumps(value)


def copy_json(value: JSON) -> JSON:
    """A deep copy of a checked JSON value: about 2.5 times faster than ``copy.deepcopy``,
    which keeps a memo for shared and cyclic objects that JSON values cannot have. Its
    recursion is bounded by :data:`MAX_DEPTH`, which every checked value respects."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def json_list(values: Iterable[JSON]) -> list[JSON]:
    """A ``list[JSON]`` of ``values`` (lists are invariant, so ``list[str]`` is not one)."""
    return list(values)


def require_fields(
    obj: JSON,
    *,
    what: str,
    required: Iterable[str],
    optional: Iterable[str] = (),
    error: type[ConsortiaError] = ActionFailed,
) -> JSONObject:
    """Check ``obj`` is an object with the required fields and no unknown ones; the
    error names them (``action_failed`` unless ``error`` says which to raise)."""
    if not isinstance(obj, dict):
        raise error(f"{what} must be a JSON object, got {type(obj).__name__}")
    required = tuple(required)
    missing = [f for f in required if f not in obj]
    if missing:
        raise error(f"{what} is missing {', '.join(repr(m) for m in missing)}")
    allowed = set(required) | set(optional)
    unknown = sorted(k for k in obj if k not in allowed)
    if unknown:
        raise error(
            f"{what} has unknown field(s) {', '.join(repr(u) for u in unknown)}; "
            f"expected {', '.join(sorted(allowed))}"
        )
    return obj
