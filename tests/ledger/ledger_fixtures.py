"""A real ledger on disk for the ledger tests: two consortia, hidden transactions, open and
decided proposals, group commits, deletions. Tests copy it and tamper with the copy.

The platform runs a stand-in for the Starlark sandbox (the engine's ``ActionSandbox`` plug
point) so that transactions with narrow audiences exist without the real sandbox.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consortia import Committed, MemberKeys, Pending, Platform, SigningKey
from consortia._json import JSON, JSONObject
from consortia.engine.execution import Execution
from consortia.ledger.nodekey import load_or_create_node_key
from consortia.ledger.sqlite import SQLiteStore
from consortia.wire import sign_action, sign_creation

T0 = 1_800_000_000
#: Action code the stand-in sandbox runs: params {"writes": [{"key","value","visible_to"?}],
#: "delete": [keys]}.
WRITER_CODE = "def main(params):\n    return None\n"


class WritingSandbox:
    """Runs every Starlark action as "apply params.writes and params.delete"."""

    def literal_calls(self, name: str, code: str) -> tuple[str, ...]:
        return ()

    def execute(
        self,
        name: str,
        code: str,
        params: JSONObject,
        host: Execution,
        budget: object = None,
        view: object = None,
    ) -> JSON:
        writes = params.get("writes", [])
        assert isinstance(writes, list)
        for write in writes:
            assert isinstance(write, dict)
            visible = write.get("visible_to")
            host.put(
                str(write["key"]),
                write["value"],
                [str(v) for v in visible] if isinstance(visible, list) else None,
            )
        deletes = params.get("delete", [])
        assert isinstance(deletes, list)
        for key in deletes:
            host.delete(str(key))
        return {"wrote": len(writes)}


@dataclass
class Ledger:
    """A platform on ``data`` with known member keys; ``txids`` are every committed txid."""

    data: Path
    operator: SigningKey
    platform: Platform
    keys: dict[str, MemberKeys] = field(default_factory=dict)
    txids: dict[str, list[str]] = field(default_factory=dict)
    hidden: list[tuple[str, str, str]] = field(default_factory=list)  # (cid, txid, not-seen-by)
    now: int = T0

    def act(
        self,
        cid: str,
        member: str,
        action: str,
        params: JSONObject,
        visible_to: Sequence[str] = (),
    ) -> str:
        return sign_action(
            self.keys[member],
            consortium=cid,
            action=action,
            params=params,
            now=self.now,
            visible_to=visible_to,
        )

    def run(self, cid: str, bodies: list[str]) -> list[object]:
        answers: list[object] = list(self.platform.execute_batch(cid, bodies))
        for answer in answers:
            if isinstance(answer, Committed):
                self.txids.setdefault(cid, []).append(answer.txid)
        return answers

    def close(self) -> None:
        self.platform.close()


def open_platform(data: Path, operator: SigningKey) -> Platform:
    """A platform on ``data`` with the stand-in sandbox and a fixed clock."""
    data.mkdir(parents=True, exist_ok=True)
    return Platform(
        SQLiteStore(data / "ledger.sqlite"),
        node_key=load_or_create_node_key(data / "node.key"),
        operator_keys=[operator.verify_key],
        sandbox=WritingSandbox(),
        clock=lambda: T0,
    )


def _found(ledger: Ledger, cid: str, members: Sequence[str]) -> None:
    for member in members:
        ledger.keys.setdefault(member, MemberKeys.generate(member))
    created = ledger.platform.create_consortium(
        sign_creation(
            ledger.operator,
            consortium=cid,
            name=f"{cid} consortium",
            members=[ledger.keys[m].public_info() for m in members],
            now=ledger.now,
        )
    )
    ledger.txids.setdefault(cid, []).append(created.txid)
    amend = ledger.act(
        cid,
        members[0],
        "amendConstitution",
        {
            "name": "record",
            "scope": "public",
            "language": "starlark",
            "code": WRITER_CODE,
            "permissions": [{"member": m, "execute": True} for m in members],
            "voting": {"voters": "any", "majority": 1, "veto": []},
        },
    )
    (pending,) = ledger.run(cid, [amend])
    assert isinstance(pending, Pending)
    vote = ledger.act(
        cid, members[1], "voteFor", {"proposal": pending.proposal, "ballot": "approve"}
    )
    (done,) = ledger.run(cid, [vote])
    assert isinstance(done, Committed)
    ledger.txids[cid].append(pending.proposal)  # resumed in the ballot's commit


def build_ledger(data: Path) -> Ledger:
    """Fill ``data`` with the scenario; the platform is left open (``close`` it)."""
    operator = SigningKey.generate()
    ledger = Ledger(data, operator, open_platform(data, operator))
    _found(ledger, "acme", ["telco", "vendor", "installer"])
    _found(ledger, "globex", ["supplier", "telco", "customer"])

    def record(member: str, key: str, value: JSON, visible_to: Sequence[str] = ()) -> str:
        params: JSONObject = {"writes": [{"key": key, "value": value}]}
        return ledger.act("acme", member, "record", params, visible_to)

    # A group commit of several hidden transactions and one that hands out parts.
    answers = ledger.run(
        "acme",
        [
            record("telco", "order/O-1", {"status": "acknowledged"}, ["vendor"]),
            record("vendor", "order/O-1", {"status": "shipped"}, ["installer"]),
            record("telco", "order/O-2", {"status": "new"}),
            ledger.act(
                "acme",
                "telco",
                "record",
                {
                    "writes": [
                        {"key": "part/O-3/vendor", "value": 1, "visible_to": ["vendor"]},
                        {"key": "part/O-3/installer", "value": 2, "visible_to": ["installer"]},
                    ]
                },
            ),
        ],
    )
    assert all(isinstance(a, Committed) for a in answers)
    first = answers[0]
    assert isinstance(first, Committed)
    ledger.hidden.append(("acme", first.txid, "installer"))
    # A deletion, a second batch, and a proposal left open.
    ledger.run("acme", [ledger.act("acme", "telco", "record", {"delete": ["order/O-2"]})])
    customer = MemberKeys.generate("customer")
    ledger.keys.setdefault("customer", customer)
    (pending,) = ledger.run(
        "acme", [ledger.act("acme", "telco", "addMember", ledger.keys["customer"].public_info())]
    )
    assert isinstance(pending, Pending)
    # A proposal that gets rejected (its nonce stays used).
    (doomed,) = ledger.run(
        "acme", [ledger.act("acme", "vendor", "removeMember", {"id": "installer"})]
    )
    assert isinstance(doomed, Pending)
    ledger.run(
        "acme",
        [
            ledger.act(
                "acme", "telco", "voteFor", {"proposal": doomed.proposal, "ballot": "reject"}
            ),
            ledger.act(
                "acme", "installer", "voteFor", {"proposal": doomed.proposal, "ballot": "reject"}
            ),
        ],
    )
    for n in range(5):
        ledger.run(
            "globex",
            [
                ledger.act(
                    "globex",
                    "supplier",
                    "record",
                    {"writes": [{"key": f"stock/{n}", "value": n}]},
                    ["telco"],
                )
            ],
        )
    return ledger


def copy_ledger(source: Path, target: Path) -> Path:
    """Copy a closed ledger's files (database, node key) to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.name.startswith("ledger.sqlite") or path.name == "node.key":
            shutil.copy2(path, target / path.name)
    return target


def table_fingerprint(db: Path) -> str | None:
    """Every row of every data table (not the schema text), or None if unreadable."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        parts = [repr(con.execute("PRAGMA user_version").fetchone())]
        for table in tables:
            rows = con.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
            # SQL names are case-insensitive: "Names" is the same table as "names".
            parts.append(repr((table.lower(), sorted(rows, key=repr))))
        return "\n".join(parts)
    except (sqlite3.Error, UnicodeDecodeError):
        return None
    finally:
        con.close()
