"""The analytics policy: what may leave the TEP for analytics, and who learns what from it.

It is part of the constitution (stored under ``gov/analytics``, shown in the constitution
read, changed only by the voted base action ``setAnalyticsPolicy``), because deciding which
facts about the consortium's business leave the trusted platform is a decision of the
members, not of the operator. Pure data and parsing: no I/O, no clock.

JSON form::

    {"grants": {"<action>": ["<param field>", ...]},  # parameter fields that may leave
     "insights_full": ["<member id or role>", ...],    # who sees per-member breakdowns
     "alert_to": "all" | ["<member id or role>", ...], # who gets misuse_alert notifications
     "suspend_on_alert": false}                        # suspend the member pending a vote

A *role* entry matches every member whose ``info.role`` equals it (the Telco template gives
each member a role); a member id entry matches that member.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from consortia._json import JSON, JSONObject
from consortia.errors import ActionFailed, ConsortiaError

__all__ = [
    "DEFAULT_ANALYTICS_POLICY",
    "MAX_GRANTED_FIELDS",
    "AnalyticsPolicy",
    "parse_analytics_policy",
]

#: Most parameter fields one action may grant; an analytics feed is not a copy of the ledger.
MAX_GRANTED_FIELDS = 32
_MAX_ENTRIES = 256
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_ACTION = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_ENTRY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELDS = ("grants", "insights_full", "alert_to", "suspend_on_alert")
#: Optional fields (policies voted before they existed stay valid): their defaults.
_OPTIONAL = ("object_types",)
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_ErrorType = type[ConsortiaError]


def _empty_grants() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AnalyticsPolicy:
    """What leaves the TEP per action, who sees full insights, who is told of misuse."""

    grants: Mapping[str, tuple[str, ...]] = field(default_factory=_empty_grants)
    insights_full: tuple[str, ...] = ()
    #: ``"all"``: every active member (the default); else member ids and roles.
    alert_to: Literal["all"] | tuple[str, ...] = "all"
    suspend_on_alert: bool = False
    #: First segments of object keys that may leave as the event's object type; any other
    #: type leaves as a keyed hash (a key such as ``acme-bid/...`` can name a customer).
    object_types: tuple[str, ...] = ()

    def granted(self, action: str | None) -> tuple[str, ...]:
        """The parameter fields of ``action`` that may leave the TEP (usually none)."""
        if action is None:
            return ()
        return self.grants.get(action, ())

    def sees_full(self, member: str, roles: str | Iterable[str] | None) -> bool:
        """Whether ``member`` (holding ``roles``: one, several or none) sees per-member
        breakdowns."""
        return _matches(self.insights_full, member, roles)

    def alerted(self, member: str, roles: str | Iterable[str] | None) -> bool:
        """Whether ``member`` (holding ``roles``) gets ``misuse_alert`` notifications."""
        return self.alert_to == "all" or _matches(self.alert_to, member, roles)

    def to_json(self) -> JSONObject:
        """The policy in its JSON form (the constitution read and ``gov/analytics``)."""
        alert_to: JSON = self.alert_to if isinstance(self.alert_to, str) else list(self.alert_to)
        return {
            "grants": {a: list(f) for a, f in sorted(self.grants.items())},
            "insights_full": list(self.insights_full),
            "alert_to": alert_to,
            "suspend_on_alert": self.suspend_on_alert,
            "object_types": list(self.object_types),
        }


DEFAULT_ANALYTICS_POLICY = AnalyticsPolicy()
"""No granted fields, nobody sees other members' rows, everyone is alerted, no suspension."""


def _matches(entries: Iterable[str], member: str, roles: str | Iterable[str] | None) -> bool:
    held = {roles} if isinstance(roles, str) else set(roles or ())
    return any(entry == member or entry in held for entry in entries)


