"""The floor under ``bench/http_load.py``: what an HTTPS POST and an Ed25519 check cost here.

Serves the trivial apps of ``bench/_floor_app.py`` (read the body, answer ``{}``: no parsing,
no signature check, no storage) over TLS with uvicorn (as ``consortia serve`` runs it:
httptools, uvloop) and, when it is installed, granian (Rust HTTP and TLS, one worker), and
drives each with ``bench/loadgen.py`` at saturation with the same signed bodies the real
benchmark sends. It also times PyNaCl's Ed25519 verify in this process.

From those it prints the CPU every request costs before any action work: server + load
generator + one signature check. Two cores divided by that is the most actions per second
this machine could commit with an action that does nothing at all, whichever engine sits
behind the HTTP stack.

Usage: python bench/http_floor.py [--requests N] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nacl.signing

from consortia.identity.keys import MemberKeys
from consortia.server.tls import ensure_self_signed
from consortia.wire import sign_action

HERE = Path(__file__).resolve().parent
PY = sys.executable
CORES = os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


def server_command(stack: str, app: str, port: int, cert: Path, key: Path) -> list[str]:
    if stack == "uvicorn":
        return [
            PY, "-m", "uvicorn", f"_floor_app:{app}", "--app-dir", str(HERE),
            "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
            "--http", "httptools", "--loop", "uvloop", "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
    return [
        PY, "-m", "granian", "--interface", "asgi", "--http", "1", "--no-ws",
        "--workers", "1", "--port", str(port), "--ssl-certificate", str(cert),
        "--ssl-keyfile", str(key), "--no-access-log", "--log-level", "warning",
        f"_floor_app:{app}",
    ]  # fmt: skip


def drive(stack: str, app: str, requests: Path, tls: tuple[Path, Path]) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        server_command(stack, app, port, *tls),
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, server)
        time.sleep(0.5)  # granian's worker comes up after the listener
        cmd = [
            PY, str(HERE / "loadgen.py"), "--file", str(requests), "--port", str(port),
            "--server-pid", str(server.pid), "--rate", "0", "--conns", "64",
            "--duration", "20",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)  # noqa: S603
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    raw: dict[str, Any] = json.loads(done.stdout)
    n = raw["completed"]
    ok = sum(c.get("200", 0) for c in raw["statuses"].values())
    return {
        "stack": stack,
        "app": app,
        "ok_per_s": ok / raw["wall_s"],
        "failed": n - ok + raw["errors"],
        "server_us_per_req": raw["server_cpu_s"] / max(n, 1) * 1e6,
        "loadgen_us_per_req": raw["loadgen_cpu_s"] / max(n, 1) * 1e6,
    }


def verify_us(body: bytes, rounds: int = 4000) -> float:
    key = nacl.signing.SigningKey.generate()
    signed = key.sign(body)
    verifier = key.verify_key
    start = time.perf_counter()
    for _ in range(rounds):
        verifier.verify(signed)
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "http_floor.json")
    args = parser.parse_args()
    keys = MemberKeys.generate("m0")
    stacks = ["uvicorn"] + (["granian"] if importlib.util.find_spec("granian") else [])
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, _ = ensure_self_signed(Path(tmp), "127.0.0.1")
        requests = Path(tmp) / "requests.jsonl"
        body = ""
        with requests.open("w", encoding="ascii") as f:
            for i in range(args.requests):
                body = sign_action(
                    keys,
                    consortium="c0",
                    action="sendNotifications",
                    params={"members": ["m0"], "body": {"i": i}},
                    now=int(time.time()),
                )
                raw_request = (
                    "POST /v1/consortia/c0/actions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: application/jose\r\nContent-Length: {len(body)}\r\n\r\n{body}"
                )
                f.write(json.dumps(["post", raw_request]) + "\n")
        rows = [drive(s, app, requests, (cert, key)) for s in stacks for app in ("raw", "star")]
    verify = verify_us(body.encode("ascii"))
    print(f"trivial POST over TLS, 64 keep-alive connections, {CORES} cores shared")
    header = (
        f"{'stack':9} {'app':5} {'ok/s':>7} {'srv us':>7} {'gen us':>7} {'floor us':>9} "
        f"{'max/s':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        floor = row["server_us_per_req"] + row["loadgen_us_per_req"] + verify
        row["floor_us_with_verify"] = floor
        row["max_actions_per_s"] = CORES * 1e6 / floor
        print(
            f"{row['stack']:9} {row['app']:5} {row['ok_per_s']:7.0f} "
            f"{row['server_us_per_req']:7.0f} {row['loadgen_us_per_req']:7.0f} "
            f"{floor:9.0f} {row['max_actions_per_s']:7.0f}"
        )
    print(
        f"Ed25519 verify (PyNaCl): {verify:.0f} us. floor = server + load generator + one "
        f"verify, CPU per request; max/s = {CORES} cores / floor, with an action that does "
        "nothing"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"verify_us": verify, "cores": CORES, "rows": rows}, indent=1),
        encoding="utf-8",
    )
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
