"""The public face of the package is small and deliberate: pin it."""

from __future__ import annotations

import consortia


def test_public_names() -> None:
    assert sorted(consortia.__all__) == sorted(
        [
            "Committed",
            "ConsortiaError",
            "Created",
            "MemberKeys",
            "MemberView",
            "Pending",
            "Platform",
            "SigningKey",
            "VerifyKey",
            "__version__",
            "open_notification",
            "sign_action",
            "sign_creation",
            "sign_key_proof",
        ]
    )
    for name in consortia.__all__:
        assert hasattr(consortia, name), name
