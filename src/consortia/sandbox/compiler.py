"""Structure checks on action code, before Starlark ever sees it.

Action code is a Starlark module whose top level holds only ``def``\\ s, constant
assignments and a docstring, and which defines ``main(params)``. Those rules keep loading a
module cheap and harmless (nothing runs at load time but literals), so the platform can
check code at ``amendConstitution`` without a budget.

Starlark's syntax is a subset of Python's, so Python's own parser is the gate: it refuses
deep nesting with a clean error, where starlark-rust's recursive parser overflows the
native stack (measured: 100,000 nested brackets crash the process). Only code that passed
this gate reaches :mod:`starlark`.
"""

from __future__ import annotations

import ast
import hashlib
import warnings
from dataclasses import dataclass

from consortia.errors import ActionFailed
from consortia.sandbox._prelude import HOST_FUNCTIONS, RESERVED_PREFIX, USER_FILE

__all__ = ["MAX_CODE_CHARS", "MAX_NESTING", "CompiledAction", "SourceFacts", "inspect_source"]

#: Longest action source accepted, in characters.
MAX_CODE_CHARS = 256 * 1024
#: Deepest syntax-tree nesting accepted (ordinary code stays below 30).
MAX_NESTING = 200

_HOST = frozenset(HOST_FUNCTIONS)


@dataclass(frozen=True, slots=True)
class CompiledAction:
    """Action code that passed every check; what :meth:`ActionRuntime.run` executes.

    ``literal_calls`` lists, in order of first appearance, the action names passed as a
    string literal to ``call(...)``, so the engine can refuse a literal call to a public
    action when the code is submitted.
    """

    name: str
    code_hash: str
    code: str
    literal_calls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """What the structure check learned about one source text."""

    code_hash: str
    literal_calls: tuple[str, ...]


class _Refusal(Exception):
    """A structure rule broken at ``node``; becomes :class:`ActionFailed` with a position."""

    def __init__(self, node: ast.AST, message: str) -> None:
        super().__init__(message)
        self.line = getattr(node, "lineno", 1)
        self.column = getattr(node, "col_offset", 0) + 1
        self.message = message


def code_hash(code: str) -> str:
    """SHA-256 (hex) of the code's UTF-8 bytes: the key of every compiled-module cache."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def inspect_source(name: str, code: str) -> SourceFacts:
    """Check ``code``'s size, syntax and top-level structure; raise ActionFailed if wrong."""
    if len(code) > MAX_CODE_CHARS:
        raise ActionFailed(
            f"{name}: code is {len(code)} characters long; the limit is {MAX_CODE_CHARS}"
        )
    if "\x00" in code:
        raise ActionFailed(f"{name}: code contains a NUL character")
    try:
        digest = code_hash(code)
    except UnicodeEncodeError:
        raise ActionFailed(f"{name}: code is not valid Unicode text") from None
    tree = _parse(name, code)
    try:
        _check_nesting(tree)
        _check_structure(tree)
        _check_identifiers(tree)
    except _Refusal as refusal:
        raise ActionFailed(
            f"{name}: line {refusal.line}, column {refusal.column}: {refusal.message}"
        ) from None
    return SourceFacts(digest, _literal_calls(tree))


