"""The executor's read cache, end to end: process isolation reads what inline isolation reads.

Every scenario runs the same requests on a platform with the default sandbox (process
isolation, whose executor caches committed reads) and on one with inline isolation (no
cache), and checks both answer alike and as a plain model of the state says: committed
state, the earlier requests of the same group commit, and the run's own writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import FOUNDERS, World
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortia import Committed, open_notification
from consortia._json import JSON, JSONObject
from consortia.engine.consortium import JOURNAL_COMMITS
from consortia.errors import ConsortiaError
from consortia.ledger.sqlite import SQLiteStore
from consortia.ledger.store import CommitBatch
from consortia.sandbox import ActionRuntime

#: One action for every scenario: it runs ``steps`` in order and returns what the reads saw.
OPS = """
def main(params):
    out = []
    for step in params["steps"]:
        op = step[0]
        if op == "put":
            put(step[1], step[2])
        elif op == "del":
            delete(step[1])
        elif op == "get":
            out.append(get(step[1]))
        elif op == "exists":
            out.append(exists(step[1]))
        elif op == "list":
            out.append(list_keys(step[1]))
        elif op == "call":
            out.append(call("sendNotifications", {"members": [], "body": 0}))
        elif op == "putz":
            put(step[1], {"z": step[2], "a": 0})
        elif op == "keys":
            value = get(step[1])
            out.append(list(value.keys()) if type(value) == "dict" else None)
        elif op == "fail":
            fail("asked to fail")
    return out
"""

#: Transactions storage refuses to commit (by txid); see :func:`poisoned_store`.
POISONED: set[str] = set()

Step = list[JSON]
Request = list[Step]


def install(world: World, cid: str, name: str = "ops", code: str = OPS) -> None:
    world.install(name, code, FOUNDERS, cid=cid)


@dataclass
class Side:
    """One platform and what has been read of telco's notifications on it."""

    world: World
    seen: dict[str, int] = field(default_factory=dict)

    def found(self, cid: str) -> None:
        self.world.create(cid, FOUNDERS)
        install(self.world, cid)

    def batch(self, cid: str, requests: Sequence[Request], poison: int | None = None) -> list[JSON]:
        """Run ``requests`` as one group commit; each one's result (or refusal). Storage
        refuses to commit request number ``poison`` (see :func:`poisoned_store`)."""
        w = self.world
        bodies = [w.sign("telco", "ops", {"steps": [*steps]}, cid=cid) for steps in requests]
        if poison is not None:
            POISONED.add(hashlib.sha256(bodies[poison].encode("ascii")).hexdigest())
        answers = w.platform.execute_batch(cid, bodies)
        results = self._results(cid)
        out: list[JSON] = []
        for answer in answers:
            if isinstance(answer, Committed):
                out.append(results[answer.txid])
            elif isinstance(answer, ConsortiaError):
                out.append({"refused": answer.code, "message": answer.message})
            else:
                raise AssertionError(answer)
        return out

    def one(self, cid: str, steps: Request) -> JSON:
        return self.batch(cid, [steps])[0]

    def _results(self, cid: str) -> dict[str, JSON]:
        w = self.world
        view = w.platform.member_view(cid, "telco")
        service = w.platform.service.encryption.public_key
        found: dict[str, JSON] = {}
        while True:
            notes = view.notifications(after=self.seen.get(cid, 0))
            if not notes:
                return found
            for note in notes:
                self.seen[cid] = int(str(note["id"]))
                if note["kind"] == "result":
                    found[str(note["txid"])] = open_notification(note, w.keys["telco"], service)


class Model:
    """What the ops action returns, from a plain dict of the committed state."""

    def __init__(self) -> None:
        self.state: dict[str, JSON] = {}

    def batch(self, requests: Sequence[Request], poison: int | None = None) -> list[JSON]:
        return [
            {"refused": "unavailable"} if i == poison else self.one(steps)
            for i, steps in enumerate(requests)
        ]

    def one(self, steps: Request) -> JSON:
        mine = dict(self.state)
        out: list[JSON] = []
        for step in steps:
            op = step[0]
            if op == "put":  # values travel canonical: their objects' keys sorted
                mine[str(step[1])] = _canonical(step[2])
            elif op == "putz":
                mine[str(step[1])] = {"a": 0, "z": step[2]}
            elif op == "del":
                mine.pop(str(step[1]), None)
            elif op == "get":
                out.append(mine.get(str(step[1])))
            elif op == "exists":
                out.append(str(step[1]) in mine)
            elif op == "list":
                prefix = str(step[1])
                names: list[JSON] = [k for k in sorted(mine) if k[: k.rfind("/") + 1] == prefix]
                out.append(names)
            elif op == "call":
                out.append({"notified": 0})
            elif op == "keys":
                value = mine.get(str(step[1]))
                out.append([*value] if isinstance(value, dict) else None)
            elif op == "fail":
                return {"refused": "action_failed"}
        self.state = mine
        return out


