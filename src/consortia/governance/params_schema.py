"""Typed action parameters: a JSON Schema voted with an action, checked before it runs.

An action definition may carry ``params_schema``, a JSON Schema (draft 2020-12) of its
``params``. ``amendConstitution`` checks the schema itself (:func:`check_schema`); the
engine validates every request against it before the vote gate and before any code runs
(:func:`validate_params`), and refuses with ``bad_request`` naming each wrong path::

    params.devices[0].part is required
    params: unknown field 'requestedCompletionDat'

Validation is the ``jsonschema`` library's. Two things are closed off because the schema is
written by members and evaluated inside the TEP: ``$ref`` may point only inside the schema
(nothing is fetched), and ``pattern``/``patternProperties`` are matched by RE2, whose time
is linear in the input, so no schema can make validation backtrack for seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import re2

if TYPE_CHECKING:  # jsonschema (about 60 ms to import) loads when a schema is first used
    from jsonschema.exceptions import ValidationError

from consortia._json import JSON, JSONObject, canonical
from consortia.errors import ActionFailed, BadRequest, ConsortiaError

__all__ = ["MAX_SCHEMA_BYTES", "check_schema", "describe_params", "validate_params"]

#: Largest ``params_schema`` accepted (canonical JSON bytes).
MAX_SCHEMA_BYTES = 64 * 1024
#: At most this many wrong paths are named in one refusal.
_MAX_REPORTED = 5
_ErrorType = type[ConsortiaError]


def _re2_search(pattern: str, value: str) -> bool:
    return _compiled(pattern).search(value) is not None


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is reported to its author, not logged
    return options


_RE2_OPTIONS = _options()


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _re2_search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _re2_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


#: Draft 2020-12 with RE2 for patterns. ``additionalProperties`` relies on
#: ``patternProperties`` through the validator's own ``find_additional_properties``, which
#: uses Python's ``re``; schemas that combine the two are refused at amendment instead.
@functools.cache
def _validator_class() -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend

    return extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties}
    )


def _walk(node: JSON, path: str) -> Iterator[tuple[str, JSONObject]]:
    """Every subschema object of ``node`` with its JSON-pointer-like path."""
    if isinstance(node, dict):
        yield path, node
        for key, item in node.items():
            yield from _walk(item, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{path}/{index}")


def check_schema(value: JSON, *, what: str, error: _ErrorType = ActionFailed) -> JSONObject:
    """``value`` if it is a usable params schema; ``error`` naming what is wrong otherwise."""
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON Schema object (draft 2020-12)")
    if len(canonical(value)) > MAX_SCHEMA_BYTES:
        raise error(f"{what} is larger than {MAX_SCHEMA_BYTES} bytes")
    if value.get("type") != "object":
        raise error(f"{what}.type must be 'object': params are always a JSON object")
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(value)
    except SchemaError as exc:
        where = "".join(f"/{p}" for p in exc.absolute_path) or "/"
        raise error(f"{what} is not a valid JSON Schema at {where}: {exc.message}") from None
    for where, node in _walk(value, ""):
        ref = node.get("$ref", node.get("$dynamicRef"))
        if isinstance(ref, str) and not ref.startswith("#"):
            raise error(
                f"{what}{where}: $ref {ref[:80]!r} points outside the schema; only local "
                "references ('#/$defs/...') are resolved, nothing is fetched"
            )
        pattern = node.get("pattern")
        patterns: list[str] = [pattern] if isinstance(pattern, str) else []
        props = node.get("patternProperties")
        if isinstance(props, dict):
            patterns.extend(props)
            if "additionalProperties" in node:
                raise error(
                    f"{what}{where}: patternProperties with additionalProperties is not "
                    "supported here; list the properties, or drop additionalProperties"
                )
        for text in patterns:
            try:
                _compiled(text)
            except re2.error as exc:
                reason = exc.args[0].decode("utf-8", "replace") if exc.args else "refused"
                raise error(
                    f"{what}{where}: pattern {text[:80]!r} is not RE2 syntax ({reason}); "
                    "lookaround and backreferences are not supported"
                ) from None
    return value


#: Compiled validators by the identity of the schema object they were built from; the
#: schema is kept with its validator, so an id is never reused while its entry lives.
#: A constitution's schemas live as long as it does: this is hit on every request.
_VALIDATORS: dict[int, tuple[JSONObject, Any]] = {}
_MAX_VALIDATORS = 256


def _validator(schema: JSONObject) -> Any:
    found = _VALIDATORS.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    if len(_VALIDATORS) >= _MAX_VALIDATORS:
        _VALIDATORS.clear()
    from jsonschema import FormatChecker

    validator = _validator_class()(schema, format_checker=FormatChecker())
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def _location(path: Sequence[str | int]) -> str:
    out = "params"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _explain(exc: ValidationError) -> str:
    where = _location(list(exc.absolute_path))
    expected: Any = exc.validator_value
    instance: Any = exc.instance
    schema: Any = exc.schema
    if exc.validator == "required":
        missing = [f for f in expected if f not in instance]
        return "; ".join(f"{where}.{field} is required" for field in missing)
    if exc.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in known)
        allowed = ", ".join(sorted(known)) or "none"
        return "; ".join(
            f"{where}: unknown field {field!r} (allowed: {allowed})" for field in extra
        )
    if exc.validator == "enum":
        options = ", ".join(_json_text(v) for v in expected)
        return f"{where} must be one of {options}"
    if exc.validator == "type":
        return f"{where} must be of type {expected}"
    return f"{where}: {exc.message}"


def _json_text(value: Any) -> str:
    """A short JSON rendering of a schema value for a message."""
    text = canonical(value).decode("utf-8", "replace")
    return text if len(text) <= 60 else text[:57] + "..."


def validate_params(schema: JSONObject, params: JSONObject, *, action: str) -> None:
    """Raise ``bad_request`` naming every wrong path (up to five) of ``params``."""
    validator = _validator(schema)
    from referencing.exceptions import Unresolvable  # loaded with the validator

    try:
        errors = sorted(
            validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path))
        )
    except Unresolvable:
        raise BadRequest(f"the params schema of {action!r} cannot be resolved") from None
    if not errors:
        return
    messages = [_explain(e) for e in errors[:_MAX_REPORTED]]
    more = len(errors) - _MAX_REPORTED
    tail = f" (and {more} more)" if more > 0 else ""
    raise BadRequest(
        f"params of {action!r} do not match its schema: {'; '.join(messages)}{tail}; "
        f"see `consortia action show {action}`"
    )


def describe_params(schema: JSONObject) -> list[tuple[str, str, bool, str]]:
    """(path, type, required, description) of every documented field, depth first."""
    rows: list[tuple[str, str, bool, str]] = []

    def visit(node: JSON, path: str) -> None:
        if not isinstance(node, dict):
            return
        node = _resolved(schema, node)
        listed = node.get("required")
        required = set(listed) if isinstance(listed, list) else set()
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name, raw in properties.items():
                if not isinstance(raw, dict):
                    continue
                sub = _resolved(schema, raw)
                child = f"{path}.{name}" if path else name
                rows.append(
                    (
                        child,
                        _type_of(schema, sub),
                        name in required,
                        str(sub.get("description", "")),
                    )
                )
                visit(sub, child)
        items = node.get("items")
        if isinstance(items, dict):
            visit(items, f"{path}[]")

    visit(schema, "")
    return rows


def _resolved(root: JSONObject, node: JSONObject) -> JSONObject:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: JSON = root
    for part in ref[2:].split("/"):
        if not isinstance(target, dict):
            return node
        target = target.get(part)
    return (
        {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        if isinstance(target, dict)
        else node
    )


def _type_of(root: JSONObject, node: JSONObject) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    items = node.get("items")
    if kind == "array" and isinstance(items, dict):
        return f"array of {_type_of(root, _resolved(root, items))}"
    if "enum" in node and isinstance(node["enum"], list):
        return "one of " + ", ".join(_json_text(v) for v in node["enum"])
    return str(kind) if kind else "any"