def _parse(name: str, code: str) -> ast.Module:
    try:
        with warnings.catch_warnings():
            # Python warns about escapes Starlark accepts; the warning is not ours to show.
            warnings.simplefilter("ignore")
            return ast.parse(code, filename=USER_FILE)
    except SyntaxError as exc:
        line, column = exc.lineno or 1, exc.offset or 1
        raise ActionFailed(
            f"{name}: syntax error at line {line}, column {column}: {exc.msg}"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        # Python's parser gives up on pathological nesting or huge literals; so do we.
        raise ActionFailed(f"{name}: code nests too deeply or holds a too-large literal") from None


def _check_nesting(tree: ast.AST) -> None:
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise _Refusal(node, f"code nests deeper than {MAX_NESTING} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_structure(tree: ast.Module) -> None:
    main: ast.FunctionDef | None = None
    for index, stmt in enumerate(tree.body):
        if isinstance(stmt, ast.FunctionDef):
            _check_def(stmt)
            if stmt.name == "main":
                main = stmt
        elif isinstance(stmt, ast.Assign):
            _check_constant(stmt)
        elif isinstance(stmt, ast.Expr) and _is_load(stmt.value):
            raise _Refusal(stmt, "load() is not available: action code cannot import modules")
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            raise _Refusal(stmt, "import is not available: action code cannot import modules")
        elif index == 0 and isinstance(stmt, ast.Expr) and _is_string(stmt.value):
            continue  # the module docstring
        else:
            kind = type(stmt).__name__.lower()
            raise _Refusal(
                stmt,
                f"a top-level `{kind}` statement is not allowed; the top level may hold only "
                "def, assignments of constants and a docstring",
            )
    if main is None:
        raise _Refusal(tree, "no `def main(params):`; every action needs one")
    _check_main(main)


def _check_def(node: ast.FunctionDef) -> None:
    _check_top_level_name(node, node.name)
    if node.decorator_list:
        raise _Refusal(node.decorator_list[0], "decorators are not Starlark")
    for default in [*node.args.defaults, *node.args.kw_defaults]:
        # Defaults are evaluated when the module loads: keep that trivially cheap.
        if default is not None and not (isinstance(default, ast.Name) or _is_literal(default)):
            raise _Refusal(default, "a default value must be a constant or a name")


def _check_main(node: ast.FunctionDef) -> None:
    args = node.args
    simple = (
        not args.posonlyargs
        and len(args.args) == 1
        and args.vararg is None
        and not args.kwonlyargs
        and args.kwarg is None
        and not args.defaults
    )
    if not simple or args.args[0].arg != "params":
        raise _Refusal(node, "main must take exactly one parameter, `params`: def main(params):")


def _check_constant(node: ast.Assign) -> None:
    for target in node.targets:
        names = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        for name in names:
            if not isinstance(name, ast.Name):
                raise _Refusal(name, "a top-level assignment may only bind names")
            if name.id == "main":
                raise _Refusal(name, "main must be a function: def main(params):")
            _check_top_level_name(name, name.id)
    if not _is_literal(node.value):
        raise _Refusal(
            node.value,
            "a top-level assignment must be a constant (numbers, strings, True/False/None, "
            "and lists, tuples or dicts of those); compute values inside main",
        )


def _check_top_level_name(node: ast.AST, name: str) -> None:
    if name in _HOST:
        raise _Refusal(node, f"`{name}` is a host function; choose another name")


def _check_identifiers(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        name: str | None = None
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.arg):
            name = node.arg
        elif isinstance(node, ast.FunctionDef):
            name = node.name
        elif isinstance(node, ast.keyword):
            name = node.arg
        if name is not None and name.startswith(RESERVED_PREFIX):
            raise _Refusal(node, f"names starting with {RESERVED_PREFIX!r} are reserved")


def _is_literal(node: ast.expr) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Constant):
            value = item.value
            if value is not None and not isinstance(value, (bool, int, float, str)):
                return False
        elif isinstance(item, (ast.List, ast.Tuple)):
            stack.extend(item.elts)
        elif isinstance(item, ast.Dict):
            if any(key is None for key in item.keys):
                return False  # a ``**spread``
            stack.extend(key for key in item.keys if key is not None)
            stack.extend(item.values)
        elif isinstance(item, ast.UnaryOp) and isinstance(item.op, (ast.USub, ast.UAdd)):
            if not (isinstance(item.operand, ast.Constant) and _is_number(item.operand.value)):
                return False
        else:
            return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_string(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_load(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "load"


def _literal_calls(tree: ast.AST) -> tuple[str, ...]:
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id != "call":
            continue
        target: ast.expr | None = node.args[0] if node.args else None
        for keyword in node.keywords:
            if keyword.arg == "action":
                target = keyword.value
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            found.append((node.lineno, node.col_offset, target.value))
    # ast.walk is breadth-first; report in source order instead.
    return tuple(dict.fromkeys(name for _, _, name in sorted(found)))
