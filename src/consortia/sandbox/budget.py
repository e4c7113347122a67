"""What one execution of action code may spend.

A budget is a plain value: the engine reads it from the consortium's constitution (or uses
the defaults) and passes it to :meth:`consortia.sandbox.ActionRuntime.run`. Steps are the
deterministic limit (the same request stops at the same place on every node); wall time and
memory are safety nets for work that steps cannot see, such as one huge string operation.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortia._json import JSON

__all__ = ["Budget"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits for one top-level ``run`` (nested ``call``\\ s share them).

    - ``steps``: interpreter checkpoints, each about 1,000 Starlark bytecode instructions
      (starlark-pyo3's cancellation check). Deterministic. On a 2-core machine of the class
      measured in docs/architecture.md one step is about 0.15-0.2 ms of tight loop.
    - ``time_ms``: wall time spent in action code (time the host spends answering is not
      counted). Past it the action is cancelled; in ``process`` isolation the executor is
      killed if it does not stop shortly after.
    - ``memory_bytes``: address space the executor process may grow by beyond its baseline
      (``process`` isolation only; ``inline`` cannot bound memory).
    - ``max_call_depth``: how many ``call(...)`` levels may nest below the top-level action.
    - ``max_stack_frames``: Starlark function frames per action (bounds recursion).
    """

    steps: int = 1_000
    time_ms: int = 1_000
    memory_bytes: int = 256 * _MIB
    max_call_depth: int = 8
    max_stack_frames: int = 100

    def __post_init__(self) -> None:
        for name in ("steps", "time_ms", "memory_bytes", "max_call_depth", "max_stack_frames"):
            value = getattr(self, name)
            least = 0 if name == "max_call_depth" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"Budget.{name} must be an integer >= {least}, got {value!r}")

    def to_wire(self) -> list[JSON]:
        """The budget as the executor protocol carries it (field order is the wire order)."""
        return [
            self.steps,
            self.time_ms,
            self.memory_bytes,
            self.max_call_depth,
            self.max_stack_frames,
        ]

    @classmethod
    def from_wire(cls, fields: object) -> Budget:
        """Rebuild a budget from :meth:`to_wire` output; raises ValueError if malformed."""
        if not isinstance(fields, list) or len(fields) != 5:
            raise ValueError("a budget is a list of 5 integers")
        steps, time_ms, memory_bytes, max_call_depth, max_stack_frames = fields
        return cls(steps, time_ms, memory_bytes, max_call_depth, max_stack_frames)
