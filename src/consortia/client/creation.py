"""Creating a consortium (PROTOCOL.md section 8): the operator's one request to a TEP."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from consortia._json import JSONObject
from consortia.client._transport import ServiceUnreachable
from consortia.client.attest import Attested, Trust
from consortia.client.service import JOSE, open_service, send
from consortia.identity.keys import SigningKey
from consortia.wire import sign_creation

__all__ = ["create_consortium"]


async def create_consortium(
    url: str,
    operator: SigningKey,
    *,
    consortium: str,
    name: str,
    members: Sequence[JSONObject],
    template: str = "default",
    fingerprint: str | None = None,
    insecure: bool = False,
    trust: Trust | None = None,
    on_attested: Callable[[Attested], None] | None = None,
) -> JSONObject:
    """PROTOCOL.md section 8: create a consortium with an operator key the server trusts
    (after attesting the TEP, as :func:`open_service`; ``on_attested`` hears the verdict
    before the request is sent)."""
    body = sign_creation(
        operator,
        consortium=consortium,
        name=name,
        members=members,
        now=int(time.time()),
        template=template,
    )
    http, _, attested = await open_service(
        url, fingerprint=fingerprint, insecure=insecure, trust=trust
    )
    if on_attested is not None:
        on_attested(attested)
    try:
        answer = await send(
            http, "POST", "/v1/consortia", content=body, headers={"content-type": JOSE}
        )
    finally:
        await http.aclose()
    if not isinstance(answer, dict):
        raise ServiceUnreachable("the creation answer is not a JSON object")
    return answer
