"""The executor's read cache: committed state kept next to the code that reads it.

In process isolation every host read is a pipe round trip (about 100 µs on a VM, most of it
waking the other process). A Telco action reads a dozen objects, so most of its time went
into those trips. The executor therefore keeps the answers of ``get``, ``exists`` and
``list_keys`` that reflect *committed* state, and the parent tells it with every run what
has changed since, so a warm action crosses the pipe twice in all (the run, its result).

Coherence rests on three facts the engine supplies in a :class:`StateView`:

- ``scope`` names one consortium's state as one engine instance holds it. Another scope
  empties the cache first, so the executor never holds two consortia's data at once.
- ``epoch`` counts committed transactions; ``changed_since(epoch)`` gives every key a
  commit wrote after it with its new value (None when it no longer knows: the cache starts
  over). The values travel to the executor, which updates what it holds rather than
  forgetting it: the objects an order's next action reads are the ones its last one wrote.
- ``batch`` and ``volatile`` name the group commit in progress and, in order, the keys its
  earlier transactions wrote. Their answers are not committed ones: they are never cached
  nor served from the cache. A batch that is thrown away leaves nothing behind, because the
  cache never held its values.

Within one run the interpreter keeps the run's own writes (:class:`RunWrites`) and answers
reads of them itself; a ``call`` to a builtin (which may write behind its back) turns the
cache off for the rest of the run. The parent re-checks nothing it did not send: a value the
cache serves is one the host itself answered for the same committed state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from consortia._json import JSON
from consortia.sandbox._link import dumps, loads

__all__ = [
    "CACHE_MAX_BYTES",
    "ReadCache",
    "RunWrites",
    "StateView",
    "ViewTracker",
    "parent_prefix",
]

#: Accounted size (reply texts plus a per-entry overhead) past which the oldest entries go.
CACHE_MAX_BYTES = 32 * 1024 * 1024
#: What one entry costs beyond its reply text (dict slots, the key and request strings).
_ENTRY_OVERHEAD = 256
#: More changed keys than this in one update: start over rather than send them all.
MAX_CHANGED = 4096


def parent_prefix(key: str) -> str:
    """The ``list_keys`` prefix that lists ``key`` (everything up to its last ``/``)."""
    return key[: key.rfind("/") + 1]


#: Keys whose ``get`` request Starlark's ``json.encode`` writes as ``["get","<key>"]``.
_PLAIN_KEY = re.compile(r"[ !#-\[\]-~]+")


class Change(Protocol):
    """A committed write as the engine keeps it (its state version)."""

    @property
    def value(self) -> JSON: ...

    @property
    def deleted(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class StateView:
    """What the engine says about the state an execution reads (see the module docstring)."""

    scope: str
    epoch: int
    changed_since: Callable[[int], Mapping[str, Change] | None]
    batch: int
    volatile: Sequence[str]


class ViewTracker:
    """The parent's record of what the executor's cache reflects; builds each update.

    The update travels in the run frame: ``[scope, epoch, changed, batch, volatile]``, where
    ``changed`` is ``[key, value text, alive]`` for each key committed since the executor's
    epoch (None: start over) and ``volatile`` the batch's keys it has not been sent yet (all
    of them for a new batch).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """The executor's cache is empty (a new executor, or its state is unknown)."""
        self._scope: str | None = None
        self._epoch = 0
        self._batch = -1
        self._sent = 0

    def update(self, view: StateView) -> list[JSON]:
        """The update that brings the executor to ``view``; assumes it will arrive."""
        changed: list[JSON] | None = None
        if view.scope == self._scope:
            if view.epoch == self._epoch:
                changed = []
            elif view.epoch > self._epoch:
                keys = view.changed_since(self._epoch)
                if keys is not None and len(keys) <= MAX_CHANGED:
                    changed = [
                        [key, "null", False] if change.deleted else [key, dumps(change.value), True]
                        for key, change in keys.items()
                    ]
        if view.batch != self._batch or changed is None:
            self._sent = 0
        volatile: list[JSON] = [*view.volatile[self._sent :]]
        self._scope, self._epoch, self._batch = view.scope, view.epoch, view.batch
        self._sent = len(view.volatile)
        return [view.scope, view.epoch, changed, view.batch, volatile]


@dataclass(slots=True)
class _Entry:
    #: The state key (get, exists) or prefix (list_keys) the answer depends on.
    key: str
    listing: bool
    reply: str


