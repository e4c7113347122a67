"""The analytics sink's cost on the commit path: ``make bench`` (or run this file).

Two platforms in one process run the same group-commit workload: one with analytics off,
one with the default sink on (bounded buffer → DuckDB file, misuse detector watching). The
requests (a Starlark action writing one object each, plus a member read per request) are
signed before the clock starts, both sides warm up first (the detector's model library
loads at the first event), and the rounds alternate off/on so both see the same machine.
Prints the throughput of each, their ratio, the extra cost per request, and the sink's own
counters (emitted / written / dropped), which must add up.

Usage: python bench/analytics_sink.py [--requests N] [--batch B] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from consortia import MemberKeys, Platform, SigningKey, sign_action
from consortia._json import JSONObject
from consortia.wire import sign_creation

CID = "bench"
FOUNDERS = ("telco", "vendor", "installer")
CODE = """
def main(params):
    put("order/" + params["id"], {"qty": params["qty"], "by": caller()})
    return {"ok": True}
"""


class Side:
    """One platform of the comparison, with its consortium and the action voted in."""

    def __init__(self, data: Path, analytics: bool) -> None:
        self.operator = SigningKey.generate()
        self.platform = Platform.open(
            data, operator_keys=[self.operator.verify_key], analytics=analytics
        )
        self.keys = {m: MemberKeys.generate(m) for m in FOUNDERS}
        now = int(time.time())
        self.platform.create_consortium(
            sign_creation(
                self.operator,
                consortium=CID,
                name="bench",
                now=now,
                members=[k.public_info() for k in self.keys.values()],
            )
        )
        amend: JSONObject = {
            "name": "record",
            "scope": "public",
            "language": "starlark",
            "code": CODE,
            "permissions": [{"member": m, "execute": True} for m in FOUNDERS],
            "voting": {"voters": "any", "majority": 1, "veto": []},
        }
        pending = self.platform.execute(CID, self.sign("telco", "amendConstitution", amend))
        self.platform.execute(
            CID, self.sign("vendor", "voteFor", {"proposal": pending.txid, "ballot": "approve"})
        )
        self.serial = 0

    def sign(self, member: str, action: str, params: JSONObject) -> str:
        return sign_action(
            self.keys[member], consortium=CID, action=action, params=params, now=int(time.time())
        )

    def bodies(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            self.serial += 1
            member = FOUNDERS[self.serial % 3]
            out.append(self.sign(member, "record", {"id": f"O{self.serial}", "qty": 1}))
        return out

    def run(self, bodies: list[str], batch: int) -> float:
        """Seconds to execute ``bodies`` in group commits of ``batch``, one read each."""
        views = {m: self.platform.member_view(CID, m) for m in FOUNDERS}
        started = time.perf_counter()
        for start in range(0, len(bodies), batch):
            answers = self.platform.execute_batch(CID, bodies[start : start + batch])
            for index, answer in enumerate(answers):
                if isinstance(answer, Exception):
                    raise answer
                serial = self.serial - len(bodies) + start + index + 1
                views[FOUNDERS[serial % 3]].object(f"order/O{serial}")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--batch", type=int, default=100, help="requests per group commit")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consortia-bench-") as tmp:
        sides = {
            "off": Side(Path(tmp) / "off", analytics=False),
            "on": Side(Path(tmp) / "on", analytics=True),
        }
        times: dict[str, list[float]] = {"off": [], "on": []}
        try:
            # Warm-up: the detector's model library loads on the sink's thread at the first
            # event (over a second of imports); that is start-up, not the cost per request.
            for side in sides.values():
                side.run(side.bodies(200), args.batch)
            warm = getattr(sides["on"].platform.analytics, "flush", None)
            if callable(warm):
                warm(60.0)
            for _ in range(args.rounds):
                for name, side in sides.items():
                    bodies = side.bodies(args.requests)
                    times[name].append(side.run(bodies, args.batch))
            sink = sides["on"].platform.analytics
            flushed = getattr(sink, "flush", None)
            drained = flushed(60.0) if callable(flushed) else True
            stats = sides["on"].platform.analytics_stats()
        finally:
            for side in sides.values():
                side.platform.close()
    # Each request is one write and one read: two events with the sink on.
    per_round = args.requests
    rate = {name: per_round / statistics.median(ts) for name, ts in times.items()}
    extra_us = (statistics.median(times["on"]) - statistics.median(times["off"])) / per_round * 1e6
    print(
        f"analytics sink: {args.rounds} rounds of {per_round} requests "
        f"(1 write + 1 read each), group commits of {args.batch}"
    )
    print(f"  sink off: {rate['off']:8.0f} req/s (median round)")
    print(f"  sink on : {rate['on']:8.0f} req/s (median round)")
    print(f"  on/off  : {rate['on'] / rate['off']:8.3f}   extra per request: {extra_us:+.1f} µs")
    if stats is not None:
        print(
            f"  sink counters: emitted {stats.emitted}, written {stats.written}, "
            f"dropped {stats.dropped}, queued {stats.queued}, alerts {stats.alerts} "
            f"(drained: {drained})"
        )


if __name__ == "__main__":
    main()
