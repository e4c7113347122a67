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


def test_the_member_sdk_loads_no_engine_store_or_sandbox() -> None:
    """A member's process imports the SDK only: the engine, the SQLite store, the sandbox
    (starlark), the analytics sink and the server stay unloaded until someone uses them."""
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys, consortia.client, consortia.client.recovery, consortia.client.attest\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    output = subprocess.check_output([sys.executable, "-c", probe], text=True)  # noqa: S603
    loaded = set(json.loads(output))
    heavy = {
        "consortia.engine",
        "consortia.ledger.sqlite",
        "consortia.ledger.store",
        "consortia.sandbox",
        "consortia.analytics",
        "consortia.server",
        "consortia.governance",
        "starlark",
        "sqlite3",
        "duckdb",
        "uvicorn",
        "starlette",
    }
    assert sorted(heavy & loaded) == []
    # ...and the engine's names still come with `import consortia` when asked for.
    assert consortia.Platform.__name__ == "Platform"
