"""One consortium's live state in the engine.

:class:`ConsortiumRuntime` holds what the sequencer needs at hand (the current constitution,
open proposals, queue counters, a cache of the newest state versions, the Merkle frontier
restored at start-up from O(log n) stored nodes) and reads and writes storage through its
:class:`~consortia.ledger.sealed.SealedRows`, where every row layout of encryption at rest
is written down. The batch a group commit writes is :class:`consortia.engine.batch.Batch`.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

from consortia._json import JSONObject
from consortia.errors import ConsortiaError, NotFound
from consortia.governance.analytics_policy import (
    DEFAULT_ANALYTICS_POLICY,
    parse_analytics_policy,
)
from consortia.governance.constitution import Constitution
from consortia.governance.parse import parse_action_definition, parse_member, parse_proposal
from consortia.governance.platform_policy import parse_platform_policy
from consortia.governance.voting import Proposal
from consortia.identity.box import Sealer
from consortia.identity.keys import SigningKey
from consortia.ledger.crypto import Keyring, LedgerCorrupted
from consortia.ledger.merkle import MerkleFrontier
from consortia.ledger.receipts import SignedRoot
from consortia.ledger.records import (
    TxRecord,
    notification_entry,
)
from consortia.ledger.sealed import (
    SealedRows,
    StateVersion,
    Write,
    open_info,
    parent_of,
    unwrap_keyring,
)
from consortia.ledger.store import (
    CommitBatch,
    NameRow,
    NotificationRow,
    ProposalRow,
    Store,
    TxRow,
    VersionRow,
)
from consortia.wire.notification import Notice

__all__ = [
    "GOV_ACTIONS",
    "GOV_ANALYTICS",
    "GOV_MEMBERS",
    "GOV_PLATFORM",
    "GOV_RECOVERY",
    "GOV_SETTINGS",
    "ConsortiumRuntime",
    "DurableBatch",
    "Notice",
    "StateVersion",
    "Write",
    "parent_of",
]

GOV_PREFIX = "gov/"
GOV_MEMBERS = "gov/members/"
GOV_ACTIONS = "gov/actions/"
GOV_SETTINGS = "gov/settings"
#: ``{"threshold": k or null}``: the voted k of the recovery shares (setRecoveryThreshold).
GOV_RECOVERY = "gov/recovery"
#: The analytics policy (setAnalyticsPolicy); absent means the default policy.
GOV_ANALYTICS = "gov/analytics"
#: The platform policy (setPlatformPolicy); absent means the default policy (any TEP).
GOV_PLATFORM = "gov/platform"
_SEQ = struct.Struct(">Q")
#: In a stored queue entry (never served): the seqno of the record that commits to it.
_COMMITTED_IN: Final = "committed_in"

Random = Callable[[int], bytes]


#: Newest committed versions the runtime keeps decrypted and parsed, most recently used
#: kept (a Telco action reads about ten objects; from storage each is a lookup, a decryption
#: and a parse).
LATEST_CACHE_ENTRIES: Final = 4096
#: A version stored in more bytes than this is read from storage each time, so the cache
#: holds at most 16 MiB of stored values (a Telco object is a few hundred bytes).
LATEST_CACHE_BLOB_BYTES: Final = 4 * 1024
#: Directory listings kept (by prefix), and the longest one kept.
LIST_CACHE_PREFIXES: Final = 1024
LIST_CACHE_NAMES: Final = 1024


#: Commits whose written keys a runtime remembers for the sandbox's read cache.
JOURNAL_COMMITS: Final = 64
#: Numbers each loaded view of a consortium, so that a cache of an older one starts over.
_generations = itertools.count(1)


class DurableBatch(Protocol):
    """What :meth:`ConsortiumRuntime.apply` takes over from a committed
    :class:`~consortia.engine.batch.Batch`."""

    overlay: dict[str, StateVersion]
    stored_bytes: dict[str, int]
    next_seqno: int
    frontier: MerkleFrontier
    constitution: Constitution
    new_keyring: Keyring | None
    counters: dict[str, int]
    rows: CommitBatch
    queued: list[bytes]
    proposals: dict[str, Proposal]


class ConsortiumRuntime:
    """The sequencer's view of one consortium (not thread-safe: one sequence per consortium)."""

    def __init__(
        self,
        *,
        cid: str,
        store: Store,
        keyring: Keyring,
        sealer: Sealer,
        service_key: SigningKey,
        info: JSONObject,
        random: Random = os.urandom,
    ) -> None:
        self.cid = cid
        self.store = store
        #: Every row in and out of storage (encryption at rest, keyed hashes).
        self.sealed = SealedRows(cid, keyring, random=random)
        self.sealer = sealer
        self.service_key = service_key
        self.info = info
        self.random = random
        self.constitution = Constitution(actions={}, members={})
        self.proposals: dict[str, Proposal] = {}
        self._counters: dict[str, int] = {}
        # Queue entries stored for the record at next_seqno, which is not written yet (a
        # batch that only opened a proposal); None until read back from storage.
        self._uncommitted: list[bytes] | None = None
        self.next_seqno = 0
        self.frontier = MerkleFrontier()
        #: The newest signed root whose signature was checked (receipts reuse it).
        self.signed_root: SignedRoot | None = None
        # key -> newest committed version (None: no such key); see latest(), _remember_latest().
        self._latest: OrderedDict[str, StateVersion | None] = OrderedDict()
        # prefix -> the committed live keys under it; see list_keys(), _remember_latest().
        self._lists: OrderedDict[str, set[str]] = OrderedDict()
        #: Names this runtime's committed state for caches kept elsewhere (the sandbox's);
        #: a reload starts a new one, because what it replaced is unknown.
        self.scope = f"{cid}#{next(_generations)}"
        # (next_seqno after a commit, what it wrote), newest last; see changed_since().
        self._journal: deque[tuple[int, Mapping[str, StateVersion]]] = deque()
        # No commit before this seqno is in the journal any more.
        self._journal_floor = 0

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        store: Store,
        cid: str,
        *,
        node_key: bytes,
        sealer: Sealer,
        service_key: SigningKey,
        random: Random = os.urandom,
        restore: bool = True,
    ) -> ConsortiumRuntime:
        """Load a consortium from storage, or raise ``not_found``.

        ``restore=False`` opens only the keyring and info, for an audit that reads the rest
        row by row (so damage is reported where it is, not as a failed start-up).
        """
        row = store.consortium(cid)
        if row is None:
            raise NotFound(f"no consortium {cid!r} on this platform")
        keyring = unwrap_keyring(node_key, cid, row.keyring)
        info = open_info(keyring, cid, row.info)
        runtime = cls(
            cid=cid,
            store=store,
            keyring=keyring,
            sealer=sealer,
            service_key=service_key,
            info=info,
            random=random,
        )
        if restore:
            runtime.reload()
        return runtime

    def reload(self) -> None:
        """Re-read governance, open proposals and counters from storage (after a failed commit)."""
        self.next_seqno = self.store.tree_size(self.cid)
        self.scope = f"{self.cid}#{next(_generations)}"
        self._journal.clear()
        self._journal_floor = self.next_seqno
        # What storage holds after a failed commit is what counts, not what was cached.
        self._latest.clear()
        self._lists.clear()
        # O(log n) reads: one stored node per one bit of the size, never the old leaves.
        self.frontier = MerkleFrontier.restore(self.next_seqno, self.stored_node)
        self._counters.clear()
        self._uncommitted = None
        self.constitution = self.read_constitution()
        self.proposals = {}
        for row in self.store.open_proposals(self.cid):
            proposal = self._open_proposal(row.pid_hash, row.blob)
            self.proposals[proposal.id] = proposal

    def read_constitution(self) -> Constitution:
        """Rebuild the constitution from the ``gov/`` keys."""
        members = {}
        for key in self.list_keys(GOV_MEMBERS):
            member = parse_member(self._gov_value(key), what=key, error=LedgerCorrupted)
            members[member.id] = member
        actions = {}
        for key in self.list_keys(GOV_ACTIONS):
            definition = parse_action_definition(
                self._gov_value(key), what=key, error=LedgerCorrupted
            )
            actions[definition.name] = definition
        settings = self._gov_value(GOV_SETTINGS) if self.latest(GOV_SETTINGS) else {}
        new_member = settings.get("new_member_actions", []) if isinstance(settings, dict) else []
        recovery = (
            self._gov_value(GOV_RECOVERY).get("threshold") if self.latest(GOV_RECOVERY) else None
        )
        analytics = (
            parse_analytics_policy(
                self._gov_value(GOV_ANALYTICS), what=GOV_ANALYTICS, error=LedgerCorrupted
            )
            if self.latest(GOV_ANALYTICS)
            else DEFAULT_ANALYTICS_POLICY
        )
        platform_policy = (
            parse_platform_policy(
                self._gov_value(GOV_PLATFORM), what=GOV_PLATFORM, error=LedgerCorrupted
            )
            if self.latest(GOV_PLATFORM)
            else None
        )
        return Constitution(
            recovery_threshold=recovery if isinstance(recovery, int) else None,
            analytics=analytics,
            platform_policy=platform_policy,
            actions=actions,
            members=members,
            new_member_actions=tuple(str(a) for a in new_member if isinstance(a, str))
            if isinstance(new_member, list)
            else (),
        )

    def _gov_value(self, key: str) -> JSONObject:
        version = self.latest(key)
        if version is None or not isinstance(version.value, dict):
            raise LedgerCorrupted(f"governance key {key} is missing or not an object")
        return version.value

    # -- storage names ----------------------------------------------------------------------

    @property
    def keyring(self) -> Keyring:
        """The consortium's keyring (replaced by a committed ``rotateLedgerSecret``)."""
        return self.sealed.keyring

    @keyring.setter
    def keyring(self, keyring: Keyring) -> None:
        self.sealed.keyring = keyring

    def name_hash(self, key: str) -> bytes:
        """Keyed hash of a state key (storage never sees the key)."""
        return self.sealed.name_hash(key)

    def member_hash(self, member: str) -> bytes:
        """Keyed hash of a member id (for its queue)."""
        return self.sealed.member_hash(member)

    def nonce_hash(self, member: str, nonce: str) -> bytes:
        """Keyed hash of a member's nonce."""
        return self.sealed.nonce_hash(member, nonce)

    def proposal_hash(self, pid: str) -> bytes:
        """Keyed hash of a proposal id."""
        return self.sealed.proposal_hash(pid)

    # -- state reads ------------------------------------------------------------------------

    def _version(self, row: VersionRow) -> StateVersion:
        return self.sealed.open_version(row)

    def version_from_row(self, row: VersionRow) -> StateVersion:
        """Decrypt and parse one stored state version."""
        return self.sealed.open_version(row)

    def name_from_row(self, row: NameRow) -> str:
        """Decrypt the key name of a directory entry."""
        return self.sealed.open_name(row)

    def latest(self, key: str) -> StateVersion | None:
        """Newest committed version of ``key``, whoever may see it.

        Kept in a bounded cache that every applied batch updates with the versions it wrote;
        its values are shared, so callers copy before changing one.
        """
        cache = self._latest
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        row = self.store.latest_version(self.cid, self.name_hash(key))
        found = None if row is None else self._version(row)
        if row is None or len(row.blob) <= LATEST_CACHE_BLOB_BYTES:
            cache[key] = found
            while len(cache) > LATEST_CACHE_ENTRIES:
                cache.popitem(last=False)
        return found

    def _remember_latest(
        self, versions: Mapping[str, StateVersion], stored_bytes: Mapping[str, int]
    ) -> None:
        """A batch that wrote ``versions`` committed: they are the newest now. The next
        transaction on an object usually reads what the last one wrote, so they replace
        what the cache held rather than leave a hole that storage must fill."""
        lists = self._lists
        for key, version in versions.items():
            names = lists.get(parent_of(key))
            if names is not None:
                if version.deleted:
                    names.discard(key)
                elif len(names) < LIST_CACHE_NAMES:
                    names.add(key)
                else:
                    del lists[parent_of(key)]
        cache = self._latest
        for key, version in versions.items():
            if stored_bytes.get(key, LATEST_CACHE_BLOB_BYTES + 1) <= LATEST_CACHE_BLOB_BYTES:
                cache[key] = version
                cache.move_to_end(key)
            else:
                cache.pop(key, None)
        while len(cache) > LATEST_CACHE_ENTRIES:
            cache.popitem(last=False)

    def forget_latest(self, keys: Iterable[str]) -> None:
        """Drop the cached versions of ``keys``: a batch that wrote them was just committed."""
        for key in keys:
            self._latest.pop(key, None)

    def changed_since(self, epoch: int) -> Mapping[str, StateVersion] | None:
        """The newest version of each key committed since ``next_seqno`` was ``epoch``; None if
        that is no longer known (the sandbox's read cache then starts over)."""
        if epoch == self.next_seqno:
            return {}
        if not self._journal_floor <= epoch < self.next_seqno:
            return None
        changed: dict[str, StateVersion] = {}
        for after, written in reversed(self._journal):
            if after <= epoch:
                break
            for key, version in written.items():
                changed.setdefault(key, version)
        return changed

    def versions(self, key: str) -> list[StateVersion]:
        """Every committed version of ``key``, oldest first."""
        return [self._version(r) for r in self.store.versions(self.cid, self.name_hash(key))]

    def list_keys(self, prefix: str) -> list[str]:
        """Committed live keys directly under ``prefix``, sorted (a copy: callers may keep it).

        Cached like :meth:`latest`: every applied batch adds and removes the names it wrote.
        """
        cache = self._lists
        names = cache.get(prefix)
        if names is not None:
            cache.move_to_end(prefix)
            return sorted(names)
        rows = self.store.children(self.cid, self.sealed.dir_hash(prefix))
        listed = sorted(self.name_from_row(row) for row in rows)
        if len(listed) <= LIST_CACHE_NAMES:
            cache[prefix] = set(listed)
            if len(cache) > LIST_CACHE_PREFIXES:
                cache.popitem(last=False)
        return listed

    def record(self, row: TxRow) -> TxRecord:
        """Decrypt and parse a transaction's record, checking its digest."""
        return self.sealed.open_record(row)

    def record_bytes(self, row: TxRow) -> bytes:
        """The record bytes of a transaction, checked against its digest."""
        return self.sealed.open_record_bytes(row)

    def signed_root_mac(self, tree_size: int, previous: int, jws: str) -> bytes:
        """The keyed hash that chains a stored signed root to the one before it."""
        return self.sealed.signed_root_mac(tree_size, previous, jws)

    def stored_node(self, level: int, index: int) -> bytes:
        """A committed Merkle node (the ``get_node`` of :mod:`consortia.ledger.merkle`)."""
        value = self.store.merkle_node(self.cid, level, index)
        if value is None:
            raise LedgerCorrupted(
                f"Merkle node (level {level}, index {index}) of {self.cid} is missing; "
                "run `consortia ledger verify`"
            )
        return value

    def proposal_from_row(self, row: ProposalRow) -> Proposal:
        """Decrypt and parse a stored proposal."""
        return self._open_proposal(row.pid_hash, row.blob)

    def _open_proposal(self, pid_hash: bytes, blob: bytes) -> Proposal:
        try:
            return parse_proposal(self.sealed.open_proposal(pid_hash, blob))
        except (ConsortiaError, ValueError) as exc:
            if isinstance(exc, LedgerCorrupted):
                raise
            raise LedgerCorrupted(f"stored proposal is unreadable: {exc}") from None

    def proposal(self, pid: str) -> Proposal | None:
        """A proposal by id (open ones from memory, decided ones from storage)."""
        found = self.proposals.get(pid)
        if found is not None:
            return found
        row = self.store.proposal(self.cid, self.proposal_hash(pid))
        return None if row is None else self._open_proposal(row.pid_hash, row.blob)

    def uncommitted_notifications(self) -> list[bytes]:
        """Entries (:func:`notification_entry`) of stored queue rows that name the record at
        ``next_seqno``: what batches that only opened a proposal queued since the last record.

        The first record of the next batch commits to them. Read back from storage once (the
        newest rows of each member's queue, newest first, while they name that record); after
        that the runtime keeps the list as commits go.
        """
        if self._uncommitted is None:
            found: list[bytes] = []
            for member in self.constitution.members:
                member_hash = self.member_hash(member)
                nid = self.notification_counter(member)
                while nid > 0:
                    rows = self.store.notifications(self.cid, member_hash, nid - 1, 1)
                    if not rows or self.notification_entry(rows[0])[1] != self.next_seqno:
                        break
                    found.append(notification_entry(member_hash, nid, rows[0].blob))
                    nid -= 1
            self._uncommitted = found
        return list(self._uncommitted)

    def queue_head_mac(self, doc: JSONObject) -> str:
        """The keyed hash in a queue head over its other fields."""
        return self.sealed.queue_head_mac(doc)

    def notification_counter(self, member: str) -> int:
        """The id of the member's newest queued notification."""
        count = self._counters.get(member)
        if count is None:
            count = self.store.last_notification_id(self.cid, self.member_hash(member))
            self._counters[member] = count
        return count

    # -- after a commit -------------------------------------------------------------------

    def open_proposals(self) -> list[Proposal]:
        """Every open proposal (the runtime keeps them all in memory)."""
        return list(self.proposals.values())

    def apply(self, batch: DurableBatch) -> None:
        """After ``batch`` committed durably: take over its effects as the committed state."""
        self._remember_latest(batch.overlay, batch.stored_bytes)
        if batch.overlay:
            if len(self._journal) == JOURNAL_COMMITS:
                self._journal_floor = self._journal.popleft()[0]
            self._journal.append((batch.next_seqno, batch.overlay))
        self.next_seqno = batch.next_seqno
        self.frontier = batch.frontier
        self.constitution = batch.constitution
        if batch.new_keyring is not None:
            self.keyring = batch.new_keyring
        self._counters.update(batch.counters)
        if batch.rows.txs:
            # Its records committed every pending queue entry.
            self._uncommitted = []
        elif self._uncommitted is not None:
            # A batch with no record: its entries wait for the next record.
            self._uncommitted.extend(batch.queued)
        for proposal in batch.proposals.values():
            if proposal.is_open:
                self.proposals[proposal.id] = proposal
            else:
                self.proposals.pop(proposal.id, None)

    # -- queue entries ----------------------------------------------------------------------

    def notification_data(self, row: NotificationRow) -> JSONObject:
        """Decrypt one queue entry to the wire form of PROTOCOL.md section 5."""
        return self.sealed.open_notification(row)[0]

    def notification_entry(self, row: NotificationRow) -> tuple[JSONObject, int | None]:
        """Decrypt one queue entry: its wire form, and the seqno of the record that commits
        to it (None for an entry stored before records committed to queues)."""
        return self.sealed.open_notification(row)
