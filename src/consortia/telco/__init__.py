"""The Telco order management pack: a genesis template and its Starlark actions.

Orders, revisions, change plans, assets, serials and stock live entirely in constitution
code (``actions/*.star``); the platform core knows nothing about them. Importing the pack
registers its insights plug (:mod:`consortia.telco.insights`) with analytics.
"""

from consortia.analytics.insights import register_domain
from consortia.telco.insights import TELCO_INSIGHTS
from consortia.telco.template import ROLES, TELCO_TEMPLATE, action_code, telco_constitution

# Wherever the pack is known, insights carry its orders and stock (docs/insights.md).
register_domain(TELCO_INSIGHTS)

__all__ = ["ROLES", "TELCO_TEMPLATE", "action_code", "telco_constitution"]
