"""The engine against tests/vectors/: what each body parses to, what a fresh consortium
answers, the stable code of every refusal, and the notifications each member is left with."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from consortia.errors import ConsortiaError
from consortia.identity.keys import EncryptionKey
from consortia.wire import parse_action_request, unwrap_body
from wire_vectors import NOTIFICATIONS, REQUESTS, notifications_of, vector_platform

VECTORS = Path(__file__).parents[1] / "vectors"


def _render(name: str) -> str:
    spec = importlib.util.spec_from_file_location(name, VECTORS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render: Callable[[], str] = module.render
    return render()


@pytest.mark.parametrize("name", ["requests", "notifications"])
def test_the_generators_reproduce_the_vectors_byte_for_byte(name: str) -> None:
    on_disk = (VECTORS / f"{name}.json").read_bytes()
    assert _render(f"generate_{name}").encode("utf-8") == on_disk


@pytest.mark.parametrize("case", REQUESTS["valid"], ids=lambda c: c["name"])
def test_a_valid_body_parses_to_its_fields(case: dict[str, object]) -> None:
    # Bodies go in as the bytes a POST carries (a str body is taken as it stands).
    jws = unwrap_body(str(case["body"]).encode(), EncryptionKey.generate())
    request = parse_action_request(jws, REQUESTS["consortium"])
    expect = case["expect"]
    assert isinstance(expect, dict)
    got = {
        "member": request.member,
        "action": request.action,
        "params": request.params,
        "visible_to": list(request.visible_to),
        "txref": request.txref,
        "nonce": request.nonce,
        "iat": request.iat,
        "txid": request.txid,
    }
    assert got == expect


def test_a_fresh_consortium_answers_the_valid_then_refuses_the_invalid(tmp_path: Path) -> None:
    with vector_platform(tmp_path / "tep") as v:
        for case in REQUESTS["valid"]:
            outcome = v.platform.execute(v.cid, case["body"].encode())
            assert outcome.to_wire() == case["answer"], case["name"]
        refused = []
        for case in REQUESTS["invalid"]:
            with pytest.raises(ConsortiaError) as caught:
                v.platform.execute(v.cid, case["body"].encode())
            refused.append((case["name"], caught.value.code, caught.value.txid))
        assert refused == [(c["name"], c["code"], c["txid"]) for c in REQUESTS["invalid"]]
        # A refusal queues nothing: the queues are those the valid requests left.
        assert notifications_of(v.platform, v.cid) == NOTIFICATIONS["queues"]
