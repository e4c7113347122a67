"""The platform policy: parsing setPlatformPolicy's params, and which TEPs it accepts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consortia._json import JSON, JSONObject
from consortia.errors import ActionFailed, ConsortiaError
from consortia.governance import (
    BASE_ACTIONS,
    GOVERNANCE_ACTIONS,
    Member,
    default_constitution,
)
from consortia.governance.platform_policy import (
    DEFAULT_PLATFORM_POLICY,
    MAX_MEASUREMENTS,
    PlatformPolicy,
    RunningPlatform,
    check_platform,
    parse_platform_policy,
)
from consortia.identity.keys import EncryptionKey, SigningKey

M1 = "3fa1" + "0" * 92
M2 = "b2" * 48
M3 = "c0ffee" + "1" * 90
TCB: dict[str, int] = {"bootloader": 3, "tee": 0, "snp": 10, "microcode": 200}


def doc(**fields: JSON) -> JSONObject:
    """A valid policy document with ``fields`` replaced."""
    base: JSONObject = {"measurements": [M1, M2], "min_tcb": dict(TCB), "allow_virtual": False}
    base.update(fields)
    return base


def refused(value: JSON) -> str:
    with pytest.raises(ActionFailed) as caught:
        PlatformPolicy.from_params(value)
    assert caught.value.code == "action_failed"
    return caught.value.message


# -- parsing ------------------------------------------------------------------------------------


def test_a_good_policy_parses_sorted() -> None:
    policy = PlatformPolicy.from_params(doc(measurements=[M2, M3, M1]))
    assert policy.measurements == (M1, M2, M3)
    assert policy.min_tcb == TCB
    assert policy.allow_virtual is False
    with_fmc = PlatformPolicy.from_params(doc(min_tcb={**TCB, "fmc": 1}))
    assert with_fmc.min_tcb == {**TCB, "fmc": 1}


def test_the_default_document_is_the_default_policy() -> None:
    value: JSONObject = {"measurements": [], "min_tcb": None, "allow_virtual": True}
    assert PlatformPolicy.from_params(value) == DEFAULT_PLATFORM_POLICY


@pytest.mark.parametrize(
    "value",
    [
        doc(),
        doc(measurements=[], min_tcb=None, allow_virtual=True),
        doc(min_tcb={**TCB, "fmc": 255}),
        doc(measurements=[M3]),
    ],
)
def test_to_json_round_trips(value: JSONObject) -> None:
    policy = PlatformPolicy.from_params(value)
    assert PlatformPolicy.from_params(policy.to_json()) == policy
    assert parse_platform_policy(policy.to_json(), what="gov/platform") == policy


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ([], "params must be a JSON object with measurements, min_tcb, allow_virtual"),
        ({"measurements": [], "min_tcb": None}, "params is missing 'allow_virtual'"),
        ({"allow_virtual": True}, "params is missing 'measurements', 'min_tcb'"),
        (doc(extra=1), "params has unknown field(s) 'extra'; expected measurements, min_tcb"),
        (doc(allow_virtual="no"), "params.allow_virtual must be true or false; got 'no'"),
        (doc(allow_virtual=None), "params.allow_virtual must be true or false; got None"),
        (doc(measurements=M1), "params.measurements must be a list of at most 64"),
        (doc(measurements=[M1] * 65), "at most 64 launch measurements"),
        (doc(measurements=[M1, M1]), "params.measurements lists 3fa1000000000000… twice"),
        (doc(measurements=[M1.upper()]), "params.measurements[0] must be an SEV-SNP launch"),
        (doc(measurements=[M2, M1[:64]]), "params.measurements[1] must be an SEV-SNP launch"),
        (doc(measurements=[M1[:64]]), "got a string of 64 characters"),
        (doc(measurements=[M1 + "00"]), "got a string of 98 characters"),
        (doc(measurements=[7]), "96 lowercase hex digits (48 bytes); got int"),
        (doc(measurements=["g" * 96]), "params.measurements[0] must be an SEV-SNP"),
        (doc(min_tcb=[1, 2]), "params.min_tcb must be null or an object with bootloader"),
        (doc(min_tcb={"tee": 0, "snp": 1, "microcode": 1}), "missing 'bootloader'"),
        (doc(min_tcb={**TCB, "sme": 1}), "params.min_tcb has unknown component(s) 'sme'"),
        (doc(min_tcb={**TCB, "snp": 256}), "params.min_tcb.snp must be an integer from 0 to 255"),
        (doc(min_tcb={**TCB, "tee": -1}), "params.min_tcb.tee must be an integer from 0 to 255"),
        (doc(min_tcb={**TCB, "tee": True}), "params.min_tcb.tee must be an integer"),
        (doc(min_tcb={**TCB, "fmc": "1"}), "params.min_tcb.fmc must be an integer from 0 to 255"),
        (doc(min_tcb={**TCB, "microcode": 1.5}), "got 1.5"),
    ],
)
def test_every_bad_field_is_refused_by_name(value: JSON, needle: str) -> None:
    assert needle in refused(value)


def test_measurement_count_at_the_limit_is_accepted() -> None:
    many: list[JSON] = [f"{i:096x}" for i in range(MAX_MEASUREMENTS)]
    assert len(PlatformPolicy.from_params(doc(measurements=many)).measurements) == 64


def test_the_stored_form_is_parsed_with_the_given_error() -> None:
    class Corrupt(ConsortiaError):
        code = "unavailable"

    with pytest.raises(Corrupt, match=r"gov/platform\.allow_virtual"):
        parse_platform_policy(doc(allow_virtual=1), what="gov/platform", error=Corrupt)


# -- which TEPs a policy accepts ----------------------------------------------------------------

VIRTUAL = RunningPlatform()
SNP = RunningPlatform("sev-snp", M1, dict(TCB))


def test_no_policy_and_the_default_accept_every_tep() -> None:
    for running in (VIRTUAL, SNP, RunningPlatform("simulated-snp", M3, None)):
        assert check_platform(None, running) is None
        assert check_platform(DEFAULT_PLATFORM_POLICY, running) is None


def test_running_platform_knows_its_kinds() -> None:
    assert RunningPlatform("virtual", None, None) == VIRTUAL
    with pytest.raises(ValueError, match="virtual, sev-snp, simulated-snp"):
        RunningPlatform("tdx", None, None)


def test_virtual_is_refused_only_when_allow_virtual_is_false() -> None:
    strict = PlatformPolicy.from_params(doc())
    assert check_platform(strict, VIRTUAL) == (
        "this TEP runs on the virtual platform (no hardware protection); the consortium's "
        "platform policy requires attested hardware (allow_virtual: false)"
    )
    # Measurements and TCB apply to attested kinds only: a virtual TEP reports neither.
    lenient = replace(strict, allow_virtual=True)
    assert check_platform(lenient, VIRTUAL) is None


def test_simulated_snp_is_no_hardware_protection() -> None:
    strict = PlatformPolicy.from_params(doc())
    simulated = RunningPlatform("simulated-snp", M1, dict(TCB))
    reason = check_platform(strict, simulated)
    assert reason is not None and reason.startswith("this TEP runs on simulated SEV-SNP")
    assert reason.endswith("(allow_virtual: false)")
    assert check_platform(replace(strict, allow_virtual=True), simulated) is None
    # ...but its measurement still counts, so an upgrade can be rehearsed on it.
    other = RunningPlatform("simulated-snp", M3, dict(TCB))
    reason = check_platform(replace(strict, allow_virtual=True), other)
    assert reason == (
        f"this TEP's measurement {M3} is not among the 2 the platform policy accepts (measurements)"
    )


def test_an_attested_tep_is_checked_against_the_measurements() -> None:
    policy = PlatformPolicy.from_params(doc())
    assert check_platform(policy, SNP) is None
    assert check_platform(policy, replace(SNP, measurement=M2)) is None
    assert check_platform(policy, replace(SNP, measurement=M1.upper())) is None
    assert check_platform(policy, replace(SNP, measurement=M3)) == (
        f"this TEP's measurement {M3} is not among the 2 the platform policy accepts (measurements)"
    )
    one = replace(policy, measurements=(M2,))
    reason = check_platform(one, SNP)
    assert reason is not None and "is not among the one the platform policy accepts" in reason
    assert check_platform(policy, replace(SNP, measurement=None)) == (
        "this TEP reports no launch measurement; it must be one of the 2 the platform policy "
        "accepts"
    )
    assert check_platform(replace(policy, measurements=()), replace(SNP, measurement=M3)) is None


def test_an_attested_tep_is_checked_against_the_minimum_tcb() -> None:
    policy = PlatformPolicy.from_params(doc())
    assert check_platform(policy, replace(SNP, tcb={**TCB, "snp": 8})) == (
        "this TEP's reported TCB snp 8 is below the policy's minimum 10 (min_tcb)"
    )
    assert check_platform(policy, replace(SNP, tcb={**TCB, "snp": 11, "microcode": 255})) is None
    both = check_platform(policy, replace(SNP, tcb={**TCB, "bootloader": 2, "snp": 9}))
    assert both == (
        "this TEP's reported TCB bootloader 2 is below the policy's minimum 3 (min_tcb); "
        "this TEP's reported TCB snp 9 is below the policy's minimum 10 (min_tcb)"
    )
    assert check_platform(policy, replace(SNP, tcb=None)) == (
        "this TEP reports no TCB version; the platform policy requires a minimum (min_tcb)"
    )
    fmc = PlatformPolicy.from_params(doc(min_tcb={**TCB, "fmc": 2}))
    assert check_platform(fmc, SNP) == (
        "this TEP reports no TCB fmc; the policy's minimum is 2 (min_tcb)"
    )
    assert check_platform(fmc, replace(SNP, tcb={**TCB, "fmc": 2})) is None
    assert check_platform(replace(policy, min_tcb=None), replace(SNP, tcb=None)) is None


def test_every_reason_is_given_at_once() -> None:
    policy = PlatformPolicy.from_params(doc())
    reason = check_platform(policy, RunningPlatform("simulated-snp", M3, {**TCB, "microcode": 199}))
    assert reason is not None
    parts = reason.split("; ")
    assert len(parts) == 4  # unprotected (two clauses), measurement, microcode
    assert "allow_virtual: false" in parts[1]
    assert M3 in parts[2] and "microcode 199" in parts[3]


# -- in the constitution ------------------------------------------------------------------------


def test_the_constitution_shows_the_policy_only_once_voted() -> None:
    founder = Member("telco", SigningKey.generate().verify_key, EncryptionKey.generate().public_key)
    genesis = default_constitution([founder])
    assert genesis.platform_policy is None
    assert "platform_policy" not in genesis.to_json()
    voted = replace(genesis, platform_policy=PlatformPolicy.from_params(doc()))
    assert voted.to_json()["platform_policy"] == PlatformPolicy.from_params(doc()).to_json()
    definition = genesis.actions["setPlatformPolicy"]
    assert (definition.scope, definition.language) == ("public", "builtin")
    assert definition.voting == genesis.actions["setAnalyticsPolicy"].voting
    assert definition.voting.needs_vote
    assert "setPlatformPolicy" in BASE_ACTIONS and "setPlatformPolicy" in GOVERNANCE_ACTIONS
