"""What a person reads of one action of a constitution: ``consortia action show NAME``.

Pure formatting of the constitution document (``GET .../constitution``): who may run the
action, whether it needs a vote, its parameters from the voted ``params_schema`` and an
example command. The same rows make the Telco pack's reference in docs/telco.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from consortia._json import JSON, JSONObject
from consortia.errors import UnknownAction
from consortia.governance.params_schema import describe_params

__all__ = ["action_entry", "params_table", "render_action"]


def action_entry(constitution: JSON, name: str) -> JSONObject:
    """The definition of ``name`` in a constitution document; ``unknown_action`` if absent."""
    actions = constitution.get("actions", []) if isinstance(constitution, dict) else []
    for entry in actions if isinstance(actions, list) else []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    names = sorted(
        str(a.get("name"))
        for a in (actions if isinstance(actions, list) else [])
        if isinstance(a, dict) and a.get("scope") == "public"
    )
    raise UnknownAction(f"no action {name!r} in the constitution; public ones: {', '.join(names)}")


def _who(entry: JSONObject) -> list[str]:
    out: list[str] = []
    permissions = entry.get("permissions")
    for p in permissions if isinstance(permissions, list) else []:
        if not isinstance(p, dict):
            continue
        subject = (
            f"every holder of role {p['role']}" if "role" in p else f"member {p.get('member')}"
        )
        window = ""
        if p.get("valid_from") is not None or p.get("valid_to") is not None:
            window = f", from {p.get('valid_from', '-')} until before {p.get('valid_to', '-')}"
        verb = "may run it" if p.get("execute") else "may not (its own entry refuses it)"
        out.append(f"{subject} {verb}{window}")
    return out or ["no one (no permission entry)"]


def _voting(entry: JSONObject) -> str:
    voting = entry.get("voting")
    if not isinstance(voting, dict):
        return "unknown"
    voters, majority, veto = voting.get("voters"), voting.get("majority"), voting.get("veto") or []
    if voters == "any" and majority == 1 and not veto:
        return "none: it runs at once"
    listed = voters if isinstance(voters, list) else []
    electorate = "every active member" if voters in ("any", "all") else ", ".join(map(str, listed))
    vetoes = f"; veto: {', '.join(map(str, veto))}" if isinstance(veto, list) and veto else ""
    return f"{majority} approval(s) of {electorate}{vetoes}"


def params_table(schema: JSONObject) -> list[tuple[str, str, str, str]]:
    """(field, type, required, description) rows of a params schema."""
    return [
        (path, kind, "yes" if required else "no", text)
        for path, kind, required, text in describe_params(schema)
    ]


def _table(rows: Sequence[Sequence[str]], header: Sequence[str], indent: str) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [indent + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return [line.rstrip() for line in lines]


def render_action(entry: JSONObject) -> str:
    """The action as ``consortia action show`` prints it."""
    name = str(entry.get("name"))
    lines = [f"{name}: {entry.get('scope')} {entry.get('language')} action"]
    lines.append("  who may run it:")
    lines += [f"    {line}" for line in _who(entry)]
    lines.append(f"  voting: {_voting(entry)}")
    schema = entry.get("params_schema")
    if isinstance(schema, dict):
        description = schema.get("description")
        if isinstance(description, str):
            lines.insert(1, f"  {description}")
        lines.append("  params (JSON Schema voted with the code; others are refused):")
        lines += _table(params_table(schema), ("field", "type", "required", "description"), "    ")
        examples = schema.get("examples")
        if isinstance(examples, list) and examples:
            example = json.dumps(examples[0], ensure_ascii=False, separators=(", ", ": "))
            lines.append("  example:")
            lines.append(f"    consortia exec {name} --params '{example}'")
    else:
        lines.append("  params: not declared (the code checks them itself)")
    return "\n".join(lines)
