"""The durable workflow engine in the simulator: every feature, its crash points, its checks.

The apps are in tests/engine_apps.py. Times are virtual: ``wf_env.now`` starts at the
environment's start instant and moves only when the simulation skips to a deadline.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from pynenc.invocation.status import InvocationStatus
from pynenc.workflow.workflow_context import WorkflowContext, WorkflowRootContext

from pynenc_wf_testing import DeadlockError, WorkflowEnv, errors
from pynenc_wf_testing.engine import (
    AmbiguousWorkflowId,
    InvalidWorkflowArgument,
    NotAWorkflow,
    RetryPolicy,
    SignalTimeout,
    UnknownWorkflow,
    WaitTimeout,
    WorkflowAlreadyStarted,
    WorkflowCancelled,
    WorkflowDescription,
    WorkflowFinished,
    WorkflowHaltException,
    WorkflowIdConflict,
    WorkflowNotFinished,
    WorkflowsNotEnabled,
    WorkflowTimeout,
    cancel_workflow,
    describe_workflow,
    query_workflow,
    resume_workflow,
    signal_workflow,
    workflow_result,
)
from pynenc_wf_testing.engine._context import DurableRootOps, DurableWorkflowRootContext
from tests import engine_apps as ea

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def outside_world() -> None:
    ea.reset()


def reset_world() -> None:
    ea.reset()


def elapsed(env: WorkflowEnv, since: dt.datetime) -> dt.timedelta:
    return env.now - since


# =========================================================================== enabling


def test_an_app_without_the_engine_keeps_pynencs_own_workflow_context(wf_env) -> None:
    wf = ea.plain_flow.wf
    assert isinstance(wf, WorkflowRootContext)
    assert not isinstance(wf, DurableWorkflowRootContext)
    assert not isinstance(wf.root, DurableRootOps)
    assert isinstance(ea.plain_add.wf, WorkflowContext)
    # ... and its workflows behave as before: children, random, uuid.
    run = wf_env.start(ea.plain_flow, 41)
    total, rnd, uuid_len = run.result
    assert total == 42 and 0 <= rnd < 1 and uuid_len == 36


def test_engine_features_on_an_app_without_the_engine_say_how_to_enable_it(wf_env) -> None:
    run = wf_env.start(ea.plain_sleeper)
    with pytest.raises(WorkflowsNotEnabled) as raised:
        run.result
    message = str(raised.value)
    assert "wf.root.sleep()" in message
    assert "'engine-tests-plain'" in message
    assert "PynencBuilder().enable_workflows()" in message
    with pytest.raises(WorkflowsNotEnabled):
        ea.plain_add.wf.save_state({"x": 1})
    with pytest.raises(AttributeError):
        ea.plain_flow.wf.root.no_such_operation
    with pytest.raises(WorkflowsNotEnabled):
        wf_env.signal(run, "anything")


def test_enabled_apps_get_the_engine_context() -> None:
    assert isinstance(ea.napper.wf, DurableWorkflowRootContext)
    assert isinstance(ea.napper.wf.root, DurableRootOps)
    assert ea.app.config_values["enable_workflows"] is True


def test_the_simulator_plugs_into_the_engine_only_while_an_env_is_open() -> None:
    from pynenc_wf_testing.engine.hooks import active_hooks
    from pynenc_wf_testing.runtime.engine_hooks import SIMULATOR_HOOKS

    assert active_hooks() is None  # production: the engine never calls out
    with WorkflowEnv() as env:
        env.use(ea.app)
        assert active_hooks() is SIMULATOR_HOOKS
        run = env.start(ea.napper, 60)
        assert run.result == 60.0  # the timer parked in virtual time, through the hooks
        # outside an invocation the simulator answers as production would
        assert not SIMULATOR_HOOKS.in_simulated_invocation(ea.app)
        assert SIMULATOR_HOOKS.child_positions(ea.app, run.workflow_id) is None
    assert active_hooks() is None


def test_builder_enable_workflows_with_a_default_retry_policy(wf_env) -> None:
    assert ea.builder_app.config_values["enable_workflows"] is True
    assert isinstance(ea.builder_flow.wf, DurableWorkflowRootContext)
    ea.FLAKY["b"] = 1  # the builder's policy: 7 s between two attempts
    start = wf_env.now
    run = wf_env.start(ea.builder_flow, "b")
    assert run.result == "b: ok"
    assert [t - start for t in ea.ATTEMPTS["b"]] == [H, H + dt.timedelta(seconds=7)]


def test_builder_default_policy_gives_up_after_its_attempts(wf_env) -> None:
    ea.FLAKY["b2"] = 2  # two attempts allowed, both fail
    run = wf_env.start(ea.builder_flow, "b2")
    with pytest.raises(ea.Transient):
        run.result
    assert len(ea.ATTEMPTS["b2"]) == 2


def test_builder_settings_belong_to_the_app_whatever_the_call_order(wf_env) -> None:
    from pynenc_wf_testing.engine._waits import app_default_policy

    policy = app_default_policy(ea.late_id_app)
    assert policy is not None and policy.max_attempts == 2
    assert ea.late_id_app.app_id == "engine-tests-late-id"
    ea.FLAKY["late"] = 5  # one retry only: two attempts, both fail
    run = wf_env.start(ea.late_id_flow, "late")
    with pytest.raises(ea.Transient):
        run.result
    assert len(ea.ATTEMPTS["late"]) == 2


# =========================================================================== durable timers


def test_a_sleep_takes_virtual_time_only(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.napper, 90)
    assert run.result == 90.0
    assert elapsed(wf_env, start) == dt.timedelta(seconds=90)
    assert run.history[-1].name == "napper#1"
    assert [s.name for s in run.history if s.kind == "timer"] == ["sleep#1", "timer#1"]


def test_advance_30_days_fires_a_30_day_timer(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.month_sleeper)
    wf_env.advance(days=29, hours=23)
    assert not run.done
    assert ea.calls("note") == []
    assert "timer #1" in " ".join(wf_env.blocked().values())
    wf_env.advance(hours=1)
    assert run.done
    assert run.result == "woke"
    assert [(name, at - start) for name, _, at in ea.CALLS] == [("note", dt.timedelta(days=30))]


def test_sleep_until_an_instant(wf_env) -> None:
    target = wf_env.now + dt.timedelta(days=3, hours=4)
    run = wf_env.start(ea.alarm_clock, target.isoformat())
    assert dt.datetime.fromisoformat(run.result) == target
    assert wf_env.now == target


def test_sleep_until_an_instant_in_the_past_returns_at_once(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.alarm_clock, (start - D).isoformat())
    assert dt.datetime.fromisoformat(run.result) == start
    assert wf_env.now == start


def test_sleep_rejects_bad_arguments(wf_env) -> None:
    run = wf_env.start(ea.napper, -1)
    with pytest.raises(InvalidWorkflowArgument, match="non-negative"):
        run.result
    run = wf_env.start(ea.alarm_clock, "2030-01-02T00:00:00")  # naive
    with pytest.raises(InvalidWorkflowArgument, match="naive"):
        run.result


@pytest.mark.parametrize(
    ("phase", "step", "ends_after"),
    [
        # The deadline was recorded at 0:00; the worker is down 0:00-0:20: the timer still
        # ends at 1:00, not 1:20.
        ("after", "sleep#1", H),
        # The crash comes as the timer fires (1:00), the worker is back at 1:20: the replay
        # finds the deadline passed and goes on at once, no second hour.
        ("before", "timer#1", H + dt.timedelta(minutes=20)),
        # The crash comes before the sleep began: it starts at 0:20 and lasts its hour.
        ("after", "route:napper#1", H + dt.timedelta(minutes=20)),
    ],
)
def test_a_crash_during_a_sleep_waits_only_for_what_remains(
    wf_env, phase: str, step: str, ends_after: dt.timedelta
) -> None:
    start = wf_env.now
    getattr(wf_env, f"crash_{phase}")(step, restart_after=dt.timedelta(minutes=20))
    run = wf_env.start(ea.napper, 3600)
    slept = run.result
    assert wf_env.crashes == 1
    assert elapsed(wf_env, start) == ends_after
    # now() replays its recorded value, so "slept" is measured from the first start
    assert slept == (ends_after if step != "route:napper#1" else H).total_seconds()


def test_an_immediate_restart_mid_sleep_keeps_the_deadline(wf_env) -> None:
    start = wf_env.now
    wf_env.crash_after("sleep#2")
    run = wf_env.start(ea.two_naps)
    first, second = (dt.datetime.fromisoformat(t) for t in run.result)
    assert first - start == H
    assert second - start == 3 * H
    assert wf_env.now - start == 3 * H
    assert wf_env.crashes == 1


def test_now_replays_the_recorded_value_after_a_crash(wf_env) -> None:
    start = wf_env.now
    wf_env.crash_after("note#1")  # after now#1 was recorded and time has moved on
    run = wf_env.start(ea.clock_reader)
    before, after = (dt.datetime.fromisoformat(t) for t in run.result)
    assert before == start
    assert after - start == dt.timedelta(minutes=5)
    assert wf_env.crashes == 1
    assert ea.calls("note") == ["between"]
    assert [s.name for s in run.history if s.name.startswith("now#")] == ["now#1", "now#2"]


def test_now_follows_the_clock_unlike_utc_now(wf_env) -> None:
    wf_env.advance(days=2)
    run = wf_env.start(ea.clock_reader)
    before, _ = run.result
    assert dt.datetime.fromisoformat(before) == wf_env.now - dt.timedelta(minutes=5)


@pytest.mark.parametrize("step", ["side_effect#1", "sleep#1", "timer#1"])
def test_side_effect_runs_its_function_once_across_a_crash(wf_env, step: str) -> None:
    wf_env.crash_after(step)
    run = wf_env.start(ea.side_effect_flow)
    assert run.result == 1001
    assert ea.DRAWS == [1]
    assert ea.calls("note") == ["drew 1001"]
    assert wf_env.crashes == 1


def test_a_crash_before_the_side_effect_is_recorded_runs_it_again(wf_env) -> None:
    # At-least-once, like any activity: the function ran, its result was not recorded.
    wf_env.crash_before("side_effect#1")
    run = wf_env.start(ea.side_effect_flow)
    assert run.result == 1002
    assert ea.DRAWS == [1, 2]


@pytest.mark.parametrize("workflow", ["napper", "month_sleeper", "two_naps", "clock_reader"])
def test_timers_are_crash_safe(wf_env, workflow: str) -> None:
    args: tuple[Any, ...] = (600,) if workflow == "napper" else ()
    report = wf_env.check_crash_safety(getattr(ea, workflow), *args, before_each=reset_world)
    report.assert_ok()
    assert len(report.explored) >= 6


def test_side_effect_is_crash_safe(wf_env) -> None:
    wf_env.check_crash_safety(
        ea.side_effect_flow,
        before_each=reset_world,
        # a crash just before side_effect#1 is recorded draws again (at-least-once)
        compare=lambda golden, got: got in (golden, golden + 1),
        invariant=lambda env: len(ea.DRAWS) <= 2
        and set(ea.calls("note")) == {f"drew {1000 + len(ea.DRAWS)}"},
    ).assert_ok()


# =========================================================================== signals


def test_signals_are_consumed_in_order(wf_env) -> None:
    run = wf_env.start(ea.approvals)
    wf_env.run_until_idle()
    assert "signal 'approve'" in " ".join(wf_env.blocked().values())
    assert wf_env.signal(run, "approve", "alice") == 1
    assert wf_env.signal(run, "approve", {"who": "bob"}) == 2
    assert run.result == ["alice", {"who": "bob"}]
    names = [s.name for s in run.history if s.kind == "signal"]
    # stored on arrival (both before the workflow ran again), consumed in order
    assert names == [
        "signal:approve#1", "signal:approve#2", "wait_signal:approve#1", "wait_signal:approve#2"
    ]


def test_a_signal_sent_before_the_wait_is_not_lost(wf_env) -> None:
    run = wf_env.start(ea.approvals)
    wf_env.signal(run, "approve", 1)
    wf_env.signal(run, "approve", 2)
    wf_env.signal(run, "other", "ignored")
    assert run.result == [1, 2]
    assert query_workflow(ea.app, run).status == "success"


def test_signal_workflow_api_works_with_a_workflow_id(wf_env) -> None:
    run = wf_env.start(ea.approvals)
    assert run.workflow_id is not None
    assert signal_workflow(ea.app, run.workflow_id, "approve", "a") == 1
    assert signal_workflow(ea.app, run, "approve", "b") == 2
    assert run.result == ["a", "b"]
    with pytest.raises(InvalidWorkflowArgument):
        signal_workflow(ea.app, run, "", "x")


def test_signal_timeout_returns_the_default(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.payment_or_default)
    assert run.result == "no payment"
    assert wf_env.now - start == 3 * D


def test_signal_within_the_timeout_wins(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.payment_or_default)
    wf_env.advance(days=2)
    wf_env.signal(run, "payment", 99)
    assert run.result == 99
    assert wf_env.now - start == 2 * D


def test_signal_timeout_without_default_raises_signal_timeout(wf_env) -> None:
    run = wf_env.start(ea.payment_or_raise)
    with pytest.raises(SignalTimeout, match="'payment'") as raised:
        run.result
    assert isinstance(raised.value, WaitTimeout)
    assert isinstance(raised.value, TimeoutError)


def test_a_signal_to_a_workflow_that_finished_after_its_timeout_is_an_error(wf_env) -> None:
    run = wf_env.start(ea.payment_or_default)
    wf_env.advance(days=4)
    assert run.result == "no payment"
    with pytest.raises(WorkflowFinished, match="already finished with status success"):
        wf_env.signal(run, "payment", "late")


@pytest.mark.parametrize(
    "step", ["wait_signal:approve#1", "signal:approve#2", "note#1", "wait_signal:approve#2"]
)
def test_signals_replay_identically_after_a_crash(wf_env, step: str) -> None:
    wf_env.crash_after(step)
    run = wf_env.start(ea.approvals)
    wf_env.signal(run, "approve", "x")
    wf_env.signal(run, "approve", "y")
    assert run.result == ["x", "y"]
    assert ea.calls("note") == ["first x"]
    assert wf_env.crashes == 1


def test_signal_timeout_replays_after_a_crash(wf_env) -> None:
    start = wf_env.now
    wf_env.crash_after("wait_signal:payment#1")
    run = wf_env.start(ea.payment_or_default)
    wf_env.advance(days=3)
    # The replay after the crash went past the recorded timeout and the run ended: a signal
    # now is refused (not stored for nobody).
    with pytest.raises(WorkflowFinished):
        wf_env.signal(run, "payment", "too late")
    assert run.result == "no payment"
    assert wf_env.crashes == 1
    assert wf_env.now - start < 4 * D


def test_a_signal_that_never_comes_is_a_deadlock_naming_it(wf_env) -> None:
    run = wf_env.start(ea.forever_waiter)
    with pytest.raises(DeadlockError) as raised:
        run.result
    message = str(raised.value)
    assert "signal 'never-sent'" in message
    assert "no timeout" in message
    assert "forever_waiter#1" in message


def test_signals_are_crash_safe(wf_env) -> None:
    def send(env: WorkflowEnv, run: Any) -> None:
        env.signal(run, "approve", "a")
        env.signal(run, "approve", "b")

    report = wf_env.check_crash_safety(ea.approvals, before_each=reset_world, after_start=send)
    report.assert_ok()
    wf_env.check_crash_safety(ea.payment_or_default).assert_ok()
    wf_env.check_crash_safety(
        ea.payment_or_default, after_start=lambda env, run: env.signal(run, "payment", 5)
    ).assert_ok()


def test_signal_timeout_error_is_crash_safe(wf_env) -> None:
    # The golden run fails with SignalTimeout: every crash schedule must fail the same way.
    wf_env.check_crash_safety(ea.payment_or_raise).assert_ok()


# =========================================================================== queries


def test_save_state_snapshots_are_queryable_while_running_and_after(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.progress, 3)
    wf_env.run_until_idle()
    q = wf_env.query(run)
    assert q.status == InvocationStatus.RUNNING.value
    assert q.state == {"step": 1, "of": 3}
    assert q.state_at == start
    wf_env.advance(hours=1)
    q = wf_env.query(run)
    assert q.state == {"step": 2, "of": 3}
    assert q.state_at == start + H
    assert run.result == "done"
    q = query_workflow(ea.app, run)
    assert q.status == "success"
    assert q.state == {"step": "done"}
    assert [(at - start, state) for at, state in q.snapshots] == [
        (0 * H, {"step": 1, "of": 3}),
        (1 * H, {"step": 2, "of": 3}),
        (2 * H, {"step": 3, "of": 3}),
        (3 * H, {"percent": 100, "by": "report_progress"}),
        (3 * H, {"step": "done"}),
    ]
    assert q.halted is None and q.cancelled is None


def test_a_query_runs_nothing(wf_env) -> None:
    run = wf_env.start(ea.progress, 2)
    steps = len(wf_env.history)
    q = wf_env.query(run)
    assert q.state is None and q.snapshots == []
    assert len(wf_env.history) == steps
    assert q.status in ("registered", "pending")


@pytest.mark.parametrize("step", ["save_state#2", "timer#2", "report_progress#1"])
def test_snapshots_are_not_repeated_by_a_replay(wf_env, step: str) -> None:
    wf_env.crash_after(step)
    run = wf_env.start(ea.progress, 3)
    assert run.result == "done"
    assert wf_env.crashes == 1
    states = [state for _, state in wf_env.query(run).snapshots]
    assert states == [
        {"step": 1, "of": 3}, {"step": 2, "of": 3}, {"step": 3, "of": 3},
        {"percent": 100, "by": "report_progress"}, {"step": "done"},
    ]


def test_queries_are_crash_safe(wf_env) -> None:
    def one_snapshot_each(env: WorkflowEnv) -> None:
        (run_id,) = [i.invocation_id for i in env._require_sim().invocations.values()
                     if i.name == "progress#1"]
        states = [s for _, s in env.query(run_id).snapshots]
        assert states[:3] == [{"step": i, "of": 3} for i in (1, 2, 3)], states
        assert states[-1] == {"step": "done"}
        assert len(states) in (5, 6)  # report_progress re-runs if it crashed before its result

    wf_env.check_crash_safety(ea.progress, 3, invariant=one_snapshot_each).assert_ok()


# =========================================================================== waits


def test_wait_for_task_on_an_invocation(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.job_waiter, 7)
    assert run.result == 8
    assert wf_env.now - start == 2 * H
    assert [s.name for s in run.history if s.name.startswith("wait_for_task")] == [
        "wait_for_task#1", "wait_for_task#1", "wait_for_task#2", "wait_for_task#2",
    ]


def test_wait_for_task_on_a_task_resumes_on_its_next_run(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.task_watcher, 5)
    wf_env.advance(hours=2)
    assert not run.done
    assert "a run of task external_job" in " ".join(wf_env.blocked().values())
    wf_env.start(ea.external_job, 1)
    assert run.result == 101
    assert wf_env.now - start == 2 * H


def test_wait_for_task_ignores_runs_finished_before_the_wait(wf_env) -> None:
    assert wf_env.start(ea.external_job, 1).result == 101
    run = wf_env.start(ea.task_watcher, 5)
    wf_env.advance(hours=1)
    assert not run.done
    wf_env.start(ea.external_job, 2)
    assert run.result == 102


def test_wait_for_task_times_out(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.task_watcher, 5)
    with pytest.raises(WaitTimeout, match="a run of task external_job"):
        run.result
    assert wf_env.now - start == 5 * H


def test_wait_for_task_timeout_replays_even_if_the_task_ran_since(wf_env) -> None:
    wf_env.crash_after("wait_for_task#1", restart_after=dt.timedelta(hours=7))
    run = wf_env.start(ea.task_watcher, 5)
    wf_env.advance(hours=5, minutes=30)  # recorded the timeout at 5 h; the worker is down
    wf_env.start(ea.external_job, 3)
    with pytest.raises(WaitTimeout):
        run.result
    assert wf_env.crashes == 1


def test_wait_all_returns_results_in_order(wf_env) -> None:
    run = wf_env.start(ea.fan_out, 5)
    assert run.result == [0, 1, 4, 9, 16]
    assert sorted(ea.calls("square")) == [0, 1, 2, 3, 4]


def test_wait_any_returns_the_first_to_finish(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ea.race, start.isoformat())
    assert run.result == [1, "fast"]
    assert wf_env.now - start == H + D


def test_wait_any_picks_the_first_to_finish_even_when_both_finished_before_the_wait(
    wf_env,
) -> None:
    run = wf_env.start(ea.late_race, wf_env.now.isoformat(), 10, 1)
    assert run.result == [1, "fast"]  # the 1 h child, though the 10 h one is listed first


def test_wait_any_breaks_a_tie_by_the_lowest_index(wf_env) -> None:
    run = wf_env.start(ea.late_race, wf_env.now.isoformat(), 2, 2)
    assert run.result == [0, "slow"]  # both finished at 2 h: the first of the list


def test_wait_any_order_is_crash_safe(wf_env) -> None:
    wf_env.check_crash_safety(
        ea.late_race, wf_env.now.isoformat(), 10, 1, before_each=reset_world
    ).assert_ok()


def test_wait_any_replays_its_recorded_winner(wf_env) -> None:
    # The worker dies as the slow child finishes (10 h), while the workflow sleeps its day.
    # The replay finds both children finished; it still takes the recorded winner, not the
    # first of the list.
    start = wf_env.now
    wf_env.crash_after("finish_at#1")  # finish_at#1 is the slow child (routed first)
    run = wf_env.start(ea.race, start.isoformat())
    assert run.result == [1, "fast"]
    assert wf_env.crashes == 1
    assert wf_env.now - start == H + D
    assert sorted(ea.calls("finish_at")) == ["fast", "slow"]


@pytest.mark.parametrize(
    ("workflow", "args"),
    [("job_waiter", (3,)), ("fan_out", (3,)), ("race", None), ("task_watcher", (2,))],
)
def test_waits_are_crash_safe(wf_env, workflow: str, args: tuple[Any, ...] | None) -> None:
    if args is None:
        args = (wf_env.now.isoformat(),)
    wf_env.check_crash_safety(getattr(ea, workflow), *args, before_each=reset_world).assert_ok()


def test_wait_for_task_on_a_task_is_crash_safe(wf_env) -> None:
    def start_job(env: WorkflowEnv, run: Any) -> None:
        env.advance(minutes=30)
        env.start(ea.external_job, 9)

    wf_env.check_crash_safety(
        ea.task_watcher, 2, before_each=reset_world, after_start=start_job
    ).assert_ok()


# =========================================================================== retry policies


def delays(key: str) -> list[dt.timedelta]:
    times = ea.ATTEMPTS[key]
    return [b - a for a, b in itertools.pairwise(times)]


def test_fixed_backoff(wf_env) -> None:
    ea.FLAKY["k"] = 3
    run = wf_env.start(ea.retry_flow, "k", "fixed")
    assert run.result == "k: ok"
    assert delays("k") == [dt.timedelta(seconds=30)] * 3
    names = [s.name for s in run.history if s.kind in ("retry", "timer")]
    assert names[:4] == ["attempt:flaky#1", "sleep#1", "timer#1", "attempt:flaky#2"]


def test_exponential_backoff_with_a_cap(wf_env) -> None:
    ea.FLAKY["k"] = 6
    run = wf_env.start(ea.retry_flow, "k", "exponential")
    assert run.result == "k: ok"
    assert [d.total_seconds() for d in delays("k")] == [10, 20, 40, 60, 60, 60]


def test_retries_give_up_after_max_attempts(wf_env) -> None:
    ea.FLAKY["k"] = 10
    run = wf_env.start(ea.retry_flow, "k", "fixed")
    with pytest.raises(ea.Transient, match="try again"):
        run.result
    assert len(ea.ATTEMPTS["k"]) == 5


def test_max_attempts_none_retries_until_success(wf_env) -> None:
    ea.FLAKY["k"] = 40
    start = wf_env.now
    run = wf_env.start(ea.retry_flow, "k", "forever")
    assert run.result == "k: ok"
    assert len(ea.ATTEMPTS["k"]) == 41
    assert wf_env.now - start == 40 * dt.timedelta(minutes=5)


def test_a_non_retryable_error_fails_at_once(wf_env) -> None:
    run = wf_env.start(ea.declined_flow, "d")
    with pytest.raises(ea.Fatal, match="declined"):
        run.result
    assert len(ea.ATTEMPTS["d"]) == 1


def test_non_retryable_list_wins_over_retry_on() -> None:
    policy = RetryPolicy(retry_on=(Exception,), non_retryable=(ea.Fatal,), max_attempts=None)
    assert policy.should_retry(ea.Transient(), 100)
    assert not policy.should_retry(ea.Fatal(), 1)


def test_the_task_policy_and_the_app_default(wf_env) -> None:
    ea.FLAKY["own"] = 2  # flaky_with_own_policy: 1 hour between attempts, 3 attempts
    ea.FLAKY["app"] = 3  # the app's default: 1 minute, 4 attempts
    own = wf_env.start(ea.own_policy_flow, "own")
    default = wf_env.start(ea.retry_flow, "app", "default")
    assert own.result == "own: ok"
    assert default.result == "app: ok"
    assert delays("own") == [H, H]
    assert delays("app") == [dt.timedelta(minutes=1)] * 3


def jitter_delays(seed: int, crash: str | None = None) -> list[dt.timedelta]:
    ea.reset()
    ea.FLAKY["j"] = 5
    with WorkflowEnv(seed=seed) as env:
        if crash:
            env.crash_after(crash)
        assert env.start(ea.retry_flow, "j", "jitter").result == "j: ok"
        assert env.crashes == (1 if crash else 0)
    return delays("j")


def test_jitter_is_deterministic_across_runs_and_crashes() -> None:
    first = jitter_delays(seed=3)
    assert first == jitter_delays(seed=3)
    assert first == jitter_delays(seed=3, crash="sleep#2")
    assert first == jitter_delays(seed=3, crash="attempt:flaky#3")
    base = [10, 20, 40, 60, 60]
    seconds = [d.total_seconds() / 60 for d in first]
    # 50 % jitter: each delay is between half and all of the un-jittered one, not all equal
    assert all(b / 2 <= s <= b for s, b in zip(seconds, base, strict=True)), seconds
    assert seconds != base


def test_jitter_depends_on_the_workflow() -> None:
    policy = ea.POLICIES["jitter"]
    assert policy is not None
    assert policy.delay(2, "wf-a:1") == policy.delay(2, "wf-a:1")
    assert policy.delay(2, "wf-a:1") != policy.delay(2, "wf-b:1")


def test_retry_policy_rejects_bad_settings() -> None:
    with pytest.raises(InvalidWorkflowArgument):
        RetryPolicy(max_attempts=0)
    with pytest.raises(InvalidWorkflowArgument):
        RetryPolicy(jitter=2)
    with pytest.raises(InvalidWorkflowArgument):
        RetryPolicy(multiplier=0.5)


@pytest.mark.parametrize("policy", ["fixed", "exponential", "jitter", "default"])
def test_retries_are_crash_safe(wf_env, policy: str) -> None:
    def world() -> None:
        ea.reset()
        ea.FLAKY["c"] = 2

    report = wf_env.check_crash_safety(ea.retry_flow, "c", policy, before_each=world)
    report.assert_ok()


def attempts_routed(env: WorkflowEnv) -> int:
    return len({e.invocation_id for e in env.ledger if e.name.startswith("flaky#")})


def test_a_crash_between_routing_an_attempt_and_recording_it_adopts_the_attempt(wf_env) -> None:
    ea.FLAKY["w"] = 1
    wf_env.crash_after("route:flaky#2")  # attempt 2 routed, its id not yet recorded
    run = wf_env.start(ea.retry_flow, "w", "fixed")
    assert run.result == "w: ok"
    assert wf_env.crashes == 1
    assert attempts_routed(wf_env) == 2  # not 3: the replay found attempt 2, routed no copy


def test_retry_attempts_are_never_duplicated_even_in_fine_mode(wf_env) -> None:
    def world() -> None:
        ea.reset()
        ea.FLAKY["f"] = 2

    def one_invocation_per_recorded_attempt(env: WorkflowEnv) -> None:
        # (A crash before an attempt's failure is recorded re-runs that same invocation,
        # which may then succeed: fewer attempts, never an unrecorded copy.)
        recorded = [s.name for s in env.history if s.name.startswith("attempt:")]
        assert attempts_routed(env) == len(recorded), recorded

    wf_env.check_crash_safety(
        ea.retry_flow, "f", "fixed", fine=True, before_each=world,
        invariant=one_invocation_per_recorded_attempt,
    ).assert_ok()


def test_a_failed_retry_is_crash_safe(wf_env) -> None:
    wf_env.check_crash_safety(ea.declined_flow, "d", before_each=reset_world).assert_ok()


# =========================================================================== halt / resume


def test_halt_parks_the_workflow_until_resumed(wf_env) -> None:
    run = wf_env.start(ea.approval_flow, 1)
    wf_env.run_until_idle()
    assert run.status == InvocationStatus.PAUSED
    (reason,) = wf_env.blocked().values()
    assert "halted (needs approval)" in reason
    assert wf_env.query(run).halted == "needs approval"
    wf_env.advance(days=10)
    assert run.status == InvocationStatus.PAUSED
    wf_env.resume(run)
    assert run.result == 2
    assert ea.calls("note") == ["before halt 1", "after halt 1"]
    assert wf_env.query(run).halted is None


def test_a_halted_workflow_is_a_deadlock_for_result(wf_env) -> None:
    run = wf_env.start(ea.approval_flow, 1)
    with pytest.raises(DeadlockError, match="halted"):
        run.result


def test_a_raw_halt_exception_halts_every_time(wf_env) -> None:
    run = wf_env.start(ea.gated_flow)
    wf_env.run_until_idle()
    assert run.status == InvocationStatus.PAUSED
    wf_env.resume(run)
    wf_env.run_until_idle()
    assert run.status == InvocationStatus.PAUSED  # the gate is still closed
    ea.GATE["open"] = True
    wf_env.resume(run)
    assert run.result == "through"
    assert ea.calls("note") == ["at the gate"]
    assert issubclass(WorkflowHaltException, Exception)


@pytest.mark.parametrize(("phase", "step"), [("before", "halt#1"), ("after", "halt#1")])
def test_halt_survives_a_crash(wf_env, phase: str, step: str) -> None:
    getattr(wf_env, f"crash_{phase}")(step)
    run = wf_env.start(ea.approval_flow, 5)
    wf_env.run_until_idle()
    assert run.status == InvocationStatus.PAUSED
    assert wf_env.crashes == 1
    wf_env.resume(run)
    assert run.result == 6
    assert ea.calls("note") == ["before halt 5", "after halt 5"]


def test_a_crash_after_resume_does_not_halt_again(wf_env) -> None:
    wf_env.crash_after("note#2")
    run = wf_env.start(ea.approval_flow, 5)
    wf_env.run_until_idle()
    wf_env.resume(run)
    assert run.result == 6
    assert wf_env.crashes == 1


def test_a_halt_inside_a_saga_compensates_nothing(wf_env) -> None:
    run = wf_env.start(ea.saga_halt_flow, "h")
    wf_env.run_until_idle()
    assert run.status == InvocationStatus.PAUSED
    assert ea.calls("cancel_flight") == []
    wf_env.resume(run)
    assert run.result == "booked h"
    assert ea.calls("cancel_flight") == []


def test_resume_of_a_running_workflow_does_nothing(wf_env) -> None:
    run = wf_env.start(ea.napper, 60)
    wf_env.run_until_idle()
    wf_env.resume(run)
    assert run.result == 60.0


# =========================================================================== cancel and saga


def _the_cancel_step(step: Any) -> bool:
    # Equivalent to crash_after("cancel"): a predicate works as well as a name.
    return bool(step.name == "cancel#1")


def test_cancel_during_a_sleep_compensates_what_was_done(wf_env) -> None:
    run = wf_env.start(ea.trip, "t1")
    wf_env.advance(days=2)
    wf_env.cancel(run, "changed my mind")
    with pytest.raises(WorkflowCancelled, match="changed my mind"):
        run.result
    assert [c for c, _, _ in ea.CALLS] == ["book_flight", "cancel_flight"]
    assert [s.name for s in run.history if s.name.startswith("cancel")] == [
        "cancel#1", "cancel_flight#1"
    ]
    q = wf_env.query(run)
    assert q.cancelled == "changed my mind"
    assert q.status == "failed"


def test_cancel_during_a_signal_wait_runs_compensations_in_reverse(wf_env) -> None:
    run = wf_env.start(ea.trip, "t2")
    wf_env.advance(days=8)
    assert "signal 'confirm'" in " ".join(wf_env.blocked().values())
    wf_env.cancel(run)
    with pytest.raises(WorkflowCancelled):
        run.result
    assert [c for c, _, _ in ea.CALLS] == [
        "book_flight", "book_hotel", "cancel_hotel", "cancel_flight"
    ]
    compensation_steps = [s.name for s in run.history if s.name.startswith("cancel_")]
    assert compensation_steps == ["cancel_hotel#1", "cancel_flight#1"]  # each a recorded step


def test_a_replay_after_a_cancel_compensates_steps_done_after_earlier_timers(wf_env) -> None:
    # The replay goes through the finished week-long sleep without raising: the
    # cancellation surfaces where the first run saw it, after book_hotel registered its
    # compensation, so the hotel is cancelled too.
    wf_env.crash_after(_the_cancel_step)
    run = wf_env.start(ea.trip, "t5")
    wf_env.advance(days=8)
    wf_env.cancel(run)
    with pytest.raises(WorkflowCancelled):
        run.result
    assert wf_env.crashes == 1
    assert ea.calls("cancel_hotel") == ["t5"] and ea.calls("cancel_flight") == ["t5"]


def test_a_failure_inside_the_saga_compensates_and_reraises(wf_env) -> None:
    run = wf_env.start(ea.trip, "declined-1")
    wf_env.signal(run, "confirm", True)
    with pytest.raises(ea.Fatal, match="card declined"):
        run.result
    assert [c for c, _, _ in ea.CALLS][-2:] == ["cancel_hotel", "cancel_flight"]


def test_a_failing_compensation_does_not_stop_the_others_nor_hide_the_error(wf_env) -> None:
    run = wf_env.start(ea.saga_with_a_failing_compensation, "f1")
    with pytest.raises(ea.Fatal, match="card declined for declined-f1") as failure:
        run.result
    assert failure.value.__notes__ == [
        "compensation refuse_refund('f1') failed: Fatal: refund service down for f1"
    ]
    assert [c for c, _, _ in ea.CALLS][-3:] == ["cancel_hotel", "refuse_refund", "cancel_flight"]


def test_a_failing_compensation_is_crash_safe(wf_env) -> None:
    wf_env.check_crash_safety(
        ea.saga_with_a_failing_compensation, "f2", before_each=reset_world
    ).assert_ok()


def test_a_trip_that_is_not_cancelled_compensates_nothing(wf_env) -> None:
    run = wf_env.start(ea.trip, "t3")
    wf_env.signal(run, "confirm", True)
    assert run.result == "booked t3"
    assert ea.calls("cancel_flight") == []


def test_cancel_of_a_halted_workflow_ends_it_at_the_halt(wf_env) -> None:
    run = wf_env.start(ea.saga_halt_flow, "h2")
    wf_env.run_until_idle()
    wf_env.cancel(run)
    with pytest.raises(WorkflowCancelled):
        run.result
    assert ea.calls("cancel_flight") == ["h2"]


@pytest.mark.parametrize("step", ["cancel_hotel#1", "cancel_flight#1", _the_cancel_step])
def test_compensations_run_once_across_a_crash(wf_env, step: Any) -> None:
    wf_env.crash_after(step)
    run = wf_env.start(ea.trip, "t4")
    wf_env.advance(days=8)
    wf_env.cancel(run)
    with pytest.raises(WorkflowCancelled):
        run.result
    assert wf_env.crashes == 1
    assert ea.calls("cancel_hotel") == ["t4"]
    assert ea.calls("cancel_flight") == ["t4"]


def compensated_in_reverse(name: str) -> Any:
    def check(env: WorkflowEnv) -> None:
        done = [c for c, arg, _ in ea.CALLS if c.startswith("cancel_") and arg == name]
        assert 1 <= done.count("cancel_hotel") <= 2 and 1 <= done.count("cancel_flight") <= 2
        assert done.index("cancel_hotel") < done.index("cancel_flight"), done
        assert ea.calls("charge") in ([], [name], [name, name])

    return check


def test_cancel_and_compensation_are_crash_safe(wf_env) -> None:
    report = wf_env.check_crash_safety(
        ea.self_cancelling_trip,
        "c1",
        before_each=reset_world,
        # The golden run ends in WorkflowCancelled; under every crash it must too, with
        # both compensations done, hotel first. Like every activity they are at-least-once:
        # a crash between one running and its result being recorded runs it again.
        invariant=compensated_in_reverse("c1"),
    )
    report.assert_ok()
    assert report.golden_outcome.startswith("raised WorkflowCancelled")


def test_a_cancelled_saga_is_crash_safe_with_a_signal_wait(wf_env) -> None:
    wf_env.check_crash_safety(
        ea.trip, "declined-2", before_each=reset_world,
        after_start=lambda env, run: env.signal(run, "confirm", True),
        invariant=compensated_in_reverse("declined-2"),
    ).assert_ok()


def test_check_cancelled_raises_between_plain_steps(wf_env) -> None:
    run = wf_env.start(ea.checking_loop, "loop", 2)
    with pytest.raises(WorkflowCancelled):
        run.result
    assert ea.calls("book_flight") == ["loop-0", "loop-1", "loop-2"]
    assert ea.calls("cancel_flight") == ["loop-2", "loop-1", "loop-0"]


def test_check_cancelled_is_crash_safe(wf_env) -> None:
    def all_undone(env: WorkflowEnv) -> None:
        booked = set(ea.calls("book_flight"))
        assert booked == {"c-0", "c-1", "c-2"}
        assert set(ea.calls("cancel_flight")) == booked

    wf_env.check_crash_safety(
        ea.checking_loop, "c", 2, before_each=reset_world, invariant=all_undone
    ).assert_ok()


def test_a_replay_goes_past_the_checks_the_first_run_passed(wf_env) -> None:
    # The worker dies after the cancellation was requested but before any check saw it.
    # The replay goes past check_cancelled #1..#3 (passed and recorded by the first run)
    # and stops at #4, so all three bookings are compensated, not none.
    wf_env.crash_after("cancel")
    run = wf_env.start(ea.checking_loop, "r", 2)
    with pytest.raises(WorkflowCancelled):
        run.result
    assert wf_env.crashes == 1
    assert sorted(ea.calls("cancel_flight")) == ["r-0", "r-1", "r-2"]


# =========================================================================== run timeout


def test_run_timeout_interrupts_a_long_sleep(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start_workflow(ea.month_sleeper, run_timeout=dt.timedelta(days=2))
    with pytest.raises(WorkflowTimeout, match="run timeout"):
        run.result
    assert wf_env.now - start == 2 * D
    assert ea.calls("note") == []


def test_run_timeout_interrupts_a_signal_wait_and_compensates(wf_env) -> None:
    run = wf_env.start_workflow(ea.trip, "late", run_timeout=dt.timedelta(days=10))
    with pytest.raises(WorkflowTimeout):
        run.result
    assert ea.calls("cancel_flight") == ["late"]


def test_run_timeout_survives_a_crash(wf_env) -> None:
    start = wf_env.now
    wf_env.crash_after("sleep#1", restart_after=dt.timedelta(hours=3))
    run = wf_env.start_workflow(ea.month_sleeper, run_timeout=dt.timedelta(days=2))
    with pytest.raises(WorkflowTimeout):
        run.result
    assert wf_env.now - start == 2 * D
    assert wf_env.crashes == 1


def test_a_run_that_ends_in_time_is_unaffected(wf_env) -> None:
    run = wf_env.start_workflow(ea.napper, 60, run_timeout=H)
    assert run.result == 60.0


# =========================================================================== workflow ids


def test_reuse_returns_the_existing_run(wf_env) -> None:
    first = wf_env.start_workflow(ea.napper, 60, workflow_id="acct-1")
    again = wf_env.start_workflow(ea.napper, 60, workflow_id="acct-1")
    assert again.invocation_id == first.invocation_id
    assert first.result == 60.0
    after = wf_env.start_workflow(ea.napper, 60, workflow_id="acct-1")
    assert after.invocation_id == first.invocation_id
    other = wf_env.start_workflow(ea.napper, 60, workflow_id="acct-2")
    assert other.invocation_id != first.invocation_id
    assert wf_env.executions(ea.napper) == 1


def test_reject_raises_workflow_already_started(wf_env) -> None:
    first = wf_env.start_workflow(ea.napper, 60, workflow_id="acct-1", id_reuse="reject")
    with pytest.raises(WorkflowAlreadyStarted, match="acct-1"):
        wf_env.start_workflow(ea.napper, 60, workflow_id="acct-1", id_reuse="reject")
    first.result
    with pytest.raises(WorkflowAlreadyStarted):
        wf_env.start_workflow(ea.napper, 60, workflow_id="acct-1", id_reuse="reject")


def test_allow_after_completion_starts_anew_only_once_the_first_finished(wf_env) -> None:
    first = wf_env.start_workflow(ea.napper, 60, workflow_id="k", id_reuse="allow_after_completion")
    while_running = wf_env.start_workflow(
        ea.napper, 60, workflow_id="k", id_reuse="allow_after_completion"
    )
    assert while_running.invocation_id == first.invocation_id
    assert first.result == 60.0
    second = wf_env.start_workflow(ea.napper, 60, workflow_id="k", id_reuse="allow_after_completion")
    assert second.invocation_id != first.invocation_id
    assert second.result == 60.0
    assert wf_env.executions(ea.napper) == 2


def test_aliases_are_per_workflow_type(wf_env) -> None:
    a = wf_env.start_workflow(ea.napper, 60, workflow_id="same")
    b = wf_env.start_workflow(ea.payment_or_default, workflow_id="same")
    assert a.invocation_id != b.invocation_id


def test_bad_id_reuse_is_rejected(wf_env) -> None:
    with pytest.raises(InvalidWorkflowArgument, match="id_reuse"):
        wf_env.start_workflow(ea.napper, 60, workflow_id="x", id_reuse="sometimes")


def test_every_client_operation_takes_the_workflow_id(wf_env) -> None:
    run = wf_env.start_workflow(ea.approvals, workflow_id="L-6b")
    wf_env.run_until_idle()
    assert signal_workflow(ea.app, "L-6b", "approve", "a") == 1
    assert wf_env.signal("L-6b", "approve", "b") == 2
    assert wf_env.query("L-6b").workflow_id == run.invocation_id
    assert wf_env.run_of("L-6b").invocation_id == run.invocation_id
    assert run.result == ["a", "b"]
    assert workflow_result(ea.app, "L-6b") == ["a", "b"]
    described = describe_workflow(ea.app, "L-6b")
    assert isinstance(described, WorkflowDescription)
    assert (described.workflow_id, described.run_id) == ("L-6b", run.invocation_id)
    assert described.workflow_type == "tests.engine_apps.approvals"
    assert (described.status, described.finished) == ("success", True)
    assert described.status_at == wf_env.now
    # the invocation id and the run reach the same run, and know its workflow id
    assert describe_workflow(ea.app, run.invocation_id) == described
    assert wf_env.describe(run) == described


def test_resume_and_cancel_take_the_workflow_id(wf_env) -> None:
    halted = wf_env.start_workflow(ea.approval_flow, 1, workflow_id="gate-1")
    wf_env.run_until_idle()
    assert wf_env.describe("gate-1").halted == "needs approval"
    assert wf_env.describe("gate-1").status == "paused"
    resume_workflow(ea.app, "gate-1")
    assert halted.result == 2
    trip = wf_env.start_workflow(ea.trip, "t-9", workflow_id="trip-9")
    wf_env.advance(days=8)
    cancel_workflow(ea.app, "trip-9", "customer left")
    with pytest.raises(WorkflowCancelled, match="customer left"):
        trip.result
    assert wf_env.describe("trip-9").cancelled == "customer left"
    with pytest.raises(WorkflowCancelled):
        workflow_result(ea.app, "trip-9")


def test_the_current_run_of_a_workflow_id(wf_env) -> None:
    first = wf_env.start_workflow(ea.napper, 60, workflow_id="k", id_reuse="allow_after_completion")
    assert wf_env.describe("k").run_id == first.invocation_id
    assert not wf_env.describe("k").finished
    with pytest.raises(WorkflowNotFinished, match="has not finished"):
        workflow_result(ea.app, "k")
    first.result
    second = wf_env.start_workflow(ea.napper, 60, workflow_id="k", id_reuse="allow_after_completion")
    assert wf_env.describe("k").run_id == second.invocation_id  # the id now names the new run
    assert wf_env.run_of("k").invocation_id == second.invocation_id


def test_a_workflow_id_missing_from_the_index_is_still_found(wf_env) -> None:
    from pynenc_wf_testing.engine.client import ID_TYPES_KEY, _index_identity

    run = wf_env.start_workflow(ea.napper, 60, workflow_id="old-1")
    # as in a store written before the index existed, or after a crash between the writes
    ea.app.state_backend.set_workflow_data(_index_identity(), ID_TYPES_KEY.format("old-1"), None)
    assert wf_env.describe("old-1").run_id == run.invocation_id


def test_client_errors_say_what_to_do(wf_env) -> None:
    wf_env.use(ea.app)
    with pytest.raises(UnknownWorkflow, match=r"no workflow with id .*'L-404'.*start_workflow"):
        signal_workflow(ea.app, "L-404", "approve", 1)
    for operation in (query_workflow, describe_workflow, workflow_result, resume_workflow,
                      cancel_workflow):
        with pytest.raises(UnknownWorkflow):
            operation(ea.app, "L-404")  # type: ignore[operator]
    assert issubclass(UnknownWorkflow, LookupError)
    with pytest.raises(errors.InvalidArgument, match="neither an invocation id nor a workflow id"):
        wf_env.run_of("L-404")
    with pytest.raises(NotAWorkflow, match="expects a workflow id"):
        signal_workflow(ea.app, 42, "approve", 1)
    plain = wf_env.start(ea.external_job, 1)
    plain.result
    with pytest.raises(NotAWorkflow, match="plain task"):
        wf_env.signal(plain, "approve", 1)
    with pytest.raises(NotAWorkflow, match="call of task external_job"):
        query_workflow(ea.app, plain.invocation_id)
    with pytest.raises(NotAWorkflow, match="Call a plain task directly"):
        wf_env.start_workflow(ea.external_job, 1, workflow_id="job-1")
    assert issubclass(NotAWorkflow, TypeError)


def test_a_member_task_is_not_a_workflow(wf_env) -> None:
    run = wf_env.start(ea.fan_out, 2)
    run.result
    member = next(s.invocation_id for s in run.history if s.name == "square#1")
    assert member is not None
    with pytest.raises(NotAWorkflow, match=f"inside workflow {run.invocation_id}"):
        describe_workflow(ea.app, member)


def test_a_finished_workflow_refuses_signals_cancel_and_resume(wf_env) -> None:
    run = wf_env.start_workflow(ea.napper, 60, workflow_id="done-1")
    assert run.result == 60.0
    with pytest.raises(WorkflowFinished, match="already finished with status success"):
        wf_env.signal("done-1", "approve", 1)
    with pytest.raises(WorkflowFinished, match="nothing left to cancel"):
        wf_env.cancel("done-1")
    with pytest.raises(WorkflowFinished, match="nothing to resume"):
        wf_env.resume(run)
    assert wf_env.query("done-1").status == "success"  # reading still works


def test_other_arguments_under_a_taken_id_are_an_error_under_every_policy(wf_env) -> None:
    first = wf_env.start_workflow(ea.napper, 60, workflow_id="acct-7")
    for policy in ("reuse", "reject", "allow_after_completion"):
        with pytest.raises(WorkflowIdConflict, match=r"other arguments .*'seconds': 60"):
            wf_env.start_workflow(ea.napper, 90, workflow_id="acct-7", id_reuse=policy)
    assert issubclass(WorkflowIdConflict, WorkflowAlreadyStarted)
    assert first.result == 60.0
    for policy in ("reuse", "reject"):
        with pytest.raises(WorkflowIdConflict):
            wf_env.start_workflow(ea.napper, 90, workflow_id="acct-7", id_reuse=policy)
    # once the run finished, allow_after_completion starts the next one, with new arguments
    second = wf_env.start_workflow(
        ea.napper, 90, workflow_id="acct-7", id_reuse="allow_after_completion"
    )
    assert second.result == 90.0
    assert wf_env.executions(ea.napper) == 2


def test_an_id_used_by_two_workflow_types_is_ambiguous(wf_env) -> None:
    a = wf_env.start_workflow(ea.napper, 60, workflow_id="same")
    wf_env.start_workflow(ea.payment_or_default, workflow_id="same")
    with pytest.raises(AmbiguousWorkflowId, match="several workflow types"):
        wf_env.describe("same")
    assert wf_env.describe(a).workflow_id == "same"


# =========================================================================== versioning


def test_patched_is_true_for_new_runs(wf_env) -> None:
    ea.VERSION["current"] = 2
    run = wf_env.start(ea.versioned_flow, 1)
    wf_env.run_until_idle()
    wf_env.resume(run)
    assert run.result == ["audit 1", "step 1"]


def test_patched_is_false_when_replaying_a_run_of_the_old_code(wf_env) -> None:
    run = wf_env.start(ea.versioned_flow, 1)  # version 1: no audit step
    wf_env.run_until_idle()
    ea.VERSION["current"] = 2  # deploy while the run is halted
    wf_env.resume(run)
    assert run.result == ["step 1"]
    assert ea.calls("note") == ["step 1"]
    fresh = wf_env.start(ea.versioned_flow, 2)
    wf_env.run_until_idle()
    wf_env.resume(fresh)
    assert fresh.result == ["audit 2", "step 2"]


def test_deprecate_patch_keeps_the_marker_and_runs_the_new_code(wf_env) -> None:
    run = wf_env.start(ea.retired_patch_flow, 3)
    assert run.result == ["audit 3", "step 3"]
    assert "patch:add-audit" in [s.name for s in run.history]
    wf_env.check_crash_safety(ea.retired_patch_flow, 4, before_each=reset_world).assert_ok()


def test_workflow_max_retries_sets_the_default_number_of_retries() -> None:
    from pynenc_wf_testing.engine import RetryPolicy, enable_workflows
    from pynenc_wf_testing.engine._waits import app_default_policy

    app = ea.app
    saved = dict(app.config_values or {})
    try:
        enable_workflows(app, workflow_max_retries=None)
        assert app_default_policy(app).max_attempts is None  # type: ignore[union-attr]
        enable_workflows(
            app, retry_policy=RetryPolicy.fixed(dt.timedelta(seconds=5)), workflow_max_retries=4
        )
        policy = app_default_policy(app)
        assert policy is not None
        assert policy.max_attempts == 5 and policy.initial_delay == dt.timedelta(seconds=5)
        with pytest.raises(InvalidWorkflowArgument, match="workflow_max_retries must be an int >= 0"):
            enable_workflows(app, workflow_max_retries=-1)
    finally:
        app.config_values = saved
        app._conf = None
