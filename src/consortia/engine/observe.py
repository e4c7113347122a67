"""Step 7's last part: one redacted analytics event per request, read and decision.

The engine calls :class:`AnalyticsHook` only when a sink is set, after the outcome is known
(for writes, after the group commit is durable or has failed), so the hot path without a
sink pays one ``is None`` test. What an event may carry is decided in
:mod:`consortia.analytics.redact` from the constitution's analytics policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from consortia.analytics.events import Event, EventSink
from consortia.analytics.redact import ObjectRefs, execute_event, read_event
from consortia.engine.consortium import ConsortiumRuntime
from consortia.engine.pipeline import RequestTrace
from consortia.errors import ConsortiaError
from consortia.governance.analytics_policy import DEFAULT_ANALYTICS_POLICY, AnalyticsPolicy
from consortia.governance.voting import Proposal, ProposalStatus
from consortia.wire.outcomes import Committed, Outcome

__all__ = ["FAILED_CODES", "AnalyticsHook", "outcome_of"]

#: Codes of requests that authenticated and ran but failed; every other code is a refusal.
FAILED_CODES = frozenset({"action_failed", "budget_exceeded", "scope_violation", "unavailable"})
#: Longest untrusted name (claimed kid, unknown action, key type) an event repeats.
_MAX_NAME = 64
_MAX_KEY = 512


def outcome_of(answer: Outcome | ConsortiaError) -> tuple[str, str | None]:
    """(outcome, code) of one answer: committed, pending, refused or failed."""
    if isinstance(answer, ConsortiaError):
        return ("failed" if answer.code in FAILED_CODES else "refused"), answer.code
    return ("committed" if isinstance(answer, Committed) else "pending"), None


def _name(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_NAME]


def _key(value: str | None) -> str | None:
    return value if value is not None and len(value) <= _MAX_KEY else None


class AnalyticsHook:
    """Builds and emits events for one platform (its object-ref key and its clock)."""

    def __init__(self, sink: EventSink, refs: ObjectRefs, clock: Callable[[], float]) -> None:
        self.sink = sink
        self.refs = refs
        self.clock = clock

    def __repr__(self) -> str:
        return f"AnalyticsHook({self.sink!r})"

    def executed(
        self,
        runtime: ConsortiumRuntime,
        traces: Sequence[RequestTrace],
        answers: Sequence[Outcome | ConsortiaError],
        decided: Iterable[Proposal],
    ) -> None:
        """Emit one event per answered request, and one per proposal this batch decided."""
        end = time.perf_counter()
        now = self.clock()
        policy = runtime.constitution.analytics
        cid = runtime.cid
        emit = self.sink.emit
        for trace, answer in zip(traces, answers, strict=True):
            outcome, code = outcome_of(answer)
            # Parameters leave only for requests that authenticated (never a stranger's).
            params = None if outcome == "refused" else trace.params
            emit(
                execute_event(
                    policy=policy,
                    refs=self.refs,
                    time=now,
                    consortium=cid,
                    action=_name(trace.action),
                    member=_name(trace.kid),
                    outcome=outcome,
                    code=code,
                    latency_ms=(end - trace.started) * 1000.0,
                    txid=answer.txid,
                    params=params,
                    key=_key(trace.key) if outcome == "committed" else None,
                )
            )
        for proposal in decided:
            emit(self._decision(runtime, proposal, now))

    def _decision(self, runtime: ConsortiumRuntime, proposal: Proposal, now: float) -> Event:
        """A decided proposal: its request's final outcome; latency is the vote's duration."""
        if proposal.status is ProposalStatus.APPROVED:
            outcome, code = "committed", None
        elif proposal.status is ProposalStatus.FAILED:
            code = proposal.error or "action_failed"
            outcome = "failed" if code in FAILED_CODES else "refused"
        else:  # rejected or dropped
            outcome, code = "refused", "vote_rejected"
        return execute_event(
            policy=runtime.constitution.analytics,
            refs=self.refs,
            time=now,
            consortium=runtime.cid,
            action=proposal.action,
            member=proposal.requester,
            outcome=outcome,
            code=code,
            latency_ms=max(0.0, (now - proposal.created_at) * 1000.0),
            txid=proposal.id,
            params=proposal.params if outcome != "refused" else None,
            key=None,
        )

    def read(
        self,
        cid: str,
        read: str,
        member: str | None,
        *,
        started: float,
        code: str | None,
        key: str | None = None,
        txid: str | None = None,
        policy: AnalyticsPolicy = DEFAULT_ANALYTICS_POLICY,
    ) -> None:
        """Emit the event of one member read (``ok`` or ``refused``)."""
        self.sink.emit(
            read_event(
                policy=policy,
                refs=self.refs,
                time=self.clock(),
                consortium=cid,
                read=read,
                member=_name(member),
                code=code,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                key=_key(key),
                txid=txid if txid is not None and len(txid) == 64 else None,
            )
        )
