"""The constitution decides which TEP code may serve it (setPlatformPolicy, voted)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FOUNDERS, World

from consortia import Committed, ConsortiaError, Pending, Platform, SigningKey
from consortia._json import JSONObject
from consortia.governance.platform_policy import RunningPlatform
from consortia.identity.jwt import issue_token
from testkit import Clock, js

M_OLD = "a1" * 48
M_NEW = "b2" * 48
TCB = {"bootloader": 3, "tee": 0, "snp": 10, "microcode": 200}
OLD_BUILD = RunningPlatform("simulated-snp", M_OLD, TCB)
NEW_BUILD = RunningPlatform("simulated-snp", M_NEW, TCB)


def policy(
    *measurements: str, min_tcb: dict[str, int] | None = None, allow_virtual: bool = True
) -> JSONObject:
    return {
        "measurements": list(measurements),
        "min_tcb": None if min_tcb is None else dict(min_tcb),
        "allow_virtual": allow_virtual,
    }


def start(world: World, running: RunningPlatform) -> None:
    """Restart the platform on the same files, as the TEP ``running`` describes."""
    world.platform.close()
    world.platform = Platform.open(
        world.data, operator_keys=[world.operator.verify_key], clock=world.clock, running=running
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The engine world of conftest, on the old simulated-SNP build."""
    clock = Clock()
    operator = SigningKey.generate()
    platform = Platform.open(
        tmp_path, operator_keys=[operator.verify_key], clock=clock, running=OLD_BUILD
    )
    w = World(tmp_path, clock, operator, platform)
    w.create("acme", FOUNDERS)
    yield w
    w.platform.close()


def propose(world: World, params: JSONObject) -> str:
    pending = world.act("telco", "setPlatformPolicy", params)
    assert isinstance(pending, Pending)  # governance: a majority of all active members
    return pending.proposal


def vote_policy(world: World, params: JSONObject) -> Committed:
    proposal = propose(world, params)
    decided = world.act("vendor", "voteFor", {"proposal": proposal, "ballot": "approve"})
    assert isinstance(decided, Committed)
    return decided


def constitution(world: World, member: str = "installer") -> JSONObject:
    doc = js(world.platform.member_view("acme", member).constitution())
    assert isinstance(doc, dict)
    return doc


def assert_unavailable(caught: pytest.ExceptionInfo[ConsortiaError], reason: str) -> None:
    assert caught.value.code == "unavailable"
    message = caught.value.message
    assert message.startswith(f"this TEP is not accepted by consortium 'acme': {reason}; ")
    assert "setPlatformPolicy" in message


def test_a_consortium_without_a_policy_is_served_as_before(world: World) -> None:
    assert "platform_policy" not in constitution(world)
    assert isinstance(world.act("telco", "setRecoveryThreshold", {"threshold": 2}), Pending)
    for running in (RunningPlatform(), RunningPlatform("sev-snp", None, None)):
        start(world, running)
        assert "platform_policy" not in constitution(world)
        assert isinstance(world.act("vendor", "setRecoveryThreshold", {"threshold": 3}), Pending)


def test_a_policy_listing_this_measurement_keeps_serving(world: World) -> None:
    wanted = policy(M_NEW, M_OLD, min_tcb=TCB)
    vote_policy(world, wanted)
    shown = constitution(world)["platform_policy"]
    assert shown == policy(M_OLD, M_NEW, min_tcb=TCB)  # sorted
    assert isinstance(world.act("telco", "setRecoveryThreshold", {"threshold": 2}), Pending)
    token = issue_token(world.keys["vendor"], audience="acme", now=world.clock.now)
    assert world.platform.reader("acme", token).member == "vendor"
    # The new build (listed before it was deployed) serves too, after a restart.
    start(world, NEW_BUILD)
    assert constitution(world)["platform_policy"] == shown
    assert "vote_result" in [kind for kind, _ in world.notes("telco")]


def test_bad_params_are_refused_before_the_vote(world: World) -> None:
    error = world.refused(
        "action_failed", world.sign("telco", "setPlatformPolicy", policy(M_OLD.upper()))
    )
    assert "params.measurements[0] must be an SEV-SNP launch measurement" in error.message
    error = world.refused(
        "action_failed",
        world.sign("telco", "setPlatformPolicy", {**policy(), "allow_stop": True}),
    )
    assert "unknown field(s) 'allow_stop'" in error.message


