"""Receipts from a running platform: any member, any committed transaction, verified offline.

The platform is the one ledger_fixtures builds (two consortia, hidden transactions); the
checks use only what a member holds: the receipt and the service key it pinned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_fixtures import Ledger, build_ledger

from consortia.cli import main
from consortia.errors import ConsortiaError, NotFound
from consortia.identity._b64 import b64url_decode
from consortia.identity.keys import VerifyKey
from consortia.ledger.receipts import verify_receipt


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    built = build_ledger(tmp_path_factory.mktemp("platform"))
    yield built
    built.close()


def pinned(ledger: Ledger) -> VerifyKey:
    """The service key as a member pins it: from GET /v1/service."""
    return VerifyKey.from_jwk(ledger.platform.service_info()["service_key"])


def members(ledger: Ledger, cid: str) -> list[str]:
    return sorted(ledger.platform.runtime(cid).constitution.active_ids())


def test_every_member_gets_a_verifying_receipt_for_every_transaction(ledger: Ledger) -> None:
    key = pinned(ledger)
    for cid, txids in ledger.txids.items():
        size = ledger.platform.store.tree_size(cid)
        assert sorted(txids) == sorted(
            row.txid
            for row in (ledger.platform.store.tx_by_seqno(cid, s) for s in range(size))
            if row is not None
        )
        for member in members(ledger, cid):
            view = ledger.platform.member_view(cid, member)
            for txid in txids:
                receipt = view.receipt(txid)
                verified = verify_receipt(receipt, key)
                assert (verified.consortium, verified.txid, verified.tree_size) == (
                    cid,
                    txid,
                    size,
                )
                try:
                    record = b64url_decode(str(view.transaction(txid)["record"]), what="record")
                except NotFound:
                    continue
                # What a member who may read the record checks: the receipt covers these bytes.
                assert hashlib.sha256(record).hexdigest() == verified.digest


def test_a_member_gets_the_receipt_of_a_transaction_it_may_not_read(ledger: Ledger) -> None:
    (cid, txid, outsider) = ledger.hidden[0]
    view = ledger.platform.member_view(cid, outsider)
    with pytest.raises(NotFound):
        view.transaction(txid)
    verified = verify_receipt(view.receipt(txid), pinned(ledger))
    assert verified.txid == txid


def test_no_receipt_for_what_is_not_committed_here(ledger: Ledger) -> None:
    view = ledger.platform.member_view("acme", "telco")
    pending = [p["proposal"] for p in view.proposals()]
    assert pending  # the open addMember proposal
    for txid in ["00" * 32, "not a txid", pending[0], ledger.txids["globex"][-1]]:
        with pytest.raises(ConsortiaError) as caught:
            view.receipt(str(txid))
        assert caught.value.code == "not_found"


def test_receipt_verify_command(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    txid = ledger.txids["acme"][3]
    receipt = ledger.platform.member_view("acme", "installer").receipt(txid)
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(json.dumps(receipt, indent=1))
    service = ledger.platform.service_info()
    service_file = tmp_path / "service.json"
    service_file.write_text(json.dumps(service))
    jwk_file = tmp_path / "service-key.jwk"
    jwk_file.write_text(json.dumps(service["service_key"]))
    inline = json.dumps(service["service_key"])
    for key in (str(jwk_file), inline, str(service_file)):
        assert main(["receipt", "verify", str(receipt_file), "--service-key", key]) == 0
        out = capsys.readouterr().out
        assert f"receipt OK: transaction {txid} is seqno 3 of consortium 'acme'" in out
    assert main(["receipt", "verify", str(receipt_file), "--service-key", inline, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seqno"] == 3

    tampered = {**receipt, "seqno": 4}
    receipt_file.write_text(json.dumps(tampered))
    assert main(["receipt", "verify", str(receipt_file), "--service-key", inline]) == 1
    err = capsys.readouterr().err
    assert "bad_signature" in err and "not proven" in err

    other = '{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}'
    receipt_file.write_text(json.dumps(receipt))
    assert main(["receipt", "verify", str(receipt_file), "--service-key", other]) == 1
    assert "another platform" in capsys.readouterr().err
    assert main(["receipt", "verify", str(tmp_path / "nope"), "--service-key", inline]) == 1
    assert "cannot read receipt" in capsys.readouterr().err
    assert main(["receipt", "verify", str(receipt_file), "--service-key", "missing.jwk"]) == 1
    assert "no key file" in capsys.readouterr().err
