"""Crash injection: crash_after / crash_before / crash_during / fail, and restarts."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from hypothesis import given, settings

from pynenc_wf_testing import (
    FaultSchedule,
    InvalidArgument,
    ScheduledCrash,
    Step,
    UnknownStepError,
    WorkflowEnv,
)
from pynenc_wf_testing.checks.faults import ScheduledFailure
from pynenc_wf_testing.checks.strategies import fault_schedules
from tests import fault_apps as apps


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    apps.reset()


def _names(env: WorkflowEnv) -> list[str]:
    return [s.name for s in env.history]


def test_crash_after_a_named_step_recovers_and_completes() -> None:
    with WorkflowEnv(seed=1) as env:
        env.crash_after("step#2")
        run = env.start(apps.sequential, 4)
        assert run.result == sum(2 * i for i in range(4))
        assert env.crashes == 1
        names = _names(env)
        assert names[names.index("step#2") + 1] == "crash"
        # step#2 committed before the crash: it is not executed again.
        assert env.executions(apps.step) == 4


def test_crash_before_a_step_repeats_that_execution() -> None:
    with WorkflowEnv(seed=1) as env:
        env.crash_before("step#2")
        run = env.start(apps.sequential, 4)
        assert run.result == 12
        second = [e for e in env.ledger if e.name == "step#2"]
        assert [(e.attempt, e.outcome) for e in second] == [(1, "crashed"), (2, "success")]
        assert env.executions(apps.step) == 5


def test_crash_by_task_object_means_its_first_result() -> None:
    with WorkflowEnv(seed=1) as env:
        env.crash_after(apps.step)
        env.start(apps.sequential, 3).result
        names = _names(env)
        assert names[names.index("crash") - 1] == "step#1"


def test_crash_by_step_number_and_by_predicate() -> None:
    with WorkflowEnv(seed=1) as env:
        env.start(apps.sequential, 3).result
        golden = env.history
    target = golden[5]
    assert target.number == 6
    with WorkflowEnv(seed=1) as env:
        env.crash_after(6)
        env.start(apps.sequential, 3).result
        assert _names(env)[6] == "crash"
    with WorkflowEnv(seed=1) as env:
        env.crash_before(lambda s: s.kind == "result" and s.name == "step#3")
        assert env.start(apps.sequential, 3).result == 6
        assert env.crashes == 1


def test_several_crash_points() -> None:
    with WorkflowEnv(seed=2) as env:
        env.crash_after("step#1")
        env.crash_before("step#3")
        assert env.start(apps.sequential, 3).result == 6
        assert env.crashes == 2


def test_deterministic_values_replay_after_a_crash() -> None:
    with WorkflowEnv(seed=3) as env:
        golden = env.start(apps.with_uuid, 2).result
    with WorkflowEnv(seed=3) as env:
        env.crash_after("uuid#1")
        assert env.start(apps.with_uuid, 2).result == golden
        assert env.crashes == 1


def test_unknown_crash_point_names_it_and_lists_the_steps_seen() -> None:
    with WorkflowEnv(seed=1) as env:
        env.crash_after("chrage_payment")
        run = env.start(apps.sequential, 1)
        with pytest.raises(UnknownStepError) as info:
            run.result
    message = str(info.value)
    assert message.startswith(
        "crash_after('chrage_payment#1'): that step was never reached. "
        "Steps seen: "
    )
    assert "route:sequential#1" in message and "step#1" in message
    assert message.endswith("(a task's name is its function name; '#2' is its second call).")


def test_bad_step_references_are_rejected() -> None:
    with WorkflowEnv(seed=1) as env:
        with pytest.raises(InvalidArgument, match="step numbers start at 1, got 0"):
            env.crash_after(0)
        with pytest.raises(InvalidArgument, match=re.escape("cannot use a float (1.5) as a step")):
            env.crash_after(1.5)
        with pytest.raises(InvalidArgument, match="restart_after must be a non-negative"):
            env.crash_after("step", restart_after=5)  # type: ignore[arg-type]


def test_crash_during_loses_the_result_but_not_the_side_effect() -> None:
    with WorkflowEnv(seed=4) as env:
        env.crash_during(apps.charge)
        assert env.start(apps.pays, "o-1").result == "ch-o-1-10"
        assert apps.GATEWAY == [("o-1", 10), ("o-1", 10)]  # charged twice: at-least-once
        assert len(env.duplicate_side_effects()) == 1


def test_fail_injects_exceptions_that_pynenc_retries() -> None:
    with WorkflowEnv(seed=5) as env:
        env.fail(apps.flaky, times=2, exc=apps.TransientError)
        assert env.start(apps.uses_retry, 1).result == 101
        runs = [e for e in env.ledger if e.name == "flaky#1"]
        assert [(e.outcome, e.injected) for e in runs] == [
            ("retry", True), ("retry", True), ("success", False)
        ]
        assert env.executions(apps.flaky) == 3
        assert "retry:flaky#1" in env.steps


def test_fail_beyond_max_retries_fails_the_workflow_with_the_task_error() -> None:
    with WorkflowEnv(seed=5) as env:
        env.fail(apps.flaky, times=10, exc=apps.TransientError)
        with pytest.raises(apps.TransientError, match="injected failure of flaky"):
            env.start(apps.uses_retry, 1).result


def test_restart_after_goes_through_pynencs_recovery_tasks() -> None:
    with WorkflowEnv(seed=6) as env:
        env.crash_after("step#1", restart_after=dt.timedelta(minutes=1))
        assert env.start(apps.sequential, 2).result == 2
        tasks = [e.task.rsplit(".", 1)[-1] for e in env.ledger]
        assert "recover_running_invocations" in tasks
        # The dead worker's heartbeat must age past runner_considered_dead_after_minutes (10)
        # before pynenc recovers its invocations: at the 15-minute cron tick after 01:01.
        crash = next(s for s in env.history if s.kind == "crash")
        assert crash.time == "2030-01-01T00:01:00+00:00"
        reran = [e for e in env.ledger if e.name == "sequential#1"]
        assert reran[-1].started == "2030-01-01T00:15:00+00:00"


def test_crash_events_are_history_entries_without_numbers() -> None:
    with WorkflowEnv(seed=1) as env:
        env.crash_after("step#1")
        env.start(apps.sequential, 2).result
        crash = next(s for s in env.history if s.kind == "crash")
        assert isinstance(crash, Step) and crash.number is None and not crash.is_step
        assert "crash_after('step#1#1')" not in crash.detail["reason"]
        assert crash.detail["reason"].startswith("crash_after('step#1') at step#1")


def test_retry_window_strands_the_invocation() -> None:
    """pynenc 0.4.0 writes RETRY, then routes the invocation again. A worker that dies in
    between leaves it in RETRY for good: recovery only looks at PENDING and RUNNING. The
    coarse checks stay out of this window; fine-grained ones find it."""
    from pynenc_wf_testing import DeadlockError

    with WorkflowEnv(seed=7) as env:
        env.fail(apps.flaky, times=1, exc=apps.TransientError)
        env.crash_after("retry_status:flaky#1")
        run = env.start(apps.uses_retry, 1)
        with pytest.raises(DeadlockError) as info:
            run.result
        assert "waits for the result of flaky#1" in str(info.value)
        assert "(status: retry)" in str(info.value)
    with WorkflowEnv(seed=7) as env:
        env.fail(apps.flaky, times=1, exc=apps.TransientError)
        env.crash_after("retry:flaky#1")  # after the retry is routed: recovers fine
        assert env.start(apps.uses_retry, 1).result == 101


# ---------------------------------------------------------------------- the vocabulary

FLAKY = "tests.fault_apps.flaky"


def test_a_fault_schedule_round_trips_through_json() -> None:
    schedule = FaultSchedule(
        (ScheduledCrash(3, "before", "step#2"), ScheduledCrash(7, restart_after=600.0)),
        (ScheduledFailure(FLAKY, 2, apps.TransientError),),
    )
    doc = json.loads(json.dumps(schedule.to_json()))
    assert doc["failures"] == [
        {"task": FLAKY, "times": 2, "exc": "tests.fault_apps.TransientError"}
    ]
    again = FaultSchedule.from_json(doc)
    assert again == schedule and len(again) == 3
    assert str(again) == (
        "env.fail(flaky, times=2, exc=TransientError); env.crash_before('step#2'); "
        "env.crash_after(7, restart_after=timedelta(seconds=600))"
    )
    assert FaultSchedule.from_json({"failures": [{"task": FLAKY, "exc": "ValueError"}]}) == (
        FaultSchedule((), (ScheduledFailure(FLAKY, 1, ValueError),))
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "a fault schedule is a dict"),
        ({"crashes": [], "faults": []}, "a fault schedule has no 'faults' list; its keys are"),
        ({"crashes": [{"phase": "after"}]}, "malformed fault schedule"),
        ({"crashes": [{"step": 0}]}, "ScheduledCrash.step must be an int >= 1"),
        ({"crashes": [{"step": 2, "phase": "during"}]}, "'before' or 'after'"),
        ({"failures": [{"task": FLAKY, "exc": "no_such_mod.Boom"}]}, "unknown exception class"),
        ({"failures": [{"task": FLAKY, "exc": "json.dumps"}]}, "is not an exception class"),
        ({"failures": [{"task": "flaky", "exc": "ValueError"}]}, "'package.module.function'"),
        ({"failures": [{"task": FLAKY, "times": 0, "exc": "ValueError"}]}, "times must be"),
    ],
)
def test_a_malformed_fault_schedule_is_rejected(doc: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        FaultSchedule.from_json(doc)


def test_scheduled_failure_needs_an_exception_class() -> None:
    with pytest.raises(InvalidArgument, match="must be an exception class"):
        ScheduledFailure(FLAKY, 1, "TransientError")  # type: ignore[arg-type]


def test_a_scheduled_failure_is_armed_like_fail() -> None:
    schedule = FaultSchedule(failures=(ScheduledFailure(FLAKY, 2, apps.TransientError),))
    with WorkflowEnv(seed=5) as env:
        schedule.apply(env)
        assert env.start(apps.uses_retry, 1).result == 101
        outcomes = [e.outcome for e in env.ledger if e.task == FLAKY]
        assert outcomes == ["retry", "retry", "success"]


@settings(max_examples=25, deadline=None)
@given(fault_schedules(
    10, max_crashes=1, min_crashes=0,
    failures=[ScheduledFailure(FLAKY, 3, apps.TransientError),
              ScheduledFailure("tests.fault_apps.step", 1)],
))
def test_generated_schedules_draw_failures_from_the_candidates(schedule: FaultSchedule) -> None:
    assert len(schedule.crashes) <= 1 and len(schedule.failures) <= 1
    for failure in schedule.failures:
        assert failure.task in (FLAKY, "tests.fault_apps.step")
        assert 1 <= failure.times <= (3 if failure.task == FLAKY else 1)


def test_a_reported_schedule_names_the_step_it_really_hit() -> None:
    """After an injected retry the faulted run numbers its steps differently from the golden
    run: the report names what step 5 was in the faulted run (``retry:flaky#1``), not in
    the golden one (``uses_retry#1``)."""
    from hypothesis import strategies as st

    from pynenc_wf_testing.checks.crash_check import check_fault_schedules

    given_schedule = FaultSchedule(
        (ScheduledCrash(5, "after", "uses_retry#1"),),
        (ScheduledFailure(FLAKY, 1, apps.TransientError),),
    )
    with WorkflowEnv(seed=6) as env:
        report = check_fault_schedules(
            env, apps.uses_retry, (1,), {}, schedules=lambda _steps: st.just(given_schedule),
            max_examples=1,
        )
        assert report.ok and not report.golden_raised
        [outcome] = report.explored
        [crash] = outcome.schedule.crashes
        assert (crash.step, crash.name) == (5, "retry:flaky#1")
        assert outcome.fired == ["crash_after('retry:flaky#1')", "fail(flaky, times=1)"]
    with WorkflowEnv(seed=6) as env:  # the reported snippet reproduces the same crash
        outcome.schedule.apply(env, fine=True)
        assert env.start(apps.uses_retry, 1).result == 101
        names = [s.name for s in env.history]
        assert names[names.index("crash") - 1] == crash.name


def test_check_fault_schedules_compares_every_concurrent_instance() -> None:
    from hypothesis import strategies as st

    from pynenc_wf_testing.checks.crash_check import check_fault_schedules

    apps.reset()
    with WorkflowEnv(seed=7) as env:
        report = check_fault_schedules(
            env, apps.pays, ("o-1",), {}, concurrency=2, max_examples=1,
            schedules=lambda _steps: st.just(FaultSchedule((ScheduledCrash(1, "before"),))),
        )
    assert report.golden_outcome == "returned 'ch-o-1-10'; returned 'ch-o-1-10'"
    assert report.golden is not None and report.golden.steps > 0
    with (
        pytest.raises(InvalidArgument, match="concurrency must be an int >= 1"),
        WorkflowEnv(seed=7) as env,
    ):
        check_fault_schedules(env, apps.pays, ("o-1",), {}, concurrency=0, max_examples=1,
                              schedules=lambda _steps: st.just(FaultSchedule()))
