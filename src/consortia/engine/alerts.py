"""The misuse loopback's way back in: an alert becomes a service transaction.

The detector runs outside the commit path (on the analytics sink's thread) and hands each
:class:`~consortia.analytics.events.Alert` to :meth:`Platform.submit_alert`, which only
queues it. The consortium's sequencer then commits it in order, like any request: one
transaction ``misuseAlert`` by the TEP itself (``SERVICE_MEMBER``, which no member id can
equal), that

- sends a ``misuse_alert`` notification, with the rule, score and the evidence counts (never
  a value), to the active members the analytics policy names in ``alert_to`` — except the
  suspect itself, who would otherwise learn where the detector's thresholds lie;
- when the policy says ``suspend_on_alert``, sets the suspect's status to ``suspended``
  (never the last active member). A suspension is a governance change, so that transaction
  is visible to every member; members decide it by vote with ``reinstateMember`` (back to
  active) or ``removeMember``.

Without a suspension the transaction is visible to the alerted members only.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from consortia._json import JSONObject, canonical, check_value
from consortia.analytics.events import ATTRIBUTED_RULES, Alert
from consortia.engine.batch import Batch
from consortia.engine.consortium import GOV_MEMBERS, Write
from consortia.engine.invocation import Invocation
from consortia.errors import BadRequest
from consortia.governance.constitution import MemberStatus
from consortia.wire.notification import Notice

__all__ = [
    "ALERT_ACTION",
    "MAX_PENDING_ALERTS",
    "SERVICE_MEMBER",
    "AlertInbox",
    "alert_json",
    "stage_alert",
]

#: The action name of the alert transaction and its notifications.
ALERT_ACTION = "misuseAlert"
#: Who submits an alert transaction: the TEP itself (the ':' keeps it out of member ids).
SERVICE_MEMBER = "tep:analytics"
#: Alerts waiting per consortium; beyond it new ones are dropped (and counted).
MAX_PENDING_ALERTS = 1_000
_MAX_RULE = 64


class AlertInbox:
    """Alerts waiting for their consortium's sequence: thread-safe, bounded, counted."""

    def __init__(self, limit: int = MAX_PENDING_ALERTS) -> None:
        self._limit = limit
        self._pending: dict[str, deque[Alert]] = {}
        self._guard = threading.Lock()
        self._dropped = 0

    def __repr__(self) -> str:
        return f"AlertInbox(waiting={sum(map(len, self._pending.values()))})"

    @property
    def dropped(self) -> int:
        """Alerts dropped so far."""
        return self._dropped

    def put(self, alert: Alert) -> bool:
        """Queue ``alert``; False (and counted) when its consortium's queue is full."""
        with self._guard:
            pending = self._pending.setdefault(alert.consortium, deque())
            if len(pending) >= self._limit:
                self._dropped += 1
                return False
            pending.append(alert)
            return True

    def waiting(self, cid: str) -> bool:
        """Whether alerts wait for ``cid`` (a cheap check on every group commit)."""
        return bool(self._pending.get(cid))

    def take(self, cid: str) -> list[Alert]:
        """Everything queued for ``cid``, oldest first, removed from the queue."""
        with self._guard:
            return list(self._pending.pop(cid, ()))

    def put_back(self, cid: str, alerts: Sequence[Alert]) -> None:
        """Return alerts whose commit failed to the front of the queue."""
        with self._guard:
            self._pending.setdefault(cid, deque()).extendleft(reversed(alerts))

    def drop(self, count: int) -> None:
        """Count alerts that were given up."""
        with self._guard:
            self._dropped += count


def alert_json(alert: Alert) -> JSONObject:
    """The alert as its notification and record carry it; raises ``bad_request`` if malformed."""
    if not isinstance(alert.rule, str) or not 0 < len(alert.rule) <= _MAX_RULE:
        raise BadRequest(f"an alert rule must be a name of 1-{_MAX_RULE} characters")
    if not (isinstance(alert.score, int | float) and math.isfinite(alert.score)):
        raise BadRequest("an alert score must be a finite number in 0..1")
    if not (isinstance(alert.time, int | float) and math.isfinite(alert.time)):
        raise BadRequest("an alert time must be finite unix seconds")
    evidence = dict(alert.evidence)
    check_value(evidence, what="alert evidence")
    return {
        "member": alert.member,
        "rule": alert.rule,
        "score": min(1.0, max(0.0, float(alert.score))),
        "time": alert.time,
        "evidence": evidence,
    }


def stage_alert(batch: Batch, alert: Alert, *, now: int, salt: bytes) -> str:
    """Stage the alert transaction in ``batch``; returns its txid."""
    body = alert_json(alert)
    txid = hashlib.sha256(b"misuse-alert|" + canonical(body) + b"|" + salt).hexdigest()
    constitution = batch.constitution
    suspect = constitution.members.get(alert.member)
    # Only a rule about what the member itself signed may suspend it: a burst of forged
    # signatures under its id, or replays of its captured requests, make it the victim.
    suspend = (
        constitution.analytics.suspend_on_alert
        and alert.rule in ATTRIBUTED_RULES
        and suspect is not None
        and suspect.active
        and len(constitution.active_ids()) > 1
    )
    recipients = [m for m in constitution.alert_recipients() if m != alert.member]
    writes: list[Write] = []
    if suspend and suspect is not None:
        suspended = replace(suspect, status=MemberStatus.SUSPENDED)
        batch.constitution = constitution.with_member(suspended)
        writes.append(Write(GOV_MEMBERS + suspect.id, suspended.to_json(), None))
    body["suspended"] = suspend
    run = Invocation(
        txid=txid,
        member=SERVICE_MEMBER,
        action=ALERT_ACTION,
        params={},
        visible_to=(),
        txref=None,
        request=None,
        time=now,
        nonce=None,
        detail={"alert": body},
    )
    batch.add_tx(run, audience=None if suspend else tuple(recipients), writes=writes)
    batch.notify([Notice(m, "misuse_alert", txid, None, ALERT_ACTION, body) for m in recipients])
    return txid
