"""Consortium-wide settings: setRecoveryThreshold, setAnalyticsPolicy, setPlatformPolicy.

Each replaces one setting of the constitution and publishes it to every member under its
governance key (``GOV_RECOVERY``, ``GOV_ANALYTICS``, ``GOV_PLATFORM``).
"""

from __future__ import annotations

from dataclasses import replace

from consortia._json import JSON, JSONObject, require_fields
from consortia.engine.builtins.spec import Builtin, CheckContext
from consortia.engine.consortium import GOV_ANALYTICS, GOV_PLATFORM, GOV_RECOVERY
from consortia.engine.execution import Execution
from consortia.errors import ActionFailed
from consortia.governance.analytics_policy import AnalyticsPolicy, parse_analytics_policy
from consortia.governance.constitution import Constitution
from consortia.governance.platform_policy import PlatformPolicy

__all__ = ["SET_ANALYTICS_POLICY", "SET_PLATFORM_POLICY", "SET_RECOVERY_THRESHOLD"]


# -- setRecoveryThreshold ---------------------------------------------------------------------


def _threshold(c: Constitution, params: JSONObject) -> int | None:
    require_fields(params, what="params", required=("threshold",))
    threshold = params["threshold"]
    if threshold is None:
        return None
    active = len(c.active_ids())
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ActionFailed("params.threshold must be a positive integer, or null for a majority")
    if threshold > active:
        raise ActionFailed(
            f"params.threshold {threshold} exceeds the {active} active members who hold shares"
        )
    return threshold


def _threshold_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    _threshold(c, params)


def _threshold_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    threshold = _threshold(ex.constitution, params)
    ex.constitution = replace(ex.constitution, recovery_threshold=threshold)
    ex.put_everyone(GOV_RECOVERY, {"threshold": threshold})
    holders = len(ex.constitution.active_ids())
    return {"threshold": threshold, "effective": ex.constitution.recovery_threshold_for(holders)}


# -- setAnalyticsPolicy -----------------------------------------------------------------------


def _analytics_policy(c: Constitution, params: JSONObject) -> AnalyticsPolicy:
    policy = parse_analytics_policy(params, what="params")
    for action in policy.grants:
        if action not in c.actions:
            raise ActionFailed(f"params.grants names {action!r}, which is not an action")
    roles = {r for m in c.members for r in c.roles_of(m)}
    named = list(policy.insights_full)
    if policy.alert_to != "all":
        named += policy.alert_to
    for entry in named:
        if entry not in c.members and entry not in roles:
            raise ActionFailed(
                f"params names {entry!r}, which is neither a member id nor a role "
                f"of a member; roles here: {', '.join(sorted(roles)) or 'none'}"
            )
    return policy


def _analytics_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    _analytics_policy(c, params)


def _analytics_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    policy = _analytics_policy(ex.constitution, params)
    ex.constitution = replace(ex.constitution, analytics=policy)
    ex.put_everyone(GOV_ANALYTICS, policy.to_json())
    return {"analytics": policy.to_json()}


# -- setPlatformPolicy ------------------------------------------------------------------------
#
# The whole policy is replaced. A policy that rejects the TEP it is proposed or executed on is
# accepted on purpose: that is how an upgrade is voted (list the new build's measurement, then
# drop the old one). From its commit on, a TEP the policy rejects refuses to serve the
# consortium (Platform.execute_batch, Platform.reader); the commit itself stands.


def _platform_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    PlatformPolicy.from_params(params)


def _platform_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    policy = PlatformPolicy.from_params(params)
    ex.constitution = replace(ex.constitution, platform_policy=policy)
    ex.put_everyone(GOV_PLATFORM, policy.to_json())
    return {"platform_policy": policy.to_json()}


SET_RECOVERY_THRESHOLD = Builtin(_threshold_check, _threshold_run)
SET_ANALYTICS_POLICY = Builtin(_analytics_check, _analytics_run)
SET_PLATFORM_POLICY = Builtin(_platform_check, _platform_run)
