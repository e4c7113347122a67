"""Notification queues against the records that commit to them, and the queue head.

Each record commits to the queue entries stored under it, so an entry deleted (the newest of
a queue too), added, altered or moved is reported at the record that committed to it; the
queue head commits to the entries awaiting the next record.
"""

from __future__ import annotations

from consortia._json import JSONObject, loads_strict
from consortia.engine.audit.state import AuditState
from consortia.errors import ConsortiaError
from consortia.ledger.records import notification_entry, notifications_digest, queue_head_name

__all__ = ["QueueChecks"]


class QueueChecks(AuditState):
    """The checks of a consortium's notification queues and queue head."""

    def _queue_head(self, entries: list[bytes], size: int) -> str | None:
        """What is wrong with the queue head, which commits to ``entries`` (those no record
        covers yet), or None. A head that waits for an older record is stale and ignored."""
        stored = self.store.meta_get(queue_head_name(self.cid))
        head: JSONObject | None = None
        if stored is not None:
            try:
                doc = loads_strict(stored, what="queue head")
            except ConsortiaError:
                return "the queue head is not JSON: it was altered"
            if not isinstance(doc, dict) or self.runtime.queue_head_mac(doc) != doc.get("mac"):
                return "the queue head was altered"
            if doc.get("seqno") == size:
                head = doc  # otherwise stale: a record since commits to what it covered
        if head is None:
            if entries:
                return (
                    f"{len(entries)} notification queue entries wait for the next record and "
                    "no queue head commits to them: the head was deleted"
                )
            return None
        if head.get("entries") != len(entries) or head.get("digest") != notifications_digest(
            entries
        ):
            return (
                f"the queue head commits to {head.get('entries')} notification queue entries "
                f"awaiting the next record, not the {len(entries)} stored: an entry was "
                "deleted, added, altered or moved"
            )
        return None

    def _notifications(self, size: int) -> tuple[int, int, int]:
        """Every queue entry against the record that commits to it; returns the number of
        entries, of those stored before records committed to queues, and of those awaiting
        the next record.

        A problem tied to a record (its entries are not those stored) names its seqno; one
        only a queue shows (a gap, an entry that does not decrypt) is told beside it, since
        the record that lost or gained the entry is the better pointer to the damage.
        """
        count = before = awaiting = 0
        last: dict[bytes, int] = {}
        # seqno of the committing record -> the entries stored under it
        under: dict[int, list[bytes]] = {}
        loose: list[str] = []
        for row in self.store.scan_notifications(self.cid):
            count += 1
            if row.nid != last.get(row.member_hash, 0) + 1:
                loose.append(f"a notification queue has a gap or a moved entry at id {row.nid}")
            last[row.member_hash] = row.nid
            try:
                data, committed_in = self.runtime.notification_entry(row)
            except ConsortiaError as exc:
                loose.append(exc.message)
                continue
            if data.get("id") != row.nid:
                loose.append(f"a notification queue has a gap or a moved entry at id {row.nid}")
            if committed_in is None:
                before += 1
                continue
            entry = notification_entry(row.member_hash, row.nid, row.blob)
            under.setdefault(committed_in, []).append(entry)
        bad: list[tuple[int, str]] = []
        for seqno, committed in self.queue_digests.items():
            entries = under.pop(seqno, [])
            if notifications_digest(entries) != committed:
                bad.append(
                    (
                        seqno,
                        f"its record commits to notification queue entries that are not the "
                        f"{len(entries)} stored under it: an entry was deleted, added, altered "
                        "or moved",
                    )
                )
        problem = self._queue_head(under.get(size, []), size)
        if problem is not None:
            loose.append(problem)
        for seqno, entries in under.items():
            if seqno == size:
                awaiting += len(entries)
            elif seqno < size:
                bad.append(
                    (
                        seqno,
                        f"{len(entries)} notification queue entries name this record, which "
                        "commits to none",
                    )
                )
            else:
                loose.append(
                    f"{len(entries)} notification queue entries name seqno {seqno}, past "
                    f"the ledger's {size} entries"
                )
        if bad:
            seqno, message = min(bad)
            if loose:
                message += f" ({loose[0]})"
            raise self.fail(message, seqno)
        if loose:
            raise self.fail(loose[0])
        return count, before, awaiting
