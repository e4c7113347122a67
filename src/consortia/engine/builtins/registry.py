"""The registry of base actions: name to :class:`~consortia.engine.builtins.spec.Builtin`.

The order is that of PROTOCOL.md section 7 (and of ``BASE_ACTIONS``); keep it when adding one.
"""

from __future__ import annotations

from consortia.engine.builtins.actions import AMEND_CONSTITUTION, UPDATE_PERMISSIONS
from consortia.engine.builtins.keys import REFRESH_TRUST_KEYS, ROTATE_LEDGER_SECRET
from consortia.engine.builtins.members import (
    ADD_MEMBER,
    REINSTATE_MEMBER,
    REMOVE_MEMBER,
    SET_MEMBER_ROLES,
)
from consortia.engine.builtins.notifications import SEND_NOTIFICATIONS
from consortia.engine.builtins.policies import (
    SET_ANALYTICS_POLICY,
    SET_PLATFORM_POLICY,
    SET_RECOVERY_THRESHOLD,
)
from consortia.engine.builtins.spec import Builtin
from consortia.engine.builtins.voting import APPROVE_ACTION, VOTE_FOR

__all__ = ["BUILTINS"]


BUILTINS: dict[str, Builtin] = {
    "addMember": ADD_MEMBER,
    "removeMember": REMOVE_MEMBER,
    "amendConstitution": AMEND_CONSTITUTION,
    "updatePermissions": UPDATE_PERMISSIONS,
    "refreshTrustKeys": REFRESH_TRUST_KEYS,
    "voteFor": VOTE_FOR,
    "approveAction": APPROVE_ACTION,
    "sendNotifications": SEND_NOTIFICATIONS,
    "setRecoveryThreshold": SET_RECOVERY_THRESHOLD,
    "rotateLedgerSecret": ROTATE_LEDGER_SECRET,
    "setAnalyticsPolicy": SET_ANALYTICS_POLICY,
    "reinstateMember": REINSTATE_MEMBER,
    "setPlatformPolicy": SET_PLATFORM_POLICY,
    "setMemberRoles": SET_MEMBER_ROLES,
}
