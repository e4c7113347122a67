"""Whether this TEP may serve a consortium: its voted platform policy against the running one.

A consortium's members vote a platform policy (``setPlatformPolicy``: which TEP kinds,
measurements and TCB levels they accept). The engine checks it once per voted policy, not
per request, and refuses to read or write a consortium whose policy rejects the platform it
runs on; ``GET /v1/service`` describes the running platform in one line.
"""

from __future__ import annotations

from typing import Final

from consortia.errors import Unavailable
from consortia.governance.constitution import Constitution
from consortia.governance.platform_policy import PlatformPolicy, RunningPlatform, check_platform

__all__ = ["PLATFORM_NOTES", "Admission"]

#: What ``GET /v1/service`` says of each platform kind, in one line.
PLATFORM_NOTES: Final = {
    "virtual": "virtual: no hardware protection of data in use; nothing is attested",
    "simulated-snp": "simulated SEV-SNP: reports signed by a test key the operator holds; "
    "they prove nothing about the hardware",
    "sev-snp": "AMD SEV-SNP: memory encrypted by the CPU; verify the attestation before use",
}


class Admission:
    """Each consortium's verdict on the running TEP, kept until its policy changes."""

    def __init__(self, running: RunningPlatform) -> None:
        #: The TEP this engine runs in.
        self.running = running
        #: Per consortium: the platform policy last checked and the refusal it gave (None:
        #: accepted), so the check runs once per voted policy, not per request.
        self._verdicts: dict[str, tuple[PlatformPolicy | None, str | None]] = {}

    def refusal(self, cid: str, constitution: Constitution) -> str | None:
        """Why this TEP may not serve ``cid`` under ``constitution``; None when it may."""
        policy = constitution.platform_policy
        if policy is None:
            return None
        cached = self._verdicts.get(cid)
        if cached is not None and cached[0] is policy:
            return cached[1]
        reason = check_platform(policy, self.running)
        refusal = (
            None
            if reason is None
            else (
                f"this TEP is not accepted by consortium {cid!r}: {reason}; send this to a "
                "TEP the consortium's platform policy accepts, or have the members vote a new "
                "policy (setPlatformPolicy) on one"
            )
        )
        self._verdicts[cid] = (policy, refusal)
        return refusal

    def require(self, cid: str, constitution: Constitution) -> None:
        """Raise ``unavailable`` unless the consortium's platform policy accepts this TEP."""
        refusal = self.refusal(cid, constitution)
        if refusal is not None:
            raise Unavailable(refusal)
