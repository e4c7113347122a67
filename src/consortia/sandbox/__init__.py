"""The action sandbox: Starlark action code, compiled once, run under budgets.

Start here: :class:`ActionRuntime` (compile and run), :class:`Budget` (limits),
:class:`Host` (what the engine implements for one execution) and :class:`MemoryHost` (an
in-memory Host for tests and dry runs).

What action code sees (the facts an author's guide needs):

- A module of ``def``\\ s, constant assignments and a docstring that defines
  ``main(params)``; what ``main`` returns is the result (``None`` allowed).
- Starlark's standard library, without ``print``, ``load``, ``json`` or any I/O.
- The host functions :data:`HOST_FUNCTIONS`: ``caller()``, ``txid()``, ``now()``,
  ``visible_to()``, ``members()``, ``get(key)`` (newest value or None, a private copy),
  ``exists(key)``, ``put(key, value, visible_to=None)``, ``delete(key)``,
  ``list_keys(prefix)`` (keys directly under ``prefix/``, sorted), ``notify(members, body)``
  and ``call(action, params)`` (internal actions only); ``fail(msg)`` refuses the request
  with ``msg`` as its message.
- Values crossing to the host are JSON: dicts with string keys, lists (tuples become
  lists), strings, ints within +-(2**53-1), finite floats, bools, None; at most 32 levels
  deep. Anything else fails the request with the path of the offending part. Objects
  arriving from the host (params, ``get``, ``call`` results) have their keys sorted, so the
  order a client sent cannot change an outcome.
- Recursion is allowed up to ``Budget.max_stack_frames`` frames; loops stop at
  ``Budget.steps``.
"""

from consortia.sandbox._prelude import HOST_FUNCTIONS
from consortia.sandbox.budget import Budget
from consortia.sandbox.compiler import MAX_CODE_CHARS, CompiledAction
from consortia.sandbox.host import BuiltinTarget, CallTarget, Host, StarlarkTarget
from consortia.sandbox.memory import MemoryHost
from consortia.sandbox.runtime import ActionRuntime, Isolation

__all__ = [
    "HOST_FUNCTIONS",
    "MAX_CODE_CHARS",
    "ActionRuntime",
    "Budget",
    "BuiltinTarget",
    "CallTarget",
    "CompiledAction",
    "Host",
    "Isolation",
    "MemoryHost",
    "StarlarkTarget",
]
