"""The member's side of disaster recovery: keep the newest share, submit it to a recovering TEP.

Before a disaster (the TEP runs): :func:`fetch_share_notice` finds this member's newest
``recovery_share`` notice, whose ``sealed`` share only this member's key opens, so the notice
may be kept in a file (``consortia recovery save``). After one (the TEP lost its node key and
its operator serves the storage in recovery mode): :func:`share_submission` opens the share
and signs it, :func:`submit_recovery_share` sends it and answers the progress, and
:func:`recovery_status` reads the progress (docs/protocol-notes.md, "Disaster recovery").

Wire-format only: the share opening and signing come from :mod:`consortia.ledger.recovery`,
pure code beside the record logic that import-linter lets this module (alone) use.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

from consortia._json import JSON, JSONObject
from consortia.client._transport import ServiceUnreachable
from consortia.client.member import MemberClient
from consortia.client.service import connect as _connect
from consortia.client.service import send as _send
from consortia.errors import BadRequest
from consortia.identity.keys import MemberKeys
from consortia.ledger.recovery import open_share, sign_holder_proof, sign_submission
from consortia.wire import JOSE_MEDIA_TYPE

__all__ = [
    "SHARE_EVENT",
    "fetch_share_notice",
    "holder_proof",
    "newest_share_notice",
    "recovery_status",
    "share_submission",
    "submit_recovery_share",
]

#: ``event`` of the notice body that carries a recovery share.
SHARE_EVENT: Final = "recovery_share"
JOSE: Final = JOSE_MEDIA_TYPE


def _is_share_notice(body: JSON, consortium: str | None) -> bool:
    return (
        isinstance(body, dict)
        and body.get("event") == SHARE_EVENT
        and isinstance(body.get("epoch"), int)
        and isinstance(body.get("sealed"), str)
        and (consortium is None or body.get("consortium") == consortium)
    )


def newest_share_notice(bodies: Iterable[JSON], consortium: str | None = None) -> JSONObject:
    """The share notice of the highest epoch among opened notification bodies.

    Without ``consortium``, the bodies must all be of one consortium; raises ``bad_request``
    when there is no share notice, or when several consortia leave the choice open.
    """
    found = [b for b in bodies if isinstance(b, dict) and _is_share_notice(b, consortium)]
    if not found:
        where = f" of consortium {consortium!r}" if consortium else ""
        raise BadRequest(
            f"no recovery share notice{where} found (a notice whose body has "
            f'"event": "{SHARE_EVENT}"); members receive one whenever shares are issued'
        )
    consortia = sorted({str(b.get("consortium")) for b in found})
    if len(consortia) > 1:
        raise BadRequest(f"recovery shares of several consortia ({', '.join(consortia)}): name one")
    return max(found, key=lambda b: int(str(b["epoch"])))


def share_submission(keys: MemberKeys, notice: JSON) -> str:
    """Open the share in a ``recovery_share`` notice body and sign it for a recovering TEP.

    The result (a compact JWS, ``typ`` ``consortia-recovery-share``) holds the share in
    clear: send it only over TLS to the recovering TEP, and never log it.
    """
    if not _is_share_notice(notice, None) or not isinstance(notice, dict):
        raise BadRequest(
            f'not a recovery share notice: expected a body with "event": "{SHARE_EVENT}", '
            'an integer "epoch" and a "sealed" share'
        )
    share = open_share(str(notice["sealed"]), keys)
    if share.cid != notice.get("consortium") or share.epoch != notice.get("epoch"):
        raise BadRequest("the sealed share does not belong to the notice around it")
    return sign_submission(keys, share)


async def fetch_share_notice(client: MemberClient) -> JSONObject:
    """The newest recovery share notice in this member's queue of the client's consortium."""
    bodies: list[JSON] = []
    after = 0
    while True:
        page = await client.notification_page(after=after)
        if not page:
            break
        bodies += [n.body for n in page if n.kind == "notice"]
        after = page[-1].id
    return newest_share_notice(bodies, client.consortium)


def _progress(answer: JSON, what: str) -> JSONObject:
    if not isinstance(answer, dict) or not isinstance(answer.get("complete"), bool):
        raise ServiceUnreachable(f"{what} did not answer a recovery progress document")
    return answer


def holder_proof(keys: MemberKeys, notice: JSON) -> str:
    """A token proving this member holds the share in ``notice`` (the share is not in it).

    Sent as the bearer token of :func:`recovery_status`, it adds the progress of the
    member's own consortium; a recovering TEP names no consortium to anyone else.
    """
    if not _is_share_notice(notice, None) or not isinstance(notice, dict):
        raise BadRequest(f'not a recovery share notice (a body with "event": "{SHARE_EVENT}")')
    return sign_holder_proof(keys, open_share(str(notice["sealed"]), keys), now=int(time.time()))


async def recovery_status(
    url: str,
    *,
    proof: str | None = None,
    fingerprint: str | None = None,
    insecure: bool = False,
    timeout: float = 30.0,
) -> JSONObject:
    """``GET /v1/recovery``: ``{"complete","consortia","ready","service_key"}``, and with a
    :func:`holder_proof` also ``"consortium": {"consortium","received","threshold"}``."""
    headers = {} if proof is None else {"authorization": f"Bearer {proof}"}
    async with await _connect(url, fingerprint, insecure, timeout) as http:
        answer = await _send(http, "GET", "/v1/recovery", headers=headers)
    return _progress(answer, "GET /v1/recovery")


async def submit_recovery_share(
    url: str,
    submission: str,
    *,
    fingerprint: str | None = None,
    insecure: bool = False,
    timeout: float = 60.0,
) -> JSONObject:
    """``POST /v1/recovery/shares``: the progress of the submitter's consortium afterwards.

    A refusal raises its :class:`~consortia.errors.ConsortiaError` (``bad_signature``: not a
    holder; ``replay``: already received; ``bad_request``: a replaced epoch, or garbage).
    """
    async with await _connect(url, fingerprint, insecure, timeout) as http:
        answer = await _send(
            http,
            "POST",
            "/v1/recovery/shares",
            content=submission,
            headers={"content-type": JOSE},
        )
    return _progress(answer, "POST /v1/recovery/shares")
