"""Cost per call of a small action (one get, one put, a return), inline vs process.

Run: ``python -m consortia.sandbox._bench [--calls 2000]``. Prints the median and 90th
percentile per call for a builtin (plain Python) action against the same host, for the
sandbox in each isolation mode, and for a bare starlark-pyo3 call for reference.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import starlark as sl

from consortia._json import JSON, JSONObject
from consortia.sandbox.host import CallTarget
from consortia.sandbox.runtime import ActionRuntime

SMALL_ACTION = """
def main(params):
    order = get("orders/" + params["id"])
    put("orders/" + params["id"], {"state": params["state"], "previous": order})
    return {"ok": True}
"""


class _DictHost:
    """The cheapest possible Host, so the figures show the sandbox, not the host."""

    def __init__(self) -> None:
        self.state: dict[str, JSON] = {"orders/1": {"state": "new"}}

    def caller(self) -> str:
        return "alice"

    def txid(self) -> str:
        return "00"

    def now(self) -> int:
        return 0

    def visible_to(self) -> list[str]:
        return []

    def members(self) -> list[str]:
        return ["alice"]

    def get(self, key: str) -> JSON:
        return self.state.get(key)

    def exists(self, key: str) -> bool:
        return key in self.state

    def put(self, key: str, value: JSON, visible_to: list[str] | None) -> None:
        self.state["last"] = value

    def delete(self, key: str) -> None:
        self.state.pop(key, None)

    def list_keys(self, prefix: str) -> list[str]:
        return []

    def notify(self, members: list[str], body: JSON) -> None:
        return None

    def resolve_call(self, action: str) -> CallTarget:
        raise NotImplementedError

    def call_builtin(self, action: str, params: JSONObject) -> JSON:
        raise NotImplementedError


def _builtin(host: _DictHost, params: JSONObject) -> JSON:
    key = f"orders/{params['id']}"
    order = host.get(key)
    host.put(key, {"state": params["state"], "previous": order}, None)
    return {"ok": True}


def _measure(call: Callable[[], object], calls: int) -> tuple[float, float]:
    for _ in range(min(200, calls)):
        call()  # warm caches (and the executor)
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples), statistics.quantiles(samples, n=10)[-1]


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    calls = parser.parse_args().calls
    params: JSONObject = {"id": "1", "state": "shipped"}
    rows: list[tuple[str, float, float]] = []

    host = _DictHost()
    rows.append(("builtin Python action", *_measure(lambda: _builtin(host, params), calls)))

    module = sl.Module()
    sl.eval(module, sl.parse("bare.star", "def main(p):\n    return p\n"), sl.Globals.standard())
    frozen = module.freeze()
    rows.append(("bare starlark-pyo3 call", *_measure(lambda: frozen.call("main", 1), calls)))

    for isolation in ("inline", "process"):
        with ActionRuntime(isolation=isolation) as runtime:
            action = runtime.compile("small", SMALL_ACTION)
            label = f"sandbox, {isolation} (get+put+return)"
            run = functools.partial(runtime.run, action, params, host)
            rows.append((label, *_measure(run, calls)))

    print(f"{calls} calls each; µs per call")
    print(f"{'':42} {'median':>8} {'p90':>8}")
    for label, median, p90 in rows:
        print(f"{label:42} {median:8.1f} {p90:8.1f}")


if __name__ == "__main__":
    main()
