"""The Telco order management pack: a genesis template and its Starlark actions.

Orders, revisions, change plans, assets, serials and stock live entirely in constitution
code (``actions/*.star``); the platform core knows nothing about them. The pack's insights
plug (:mod:`consortia.telco.insights`) is not registered by importing the pack: whoever
wires a platform calls :func:`consortia.telco.insights.register_telco_insights`.
"""

from consortia.telco.template import ROLES, TELCO_TEMPLATE, action_code, telco_constitution

__all__ = ["ROLES", "TELCO_TEMPLATE", "action_code", "telco_constitution"]
