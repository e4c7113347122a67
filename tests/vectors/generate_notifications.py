"""Write tests/vectors/notifications.json: ``python tests/vectors/generate_notifications.py``.

Run requests.json's valid bodies, in order, on a fresh platform whose clock reads the
vectors' time, and record every notified member's queue as the member opens it
(PROTOCOL.md section 5): id, kind, txid, txref, action and the opened body. The bodies are
deterministic except a recovery share's, which is sealed with a fresh random key: its
``sealed`` is recorded as null. tests/engine/test_engine_wire_vectors.py checks that this
script reproduces the file byte for byte; the server and SDK tests read it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' own helpers

from wire_vectors import REQUESTS, notifications_of, vector_platform

__all__ = ["VECTORS_PATH", "render"]

VECTORS_PATH = Path(__file__).with_name("notifications.json")


def render() -> str:
    """The exact text of notifications.json."""
    with tempfile.TemporaryDirectory() as folder, vector_platform(Path(folder) / "tep") as v:
        for case in REQUESTS["valid"]:
            v.platform.execute(v.cid, case["body"].encode())
        queues = notifications_of(v.platform, v.cid)
    vectors = {
        "description": (
            "Each member's notification queue after requests.json's valid bodies ran in "
            "order on a fresh consortium: the entries as GET .../notifications serves them, "
            "'sealed' replaced by the body the member opens (a recovery share's own 'sealed' "
            "is random, so null here). Regenerate with: "
            "python tests/vectors/generate_notifications.py"
        ),
        "consortium": REQUESTS["consortium"],
        "queues": queues,
    }
    return json.dumps(vectors, indent=2) + "\n"


def main() -> None:
    """Rewrite notifications.json next to this script."""
    VECTORS_PATH.write_text(render(), encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
