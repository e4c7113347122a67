"""How far a recovery is: shares received and needed per consortium, as members see it.

These are the answers of ``GET /v1/recovery``: counts and thresholds, no secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortia._json import JSONObject
from consortia.errors import NotFound
from consortia.identity.keys import VerifyKey

__all__ = ["ConsortiumProgress", "RecoveryProgress"]


@dataclass(frozen=True)
class ConsortiumProgress:
    """How far one consortium is: shares received for its best epoch, and k."""

    consortium: str
    received: int
    threshold: int
    #: Why k shares did not open it (a wrong share, a submitter no longer active), if so.
    problem: str | None = None

    @property
    def ready(self) -> bool:
        """k shares are in (whether they open the record is known at finish)."""
        return self.threshold > 0 and self.received >= self.threshold

    def to_json(self) -> JSONObject:
        """``{"consortium", "received", "threshold"}`` (+ ``"problem"``); no secrets."""
        doc: JSONObject = {
            "consortium": self.consortium,
            "received": self.received,
            "threshold": self.threshold,
        }
        if self.problem is not None:
            doc["problem"] = self.problem
        return doc


@dataclass(frozen=True)
class RecoveryProgress:
    """Where a recovery stands, for members (``GET /v1/recovery``)."""

    consortia: tuple[ConsortiumProgress, ...]
    complete: bool
    #: The service key the platform will come back with (from the operator's backup).
    service_key: VerifyKey | None

    def of(self, cid: str) -> ConsortiumProgress:
        """One consortium's progress; ``not_found`` if the storage holds no such consortium."""
        for item in self.consortia:
            if item.consortium == cid:
                return item
        raise NotFound(f"no consortium {cid[:80]!r} in the storage being recovered")

    def to_json(self, consortium: str | None = None) -> JSONObject:
        """Counts for all, and named progress for ``consortium`` (give it only to a holder)."""
        doc: JSONObject = {
            "complete": self.complete,
            "consortia": len(self.consortia),
            "ready": sum(1 for c in self.consortia if c.ready),
            "service_key": None if self.service_key is None else dict(self.service_key.to_jwk()),
        }
        if consortium is not None:
            doc["consortium"] = self.of(consortium).to_json()
        return doc