class ReadCache:
    """The executor's side: committed answers by request text, invalidated by key."""

    def __init__(self, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._scope: str | None = None
        self._batch: object = None
        self._entries: dict[str, _Entry] = {}
        self._by_key: dict[str, list[str]] = {}
        self._volatile: set[str] = set()
        self._volatile_prefixes: set[str] = set()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget everything (another scope, an unknown history)."""
        self._entries.clear()
        self._by_key.clear()
        self._volatile.clear()
        self._volatile_prefixes.clear()
        self._bytes = 0

    def apply(self, update: JSON) -> None:
        """Take an update from :meth:`ViewTracker.update`; raises ValueError if malformed."""
        if not (isinstance(update, list) and len(update) == 5):
            raise ValueError("a cache update is a list of five")
        scope, _, changed, batch, volatile = update
        if not isinstance(scope, str) or not isinstance(volatile, list):
            raise ValueError("malformed cache update")
        if batch != self._batch:
            self._batch = batch
            self._volatile.clear()
            self._volatile_prefixes.clear()
        if scope != self._scope or changed is None:
            self.clear()
            self._scope = scope
        elif isinstance(changed, list):
            for change in changed:
                if not (isinstance(change, list) and len(change) == 3):
                    raise ValueError("malformed cache update")
                key, text, alive = change
                if isinstance(key, str) and isinstance(text, str) and isinstance(alive, bool):
                    self._committed(key, text, alive)
        else:
            raise ValueError("malformed cache update")
        for key in volatile:
            if isinstance(key, str):
                self._volatile.add(key)
                self._volatile_prefixes.add(parent_prefix(key))

    def lookup(self, request: str, own: RunWrites) -> str | None:
        """The cached reply to ``request`` (its JSON text) as the run that wrote ``own``
        sees it, or None (not cached, volatile, or about a key the run wrote itself)."""
        entry = self._entries.get(request)
        if entry is None:
            self.misses += 1
            return None
        if entry.listing:
            if entry.key in self._volatile_prefixes:
                return None
            self.hits += 1
            if entry.key in own.listed:
                return dumps([*own.listing(entry.key, _names(loads(entry.reply)))])
            return entry.reply
        if entry.key in self._volatile or entry.key in own.values:
            return None
        self.hits += 1
        return entry.reply

    def store(self, request: str, op: str, key: str, reply: str) -> None:
        """Remember the host's ``reply`` to ``request`` (op ``get``/``exists``/``list_keys``)."""
        listing = op == "list_keys"
        if key in (self._volatile_prefixes if listing else self._volatile):
            return
        if request in self._entries:
            return
        size = len(reply) + len(request) + _ENTRY_OVERHEAD
        if size > self.max_bytes // 8:
            return
        while self._bytes + size > self.max_bytes and self._entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)
        self._entries[request] = _Entry(key, listing, reply)
        self._by_key.setdefault(key, []).append(request)
        self._bytes += size

    def _committed(self, key: str, text: str, alive: bool) -> None:
        """``key`` now holds ``text`` (or was deleted): update every answer that depends on it."""
        had_get = False
        for request in self._by_key.get(key, ()):
            entry = self._entries[request]
            if entry.listing:
                continue
            if request.startswith('["get"'):
                had_get = True
                self._set(request, entry, text)
            else:
                self._set(request, entry, "true" if alive else "false")
        if not had_get and _PLAIN_KEY.fullmatch(key):
            self.store('["get","' + key + '"]', "get", key, text)
        prefix = parent_prefix(key)
        for request in self._by_key.get(prefix, ()):
            entry = self._entries[request]
            if entry.listing:
                names = set(_names(loads(entry.reply)))
                if alive:
                    names.add(key)
                else:
                    names.discard(key)
                self._set(request, entry, dumps([*sorted(names)]))

    def _set(self, request: str, entry: _Entry, reply: str) -> None:
        self._bytes += len(reply) - len(entry.reply)
        entry.reply = reply

    def _drop(self, request: str) -> None:
        entry = self._entries.pop(request)
        self._bytes -= len(entry.reply) + len(request) + _ENTRY_OVERHEAD
        texts = self._by_key.get(entry.key)
        if texts is not None:
            texts.remove(request)
            if not texts:
                del self._by_key[entry.key]


def _names(value: JSON) -> list[str]:
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


@dataclass(slots=True)
class RunWrites:
    """One run's own writes, as its reads must see them: key -> value text (None: deleted)."""

    values: dict[str, str | None] = field(default_factory=dict)
    #: prefix -> {key: alive}, for list_keys.
    listed: dict[str, dict[str, bool]] = field(default_factory=dict)

    def record(self, key: str, value: str | None) -> None:
        """A ``put`` (value text) or ``delete`` (None) of ``key`` by this run."""
        self.values[key] = value
        self.listed.setdefault(parent_prefix(key), {})[key] = value is not None

    def listing(self, prefix: str, committed: list[str]) -> list[str]:
        """``committed`` (the keys under ``prefix``) as this run's writes change it."""
        changes = self.listed.get(prefix)
        if not changes:
            return committed
        names = set(committed)
        for key, alive in changes.items():
            if alive:
                names.add(key)
            else:
                names.discard(key)
        return sorted(names)
