"""Reads as one member: every read path enforces "who sees what" (PROTOCOL.md section 7).

A member reads a transaction record, or a state version, only if the audience includes it
(the submitter and its ``visible_to``; everyone for governance). History shows hidden
versions only as ``{seqno, txid, digest}``, so each member can still get a receipt for them:
receipts (PROTOCOL.md section 6) are the one read open to every member for every committed
transaction, since they reveal only txid, seqno and a salted digest.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Concatenate, Literal, ParamSpec, TypeVar

from consortia._json import JSON, JSONObject, json_list
from consortia.analytics.redact import HIDDEN_READ
from consortia.engine.consortium import ConsortiumRuntime
from consortia.engine.execution import check_key
from consortia.engine.observe import AnalyticsHook
from consortia.errors import BadRequest, ConsortiaError, NotFound
from consortia.governance.voting import Proposal, tally
from consortia.identity._b64 import b64url_decode, b64url_encode
from consortia.ledger.crypto import LedgerCorrupted
from consortia.ledger.merkle import InclusionError, inclusion_proof, verify_inclusion
from consortia.ledger.receipts import build_receipt, verify_signed_root
from consortia.ledger.records import Audience

__all__ = [
    "LIST_DEFAULT",
    "LIST_SCAN",
    "MAX_PAGE",
    "HiddenObject",
    "MemberView",
    "decode_cursor",
    "encode_cursor",
]

#: Most notifications, keys or versions returned by one read.
MAX_PAGE = 1000
#: Keys in a listing page when the caller names no limit.
LIST_DEFAULT = 100
#: Most names one listing looks at before it answers (a short page with a cursor): a
#: member who may see few keys of a large prefix gets pages, never a long scan.
LIST_SCAN = 5000
_CURSOR = "k1:"


class HiddenObject(NotFound):
    """``not_found`` to the reader, the same answer as for something absent; to analytics
    (inside the TEP), a read of something that exists but is not the reader's to see."""


def encode_cursor(last_key: str) -> str:
    """The opaque cursor that resumes a listing after ``last_key``."""
    return b64url_encode((_CURSOR + last_key).encode("utf-8"))


def decode_cursor(cursor: str) -> str:
    """The key a cursor resumes after; ``bad_request`` for anything this server did not make."""
    try:
        text = b64url_decode(cursor, what="cursor").decode("utf-8")
    except (BadRequest, UnicodeDecodeError):
        text = ""
    if not text.startswith(_CURSOR):
        raise BadRequest("cursor is not one this server returned: pass the 'next' of a listing")
    return text[len(_CURSOR) :]


P = ParamSpec("P")
R = TypeVar("R")


def _observed(
    read: str, subject: Literal["key", "txid"] | None = None
) -> Callable[[Callable[Concatenate[MemberView, P], R]], Callable[Concatenate[MemberView, P], R]]:
    """Emit an analytics ``read`` event for each call, when the view has a hook."""

    def wrap(
        fn: Callable[Concatenate[MemberView, P], R],
    ) -> Callable[Concatenate[MemberView, P], R]:
        @functools.wraps(fn)
        def run(view: MemberView, /, *args: P.args, **kwargs: P.kwargs) -> R:
            hook = view.hook
            if hook is None:
                return fn(view, *args, **kwargs)
            started = time.perf_counter()
            arg = args[0] if args else next(iter(kwargs.values()), None)
            name = arg if subject is not None and isinstance(arg, str) else None
            where = {subject: name} if subject is not None else {}
            try:
                result = fn(view, *args, **kwargs)
            except ConsortiaError as exc:
                hook.read(
                    view.consortium,
                    read,
                    view.member,
                    started=started,
                    code=HIDDEN_READ if isinstance(exc, HiddenObject) else exc.code,
                    policy=view._runtime.constitution.analytics,
                    **where,
                )
                raise
            hook.read(
                view.consortium,
                read,
                view.member,
                started=started,
                code=None,
                policy=view._runtime.constitution.analytics,
                **where,
            )
            return result

        return run

    return wrap


