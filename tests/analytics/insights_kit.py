"""Synthetic analytics stores for the insights tests: Events in, a DuckDB file out.

Rows go in through the sink's DuckDB backend (the agreed schema: one column per Event/Alert
field, ``fields``/``evidence`` as JSON text), so these tests need no running platform.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from consortia._json import JSON
from consortia.analytics import Alert, Event
from consortia.analytics.duckdb_sink import DuckDBBackend

#: 2026-11-25 08:00 UTC, the start of the synthetic consortium day.
T0 = 1795593600.0


def write_store(path: Path, events: Iterable[Event], alerts: Iterable[Alert] = ()) -> Path:
    """Write ``events`` and ``alerts`` to a DuckDB file at ``path`` with the sink's backend."""
    backend = DuckDBBackend(path)
    try:
        backend.write_events(list(events))
        backend.write_alerts(list(alerts))
    finally:
        backend.close()
    return path


@dataclass
class Traffic:
    """Builds events of one consortium with readable defaults and unique txids."""

    consortium: str = "acme"
    events: list[Event] = field(default_factory=list)
    _n: int = 0

    def add(
        self,
        at: float,
        member: str | None,
        action: str,
        outcome: str = "committed",
        *,
        code: str | None = None,
        kind: str = "execute",
        latency_ms: float = 2.0,
        txid: str | None = None,
        fields: dict[str, JSON] | None = None,
    ) -> str:
        """Append one event ``at`` seconds after T0; returns its txid."""
        self._n += 1
        tx = txid or f"{self._n:064x}"
        self.events.append(
            Event(
                T0 + at,
                self.consortium,
                kind,
                action,
                member,
                outcome,
                code,
                latency_ms,
                None,
                None,
                tx,
                fields or {},
            )
        )
        return tx


def telco_day(seed: int = 7, orders: int = 24, consortium: str = "acme") -> Traffic:
    """A working day of a Telco consortium, 08:00-18:00, as analytics would see it.

    Seller ``telco`` places ``orders`` orders of 2-3 devices at suppliers ``vendorA`` and
    ``vendorB``; the suppliers move them along (most complete, one in four is cancelled,
    some stay open); ``vendorB`` reserves two units by hand that nothing ever uses (a leak
    of 2). Around them: reads, refusals (installer probing, failed validations), and three
    votes (approved after 40 minutes, rejected after 2 hours, still open).
    """
    rng = random.Random(seed)
    t = Traffic(consortium)
    for n in range(orders):
        start = 600.0 + n * 1200.0 + rng.uniform(0, 300)
        oid = f"PO-{n + 1}"
        devices: list[JSON] = [
            {
                "id": f"{oid}-D{k}",
                "supplier": ("vendorA", "vendorB")[k % 2],
                "part": "ont",
                "site": "S1",
                "services": [],
            }
            for k in range(2 + n % 2)
        ]
        t.add(
            start,
            "telco",
            "placeOrder",
            fields={"id": oid, "devices": devices},
            latency_ms=rng.uniform(3, 9),
        )
        cancelled = n % 4 == 3
        open_order = n >= orders - 3
        at = start
        for device in devices:
            assert isinstance(device, dict)
            steps = (
                ["inProgress"] if cancelled else ["inProgress", "shipped", "delivered", "completed"]
            )
            if open_order:
                steps = ["inProgress", "shipped"]
            for state in steps:
                at += rng.uniform(300, 1500)
                t.add(
                    at,
                    str(device["supplier"]),
                    "updateDeviceOrder",
                    fields={"productOrderId": oid, "device": device["id"], "state": state},
                    latency_ms=rng.uniform(2, 6),
                )
        if cancelled:
            t.add(at + 600, "telco", "cancelOrder", fields={"id": oid})
        for _ in range(3):
            reader = rng.choice(["telco", "vendorA", "vendorB", "installer"])
            t.add(
                start + rng.uniform(0, 3000),
                reader,
                "object",
                "ok",
                kind="read",
                latency_ms=rng.uniform(0.5, 2),
            )
    t.add(
        5000,
        "vendorB",
        "reserveStock",
        fields={"supplier": "vendorB", "part": "ont", "quantity": 2, "productOrderId": "PO-1"},
    )
    for k in range(6):
        t.add(9000 + 2000 * k, "installer", "placeOrder", "refused", code="permission_denied")
    for k in range(4):
        t.add(12000 + 3000 * k, "telco", "reviseOrder", "failed", code="action_failed")
    t.add(20000, "vendorA", "updateDeviceOrder", "refused", code="replay")
    approved = t.add(3000, "telco", "addMember", "pending")
    t.add(3000 + 2400, "telco", "addMember", "committed", txid=approved)
    rejected = t.add(7000, "vendorA", "setAnalyticsPolicy", "pending")
    t.add(
        7000 + 7200, "vendorA", "setAnalyticsPolicy", "refused", code="vote_rejected", txid=rejected
    )
    t.add(30000, "vendorB", "removeMember", "pending")
    t.events.sort(key=lambda e: e.time)
    return t
