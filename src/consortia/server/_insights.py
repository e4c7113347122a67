"""``GET /v1/consortia/{cid}/insights``: the analytics insights one member may see, remotely.

The member authenticates with its bearer JWT like every other read (PROTOCOL.md section 4);
the constitution then decides the view (:func:`consortia.analytics.insights.viewer_for`), so
``insights_full`` and ``alert_to`` hold over the wire as they do on the operator's host.
The answer is the document ``consortia insights --json`` prints.

The figures come from the platform's own analytics sink: it is flushed, then its DuckDB
store is read through the backend and under the lock its writes take, on a worker thread
and outside the consortium's lock, so a slow query holds neither a commit nor the sink
(the sink only queues). A store held by another process answers ``unavailable`` with
``Retry-After``; a platform without analytics answers ``not_found``.

Wiring the route registers the Telco pack's insights plug with analytics
(:func:`~consortia.telco.insights.register_telco_insights`), so the document carries its
orders and stock.
"""

from __future__ import annotations

import asyncio
import math
import re

from starlette.requests import Request
from starlette.responses import Response

from consortia.analytics.insights import sink_insights
from consortia.engine import Platform
from consortia.errors import BadRequest, NotFound
from consortia.governance.constitution import Constitution
from consortia.server._http import Handler, bearer, consortium_id, endpoint, json_response, query
from consortia.server._lanes import Sequencer
from consortia.telco.insights import register_telco_insights

__all__ = ["MAX_BUCKET", "insights_endpoint"]

#: The largest time bucket a caller may ask for: a year.
MAX_BUCKET = 366 * 86400
_INT = re.compile(r"[0-9]{1,12}")
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
# One insights query at a time per process: they are scans, and they share the sink's lock.
_QUERIES = 1


def _bucket(value: str | None) -> int | None:
    if value is None:
        return None
    if _INT.fullmatch(value) is None or not 1 <= int(value) <= MAX_BUCKET:
        raise BadRequest(
            f"'bucket' must be a whole number of seconds from 1 to {MAX_BUCKET}, not {value[:40]!r}"
        )
    return int(value)


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    if _NUMBER.fullmatch(value) is None or not math.isfinite(float(value)):
        raise BadRequest(
            f"'since' must be unix seconds (e.g. 1764000000 or 1764000000.5), not {value[:40]!r}"
        )
    return float(value)


def insights_endpoint(sequencer: Sequencer, platform: Platform) -> Handler:
    """The route handler, bound to the app's sequencer and platform.

    Registers the Telco insights plug: the served insights carry its section.
    """
    register_telco_insights()
    gate = asyncio.Semaphore(_QUERIES)

    @endpoint
    async def insights(request: Request) -> Response:
        params = query(request, ("bucket", "since"))
        bucket, since = _bucket(params.get("bucket")), _since(params.get("since"))
        cid = consortium_id(request)
        token = bearer(request)

        def who() -> tuple[str, Constitution]:
            # Authenticate under the consortium's lock, like every read: the member's key
            # and the constitution are those of the same committed state.
            view = platform.reader(cid, token)
            return view.member, platform.runtime(cid).constitution

        member, constitution = await sequencer.call(cid, who)
        sink = platform.analytics
        if sink is None:
            raise NotFound(
                "analytics is off on this platform (it was opened without an analytics "
                "sink), so there are no insights to show"
            )
        async with gate:
            doc = await asyncio.to_thread(
                sink_insights, sink, constitution, cid, member, bucket_s=bucket, since=since
            )
        return json_response(doc)

    return insights