class MemberView:
    """The consortium as one active member may see it (committed state only)."""

    def __init__(
        self, runtime: ConsortiumRuntime, member: str, *, hook: AnalyticsHook | None = None
    ) -> None:
        self._runtime = runtime
        self.member = member
        self.consortium = runtime.cid
        #: Emits a ``read`` event per call when the platform has an analytics sink.
        self.hook = hook

    def __repr__(self) -> str:
        return f"MemberView({self.consortium!r}, {self.member!r})"

    def _sees(self, audience: Audience) -> bool:
        """Whether this member is in ``audience``: by id, or by a role it holds now."""
        return self._runtime.constitution.sees(audience, self.member)

    @_observed("constitution")
    def constitution(self) -> JSONObject:
        """Every action definition (code included) and the member list with public keys."""
        doc = self._runtime.constitution.to_json()
        doc["consortium"] = self.consortium
        doc["name"] = self._runtime.info.get("name")
        doc["template"] = self._runtime.info.get("template")
        return doc

    @_observed("proposals")
    def proposals(self, status: str = "open") -> list[JSONObject]:
        """Open proposals this member may see (governance ones: everyone)."""
        if status != "open":
            raise BadRequest("only status=open can be listed; fetch others by id")
        return [
            self._shown(p)
            for p in sorted(self._runtime.proposals.values(), key=lambda p: (p.created_at, p.id))
            if p.visible_to_member(self.member, self._runtime.constitution)
        ]

    def _shown(self, proposal: Proposal) -> JSONObject:
        """The proposal as this member reads it, with the live tally of an open one."""
        doc = proposal.shown_to(self.member)
        constitution = self._runtime.constitution
        definition = constitution.actions.get(proposal.action)
        if proposal.is_open and definition is not None:
            counted = tally(definition.voting, constitution, proposal.requester, proposal.ballots)
            doc["tally"] = {
                "approvals": json_list(sorted(counted.approvals)),
                "rejections": json_list(sorted(counted.rejections)),
                "needed": counted.needed,
                "summary": counted.reason,
            }
        return doc

    @_observed("proposal", "txid")
    def proposal(self, pid: str) -> JSONObject:
        """One proposal by id, open or decided, if this member may see it."""
        found = self._runtime.proposal(pid)
        if found is None or not found.visible_to_member(self.member, self._runtime.constitution):
            raise NotFound(f"no proposal {pid!r} that member {self.member!r} may see")
        return self._shown(found)

    @_observed("transaction", "txid")
    def transaction(self, txid: str) -> JSONObject:
        """``{"txid","seqno","record"}`` if this member may see the record."""
        row = self._runtime.store.tx_by_txid(self.consortium, txid)
        if row is not None:
            data = self._runtime.record_bytes(row)
            record = self._runtime.record(row)
            if self._runtime.constitution.sees(record.audience, self.member):
                return {"txid": txid, "seqno": row.seqno, "record": b64url_encode(data)}
            raise HiddenObject(f"no transaction {txid!r} that member {self.member!r} may see")
        raise NotFound(f"no transaction {txid!r} that member {self.member!r} may see")

    @_observed("receipt", "txid")
    def receipt(self, txid: str) -> JSONObject:
        """A receipt for any committed transaction, hidden ones included (O(log n) reads).

        The platform checks its own answer (signature, proof) before handing it out, so
        damaged storage raises ``LedgerCorrupted``, never yields a receipt that fails offline.
        """
        runtime = self._runtime
        row = runtime.store.tx_by_txid(self.consortium, txid)
        if row is None:
            raise NotFound(f"no committed transaction {txid!r} in consortium {self.consortium!r}")
        stored = runtime.store.latest_signed_root(self.consortium)
        if stored is None or stored.tree_size <= row.seqno:
            raise LedgerCorrupted(f"no signed root of {self.consortium} covers seqno {row.seqno}")
        service_key = runtime.service_key.verify_key
        signed = runtime.signed_root
        if signed is None or signed.jws != stored.jws:
            # Checked once per new root, not once per receipt: a signature check costs more
            # than the rest of a receipt.
            try:
                signed = verify_signed_root(stored.jws, service_key)
            except ConsortiaError as exc:
                raise LedgerCorrupted(f"stored signed root is unusable: {exc.message}") from None
            runtime.signed_root = signed
        if signed.tree_size != stored.tree_size or signed.consortium != self.consortium:
            raise LedgerCorrupted(f"a stored signed root of {self.consortium} is misfiled")
        proof = inclusion_proof(row.seqno, signed.tree_size, runtime.stored_node)
        try:
            verify_inclusion(row.leaf_hash, row.seqno, signed.tree_size, proof, signed.root)
        except InclusionError as exc:
            raise LedgerCorrupted(
                f"stored Merkle tree of {self.consortium} is inconsistent: {exc}"
            ) from None
        return build_receipt(
            txid=row.txid,
            seqno=row.seqno,
            digest=row.digest,
            proof=proof,
            signed_root=signed,
            service_key=service_key,
        )

    @_observed("object", "key")
    def object(self, key: str) -> JSONObject:
        """The newest version of ``key`` this member may see."""
        name = _key(key)
        found = self._newest_visible(name)
        if found is None:
            message = f"no value of {key!r} that member {self.member!r} may see"
            versions = self._runtime.versions(name)
            if versions and not any(self._sees(v.audience) for v in versions):
                raise HiddenObject(message)
            raise NotFound(message)
        return found

    def _newest_visible(self, key: str) -> JSONObject | None:
        for version in reversed(self._runtime.versions(key)):
            if self._sees(version.audience):
                if version.deleted:
                    return None
                return {
                    "key": key,
                    "value": version.value,
                    "seqno": version.seqno,
                    "txid": version.txid,
                }
        return None

    @_observed("keys", "key")
    def keys(
        self, prefix: str, *, limit: int = LIST_DEFAULT, cursor: str | None = None
    ) -> JSONObject:
        """Keys directly under ``prefix`` that this member may read, sorted, each as
        :meth:`object` answers it; ``next`` resumes after the last one (None at the end).

        A key whose every version is hidden from the member is skipped as if absent, so a
        listing tells nothing a failed ``object`` read would not.
        """
        if not isinstance(prefix, str) or (prefix and not prefix.endswith("/")):
            raise BadRequest("prefix must end with '/' (or be empty for the top level)")
        if prefix:
            _key(prefix[:-1])
        if not 0 < limit <= MAX_PAGE:
            raise BadRequest(f"limit must be within 1..{MAX_PAGE}")
        after = None if cursor is None else decode_cursor(cursor)
        names = self._runtime.list_keys(prefix)
        if after is not None:
            names = [n for n in names if n > after]
        found: list[JSON] = []
        last: str | None = None
        for name in names[:LIST_SCAN]:
            if len(found) == limit:
                break
            last = name
            entry = self._newest_visible(name)
            if entry is not None:
                found.append(entry)
        more = last is not None and last != names[-1]
        return {
            "prefix": prefix,
            "keys": found,
            "next": encode_cursor(last) if more and last is not None else None,
        }

    @_observed("history", "key")
    def history(
        self, key: str, *, after: int | None = None, limit: int | None = None
    ) -> list[JSONObject]:
        """The versions of ``key``, oldest first, hidden ones as seqno, txid and digest; with
        ``after`` only those of a later seqno, at most ``limit`` of them (a page: ask again
        with ``after`` = the last seqno until a page comes back short)."""
        key = _key(key)
        if limit is not None and not 0 < limit <= MAX_PAGE:
            raise BadRequest(f"limit must be within 1..{MAX_PAGE}")
        out: list[JSONObject] = []
        versions = self._runtime.versions(key)
        if not versions:
            raise NotFound(f"no key {key!r}")
        if after is not None:
            versions = [v for v in versions if v.seqno > after]
        if limit is not None:
            versions = versions[:limit]
        for version in versions:
            if self._sees(version.audience):
                entry: JSONObject = {
                    "seqno": version.seqno,
                    "txid": version.txid,
                    "value": version.value,
                    "visible": True,
                }
                if version.deleted:
                    entry["deleted"] = True
                out.append(entry)
            else:
                row = self._runtime.store.tx_by_seqno(self.consortium, version.seqno)
                digest: JSON = None if row is None else row.digest.hex()
                out.append(
                    {
                        "seqno": version.seqno,
                        "txid": version.txid,
                        "digest": digest,
                        "visible": False,
                    }
                )
        return out

    @_observed("notifications")
    def notifications(self, after: int = 0, limit: int = MAX_PAGE) -> list[JSONObject]:
        """This member's queue entries with id > ``after``, oldest first."""
        if after < 0 or not 0 < limit <= MAX_PAGE:
            raise BadRequest(f"after must be >= 0 and limit within 1..{MAX_PAGE}")
        runtime = self._runtime
        rows = runtime.store.notifications(
            self.consortium, runtime.member_hash(self.member), after, limit
        )
        return [runtime.notification_data(row) for row in rows]


def _key(key: object) -> str:
    try:
        return check_key(key)
    except Exception as exc:  # noqa: BLE001 - re-raised as the read path's own code
        raise BadRequest(str(exc)) from None
