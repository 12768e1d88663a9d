"""check_crash_safety: passes correct workflows, catches each planted bug with a clear report."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from pynenc_wf_testing import (
    CrashSafetyError,
    FaultSchedule,
    InvalidArgument,
    ScheduledCrash,
    WorkflowEnv,
)
from pynenc_wf_testing.checks.strategies import crash_points, fault_schedules
from tests import fault_apps as apps


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    apps.reset()


def test_a_correct_workflow_passes_every_single_crash_point() -> None:
    with WorkflowEnv(seed=11) as env:
        report = env.check_crash_safety(apps.sequential, 5)
    report.assert_ok()
    assert report.ok and not report.violations
    golden_steps = [s for s in report.golden_steps if s.is_step and s.kind != "record"]
    # Before and after each step, except "after route" of a child that execute_task records
    # next (that window is explored only in fine mode).
    routed_children = [s for s in golden_steps if s.name.startswith("route:step#")]
    assert len(report.explored) == 2 * len(golden_steps) - len(routed_children)
    assert all(o.crashes == 1 for o in report.explored)


def test_explored_covers_before_and_after_every_step() -> None:
    with WorkflowEnv(seed=11) as env:
        report = env.check_crash_safety(apps.sequential, 2)
    seen = {(c.phase, c.name) for o in report.explored for c in o.schedule.crashes}
    assert ("before", "step#1") in seen and ("after", "step#1") in seen
    assert ("before", "sequential#1") in seen and ("after", "uuid#1") not in seen
    assert all(o.crashes == 1 for o in report.explored)


def test_the_users_own_state_is_left_untouched() -> None:
    with WorkflowEnv(seed=12) as env:
        run = env.start(apps.sequential, 2)
        assert run.result == 2
        before = env.history_json()
        env.check_crash_safety(apps.sequential, 3)
        assert env.history_json() == before
        assert run.result == 2 and env.crashes == 0
        assert env.start(apps.sequential, 1).result == 0


def test_uuid4_in_the_workflow_body_is_caught_as_nondeterminism() -> None:
    with WorkflowEnv(seed=13) as env:
        report = env.check_crash_safety(apps.uuid4_in_body, 2)
    assert not report.ok
    with pytest.raises(CrashSafetyError) as info:
        report.assert_ok()
    message = str(info.value)
    assert message.splitlines()[1:4] == [
        "Smallest failing schedule:",
        "    wf_env.crash_before('step#1')",
        "    run = wf_env.start(uuid4_in_body, 2)",
    ]
    assert "[nondeterminism] NondeterminismError: workflow uuid4_in_body#1" in message
    assert "diverged from its recorded history at child call #1" in message
    assert "(seed 13)" in message and "Reproduce: WorkflowEnv(seed=13)" in message


def test_random_in_the_workflow_body_is_caught() -> None:
    with WorkflowEnv(seed=14) as env:
        report = env.check_crash_safety(apps.random_in_body, 2)
    kinds = {v.kind for v in report.violations}
    assert kinds == {"nondeterminism"}
    worst = report.smallest_failure()
    assert worst is not None and worst.schedule.crashes[0].name == "step#1"


def test_side_effect_in_the_workflow_body_is_caught_by_an_invariant() -> None:
    with WorkflowEnv(seed=15) as env:
        report = env.check_crash_safety(
            apps.emails_in_body,
            "o-9",
            before_each=apps.reset,
            invariant=lambda env: len(apps.EMAILS) == 1,
        )
    assert {v.kind for v in report.violations} == {"invariant"}
    assert report.smallest_failure().schedule.crashes[0].name == "route:step#1"  # type: ignore[union-attr]


def test_non_idempotent_activity_without_a_key_is_caught() -> None:
    with WorkflowEnv(seed=16) as env:
        report = env.check_crash_safety(apps.pays, "o-1")
    assert [v.kind for v in report.violations] == ["duplicate"]
    with pytest.raises(CrashSafetyError, match=r"non-idempotent charge ran 2 times"):
        report.assert_ok()
    worst = report.smallest_failure()
    assert worst is not None and str(worst.schedule) == "env.crash_before('charge#1')"


def test_the_idempotency_key_fix_passes_with_an_invariant_on_the_gateway() -> None:
    with WorkflowEnv(seed=16) as env:
        report = env.check_crash_safety(
            apps.pays_with_key,
            "o-1",
            before_each=apps.reset,
            invariant=lambda env: sum(apps.KEYED_GATEWAY.values()) == 10,
        )
    report.assert_ok()


def test_results_carrying_attempt_counters_need_compare() -> None:
    with WorkflowEnv(seed=17) as env:
        strict = env.check_crash_safety(apps.uses_fragile, "x", before_each=apps.reset)
        assert strict.ok  # one crash repeats `fragile` at most once


def test_two_crashes_found_and_shrunk_by_hypothesis() -> None:
    with WorkflowEnv(seed=18) as env:
        report = env.check_crash_safety(
            apps.uses_fragile, "x", before_each=apps.reset, max_crashes=2, max_examples=60
        )
    assert not report.ok
    worst = report.smallest_failure()
    assert worst is not None
    assert len(worst.schedule) == 2
    assert [v.kind for v in worst.violations] == ["result"]
    assert "expected 'ok', got 'corrupted'" in worst.violations[0].message
    assert all(c.name == "fragile#1" and c.phase == "before" for c in worst.schedule.crashes)


def test_fine_mode_shows_pynencs_duplicate_child_window() -> None:
    """pynenc's execute_task routes the child, then records its id. A crash in between
    makes the replay route a second child for the same call: both run. We report it as
    pynenc behaviour; the coarse check does not crash there (correct workflows hit it too).
    """
    with WorkflowEnv(seed=19) as env:
        coarse = env.check_crash_safety(apps.pays, "o-1")
        fine = env.check_crash_safety(apps.pays, "o-1", fine=True)
    coarse_points = {str(o.schedule) for o in coarse.failing}
    fine_points = {str(o.schedule) for o in fine.failing}
    assert coarse_points == {"env.crash_before('charge#1')"}
    assert fine_points == coarse_points | {
        "env.crash_after('route:charge#1')", "env.crash_before('record:charge#1')"
    }
    apps.reset()
    with WorkflowEnv(seed=19) as env:
        env.crash_before("record:charge#1")
        env.start(apps.pays, "o-1").result
        charges = [e for e in env.ledger if e.task.endswith(".charge")]
        assert len({e.invocation_id for e in charges}) == 2  # two children, two charges
        assert len(apps.GATEWAY) == 2


def test_same_seed_explores_identically() -> None:
    with WorkflowEnv(seed=20) as env:
        first = env.check_crash_safety(apps.sequential, 3)
    with WorkflowEnv(seed=20) as env:
        second = env.check_crash_safety(apps.sequential, 3)
    assert [(str(o.schedule), o.outcome, o.steps) for o in first.explored] == [
        (str(o.schedule), o.outcome, o.steps) for o in second.explored
    ]


def test_bad_arguments() -> None:
    with WorkflowEnv(seed=1) as env:
        with pytest.raises(InvalidArgument, match="max_crashes must be an int >= 1, got 0"):
            env.check_crash_safety(apps.sequential, 1, max_crashes=0)
        with pytest.raises(InvalidArgument, match="compare must be a function"):
            env.check_crash_safety(apps.sequential, 1, compare=3)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="check_crash_safety\\(\\) expects a pynenc task"):
            env.check_crash_safety(print)  # type: ignore[arg-type]


def test_golden_run_that_cannot_finish_is_reported_plainly() -> None:
    with (
        WorkflowEnv(seed=1, max_steps=5) as env,
        pytest.raises(CrashSafetyError, match="the golden run of sequential, 4 \\(no faults\\)"),
    ):
        env.check_crash_safety(apps.sequential, 4)


@settings(max_examples=15, deadline=None)
@given(fault_schedules(max_step=12, max_crashes=2))
def test_strategies_drive_user_property_tests(schedule: FaultSchedule) -> None:
    assert 1 <= len(schedule) <= 2
    assert [c.step for c in schedule.crashes] == sorted(c.step for c in schedule.crashes)
    with WorkflowEnv(seed=21) as env:
        schedule.apply(env, optional=True)
        assert env.start(apps.sequential, 2).result == 2


@settings(max_examples=10, deadline=None)
@given(crash_points(5))
def test_crash_points_strategy(crash: ScheduledCrash) -> None:
    assert 1 <= crash.step <= 5 and crash.phase in ("before", "after")