def test_dropping_this_measurement_commits_then_refuses(world: World) -> None:
    proposal = propose(world, policy(M_NEW))
    vote = world.sign("vendor", "voteFor", {"proposal": proposal, "ballot": "approve"})
    later = world.sign("installer", "setRecoveryThreshold", {"threshold": 2})
    # The vote commits the policy and gets its answer; the request after it, in the same
    # batch, is already refused.
    decided, refused = world.platform.execute_batch("acme", [vote, later])
    assert isinstance(decided, Committed)
    assert isinstance(refused, ConsortiaError) and refused.code == "unavailable"
    reason = (
        f"this TEP's measurement {M_OLD} is not among the one the platform policy accepts "
        "(measurements)"
    )
    assert refused.message.startswith(f"this TEP is not accepted by consortium 'acme': {reason}")
    assert refused.txid is not None
    # The next request and the next read are refused, and nothing is stored.
    error = world.refused(
        "unavailable", world.sign("telco", "setRecoveryThreshold", {"threshold": 3})
    )
    assert error.message.startswith(f"this TEP is not accepted by consortium 'acme': {reason}; ")
    before = world.fingerprint()
    with pytest.raises(ConsortiaError) as caught:
        world.platform.execute("acme", world.sign("telco", "addMember", {"id": "x"}))
    assert_unavailable(caught, reason)
    assert world.fingerprint() == before
    token = issue_token(world.keys["vendor"], audience="acme", now=world.clock.now)
    with pytest.raises(ConsortiaError) as caught:
        world.platform.reader("acme", token)
    assert_unavailable(caught, reason)
    with pytest.raises(ConsortiaError) as caught:
        world.platform.member_view("acme", "telco")
    assert_unavailable(caught, reason)
    # A caller who is no member still learns nothing: the one answer of the reads.
    stranger = world.add_keys("stranger")
    with pytest.raises(ConsortiaError) as caught:
        world.platform.reader("acme", issue_token(stranger, audience="acme", now=world.clock.now))
    assert caught.value.code == "unknown_member"
    # The platform-wide service information stays available.
    assert "service_key" in world.platform.service_info()
    # On the accepted build the consortium is served again, the vote_result waiting for all.
    start(world, NEW_BUILD)
    assert constitution(world)["platform_policy"] == policy(M_NEW)
    for member in ("telco", "vendor", "installer"):
        assert "vote_result" in [kind for kind, _ in world.notes(member)]
    assert isinstance(world.act("telco", "setRecoveryThreshold", {"threshold": 3}), Pending)
    # ...and the old build, restarted, still refuses.
    start(world, OLD_BUILD)
    with pytest.raises(ConsortiaError) as caught:
        world.platform.member_view("acme", "telco")
    assert_unavailable(caught, reason)


def test_a_virtual_tep_is_refused_when_the_policy_requires_hardware(world: World) -> None:
    hardware = RunningPlatform("sev-snp", M_OLD, TCB)
    start(world, hardware)
    vote_policy(world, policy(M_OLD, allow_virtual=False))
    assert constitution(world)["platform_policy"] == policy(M_OLD, allow_virtual=False)
    start(world, RunningPlatform("virtual", None, None))
    reason = (
        "this TEP runs on the virtual platform (no hardware protection); the consortium's "
        "platform policy requires attested hardware (allow_virtual: false)"
    )
    with pytest.raises(ConsortiaError) as caught:
        world.platform.execute(
            "acme", world.sign("telco", "setRecoveryThreshold", {"threshold": 2})
        )
    assert_unavailable(caught, reason)
    with pytest.raises(ConsortiaError) as caught:
        world.platform.member_view("acme", "vendor")
    assert_unavailable(caught, reason)
    # Simulated SNP is no hardware either, whatever measurement it claims.
    start(world, OLD_BUILD)
    with pytest.raises(ConsortiaError) as caught:
        world.platform.member_view("acme", "vendor")
    assert caught.value.code == "unavailable"
    assert "simulated SEV-SNP" in caught.value.message
    # Other consortia on the same platform are not affected.
    world.create("globex", ("telco",))
    assert isinstance(
        world.act("telco", "setRecoveryThreshold", {"threshold": 1}, cid="globex"), Committed
    )


def test_a_tcb_below_the_minimum_is_refused(world: World) -> None:
    vote_policy(world, policy(min_tcb={**TCB, "snp": 11}))
    with pytest.raises(ConsortiaError) as caught:
        world.platform.member_view("acme", "vendor")
    assert_unavailable(
        caught, "this TEP's reported TCB snp 10 is below the policy's minimum 11 (min_tcb)"
    )
    start(world, RunningPlatform("simulated-snp", M_OLD, {**TCB, "snp": 11}))
    assert constitution(world)["platform_policy"] == policy(min_tcb={**TCB, "snp": 11})
