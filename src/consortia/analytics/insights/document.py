"""The insights document: :class:`~consortia.analytics.insights.Insights` as JSON and back.

One document is both what ``consortia insights --json`` prints and what
``GET /v1/consortia/{cid}/insights`` answers. Derived figures (totals, durations) are spelt
out in it and recomputed, not read, when it is read back; each registered domain plug writes
and reads its own section's keys at the top level, before ``alerts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from consortia.analytics.insights.domain import registered_domains
from consortia.analytics.insights.figures import (
    ActionFigures,
    AlertRow,
    Bucket,
    Insights,
    MemberFigures,
    VoteDuration,
)
from consortia.analytics.insights.query import json_object
from consortia.analytics.insights.viewer import Viewer
from consortia.errors import BadRequest

__all__ = ["insights_from_json", "insights_json"]


def insights_json(ins: Insights) -> dict[str, Any]:
    """The insights as JSON, with the derived figures (totals, durations) spelt out.

    The one document both ``consortia insights --json`` and ``GET .../insights`` answer;
    :func:`insights_from_json` reads it back for the tables and charts. Each domain
    section's keys come at the top level, before ``alerts``.
    """
    doc = asdict(replace(ins, domains={}))
    del doc["domains"]
    alerts = doc.pop("alerts")
    for section in ins.domains.values():
        doc.update(section.to_json())
    doc["alerts"] = alerts
    for row, figures in zip(doc["actions"], ins.actions, strict=True):
        row["total"] = figures.total
    for row, member in zip(doc["members"], ins.members, strict=True):
        row["total"] = member.total
    if ins.others is not None:
        doc["others"]["total"] = ins.others.total
    for row, vote in zip(doc["votes"], ins.votes, strict=True):
        row["seconds"] = vote.seconds
    return doc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _counts(value: Any) -> dict[str, int]:
    return {str(k): int(n) for k, n in dict(value).items()}


def _member_figures(row: Mapping[str, Any]) -> MemberFigures:
    return MemberFigures(str(row["member"]), _counts(row["outcomes"]), _counts(row["codes"]))


def insights_from_json(doc: Any) -> Insights:
    """Rebuild :class:`Insights` from :func:`insights_json`'s document (local or remote).

    Derived figures (``total``, ``seconds``, a plug's own) are recomputed, not read; each
    registered plug reads its section. A document of the wrong shape raises
    ``bad_request``: it came from a server, after all.
    """
    try:
        viewer = doc["viewer"]
        others = doc["others"]
        alerts = doc["alerts"]
        return Insights(
            consortium=str(doc["consortium"]),
            viewer=Viewer(str(viewer["member"]), bool(viewer["full"]), bool(viewer["alerts"])),
            first=_opt_float(doc["first"]),
            last=_opt_float(doc["last"]),
            bucket_s=int(doc["bucket_s"]),
            actions=[
                ActionFigures(
                    str(a["action"]),
                    _counts(a["outcomes"]),
                    _counts(a["codes"]),
                    float(a["p50_ms"]),
                    float(a["p95_ms"]),
                )
                for a in doc["actions"]
            ],
            members=[_member_figures(m) for m in doc["members"]],
            others=None if others is None else _member_figures(others),
            timeline=[
                Bucket(
                    float(b["start"]),
                    _counts(b["by_action"]),
                    _counts(b["refused_by_code"]),
                    int(b["own"]),
                )
                for b in doc["timeline"]
            ],
            votes=[
                VoteDuration(
                    str(v["action"]),
                    None if v["requester"] is None else str(v["requester"]),
                    float(v["pending"]),
                    _opt_float(v["decided"]),
                    str(v["outcome"]),
                )
                for v in doc["votes"]
            ],
            domains={plug.name: plug.from_json(doc) for plug in registered_domains()},
            alerts=None
            if alerts is None
            else [
                AlertRow(
                    float(a["time"]),
                    str(a["member"]),
                    str(a["rule"]),
                    float(a["score"]),
                    json_object(a["evidence"]),
                )
                for a in alerts
            ],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(
            f"not an insights document ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
