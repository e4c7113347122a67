"""Step 6 and the fault isolation around it: a batch of requests in, one durable commit out.

:class:`GroupCommit` runs the requests of one consortium's batch through the
:class:`~consortia.engine.pipeline.Pipeline` into one :class:`~consortia.engine.batch.Batch`,
commits it in one storage transaction (rotating the keyring and re-issuing the recovery
shares when the batch asks) and only then lets the runtime take it over. One request cannot
fail the others: an unexpected failure while one is processed refuses that request alone,
and an unexpected failure of the commit is retried one request at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from consortia.engine.admission import Admission
from consortia.engine.batch import Batch
from consortia.engine.consortium import ConsortiumRuntime
from consortia.engine.observe import AnalyticsHook
from consortia.engine.pipeline import Pipeline, RequestTrace
from consortia.engine.recovery import issue_shares
from consortia.errors import ConsortiaError, Unavailable
from consortia.identity.keys import EncryptionKey
from consortia.ledger.sealed import wrap_keyring
from consortia.wire import unwrap_body
from consortia.wire.outcomes import Outcome

__all__ = ["GroupCommit"]

log = logging.getLogger("consortia.engine")


class _RequestFault(Exception):
    """One request of a batch failed unexpectedly; the batch is retried without it."""

    def __init__(self, index: int, error: ConsortiaError) -> None:
        super().__init__(index)
        self.index = index
        self.error = error


class _CommitFault(Exception):
    """The commit of a batch failed unexpectedly: the culprit is not known."""


class GroupCommit:
    """Runs and commits the batches of every consortium of one platform (not thread-safe:
    the caller holds the consortium's sequence)."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        admission: Admission,
        node_key: bytes,
        encryption_key: EncryptionKey,
        clock: Callable[[], int],
        random: Callable[[int], bytes],
        hook: AnalyticsHook | None,
    ) -> None:
        self._pipeline = pipeline
        self._admission = admission
        self._node_key = node_key
        self._encryption_key = encryption_key
        self._clock = clock
        self._random = random
        #: Step 7's analytics hook (None: analytics off).
        self.hook = hook

    def run(
        self, runtime: ConsortiumRuntime, bodies: Sequence[str | bytes]
    ) -> list[Outcome | ConsortiaError]:
        """Run ``bodies`` in order into one batch and commit it (see
        :meth:`consortia.engine.platform.Platform.execute_batch`)."""
        failed: dict[int, ConsortiaError] = {}
        while True:
            try:
                return self._attempt(runtime, bodies, failed)
            except _RequestFault as fault:
                failed[fault.index] = fault.error
            except _CommitFault:
                if len(bodies) - len(failed) <= 1:
                    return self._attempt(runtime, bodies, failed, commit_fault_fails=True)
                return self._one_at_a_time(runtime, bodies, failed)

    def _one_at_a_time(
        self,
        runtime: ConsortiumRuntime,
        bodies: Sequence[str | bytes],
        failed: Mapping[int, ConsortiaError],
    ) -> list[Outcome | ConsortiaError]:
        """Commit each request in a batch of its own (after a commit fault), in order."""
        answers: list[Outcome | ConsortiaError] = []
        for index, body in enumerate(bodies):
            earlier = failed.get(index)
            if earlier is not None:
                answers.append(earlier)
                continue
            alone: dict[int, ConsortiaError] = {}
            try:
                (answer,) = self._attempt(runtime, [body], alone, commit_fault_fails=True)
            except _RequestFault as fault:
                answer = fault.error
            answers.append(answer)
        return answers

    def _attempt(
        self,
        runtime: ConsortiumRuntime,
        bodies: Sequence[str | bytes],
        failed: Mapping[int, ConsortiaError],
        *,
        commit_fault_fails: bool = False,
    ) -> list[Outcome | ConsortiaError]:
        """One try at a batch, skipping the requests in ``failed`` (answered as given).

        Raises :class:`_RequestFault` naming the request that failed unexpectedly, or
        :class:`_CommitFault` when the commit did (unless ``commit_fault_fails``: then every
        request that would have changed something answers ``unavailable``). Nothing reaches
        the runtime before the commit is durable, so a try that raised leaves no trace.
        """
        hook = self.hook
        batch = Batch.of(runtime)
        now = self._clock()
        answers: list[Outcome | ConsortiaError] = []
        traces: list[RequestTrace] = []
        for index, body in enumerate(bodies):
            trace = None
            if hook is not None:
                trace = RequestTrace(time.perf_counter())
                traces.append(trace)
            earlier = failed.get(index)
            if earlier is not None:
                answers.append(earlier)
                continue
            # Checked before each request: one that sets a policy rejecting this TEP
            # commits, and the requests after it (in this batch too) are refused.
            refusal = self._admission.refusal(runtime.cid, batch.constitution)
            if refusal is not None:
                answers.append(Unavailable(refusal, txid=self._txid_of(body)))
                continue
            try:
                answers.append(self._pipeline.process(batch, body, now, trace))
            except ConsortiaError as exc:
                answers.append(exc)
            except Exception as exc:  # noqa: BLE001 - fails this request only
                raise _RequestFault(index, self._internal_error(runtime.cid, body, exc)) from None
        try:
            committed = self.commit(runtime, batch, now)
        except Unavailable as exc:
            # Storage refused: nothing reached the runtime, the batch is simply dropped.
            answers = [
                Unavailable(exc.message, txid=a.txid) if not isinstance(a, ConsortiaError) else a
                for a in answers
            ]
            committed = False
        except Exception as exc:  # isolated by the caller
            log.error(
                "group commit of %s failed unexpectedly (%s); %s",
                runtime.cid,
                type(exc).__name__,
                "refusing its requests" if commit_fault_fails else "committing one at a time",
            )
            log.debug("group commit failure", exc_info=True)
            if not commit_fault_fails:
                raise _CommitFault from None
            answers = [
                a
                if isinstance(a, ConsortiaError)
                else Unavailable(
                    "the platform could not commit this request; retry with the same request",
                    txid=a.txid,
                )
                for a in answers
            ]
            committed = False
        if hook is not None:
            decided = [p for p in batch.proposals.values() if not p.is_open] if committed else []
            hook.executed(runtime, traces, answers, decided)
        return answers

    def _internal_error(self, cid: str, body: str | bytes, exc: Exception) -> ConsortiaError:
        """The answer to a request that failed unexpectedly; logs its type, never its text
        or traceback at the default level (either could carry request data)."""
        log.error(
            "a request to %s failed unexpectedly (%s); it alone is refused, the rest of its "
            "batch goes on",
            cid,
            type(exc).__name__,
        )
        log.debug("request failure", exc_info=exc)
        txid = self._txid_of(body)
        return Unavailable(
            "the platform could not process this request (an internal error); it changed "
            "nothing. Retrying the same request will likely fail the same way: report it "
            "to the operator",
            txid=txid,
        )

    def _txid_of(self, body: str | bytes) -> str | None:
        """The request's txid, if its body parses (a courtesy in a refusal)."""
        try:
            return unwrap_body(body, self._encryption_key).txid
        except Exception:  # noqa: BLE001 - the txid is a courtesy; the refusal stands
            return None

    def commit(
        self, runtime: ConsortiumRuntime, batch: Batch, now: int, *, reissue: bool = False
    ) -> bool:
        """Step 6, the one commit sequence (a batch, or a genesis with ``reissue``): rotate
        the keyring if the batch asks, (re-)issue the recovery shares, commit ``batch``
        durably, then apply it; False if it holds nothing.

        Raises ``unavailable`` when storage refuses; the runtime is then unchanged.
        """
        cid = runtime.cid
        if batch.rekey:
            batch.new_keyring = runtime.keyring.rotated(random=self._random)
            batch.rows.keyring = wrap_keyring(
                self._node_key, cid, batch.new_keyring, random=self._random
            )
        issue_shares(batch, force=batch.rekey or reissue)
        rows = batch.finish(now=now)
        if not rows:
            return False
        batch.store.commit(cid, rows)
        runtime.apply(batch)
        return True
