"""The Telco pack's params schemas: enforced on every action, shown by `action show`, and
documented in docs/telco.md from the same files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from telco_world import telco_world

from consortia.cli import main
from consortia.cli.describe import action_entry, render_action
from consortia.errors import UnknownAction
from consortia.governance.params_schema import check_schema, validate_params
from consortia.sandbox.compiler import code_hash
from consortia.telco.reference import reference
from consortia.telco.template import DOMAIN_ACTIONS, action_code, params_schema
from testkit import js

DOCS = Path(__file__).resolve().parents[2] / "docs" / "telco.md"


def test_docs_carry_the_reference_generated_from_the_schemas() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert reference() in text, (
        "docs/telco.md is out of date: "
        "run python -m consortia.telco.reference --write docs/telco.md"
    )


@pytest.mark.parametrize("name", sorted(DOMAIN_ACTIONS))
def test_every_action_has_a_schema_whose_example_it_accepts(name: str) -> None:
    schema = check_schema(params_schema(name), what=name)
    examples: Any = schema.get("examples")
    assert isinstance(examples, list) and examples, f"{name} has no example"
    for example in examples:
        validate_params(schema, example, action=name)
    assert schema.get("additionalProperties") is False, f"{name} accepts unknown fields"


def test_a_telco_request_with_wrong_params_is_refused_before_the_code_runs(
    tmp_path: Path,
) -> None:
    with telco_world(tmp_path) as world:
        empty = world.refused("telco", "createProject", {}, code="bad_request")
        assert "params.id is required" in empty and "Key" not in empty
        typo = world.refused(
            "telco",
            "placeOrder",
            {
                "id": "PO1",
                "projectId": "P1",
                "sites": [],
                "services": [],
                "devices": [],
                "requestedCompletionDat": "2027-01-01",
            },
            code="bad_request",
        )
        assert "unknown field 'requestedCompletionDat'" in typo


def test_action_show_says_who_may_run_it_its_fields_and_an_example(tmp_path: Path) -> None:
    with telco_world(tmp_path) as world:
        doc = js(world.platform.member_view(world.cid, "vendorA").constitution())
    text = render_action(action_entry(doc, "updateDeviceOrder"))
    assert "every holder of role supplier may run it" in text
    assert "voting: none: it runs at once" in text
    assert "productOrderId" in text and "consortia exec updateDeviceOrder --params '{" in text
    bind = render_action(action_entry(doc, "bindSerial"))
    assert "1 approval(s) of role:seller" in bind
    with pytest.raises(UnknownAction, match=r"no action 'updateDevice'.*public ones: .*Order"):
        action_entry(doc, "updateDevice")


def test_action_check_compiles_a_pack_action_with_its_shared_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = Path(__file__).resolve().parents[2] / "src/consortia/telco/actions"
    assert main(["action", "check", str(source / "updateDeviceOrder.star"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Exactly the code the template votes: the action's own, then common.star.
    assert report["code_hash"] == code_hash(action_code("updateDeviceOrder"))
    assert report["shared_code"].endswith("common.star")
    # The shared file alone is not an action: refused as amendConstitution would refuse it.
    assert main(["action", "check", str(source / "common.star")]) == 1
    assert "no `def main(params):`" in capsys.readouterr().out
