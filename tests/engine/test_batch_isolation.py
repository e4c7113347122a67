"""One request cannot fail its group commit: a failure injected at each step of one request
refuses that request only, and every other request of the batch commits (issue 13, item 1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from conftest import World

from consortia import Committed, ConsortiaError
from consortia.engine.batch import Batch
from consortia.engine.pipeline import Pipeline
from consortia.governance.constitution import Constitution
from consortia.identity.jws import ParsedJWS
from consortia.ledger.postgres import PostgresStore
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import CommitBatch

RECORD = """
def main(params):
    put("order/" + params["order"], {"status": params["status"]})
    notify([caller()], {"order": params["order"]})
    return {"ok": True}
"""


def _install(world: World) -> None:
    world.install("recordOrder", RECORD, ("telco", "vendor", "installer"))


def _txid(body: str) -> str:
    return hashlib.sha256(body.encode("ascii")).hexdigest()


class Injected(RuntimeError):
    """The failure a test injects (not a ConsortiaError: nothing foresaw it)."""


def _poison(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    hits: Callable[..., bool],
) -> None:
    """Make ``owner.name`` raise :class:`Injected` on the calls ``hits`` picks."""
    real = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if hits(*args, **kwargs):
            raise Injected("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


# Each step of ARCHITECTURE.md's request walk, and how to tell the poisoned request there.
def _poison_commit(mp: pytest.MonkeyPatch, bad: str) -> None:
    """Both stores' commit fails for a batch holding transaction ``bad``."""
    for store in (SQLiteStore, PostgresStore):
        _poison(mp, store, "commit", lambda self, cid, rows: any(t.txid == bad for t in rows.txs))


STEPS: dict[str, Callable[[pytest.MonkeyPatch, str], None]] = {
    "parse": lambda mp, bad: _poison(
        mp,
        __import__("consortia.engine.pipeline", fromlist=["x"]),
        "parse_action_request",
        lambda jws, cid: jws.txid == bad,
    ),
    "authenticate": lambda mp, bad: _poison(
        mp, ParsedJWS, "verify", lambda self, key: self.txid == bad
    ),
    "authorize": lambda mp, bad: _poison(
        mp, Constitution, "authorize", lambda self, member, action, now: member == "installer"
    ),
    "builtin check": lambda mp, bad: _poison(
        mp, Pipeline, "_check", lambda self, d, c, caller, params, cid, now: "poison" in params
    ),
    "execute": lambda mp, bad: _poison(
        mp,
        Pipeline,
        "_invoke",
        lambda self, definition, execution, params: params.get("order") == "POISON",
    ),
    "stage": lambda mp, bad: _poison(mp, Batch, "add_tx", lambda self, run, **kw: run.txid == bad),
    "notify": lambda mp, bad: _poison(
        mp, Batch, "notify", lambda self, notices: any(n.txid == bad for n in notices)
    ),
    "sign root": lambda mp, bad: _poison(
        mp, Batch, "finish", lambda self, now: bad in self.committed
    ),
    "commit": _poison_commit,
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_failure_at_any_step_refuses_that_request_only(
    world: World, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    _install(world)
    honest = [
        world.sign(m, "recordOrder", {"order": f"O-{i}", "status": "new"})
        for i, m in enumerate(("telco", "vendor", "telco", "vendor"))
    ]
    poisoned = world.sign("installer", "recordOrder", {"order": "POISON", "status": "x"})
    if step == "builtin check":  # a builtin's check runs only for builtins
        poisoned = world.sign("installer", "voteFor", {"proposal": "0" * 64, "poison": 1})
    bodies = [*honest[:2], poisoned, *honest[2:]]
    STEPS[step](monkeypatch, _txid(poisoned))

    answers = world.platform.execute_batch("acme", bodies)

    refused = answers[2]
    assert isinstance(refused, ConsortiaError) and refused.code == "unavailable", refused
    assert refused.txid == _txid(poisoned)
    assert "internal error" in refused.message or "could not commit" in refused.message
    committed = [a for i, a in enumerate(answers) if i != 2]
    assert all(isinstance(a, Committed) for a in committed), answers
    store = world.platform.store
    for body in honest:
        assert store.tx_by_txid("acme", _txid(body)) is not None
    assert store.tx_by_txid("acme", _txid(poisoned)) is None
    # The honest requests are in order and without gaps, and the ledger still verifies.
    seqnos = [a.seqno for a in committed if isinstance(a, Committed)]
    assert seqnos == sorted(seqnos) and seqnos == list(range(seqnos[0], seqnos[0] + 4))
    # The refusal consumed nothing: once the fault is gone, the same bytes are accepted.
    monkeypatch.undo()
    again = world.platform.execute_batch("acme", [poisoned])[0]
    if step == "builtin check":
        assert isinstance(again, ConsortiaError) and again.code == "action_failed"
    else:
        assert isinstance(again, Committed), again


def test_a_storage_refusal_still_refuses_the_batch_as_unavailable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that storage refuses (``unavailable``) is not retried request by request:
    it is the platform, not a request, that cannot commit now."""
    from consortia.errors import Unavailable

    _install(world)
    calls: list[int] = []

    def refuse(self: SQLiteStore, cid: str, rows: CommitBatch) -> None:
        calls.append(len(rows.txs))
        raise Unavailable("disk full")

    monkeypatch.setattr(SQLiteStore, "commit", refuse)
    monkeypatch.setattr(PostgresStore, "commit", refuse)
    bodies = [
        world.sign("telco", "recordOrder", {"order": f"O-{i}", "status": "n"}) for i in range(3)
    ]
    answers = world.platform.execute_batch("acme", bodies)
    assert [a.code for a in answers if isinstance(a, ConsortiaError)] == ["unavailable"] * 3
    assert calls == [3]


def test_huge_integers_are_refused_at_parse_with_their_path(world: World) -> None:
    """Python refuses to convert integer text past 4,300 digits deep inside the decoder;
    the platform refuses anything past the safe range first, naming where it was."""
    _install(world)
    good = world.sign("telco", "recordOrder", {"order": "O-1", "status": "new"})
    huge = world.sign("vendor", "recordOrder", {"order": "O-2", "status": "new"})
    header, payload, signature = huge.split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    text = json.dumps(claims).replace('"status": "new"', '"status": ' + "7" * 5000)
    forged = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
    in_params = f"{header}.{forged}.{signature}"
    text = json.dumps(claims).replace(f'"iat": {claims["iat"]}', '"iat": ' + "1" * 5000)
    in_iat = f"{header}.{base64.urlsafe_b64encode(text.encode()).rstrip(b'=').decode()}.{signature}"
    answers = world.platform.execute_batch("acme", [in_params, good, in_iat])
    assert isinstance(answers[1], Committed)
    for answer, path in ((answers[0], "params.status"), (answers[2], "iat")):
        assert isinstance(answer, ConsortiaError) and answer.code == "bad_request"
        assert path in answer.message and "5000 digits" in answer.message
