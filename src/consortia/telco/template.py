"""The ``telco`` genesis template: roles, permissions and voting schemas of the pack.

Members hold roles in the constitution (``"roles": ["seller"]``, or ``info.role`` as
before); every permission, veto and endorsement of the pack names a role, not a member, so a
supplier or auditor added by vote after genesis may do at once what its role may.
Governance needs a majority of all members with every seller holding a veto; domain actions
are public Starlark, permitted by role; ``bindSerial`` is proposed by a supplier and endorsed
by a seller through its voting schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib import resources
from types import MappingProxyType

from consortia._json import JSONObject, loads_strict
from consortia.governance.analytics_policy import AnalyticsPolicy
from consortia.governance.constitution import (
    ActionDefinition,
    Constitution,
    Member,
    Permission,
    VotingSchema,
)
from consortia.governance.templates import DEFAULT_NEW_MEMBER_ACTIONS, Template, base_actions
from consortia.identity.keys import ROLE_PREFIX

__all__ = [
    "ANALYTICS_GRANTS",
    "DOMAIN_ACTIONS",
    "ROLES",
    "TELCO_TEMPLATE",
    "action_code",
    "params_schema",
    "role",
    "telco_constitution",
]

ROLES = ("seller", "supplier", "installer", "customer", "auditor")

#: Domain action -> (source file, roles permitted to request it). The code itself checks
#: the finer rules (a supplier touches only its own devices, a seller only its projects).
DOMAIN_ACTIONS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "createProject": ("createProject", ("seller",)),
    "updateProjectState": ("updateProjectState", ("seller",)),
    "placeOrder": ("placeOrder", ("seller",)),
    "reviseOrder": ("reviseOrder", ("seller",)),
    "postponeOrder": ("postponeOrder", ("seller",)),
    "resumeChangePlan": ("resumeChangePlan", ("seller",)),
    "cancelOrder": ("cancelOrder", ("seller",)),
    "updateDeviceOrder": ("updateDeviceOrder", ("supplier",)),
    "getDeviceStatus": ("getDeviceStatus", ROLES),
    "createAsset": ("createAsset", ("seller",)),
    "bindSerial": ("bindSerial", ("supplier",)),
    "updateAssetStatus": ("updateAssetStatus", ("seller", "supplier", "installer")),
    "recordActivationTest": ("recordActivationTest", ("seller", "installer")),
    "reserveStock": ("stockMovement", ("seller", "supplier")),
    "consumeStock": ("stockMovement", ("seller", "supplier")),
    "releaseStock": ("stockMovement", ("seller", "supplier")),
    "returnStock": ("stockMovement", ("seller", "supplier")),
}

#: The stock actions share one source; each gets its movement kind.
_STOCK_KINDS = {
    "reserveStock": "reserve",
    "consumeStock": "consume",
    "releaseStock": "release",
    "returnStock": "return",
}

#: The parameter fields analytics may see of each action: order and device ids, device
#: states, modes and stock quantities, enough for order cycle times and the stock leak per
#: supplier (:mod:`consortia.telco.insights` replays exactly these), never prices, serials
#: or service specs.
ANALYTICS_GRANTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "placeOrder": ("id", "devices"),
        "reviseOrder": ("id", "devices", "modes"),
        "resumeChangePlan": ("productOrderId", "devices"),
        "cancelOrder": ("id",),
        "updateDeviceOrder": ("productOrderId", "device", "state"),
        **{name: ("supplier", "part", "quantity", "productOrderId") for name in _STOCK_KINDS},
    }
)


def _source(stem: str) -> str:
    return resources.files("consortia.telco").joinpath(f"actions/{stem}.star").read_text("utf-8")


def params_schema(name: str) -> JSONObject:
    """The JSON Schema of domain action ``name``'s params (``schemas/<source>.json``), voted
    with its code: requests that do not match are refused before the code runs."""
    stem, _ = DOMAIN_ACTIONS[name]
    text = resources.files("consortia.telco").joinpath(f"schemas/{stem}.json").read_text("utf-8")
    schema = loads_strict(text, what=f"schema of {name}")
    if not isinstance(schema, dict):
        raise ValueError(f"the schema of {name} is not a JSON object")
    if stem != name:
        # A shared source (the stock movements) gets the action's own title.
        schema = {**schema, "title": name}
    return schema


def action_code(name: str) -> str:
    """The Starlark code of domain action ``name``: its own file, then the shared helpers.

    Action code cannot ``load()``, so the helpers of ``common.star`` travel with each
    action. They come after the action's own code, which keeps its docstring first.
    """
    stem, _ = DOMAIN_ACTIONS[name]
    code = _source(stem)
    if name in _STOCK_KINDS:
        code = code.replace('KIND = "@KIND@"', f'KIND = "{_STOCK_KINDS[name]}"')
    return code.rstrip("\n") + "\n\n\n" + _source("common")


def role(name: str) -> str:
    """The permission, audience or voter entry for every holder of role ``name``."""
    return ROLE_PREFIX + name


def _check_roles(founders: Sequence[Member]) -> None:
    for member in founders:
        if not set(member.roles) & set(ROLES):
            raise ValueError(
                f"founder {member.id!r} needs a role of the pack, one of {', '.join(ROLES)} "
                f'("roles": ["supplier"]; it holds {list(member.roles) or "none"})'
            )
    if not any("seller" in m.roles for m in founders):
        raise ValueError("the telco template needs at least one founder with role 'seller'")


def telco_constitution(founders: Sequence[Member]) -> Constitution:
    """Build the ``telco`` genesis constitution from founders that hold the pack's roles.

    Raises ValueError when a founder holds none of :data:`ROLES` or no founder is a seller.
    """
    _check_roles(founders)
    governance = VotingSchema("all", len(founders) // 2 + 1, (role("seller"),))
    actions = base_actions(founders, governance)
    # Every member of the pack, founder or added later, may propose governance and vote:
    # the base actions are granted to the pack's roles, not to the founders' ids.
    everyone = tuple(Permission(role(r), True) for r in ROLES)
    for name, definition in actions.items():
        if definition.scope == "public":
            actions[name] = replace(definition, permissions=everyone)
    # Serial binding: the asset's supplier proposes (the code checks it is that supplier),
    # a seller endorses. Only sellers vote: with the suppliers in the electorate, another
    # supplier's approval could stand in for the seller's and it would see the proposal.
    endorsement = VotingSchema((role("seller"),), 1, ())
    for name, (_, roles) in DOMAIN_ACTIONS.items():
        permitted = tuple(Permission(role(r), True) for r in roles)
        voting = endorsement if name == "bindSerial" else VotingSchema()
        actions[name] = ActionDefinition(
            name,
            "public",
            "starlark",
            action_code(name),
            permitted,
            voting,
            params_schema=params_schema(name),
        )
    return Constitution(
        actions=actions,
        members={m.id: m for m in founders},
        new_member_actions=DEFAULT_NEW_MEMBER_ACTIONS,
        # Analytics gets the ids, states, modes and quantities of ANALYTICS_GRANTS: enough
        # for order cycle times and the stock leak per supplier (docs/insights.md). Sellers
        # and auditors see every member's figures; everyone hears of misuse.
        analytics=AnalyticsPolicy(
            grants=ANALYTICS_GRANTS,
            insights_full=("seller", "auditor"),
            # The pack's own object types; anything else leaves as a keyed hash.
            object_types=(
                "changePlan",
                "productOrder",
                "project",
                "projectOrder",
                "resource",
                "resourceOrder",
                "serialIndex",
                "serviceTest",
                "stock",
            ),
        ),
    )


TELCO_TEMPLATE = Template(
    name="telco",
    description=(
        "Telco order management: members hold roles (seller, supplier, installer, "
        "customer, auditor) and every permission names a role; governance needs a majority "
        "with the sellers' veto; projects, orders, revisions and change plans, assets and "
        "serials, stock; bindSerial is proposed by a supplier and endorsed by a seller."
    ),
    build=telco_constitution,
)
