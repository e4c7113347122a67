"""Signed actions over HTTPS against a real server: ``make bench`` (short) or ``make bench-full``.

Starts ``bench/bench_server.py`` (the real app: uvicorn, TLS, embedded SQLite, group commit,
the sandbox in its default process isolation unless ``--isolation inline``) and a second one
in ``--ceiling`` mode (same HTTP stack, parsing and Ed25519 check, then an empty action that
stores nothing). Creates consortia and members over HTTP, pre-signs every request with a
fresh nonce, and drives each scenario from ``bench/loadgen.py`` in a separate process. Prints
a table (committed actions/s, latency percentiles, CPU per side, share of the ceiling) and
writes every figure to a JSON file.

Scenarios:
  ceiling      the empty action (signature check only), 1 consortium, saturation
  builtin      sendNotifications (builtin): tx + nonce + notification, saturation
  builtin-batch  the same, 16 signed requests per HTTP request (POST .../actions/batch)
  builtin-10c  the same spread over 10 consortia
  telco        updateDeviceOrder (Starlark, Telco template), one device order each
  telco@half   the same offered at half the rate telco reached (open loop): latency
  telco-batch  the same, 16 per HTTP request
  hot          benchPut (Starlark) on one hot object
  many-small   benchPut on random objects of 10^3 loaded ones
  many-large   benchPut on random objects of 10^5 (short) or 10^6 (--full) loaded ones
  mix          60 % benchPut, 20 % GET object, 15 % sendNotifications, 5 % voteFor
  p99@1500     builtin offered at 1,500 actions/s (open loop): latency
  p99@300      the same at 300 actions/s, within this machine's capacity
  soak         (--soak S) builtin at 300/s for S seconds: server RSS over time

With ``--store URL`` (``postgresql://...``, an empty database) the real server keeps its
ledger in that PostgreSQL database instead of SQLite, and with ``--node ID`` as a cluster node
on it (``consortia serve --store URL --node ID``); the ceiling server stays embedded (it
stores nothing). Each row's ``store`` field says which ledger served it.

Usage: python bench/http_load.py [--full | --smoke] [--json PATH] [--only NAME ...] [--soak S]
                                 [--isolation process|inline] [--store URL [--node ID]]
With CONSORTIA_BENCH_PROFILE=DIR, py-spy samples the server during each run (DIR/<name>.txt,
collapsed stacks).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from consortia.identity.jwt import issue_token
from consortia.identity.keyfile import load_signing_key
from consortia.identity.keys import MemberKeys, SigningKey
from consortia.wire import batch_body, sign_action, sign_creation, sign_operator_token

HERE = Path(__file__).resolve().parent
PY = sys.executable
FOUNDERS = ("m0", "m1", "m2", "m3")
TELCO_ROLES = {"telco": "seller", "vendorA": "supplier", "acme": "customer"}
#: Requests per HTTP request in the batched scenarios (POST .../actions/batch).
BATCH = 16
#: Devices per Telco order (the demo's order has 2; 4 is a small business site).
DEVICES_PER_ORDER = 4
#: Set CONSORTIA_BENCH_PROFILE=DIR to run each server under py-spy (collapsed stacks in DIR).
PROFILE_DIR = os.environ.get("CONSORTIA_BENCH_PROFILE", "")
#: Picks benchmark keys and orders; seeded, so runs compare.
RNG = random.Random(7)  # noqa: S311 - nothing secret is drawn from it


@dataclass
class Server:
    """A bench server process and what the setup needs to reach it."""

    process: subprocess.Popen[str]
    url: str
    data: Path
    operator: SigningKey
    #: The ledger it serves from: ``sqlite`` or ``postgresql`` (``--store``).
    store: str = "sqlite"
    http: httpx.Client = field(init=False)
    #: Seconds from launching the process to its first answer (imports, open, TLS, bind).
    start_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, verify=False, timeout=120)  # noqa: S501

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def post(self, path: str, body: str) -> httpx.Response:
        return self.http.post(path, content=body, headers={"content-type": "application/jose"})


@contextmanager
def server(
    data: Path,
    *,
    ceiling: bool = False,
    isolation: str = "process",
    store: str | None = None,
    node: str | None = None,
) -> Iterator[Server]:
    """A bench server on a free port; SIGTERM at the end (kill if it will not stop).

    With ``store`` its ledger is in that PostgreSQL database, with ``node`` as a cluster node.
    """
    cmd = [PY, str(HERE / "bench_server.py"), "--data", str(data), "--isolation", isolation]
    if ceiling:
        cmd.append("--ceiling")
    if store is not None:
        cmd += ["--store", store]
    if node is not None:
        cmd += ["--node", node]
    began = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        line = process.stdout.readline() if process.stdout is not None else ""
        if not line.startswith("URL "):
            raise RuntimeError("the bench server did not start")
        found = Server(
            process,
            line.split()[1],
            data,
            load_signing_key(data / "operator.key.jwk"),
            store="sqlite" if store is None else "postgresql",
        )
        for _ in range(200):
            try:
                found.http.get("/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        found.start_s = time.perf_counter() - began
        yield found
        found.http.close()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_counters(srv: Server) -> dict[str, float]:
    """From ``/metrics``: the sandbox's counters (runs, round trips, restarts) and the
    actions committed (``committed``), which a batched run counts its actions by."""
    token = sign_operator_token(srv.operator, audience="metrics", now=int(time.time()))
    answer = srv.http.get("/metrics", headers={"authorization": f"Bearer {token}"})
    if answer.status_code != 200:
        raise RuntimeError(f"/metrics: {answer.status_code} {answer.text}")
    found = {}
    for line in answer.text.splitlines():
        if line.startswith("consortia_sandbox_") and "_total " in line:
            name, value = line.split()
            found[name.removeprefix("consortia_sandbox_").removesuffix("_total")] = float(value)
        elif line.startswith("consortia_actions_total{") and 'outcome="committed"' in line:
            found["committed"] = found.get("committed", 0.0) + float(line.split()[-1])
    return found


def create(
    srv: Server,
    cid: str,
    keys: dict[str, MemberKeys],
    template: str,
    roles: dict[str, str] | None = None,
) -> None:
    members = [
        {**k.public_info(), "info": {"role": roles[m]} if roles else {}} for m, k in keys.items()
    ]
    body = sign_creation(
        srv.operator,
        consortium=cid,
        name=cid,
        members=members,
        now=int(time.time()),
        template=template,
    )
    answer = srv.post("/v1/consortia", body)
    if answer.status_code != 201:
        raise RuntimeError(f"create {cid}: {answer.status_code} {answer.text}")


def act(
    srv: Server, cid: str, keys: MemberKeys, action: str, params: dict[str, Any], expect: int = 200
) -> dict[str, Any]:
    body = sign_action(keys, consortium=cid, action=action, params=params, now=int(time.time()))
    answer = srv.post(f"/v1/consortia/{cid}/actions", body)
    if answer.status_code != expect:
        raise RuntimeError(f"{action} on {cid}: {answer.status_code} {answer.text}")
    result: dict[str, Any] = answer.json()
    return result


def raw_post(cid: str, body: str) -> str:
    return (
        f"POST /v1/consortia/{cid}/actions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/jose\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )


def raw_batch(cid: str, bodies: Sequence[str]) -> str:
    body = batch_body(bodies).decode("ascii")
    return (
        f"POST /v1/consortia/{cid}/actions/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )


def batched(requests: Requests, size: int) -> Requests:
    """The same signed requests, ``size`` to an HTTP request (the batch endpoint)."""
    out: Requests = []
    for start in range(0, len(requests), size):
        chunk = requests[start : start + size]
        cid = chunk[0][1].split("/")[3]
        bodies = [raw.rsplit("\r\n\r\n", 1)[1] for _, raw in chunk]
        out.append((f"{chunk[0][0]} x{len(chunk)}", raw_batch(cid, bodies)))
    return out


def raw_get(path: str, token: str) -> str:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"


def signed(cid: str, keys: MemberKeys, action: str, params: dict[str, Any]) -> tuple[str, str]:
    body = sign_action(keys, consortium=cid, action=action, params=params, now=int(time.time()))
    return action, raw_post(cid, body)


# -- scenario builders: each returns the pre-signed requests --------------------------------

Requests = list[tuple[str, str]]


def notify_requests(
    cids: Sequence[str], keys: dict[str, MemberKeys], n: int, rate: float = 0
) -> Requests:
    """Signed sendNotifications; with ``rate``, each ``iat`` is its planned send time.

    The server refuses an ``iat`` more than 300 s away, so a run longer than that (the soak)
    dates each pre-signed request when it will be sent, not when it was signed.
    """
    out = []
    start = int(time.time()) + 10  # about when the load generator starts sending
    for i in range(n):
        member = FOUNDERS[i % len(FOUNDERS)]
        body = sign_action(
            keys[member],
            consortium=cids[i % len(cids)],
            action="sendNotifications",
            params={"members": [member], "body": {"i": i}},
            now=start + int(i / rate) if rate else int(time.time()),
        )
        out.append(("sendNotifications", raw_post(cids[i % len(cids)], body)))
    return out


def put_requests(
    cid: str, keys: dict[str, MemberKeys], n: int, key: Callable[[int], str]
) -> Requests:
    return [
        signed(cid, keys[FOUNDERS[i % len(FOUNDERS)]], "benchPut", {"key": key(i), "value": i})
        for i in range(n)
    ]


def fill(srv: Server, cid: str, keys: dict[str, MemberKeys], count: int) -> float:
    """Load ``count`` objects obj/0.. into ``cid`` through benchFill; the seconds it took."""
    chunk = 1000
    requests = [
        signed(
            cid,
            keys["m0"],
            "benchFill",
            {"prefix": "obj/", "start": start, "count": min(chunk, count - start)},
        )
        for start in range(0, count, chunk)
    ]
    return setup(srv, requests)


def setup(srv: Server, requests: Requests) -> float:
    """Send setup requests through the load generator (many at once); the seconds it took."""
    started = time.perf_counter()
    raw = drive(srv, requests, rate=0, conns=16, duration=3600, name="setup")
    refused = {k: c for k, c in raw["statuses"].items() if set(c) - {"200"}}
    if refused or raw["completed"] != len(requests):
        raise RuntimeError(f"setup refused: {refused}, {raw['completed']}/{len(requests)}")
    return time.perf_counter() - started


def telco_setup(srv: Server, cid: str, n: int) -> Requests:
    """A Telco consortium with ``n`` device orders of vendorA; one updateDeviceOrder each.

    Orders of :data:`DEVICES_PER_ORDER` devices: updateDeviceOrder reads every device order
    of its order to derive the order's state, so its cost grows with that number.
    """
    keys = {m: MemberKeys.generate(m) for m in TELCO_ROLES}
    create(srv, cid, keys, "telco", TELCO_ROLES)
    parties = [{"role": r, "partyId": m} for m, r in TELCO_ROLES.items() if m != "telco"]
    act(srv, cid, keys["telco"], "createProject", {"id": "P1", "relatedParty": parties})
    orders: Requests = []
    out: Requests = []
    for o in range((n + DEVICES_PER_ORDER - 1) // DEVICES_PER_ORDER):
        oid = f"PO{o}"
        devices = [
            {
                "id": f"D{d}",
                "part": "cpe-100",
                "supplier": "vendorA",
                "site": "HQ",
                "services": ["A"],
            }
            for d in range(DEVICES_PER_ORDER)
        ]
        orders.append(
            signed(
                cid,
                keys["telco"],
                "placeOrder",
                {
                    "id": oid,
                    "projectId": "P1",
                    "sites": [{"id": "HQ"}],
                    "services": [{"id": "A", "site": "HQ"}],
                    "devices": devices,
                },
            )
        )
        for d in range(DEVICES_PER_ORDER):
            out.append(
                signed(
                    cid,
                    keys["vendorA"],
                    "updateDeviceOrder",
                    {"productOrderId": oid, "device": f"D{d}", "state": "inProgress"},
                )
            )
    setup(srv, orders)
    RNG.shuffle(out)
    return out[:n]


def mix_setup(srv: Server, cid: str, keys: dict[str, MemberKeys], n: int) -> Requests:
    """60 % benchPut, 20 % GET object, 15 % sendNotifications, 5 % voteFor on open proposals."""
    fill(srv, cid, keys, 1000)
    votes = n // 20
    proposals = []
    for _ in range(votes):
        pending = act(
            srv,
            cid,
            keys["m0"],
            "updatePermissions",
            {
                "action": "benchPut",
                "permissions": [{"member": m, "execute": True} for m in FOUNDERS],
            },
            expect=202,
        )
        proposals.append(pending["proposal"])
    tokens = {
        m: issue_token(keys[m], audience=cid, now=int(time.time()), lifetime=600) for m in FOUNDERS
    }
    out: Requests = []
    for i in range(n):
        member = FOUNDERS[i % len(FOUNDERS)]
        slot = i % 20
        if slot < 12:
            out.append(
                signed(
                    cid,
                    keys[member],
                    "benchPut",
                    {"key": f"obj/{RNG.randrange(1000)}", "value": i},
                )
            )
        elif slot < 16:
            path = f"/v1/consortia/{cid}/object?key=obj%2F{RNG.randrange(1000)}"
            out.append(("GET object", raw_get(path, tokens["m0"])))  # m0 wrote them all
        elif slot < 19 or not proposals:
            out.append(
                signed(
                    cid,
                    keys[member],
                    "sendNotifications",
                    {"members": list(FOUNDERS), "body": {"i": i}},
                )
            )
        else:
            out.append(
                signed(
                    cid, keys["m1"], "voteFor", {"proposal": proposals.pop(), "ballot": "approve"}
                )
            )
    return out


# -- running and reporting ------------------------------------------------------------------


def drive(
    srv: Server, requests: Requests, *, rate: float, conns: int, duration: float, name: str = "run"
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for item in requests:
            f.write(json.dumps(item) + "\n")
    try:
        cmd = [
            PY,
            str(HERE / "loadgen.py"),
            "--file",
            f.name,
            "--port",
            str(srv.port),
            "--server-pid",
            str(srv.process.pid),
            "--rate",
            str(rate),
            "--conns",
            str(conns),
            "--duration",
            str(duration),
        ]
        spy = None
        if PROFILE_DIR and name != "setup":
            # Sample the server (and its sandbox executor) while the load runs.
            spy = subprocess.Popen(  # noqa: S603
                [
                    str(Path(PY).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(srv.process.pid),
                    "--subprocesses",
                    "--format",
                    "raw",
                    "--rate",
                    "250",
                    "--nonblocking",
                    "-o",
                    str(Path(PROFILE_DIR) / f"{name}.txt"),
                    "--duration",
                    str(int(duration)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)  # noqa: S603
        if spy is not None:
            spy.wait()
    finally:
        os.unlink(f.name)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(name: str, raw: dict[str, Any], *, open_loop: bool) -> dict[str, Any]:
    statuses: dict[str, dict[str, int]] = raw["statuses"]
    committed = sum(c.get("200", 0) for k, c in statuses.items() if not k.startswith("GET"))
    reads = sum(c.get("200", 0) for k, c in statuses.items() if k.startswith("GET"))
    ok = committed + reads
    wall = raw["wall_s"]
    latencies = raw["open_loop_ms"] if open_loop else raw["service_ms"]
    rss = raw["server_rss"] or [0]
    return {
        "scenario": name,
        "committed_per_s": committed / wall,
        "reads_per_s": reads / wall,
        "completed": raw["completed"],
        "refused": raw["completed"] - ok,
        "statuses": statuses,
        "latency": "open-loop" if open_loop else "service",
        "p50_ms": pct(latencies, 0.50),
        "p95_ms": pct(latencies, 0.95),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "server_cores": raw["server_cpu_s"] / wall,
        "loadgen_cores": raw["loadgen_cpu_s"] / wall,
        "server_cpu_us_per_op": 1e6 * raw["server_cpu_s"] / max(ok, 1),
        "server_rss_mb_first_last_max": [
            round(rss[0] / 2**20, 1),
            round(rss[-1] / 2**20, 1),
            round(max(rss) / 2**20, 1),
        ],
        # One sample every 30 s (the load generator samples each second): the soak's curve.
        "server_rss_mb_every_30s": [round(x / 2**20, 1) for x in rss[::30]],
        "wall_s": wall,
    }


def table(rows: list[dict[str, Any]], ceiling: float) -> str:
    head = (
        f"{'scenario':<14}{'ok/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'srv cpu':>9}{'gen cpu':>9}{'us/op':>8}{'ceiling':>9}{'refused':>9}{'trips':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        rate = r["committed_per_s"] + r["reads_per_s"]
        lines.append(
            f"{r['scenario']:<14}{rate:>9.0f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}{r['server_cores']:>9.2f}"
            f"{r['loadgen_cores']:>9.2f}{r['server_cpu_us_per_op']:>8.0f}"
            f"{(100 * rate / ceiling if ceiling else float('nan')):>8.0f}%{r['refused']:>9}"
            + (f"{trips:>7.1f}" if (trips := r.get("round_trips_per_run")) is not None else "")
        )
    return "\n".join(lines)


@dataclass
class Plan:
    """What one invocation runs: sizes, scenarios and where the figures go."""

    args: argparse.Namespace
    n: int
    duration: float
    large: int
    wanted: set[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def want(self, name: str) -> bool:
        return not self.wanted or name in self.wanted

    def run(
        self,
        srv: Server,
        name: str,
        requests: Requests,
        rate: float = 0,
        open_loop: bool = False,
        seconds: float | None = None,
        batched: int = 0,
    ) -> None:
        before = server_counters(srv)
        raw = drive(
            srv,
            requests,
            rate=rate,
            # Batched: a quarter of the connections still keeps 4x the actions in flight.
            conns=max(4, self.args.conns // 4) if batched else self.args.conns,
            duration=seconds or self.duration,
            name=name,
        )
        after = server_counters(srv)
        self.rows.append(summarize(name, raw, open_loop=open_loop))
        self.rows[-1]["store"] = srv.store
        if batched:
            # One HTTP answer carries many actions: count what the server says it committed.
            row = self.rows[-1]
            row["committed_per_s"] = (after["committed"] - before["committed"]) / row["wall_s"]
            row["actions_per_request"] = batched
        runs = after.get("runs", 0) - before.get("runs", 0)
        trips = after.get("round_trips", 0) - before.get("round_trips", 0)
        self.rows[-1]["sandbox_runs"] = runs
        # Host requests that crossed the executor's pipe per Starlark run (cache misses, calls).
        self.rows[-1]["round_trips_per_run"] = trips / runs if runs else None
        done = self.rows[-1]["committed_per_s"] + self.rows[-1]["reads_per_s"]
        print(f"  {name}: {done:.0f}/s", file=sys.stderr, flush=True)

    def ceiling(self, tmp: Path, founders: dict[str, MemberKeys]) -> None:
        with server(tmp / "ceiling", ceiling=True) as srv:
            create(srv, "c0", founders, "bench")
            self.run(srv, "ceiling", notify_requests(["c0"], founders, self.n))

    def scenarios(self, tmp: Path, founders: dict[str, MemberKeys]) -> None:
        n, large = self.n, self.large
        with server(
            tmp / "real", isolation=self.args.isolation, store=self.args.store, node=self.args.node
        ) as srv:
            cids = [f"b{i}" for i in range(10)]
            self.notes["server_start_s"] = srv.start_s
            for cid in cids:
                create(srv, cid, founders, "bench")
            if self.want("builtin"):
                self.run(srv, "builtin", notify_requests(["b0"], founders, n))
            if self.want("builtin-batch"):
                requests = batched(notify_requests(["b8"], founders, n), BATCH)
                self.run(srv, "builtin-batch", requests, batched=BATCH)
            if self.want("builtin-10c"):
                self.run(srv, "builtin-10c", notify_requests(cids, founders, n))
            if self.want("telco"):
                self.run(srv, "telco", telco_setup(srv, "telco", n // 2))
            if self.want("telco@half") and self.rows[-1]["scenario"] == "telco":
                # The latency target: Telco actions offered at half their measured capacity.
                rate = max(10.0, self.rows[-1]["committed_per_s"] / 2)
                requests = telco_setup(srv, "telco3", int(rate * self.duration))
                self.run(srv, "telco@half", requests, rate=rate, open_loop=True)
            if self.want("telco-batch"):
                requests = batched(telco_setup(srv, "telco2", n // 2), BATCH)
                self.run(srv, "telco-batch", requests, batched=BATCH)
            if self.want("hot"):
                self.run(srv, "hot", put_requests("b1", founders, n // 2, lambda i: "hot"))
            if self.want("many-small"):
                self.notes["fill_1e3_s"] = fill(srv, "b2", founders, 1000)
                keys = put_requests("b2", founders, n // 2, lambda i: f"obj/{RNG.randrange(1000)}")
                self.run(srv, "many-small", keys)
            if self.want("many-large"):
                self.notes[f"fill_{large}_s"] = fill(srv, "b3", founders, large)
                keys = put_requests("b3", founders, n // 2, lambda i: f"obj/{RNG.randrange(large)}")
                self.run(srv, "many-large", keys)
            if self.want("mix"):
                self.run(srv, "mix", mix_setup(srv, "b4", founders, n // 2))
            # The target's offered rate, and one within this machine's capacity.
            for rate, cid in ((1500, "b5"), (300, "b7")):
                if self.want(f"p99@{rate}"):
                    requests = notify_requests([cid], founders, int(rate * self.duration))
                    self.run(srv, f"p99@{rate}", requests, rate=rate, open_loop=True)
            if self.args.soak:
                soak = notify_requests(["b6"], founders, int(300 * self.args.soak), rate=300)
                self.run(srv, "soak", soak, rate=300, open_loop=True, seconds=self.args.soak)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer runs, 10^6 objects")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "http_load.json")
    parser.add_argument("--only", nargs="*", help="run only these scenarios (ceiling always)")
    parser.add_argument("--isolation", choices=("process", "inline"), default="process")
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of the RSS soak run")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="the real server's ledger in this (empty) PostgreSQL database, not SQLite",
    )
    parser.add_argument("--node", metavar="ID", help="with --store: serve as this cluster node")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the CI check's size: ceiling and builtin only, a few seconds",
    )
    args = parser.parse_args(argv)
    if args.node is not None and args.store is None:
        parser.error("--node needs --store postgresql://...")
    plan = Plan(
        args,
        n=30_000 if args.full else 1_500 if args.smoke else 6_000,
        duration=30.0 if args.full else 3.0 if args.smoke else 6.0,
        large=1_000_000 if args.full else 100_000,
        wanted={"builtin"} if args.smoke else set(args.only or []),
    )
    plan.notes = {
        "isolation": args.isolation,
        "full": args.full,
        "cpu_count": os.cpu_count(),
        "conns": args.conns,
        "store": "sqlite" if args.store is None else "postgresql",
        "node": args.node,
    }
    with tempfile.TemporaryDirectory(prefix="consortia-bench-") as tmp:
        founders = {m: MemberKeys.generate(m) for m in FOUNDERS}
        plan.ceiling(Path(tmp), founders)
        plan.scenarios(Path(tmp), founders)
    ceiling = plan.rows[0]["committed_per_s"]
    print(
        f"\nsigned actions over HTTPS, {args.conns} keep-alive connections, sandbox "
        f"isolation {args.isolation!r}, {os.cpu_count()} cores shared by server and load "
        "generator, ledger in "
        + ("SQLite" if args.store is None else "PostgreSQL")
        + (f" (cluster node {args.node})" if args.node else "")
    )
    print(
        "ok/s: committed actions (and reads) per second; latency: service time, open-loop "
        "for rate-limited runs; cpu in cores; us/op: server CPU per request; ceiling: share "
        "of the empty-action run"
    )
    print(table(plan.rows, ceiling))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "notes": plan.notes,
                "ceiling_per_s": ceiling,
                "rows": plan.rows,
                "time": int(time.time()),
            },
            indent=1,
        )
    )
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
