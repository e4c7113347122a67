"""The one refusal of attestation verification.

Every check in :mod:`consortia.attestation` raises :class:`AttestationFailed` (never returns
a boolean): a malformed report, a certificate chain that does not lead to a pinned AMD root,
a bad signature, a TCB or measurement outside the member's policy, a report that does not
bind the platform's keys. The message names the field, what was expected, what was found
and what to do.
"""

from __future__ import annotations

from consortia.errors import ConsortiaError

__all__ = ["AttestationFailed"]


class AttestationFailed(ConsortiaError):
    """The attestation evidence does not prove what it must; the message says why."""

    code = "attestation_failed"
