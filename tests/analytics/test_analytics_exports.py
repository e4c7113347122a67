"""The analytics package's public face is pinned: the engine, insights and detector use it."""

from __future__ import annotations

from consortia import analytics


def test_all_is_pinned_and_documented() -> None:
    assert sorted(analytics.__all__) == [
        "Alert",
        "BufferedSink",
        "Event",
        "EventSink",
        "MemoryBackend",
        "SinkBackend",
        "SinkStats",
    ]
    for name in analytics.__all__:
        assert getattr(analytics, name).__doc__, name


def test_importing_analytics_loads_neither_duckdb_nor_the_model_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, consortia.analytics, consortia.engine; "
        "print(sorted(m for m in ('duckdb', 'river') if m in sys.modules))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
