"""A platform served on a free loopback port in a background thread, always stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from consortia import MemberKeys, Platform, SigningKey, sign_action, sign_creation
from consortia._json import JSONObject
from consortia.attestation.providers import PlatformProvider
from consortia.identity.jwt import issue_token
from consortia.server import Limits, running_platform
from consortia.server.run import ServerConfig, ServerThread
from consortia.wire import sign_operator_token

FOUNDERS = ("telco", "vendor", "installer")
JOSE = {"content-type": "application/jose"}
ORDER_CODE = """
def main(params):
    key = "order/" + params["order"]
    put(key, {"status": params["status"], "by": caller()})
    notify(visible_to(), {"order": params["order"], "status": params["status"]})
    return {"key": key, "status": params["status"]}
"""


@dataclass
class Served:
    """The running server, an httpx client on it, and the members' keys."""

    url: str
    http: httpx.Client
    platform: Platform
    operator: SigningKey
    thread: ServerThread
    keys: dict[str, MemberKeys] = field(default_factory=dict)
    cid: str = "acme"

    def signed(self, member: str, action: str, params: JSONObject, **kw: Any) -> str:
        return sign_action(
            self.keys[member],
            consortium=self.cid,
            action=action,
            params=params,
            now=int(time.time()),
            **kw,
        )

    def act(self, member: str, action: str, params: JSONObject, **kw: Any) -> httpx.Response:
        return self.http.post(
            f"/v1/consortia/{self.cid}/actions",
            headers=JOSE,
            content=self.signed(member, action, params, **kw),
        )

    def auth(self, member: str) -> dict[str, str]:
        token = issue_token(self.keys[member], audience=self.cid, now=int(time.time()))
        return {"authorization": f"Bearer {token}"}

    def read(self, member: str, tail: str, **params: str) -> httpx.Response:
        return self.http.get(
            f"/v1/consortia/{self.cid}/{tail}", params=params, headers=self.auth(member)
        )

    def metrics(self) -> httpx.Response:
        token = sign_operator_token(self.operator, audience="metrics", now=int(time.time()))
        return self.http.get("/metrics", headers={"authorization": f"Bearer {token}"})

    def create(self, members: tuple[str, ...] = FOUNDERS) -> None:
        for m in members:
            self.keys.setdefault(m, MemberKeys.generate(m))
        body = sign_creation(
            self.operator,
            consortium=self.cid,
            name="Acme",
            now=int(time.time()),
            members=[self.keys[m].public_info() for m in members],
        )
        answer = self.http.post("/v1/consortia", headers=JOSE, content=body)
        assert answer.status_code == 201, answer.text

    def vote_in_order_action(self) -> None:
        amend: JSONObject = {
            "name": "recordOrder",
            "scope": "public",
            "language": "starlark",
            "code": ORDER_CODE,
            "permissions": [{"member": m, "execute": True} for m in self.keys],
            "voting": {"voters": "any", "majority": 1, "veto": []},
        }
        pending = self.act("telco", "amendConstitution", amend)
        assert pending.status_code == 202, pending.text
        vote = {"proposal": pending.json()["proposal"], "ballot": "approve"}
        assert self.act("vendor", "voteFor", vote).status_code == 200


@contextmanager
def serve(
    tmp: Path,
    limits: Limits | None = None,
    tls: tuple[Path, Path] | None = None,
    provider: PlatformProvider | None = None,
    data: Path | None = None,
) -> Iterator[Served]:
    """A created consortium ``acme`` of three founders, served until the block ends.

    ``provider`` attests the server (default: virtual); ``data`` reopens an existing
    platform folder (default: a new one in ``tmp``, with the consortium created)."""
    operator = SigningKey.generate()
    running = None if provider is None else running_platform(provider)
    fresh = data is None
    platform = Platform.open(
        data or tmp / "tep", operator_keys=[operator.verify_key], running=running
    )
    config = ServerConfig(
        port=0,
        tls=tls,
        limits=limits or Limits(),
        access_log=False,
        log_level="warning",
        provider=provider,
    )
    thread = ServerThread(platform, config).start()
    # The harness client checks nothing of TLS: the SDK tests pin the certificate themselves.
    http = httpx.Client(base_url=thread.url, timeout=httpx.Timeout(10, read=20), verify=False)  # noqa: S501
    try:
        served = Served(thread.url, http, platform, operator, thread)
        if fresh:
            served.create()
        yield served
    finally:
        http.close()
        thread.stop()
        platform.close()