def _unique_names(
    value: JSON, what: str, error: _ErrorType, pattern: re.Pattern[str], kind: str, rule: str
) -> tuple[str, ...]:
    """A list of at most :data:`_MAX_ENTRIES` distinct strings matching ``pattern``."""
    if not isinstance(value, list) or len(value) > _MAX_ENTRIES:
        raise error(f"{what} must be a list of at most {_MAX_ENTRIES} {kind}")
    out: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or pattern.fullmatch(item) is None:
            raise error(f"{what}[{index}] must be {rule}")
        if item in out:
            raise error(f"{what} lists {item!r} twice")
        out.append(item)
    return tuple(out)


def _entries(value: JSON, what: str, error: _ErrorType) -> tuple[str, ...]:
    rule = (
        "a member id or a role: 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter "
        "or digit"
    )
    return _unique_names(value, what, error, _ENTRY, "member ids or roles", rule)


def _grants(value: JSON, what: str, error: _ErrorType) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, dict) or len(value) > _MAX_ENTRIES:
        raise error(
            f"{what} must be an object mapping action names to lists of parameter fields "
            f"(at most {_MAX_ENTRIES} actions)"
        )
    grants: dict[str, tuple[str, ...]] = {}
    for action, fields in value.items():
        if _ACTION.fullmatch(action) is None:
            raise error(f"{what} key {action[:80]!r} is not an action name")
        where = f"{what}.{action}"
        if not isinstance(fields, list) or len(fields) > MAX_GRANTED_FIELDS:
            raise error(
                f"{where} must be a list of at most {MAX_GRANTED_FIELDS} parameter field names"
            )
        names: list[str] = []
        for index, name in enumerate(fields):
            if not isinstance(name, str) or _FIELD.fullmatch(name) is None:
                raise error(
                    f"{where}[{index}] must be a top-level parameter field name "
                    "(letters, digits, '_', '.', '-'; at most 64)"
                )
            if name in names:
                raise error(f"{where} lists field {name!r} twice")
            names.append(name)
        if names:
            grants[action] = tuple(names)
    return MappingProxyType(grants)


def parse_analytics_policy(
    value: JSON, *, what: str = "params", error: _ErrorType = ActionFailed
) -> AnalyticsPolicy:
    """Parse a policy from untrusted JSON; every field is required, so a vote is explicit.

    Raises ``error`` (``action_failed`` by default) naming the offending field.
    """
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON object with {', '.join(_FIELDS)}")
    missing = [f for f in _FIELDS if f not in value]
    if missing:
        raise error(
            f"{what} is missing {', '.join(repr(m) for m in missing)}; a policy names all of "
            f"{', '.join(_FIELDS)} (the whole policy is replaced)"
        )
    unknown = sorted(k for k in value if k not in _FIELDS and k not in _OPTIONAL)
    if unknown:
        raise error(
            f"{what} has unknown field(s) {', '.join(repr(u) for u in unknown)}; "
            f"expected {', '.join(_FIELDS + _OPTIONAL)}"
        )
    alert_raw = value["alert_to"]
    alert_to: Literal["all"] | tuple[str, ...] = (
        "all" if alert_raw == "all" else _entries(alert_raw, f"{what}.alert_to", error)
    )
    suspend = value["suspend_on_alert"]
    if not isinstance(suspend, bool):
        raise error(f"{what}.suspend_on_alert must be true or false")
    return AnalyticsPolicy(
        grants=_grants(value["grants"], f"{what}.grants", error),
        insights_full=_entries(value["insights_full"], f"{what}.insights_full", error),
        alert_to=alert_to,
        suspend_on_alert=suspend,
        object_types=_object_types(value.get("object_types", []), f"{what}.object_types", error),
    )


def _object_types(value: JSON, what: str, error: _ErrorType) -> tuple[str, ...]:
    rule = (
        "the first segment of an object key, such as 'productOrder': 1-64 characters of "
        "A-Z a-z 0-9 . _ - starting with a letter"
    )
    return _unique_names(value, what, error, _TYPE, "object-key first segments", rule)
