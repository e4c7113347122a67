"""The host module every action loads, written in Starlark.

The host functions of PROTOCOL.md section 7 are thin Starlark wrappers around four private
natives: ``_host`` (reads), ``_write`` (put, delete, notify), ``_call`` and ``_refuse``.
Doing the checks on the Starlark side matters for two reasons measured here:

- starlark-pyo3 turns a NaN or an infinity into ``None`` when a value crosses into Python,
  and encodes ``{1: 2}`` as ``{"1": 2}``: both would pass silently. Only Starlark code can
  still see them, so :func:`_is_json` refuses them before anything crosses.
- starlark-pyo3 converts each element of a value separately (about 5 µs per element), while
  ``json.encode``/``json.decode`` run in Rust (about 0.1 µs per element). So every value
  crosses as one JSON text, and the executor process can forward that text unparsed.

Action code cannot reach the natives: Starlark refuses to ``load`` names starting with ``_``
and the compiler refuses ``load`` in action code altogether. The action module gets the host
functions through :data:`SUFFIX`, appended after the author's last line (so line numbers
in messages are the author's own).
"""

from __future__ import annotations

__all__ = [
    "ENTRY",
    "HOST_FUNCTIONS",
    "PRELUDE_FILE",
    "PRELUDE_LOAD",
    "PRELUDE_SOURCE",
    "RESERVED_PREFIX",
    "SUFFIX",
    "USER_FILE",
]

#: File name of action code in Starlark messages (one name for all actions: modules are
#: shared by code hash, so the runtime adds the action's name itself).
USER_FILE = "action.star"
#: File name of the host module in Starlark messages.
PRELUDE_FILE = "consortia.star"
#: The module id the suffix loads; the interpreter's loader answers only this one.
PRELUDE_LOAD = "@consortia"
#: The exported function the runtime calls (a leading ``_`` would make it private).
ENTRY = "consortia__entry"
#: Identifiers action code may not use, so the suffix cannot be shadowed.
RESERVED_PREFIX = "consortia__"

#: Host functions action code sees, in the order PROTOCOL.md section 7 lists them.
HOST_FUNCTIONS: tuple[str, ...] = (
    "caller",
    "txid",
    "now",
    "visible_to",
    "members",
    "get",
    "exists",
    "put",
    "delete",
    "list_keys",
    "notify",
    "call",
)

PRELUDE_SOURCE = r"""
_MAX_INT = 9007199254740991
_MAX_DEPTH = 32
_NOT_JSON = " is not a JSON value (use dict, list, string, int, float, bool or None)"

def _is_json(value):
    # Breadth-first by nesting level, so depth is known without recursion or tuples.
    t = type(value)
    if t == "string" or t == "bool" or t == "NoneType":
        return True
    if t == "int":
        return value <= _MAX_INT and value >= -_MAX_INT
    if t == "float":
        return value - value == 0.0  # false for NaN and infinities (NaN == NaN in Starlark)
    if t != "dict" and t != "list" and t != "tuple":
        return False
    level = [value]
    for depth in range(_MAX_DEPTH + 1):
        deeper = []
        for v in level:
            if type(v) == "dict":
                for k in v:
                    if type(k) != "string":
                        return False
                children = v.values()
            else:
                children = v
            if depth == _MAX_DEPTH and len(children) > 0:
                return False
            for x in children:
                t = type(x)
                if t == "dict" or t == "list" or t == "tuple":
                    deeper.append(x)
                elif t == "int":
                    if x > _MAX_INT or x < -_MAX_INT:
                        return False
                elif t == "float":
                    if x - x != 0.0:
                        return False
                elif t != "string" and t != "bool" and t != "NoneType":
                    return False
        if not deeper:
            return True
        level = deeper
    return False

def _explain(value, what):
    # Slow path, only after _is_json said no: find the first offender in document order.
    stack = [(what, value, 0)]
    for _ in range(2147483647):
        if not stack:
            break
        path, v, depth = stack.pop()
        t = type(v)
        if t == "float":
            if v - v != 0.0:
                _refuse(path + ": " + str(v) + " is not a finite number")
        elif t == "int":
            if v > _MAX_INT or v < -_MAX_INT:
                _refuse(path + ": integer " + str(v) + " is outside +-(2**53-1)")
        elif t == "dict" or t == "list" or t == "tuple":
            if depth >= _MAX_DEPTH and len(v) > 0:
                _refuse(path + ": nests deeper than " + str(_MAX_DEPTH) + " levels")
            entries = []
            if t == "dict":
                for k, x in v.items():
                    if type(k) != "string":
                        _refuse(path + ": key " + repr(k) + " (" + type(k) + ") is not a string")
                    entries.append((path + "[" + repr(k) + "]", x, depth + 1))
            else:
                for i, x in enumerate(v):
                    entries.append((path + "[" + str(i) + "]", x, depth + 1))
            stack.extend(reversed(entries))
        elif t != "string" and t != "bool" and t != "NoneType":
            _refuse(path + ": " + t + _NOT_JSON)
    _refuse(what + _NOT_JSON)

def _string(fn, name, value):
    if type(value) != "string":
        _refuse(fn + ": " + name + " must be a string, not " + type(value))

def _ids(fn, name, value):
    if type(value) != "list" and type(value) != "tuple":
        _refuse(fn + ": " + name + " must be a list of member ids, not " + type(value))
    for x in value:
        if type(x) != "string":
            _refuse(fn + ": " + name + " must hold member ids (strings), found " + type(x))

def caller():
    return json.decode(_host('["caller"]'))

def txid():
    return json.decode(_host('["txid"]'))

def now():
    return json.decode(_host('["now"]'))

def visible_to():
    return json.decode(_host('["visible_to"]'))

def members():
    return json.decode(_host('["members"]'))

def get(key):
    _string("get", "key", key)
    return json.decode(_host(json.encode(["get", key])))

def exists(key):
    _string("exists", "key", key)
    return json.decode(_host(json.encode(["exists", key])))

def put(key, value, visible_to = None):
    _string("put", "key", key)
    if visible_to != None:
        _ids("put", "visible_to", visible_to)
    if not _is_json(value):
        _explain(value, "put value")
    _write(json.encode(["put", key, value, visible_to]))

def delete(key):
    _string("delete", "key", key)
    _write(json.encode(["delete", key]))

def list_keys(prefix):
    _string("list_keys", "prefix", prefix)
    return json.decode(_host(json.encode(["list_keys", prefix])))

def notify(members, body):
    _ids("notify", "members", members)
    if not _is_json(body):
        _explain(body, "notify body")
    _write(json.encode(["notify", members, body]))

def call(action, params):
    _string("call", "action", action)
    if type(params) != "dict":
        _refuse("call: params must be a dict, not " + type(params))
    if not _is_json(params):
        _explain(params, "call params")
    return json.decode(_call(json.encode([action, params])))

def run(main, params_json):
    value = main(json.decode(params_json))
    if not _is_json(value):
        _explain(value, "result")
    return json.encode(value)
"""

#: Appended to every action's code: binds the host functions and the runtime's entry point.
SUFFIX = (
    "\nload("
    + repr(PRELUDE_LOAD)
    + ", "
    + ", ".join(repr(name) for name in HOST_FUNCTIONS)
    + ", consortia__run = 'run')\n"
    + f"def {ENTRY}(params_json):\n"
    + "    return consortia__run(main, params_json)\n"
)
