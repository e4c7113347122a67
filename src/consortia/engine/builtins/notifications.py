"""sendNotifications: a deliberate ``notice`` carrying ``body`` to the members named.

The notices are staged through :meth:`~consortia.engine.execution.Execution.notify`, which
refuses a name that is not an active member.
"""

from __future__ import annotations

from consortia._json import JSON, JSONObject, require_fields
from consortia.engine.builtins.spec import Builtin, CheckContext
from consortia.engine.execution import Execution
from consortia.errors import ActionFailed
from consortia.governance.constitution import Constitution

__all__ = ["SEND_NOTIFICATIONS"]


def _send_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    require_fields(params, what="params", required=("members", "body"))


def _send_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    members = params["members"]
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise ActionFailed("params.members must be a list of member ids and role:NAME entries")
    named = [str(m) for m in members]
    ex.notify(named, params["body"])
    return {"notified": len(ex.constitution.expand(named))}


SEND_NOTIFICATIONS = Builtin(_send_check, _send_run)
