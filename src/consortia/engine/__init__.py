"""The engine: the pipeline that turns signed requests into committed, notified outcomes."""

from consortia.engine.platform import ActionSandbox, Platform
from consortia.engine.views import MemberView
from consortia.wire.outcomes import Committed, Created, Outcome, Pending

__all__ = ["ActionSandbox", "Committed", "Created", "MemberView", "Outcome", "Pending", "Platform"]