def _canonical(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


@dataclass
class Pair:
    """The same requests on process and inline isolation, checked against the model."""

    process: Side
    inline: Side
    models: dict[str, Model] = field(default_factory=dict)

    def found(self, cid: str) -> None:
        self.process.found(cid)
        self.inline.found(cid)
        self.models[cid] = Model()

    def batch(
        self, requests: Sequence[Request], cid: str = "acme", poison: int | None = None
    ) -> list[JSON]:
        expected = self.models[cid].batch(requests, poison)
        inline = self.inline.batch(cid, requests, poison)
        process = self.process.batch(cid, requests, poison)
        assert process == inline, (requests, process, inline)
        assert [_code_only(a) for a in inline] == expected, (requests, inline, expected)
        return [_code_only(a) for a in process]

    def one(self, steps: Request, cid: str = "acme") -> JSON:
        return self.batch([steps], cid)[0]

    def reads(self, keys: Sequence[str], prefixes: Sequence[str], cid: str = "acme") -> JSON:
        steps: Request = [[op, k] for k in keys for op in ("get", "exists")]
        steps += [["list", p] for p in prefixes]
        return self.one(steps, cid)

    def close(self) -> None:
        self.process.world.close()
        self.inline.world.close()


def _code_only(answer: JSON) -> JSON:
    """A refusal without its message (the model knows only the code)."""
    if isinstance(answer, dict) and "refused" in answer:
        return {"refused": answer["refused"]}
    return answer


def open_pair(root: Path, process: ActionRuntime | None = None) -> tuple[Pair, ActionRuntime]:
    inline_runtime = ActionRuntime(isolation="inline")
    p = (
        World.open(root / "process")
        if process is None
        else World.open(root / "process", sandbox=process)
    )
    i = World.open(root / "inline", sandbox=inline_runtime)
    pair = Pair(Side(p), Side(i))
    pair.found("acme")
    return pair, inline_runtime


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    made, inline_runtime = open_pair(tmp_path)
    yield made
    made.close()
    inline_runtime.close()


def put(key: str, value: JSON) -> Step:
    return ["put", key, value]


def read(key: str, prefix: str) -> Request:
    return [["get", key], ["exists", key], ["list", prefix]]


def test_the_process_side_really_isolates_and_caches(pair: Pair) -> None:
    pair.one([put("o/k", 1)])
    before = pair.process.world.platform.sandbox_stats()
    for _ in range(3):
        pair.one(read("o/k", "o/"))
    after = pair.process.world.platform.sandbox_stats()
    assert before is not None and after is not None
    assert after.runs - before.runs == 3
    # Nine reads in all, but warm ones are answered in the executor (and the run's constant
    # requests travel with it): fewer round trips than reads, so the cache is in play.
    assert after.round_trips - before.round_trips < 9
    inline = pair.inline.world.platform.sandbox_stats()
    assert inline is not None and inline.round_trips == 0


def test_reads_across_commits_see_each_new_value(pair: Pair) -> None:
    assert pair.one(read("o/k", "o/")) == [None, False, []]
    pair.one([put("o/k", 1)])
    assert pair.one(read("o/k", "o/")) == [1, True, ["o/k"]]
    pair.one([put("o/k", 2)])
    assert pair.one(read("o/k", "o/")) == [2, True, ["o/k"]]
    pair.one([put("o/j", {"x": [1]})])
    assert pair.one(read("o/k", "o/")) == [2, True, ["o/j", "o/k"]]
    assert pair.one(read("o/j", "o/")) == [{"x": [1]}, True, ["o/j", "o/k"]]


def test_later_requests_of_a_group_commit_see_earlier_ones(pair: Pair) -> None:
    pair.one([put("o/k", 0), put("o/other", 0)])
    pair.one(read("o/k", "o/"))  # warm the cache with committed answers
    answers = pair.batch(
        [
            read("o/k", "o/"),
            [put("o/k", 3)],
            read("o/k", "o/"),
            [["del", "o/k"]],
            read("o/k", "o/"),
            [["list", "o/"]],
            [put("o/new", 1)],
            [["list", "o/"], ["get", "o/new"]],
        ]
    )
    assert answers == [
        [0, True, ["o/k", "o/other"]],
        [],
        [3, True, ["o/k", "o/other"]],
        [],
        [None, False, ["o/other"]],
        [["o/other"]],
        [],
        [["o/new", "o/other"], 1],
    ]
    # Committed: the next batch reads the same.
    assert pair.one(read("o/k", "o/")) == [None, False, ["o/new", "o/other"]]


def test_a_refused_request_leaves_nothing_for_the_next(pair: Pair) -> None:
    pair.one([put("o/k", 1)])
    pair.one(read("o/k", "o/"))
    answers = pair.batch(
        [
            [put("o/k", 2), put("o/gone", 1), ["get", "o/k"], ["fail"]],
            read("o/k", "o/"),
            read("o/gone", "o/"),
        ]
    )
    assert answers == [
        {"refused": "action_failed"},
        [1, True, ["o/k"]],
        [None, False, ["o/k"]],
    ]
    assert pair.one(read("o/k", "o/")) == [1, True, ["o/k"]]


def test_a_run_reads_its_own_writes(pair: Pair) -> None:
    pair.one([put("o/k", 1), put("o/j", 1)])
    pair.one(read("o/k", "o/"))
    answer = pair.one(
        [
            ["get", "o/k"],
            ["list", "o/"],
            put("o/k", 5),
            ["get", "o/k"],
            ["exists", "o/k"],
            ["del", "o/j"],
            ["get", "o/j"],
            ["exists", "o/j"],
            ["list", "o/"],
            put("o/j", 7),
            put("o/n", 8),
            ["list", "o/"],
            ["get", "o/j"],
        ]
    )
    assert answer == [1, ["o/j", "o/k"], 5, True, None, False, ["o/k"], ["o/j", "o/k", "o/n"], 7]
    assert pair.one(read("o/j", "o/")) == [7, True, ["o/j", "o/k", "o/n"]]


def test_reads_after_a_builtin_call(pair: Pair) -> None:
    pair.one([put("o/k", 1)])
    pair.one(read("o/k", "o/"))
    steps: Request = [["get", "o/k"], put("o/k", 2), ["call"], ["get", "o/k"], ["list", "o/"]]
    steps += [put("o/j", 3), *read("o/j", "o/")]
    answer = pair.one(steps)
    assert answer == [1, {"notified": 0}, 2, ["o/k"], 3, True, ["o/j", "o/k"]]
    assert pair.one(read("o/k", "o/")) == [2, True, ["o/j", "o/k"]]


def test_a_key_deleted_then_created_again(pair: Pair) -> None:
    pair.one([put("o/k", 1), put("o/j", 1)])
    assert pair.one(read("o/k", "o/")) == [1, True, ["o/j", "o/k"]]
    pair.one([["del", "o/k"]])
    assert pair.one(read("o/k", "o/")) == [None, False, ["o/j"]]
    pair.one([put("o/k", "again")])
    assert pair.one(read("o/k", "o/")) == ["again", True, ["o/j", "o/k"]]
    # Deleted and created again within one batch, read in the next.
    pair.batch([[["del", "o/k"]], [put("o/k", "third")]])
    assert pair.one(read("o/k", "o/")) == ["third", True, ["o/j", "o/k"]]
    # And within one run.
    pair.one([["del", "o/k"], put("o/k", "fourth")])
    assert pair.one(read("o/k", "o/")) == ["fourth", True, ["o/j", "o/k"]]


@pytest.mark.parametrize("between", [JOURNAL_COMMITS - 2, JOURNAL_COMMITS + 6])
def test_many_commits_between_two_reads(pair: Pair, between: int) -> None:
    pair.one([put("o/k", 1), put("p/a", 0)])
    assert pair.one(read("o/k", "o/") + read("p/a", "p/")) == [
        *[1, True, ["o/k"]],
        *[0, True, ["p/a"]],
    ]
    pair.one([put("o/k", 2)])  # the change the cache must not miss
    for i in range(between):
        pair.one([put(f"p/{i % 5}", i)])
    pair.one([["del", "p/a"]])
    assert pair.one(read("o/k", "o/") + read("p/a", "p/")) == [
        *[2, True, ["o/k"]],
        *[None, False, [f"p/{i}" for i in range(5)]],
    ]


def test_governance_writes_by_builtins_are_read_fresh(pair: Pair) -> None:
    keys = ["gov/actions/ops", "gov/actions/extra"]

    def both() -> JSON:
        steps: Request = [["exists", k] for k in keys]
        steps.append(["list", "gov/actions/"])
        process = pair.process.one("acme", steps)
        inline = pair.inline.one("acme", steps)
        assert process == inline
        return process

    first = both()
    assert isinstance(first, list) and first[:2] == [True, False]
    assert isinstance(first[2], list) and "gov/actions/extra" not in first[2]
    install(pair.process.world, "acme", "extra", "def main(params):\n    return 1\n")
    install(pair.inline.world, "acme", "extra", "def main(params):\n    return 1\n")
    second = both()
    assert isinstance(second, list) and second[:2] == [True, True]
    assert isinstance(second[2], list) and "gov/actions/extra" in second[2]


def test_reads_are_fresh_after_a_restart(pair: Pair) -> None:
    pair.one([put("o/k", 1)])
    assert pair.one(read("o/k", "o/")) == [1, True, ["o/k"]]
    pair.process.world.reopen()
    pair.inline.world.reopen()
    assert pair.one(read("o/k", "o/")) == [1, True, ["o/k"]]
    pair.one([put("o/k", 2), put("o/j", 2)])
    assert pair.one(read("o/k", "o/")) == [2, True, ["o/j", "o/k"]]


def test_an_executor_kept_across_a_restart_and_shared_by_platforms(tmp_path: Path) -> None:
    """One process runtime serves a platform, its restart, and a second platform whose
    consortium has the same id and other state: nothing read in one leaks into another."""
    with ActionRuntime(isolation="process") as shared:
        first, inline_a = open_pair(tmp_path / "a", shared)
        second, inline_b = open_pair(tmp_path / "b", shared)
        try:
            first.one([put("o/k", "first")])
            second.one([put("o/k", "second"), put("o/j", 0)])
            for _ in range(2):
                assert first.one(read("o/k", "o/")) == ["first", True, ["o/k"]]
                assert second.one(read("o/k", "o/")) == ["second", True, ["o/j", "o/k"]]
            # The first platform restarts on the same executor, and its state moves on.
            first.process.world.reopen()
            first.inline.world.reopen()
            first.one([put("o/k", "first again")])
            assert first.one(read("o/k", "o/")) == ["first again", True, ["o/k"]]
            assert second.one(read("o/k", "o/")) == ["second", True, ["o/j", "o/k"]]
            assert first.one(read("o/j", "o/")) == [None, False, ["o/k"]]
        finally:
            first.close()
            second.close()
            inline_a.close()
            inline_b.close()


class Injected(RuntimeError):
    """A storage failure the test injects."""


@pytest.fixture
def poisoned_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SQLiteStore.commit fails for a batch holding a transaction in POISONED."""
    real = SQLiteStore.commit

    def commit(self: SQLiteStore, cid: str, rows: CommitBatch) -> object:
        if any(tx.txid in POISONED for tx in rows.txs):
            raise Injected("storage refused")
        return real(self, cid, rows)

    monkeypatch.setattr(SQLiteStore, "commit", commit)
    yield
    POISONED.clear()


def test_a_failed_commit_leaves_no_trace_in_the_cache(pair: Pair, poisoned_store: None) -> None:
    pair.one([put("o/k", 1), put("o/j", 1)])
    assert pair.one(read("o/k", "o/")) == [1, True, ["o/j", "o/k"]]
    answers = pair.batch(
        [
            read("o/k", "o/"),
            [put("o/k", 2), ["del", "o/j"], put("o/n", 2)],
            read("o/k", "o/"),
            [put("o/m", 3)],
            read("o/n", "o/"),
        ],
        poison=1,
    )
    assert answers == [
        [1, True, ["o/j", "o/k"]],
        {"refused": "unavailable"},
        [1, True, ["o/j", "o/k"]],
        [],
        [None, False, ["o/j", "o/k", "o/m"]],
    ]
    assert pair.one(read("o/k", "o/")) == [1, True, ["o/j", "o/k", "o/m"]]
    assert pair.one(read("o/n", "o/")) == [None, False, ["o/j", "o/k", "o/m"]]


def test_values_read_back_alike(pair: Pair) -> None:
    """Values keep their shape (key order, numbers, text) whichever path answers."""
    values: list[JSON] = [
        {"b": 1, "a": {"z": [1, 2.5], "y": None}, "ä": "ü€"},
        2**53 - 1,
        -0.5,
        1e300,
        "",
        [],
        {},
        True,
        'quote " and \\ backslash',
    ]
    keys = [f"v/{i}" for i in range(len(values))]
    writes: Request = [put(k, v) for k, v in zip(keys, values, strict=True)]
    reads: Request = [[op, k] for k in keys for op in ("get", "keys")]
    own = pair.one([*writes, *reads])  # the run's own writes
    assert pair.one(reads) == own  # committed, first read
    assert pair.one(reads) == own  # committed, warm
    pair.one([put("v/0", {"c": 0, "b": 1})])  # committed, sent as a change
    changed = pair.one(reads)
    assert isinstance(changed, list) and changed[:2] == [{"b": 1, "c": 0}, ["b", "c"]]
    # An object built in Starlark is written canonical too, read back in the run and after.
    assert pair.one([["putz", "v/1", 5], ["keys", "v/1"]]) == [["a", "z"]]
    assert pair.one([["keys", "v/1"], ["get", "v/1"]]) == [["a", "z"], {"z": 5, "a": 0}]
    pair.one([["putz", "v/1", 6]])
    assert pair.one([["keys", "v/1"], ["get", "v/1"]]) == [["a", "z"], {"z": 6, "a": 0}]
    # A key with characters a get request must escape.
    odd = 'v/"odd" \\ key é'
    pair.one([["get", odd]])
    pair.one([put(odd, 1)])
    assert pair.one([["get", odd], ["exists", odd], ["list", "v/"]]) == [
        1,
        True,
        sorted([*keys, odd]),
    ]


REFUSING = """
def main(params):
    put(params["k"], 1, visible_to=params.get("vis"))
    if get(params["k"]) == 1:
        if params.get("spin"):
            for i in range(100000000):
                pass
        fail("saw its own refused write")
    return 0
"""


@pytest.mark.parametrize(
    "params",
    [
        {"k": "gov/x"},
        {"k": "gov/x", "spin": True},
        {"k": "o/a", "vis": ["nobody"]},
        {"k": "o/" + "x" * 600, "spin": True},
        {"k": "o/"},
    ],
)
def test_a_refused_write_read_back_refuses_alike(pair: Pair, params: JSONObject) -> None:
    answers = []
    for side in (pair.process, pair.inline):
        install(side.world, "acme", "refusing", REFUSING)
        w = side.world
        answer = w.platform.execute_batch("acme", [w.sign("telco", "refusing", params)])[0]
        assert isinstance(answer, ConsortiaError)
        answers.append((answer.code, answer.message))
    assert answers[0] == answers[1]
    assert answers[0][0] in ("scope_violation", "action_failed")
    assert "saw its own" not in answers[0][1]


KEYS = ("a/x", "a/y", "b/x")
PREFIXES = ("a/", "b/")

step_strategy = st.one_of(
    st.tuples(
        st.just("put"),
        st.sampled_from(KEYS),
        st.one_of(st.integers(0, 3), st.just({"b": 1, "a": 2})),
    ).map(list),
    st.tuples(st.just("del"), st.sampled_from(KEYS)).map(list),
    st.tuples(st.sampled_from(["get", "exists"]), st.sampled_from(KEYS)).map(list),
    st.tuples(st.just("list"), st.sampled_from(PREFIXES)).map(list),
    st.just(["call"]),
    st.tuples(st.just("putz"), st.sampled_from(KEYS), st.integers(0, 3)).map(list),
    st.tuples(st.just("keys"), st.sampled_from(KEYS)).map(list),
    st.just(["fail"]),
)
request_strategy = st.lists(step_strategy, min_size=1, max_size=5)
histories = st.lists(st.lists(request_strategy, min_size=1, max_size=4), min_size=1, max_size=8)

_counter = iter(range(10**6))


@pytest.fixture(scope="module")
def shared_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    made, inline_runtime = open_pair(tmp_path_factory.mktemp("read-cache"))
    yield made
    made.close()
    inline_runtime.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories)
def test_random_histories_read_alike(shared_pair: Pair, history: list[list[Request]]) -> None:
    # Each example on a consortium of its own (the executor's cache switches between them).
    cid = f"h{next(_counter)}"
    shared_pair.found(cid)
    for batch in history:
        shared_pair.batch(batch, cid)
    final: Request = [["get", k] for k in KEYS]
    final += [["list", p] for p in PREFIXES]
    shared_pair.one(final, cid)
    # And the other consortium's state was never disturbed.
    shared_pair.one(final, "acme")
