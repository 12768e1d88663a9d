"""Eviction: a waiting simulated workflow suspended through the engine's production path
(recorded condition, PAUSED, wake claim, reroute, re-execution), as an option and a fault."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pynenc_wf_testing import (
    FaultSchedule,
    InvalidArgument,
    NondeterminismError,
    UnknownStepError,
    WorkflowEnv,
)
from pynenc_wf_testing.checks.faults import ScheduledEviction
from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine.atomic import atomic_store
from tests import eviction_apps as apps

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    apps.reset()


def _mixed(evict: str, seed: int = 5) -> tuple[Any, list[dict[str, Any]], list[str], int]:
    apps.reset()
    with WorkflowEnv(seed=seed, evict=evict) as env:
        env.use(apps.app)
        run = env.start(apps.mixed_flow, "o1")
        env.advance(hours=3)
        env.signal(run, "approve", "yes")
        result = run.result
        history = [step.to_dict() for step in env.history]
        return result, history, list(apps.CALLS), env.executions(apps.mixed_flow)


def test_evicted_at_every_wait_gives_the_cached_result_and_history() -> None:
    cached = _mixed("never")
    evicted = _mixed("every_wait")
    assert cached[3] == 1
    # first run + one re-execution per engine wait (2 sleeps, the signal); the child
    # workflow's plain .result parks as pynenc's own .result does
    assert evicted[3] == 4
    assert evicted[0] == cached[0]
    assert evicted[0]["at"] == "2030-01-01T04:30:00+00:00"
    assert evicted[1] == cached[1]  # same steps, same virtual instants, same bytes
    assert evicted[2] == cached[2]  # each activity ran once


def test_an_evicted_workflow_is_paused_with_its_condition_recorded_and_indexed() -> None:
    with WorkflowEnv(seed=1, evict="every_wait") as env:
        env.use(apps.app)
        run = env.start(apps.hourly, 2)
        env.run_until_idle()
        assert env.describe(run).status == "paused"
        assert env.describe(run).suspended is not None
        assert "suspended (evicted)" in " ".join(env.blocked().values())
        due = atomic_store(apps.app).due(schema.DUE_INDEX, float("inf"))
        assert [member for member, _ in due] == [run.invocation_id]
        env.advance(hours=2)
        assert run.result == 2
        assert atomic_store(apps.app).due(schema.DUE_INDEX, float("inf")) == []


def test_a_deadline_wakes_an_evicted_workflow_at_its_exact_virtual_instant() -> None:
    with WorkflowEnv(seed=2, evict="every_wait") as env:
        env.use(apps.app)
        run = env.start(apps.hourly, 1)
        env.advance(minutes=59, seconds=59.999999)
        assert not run.done
        assert env.executions(apps.hourly) == 1
        env.advance(seconds=0.000001)
        assert run.done and run.result == 1
        assert env.executions(apps.hourly) == 2
        assert [s.time for s in env.history if s.name == "timer#1"] == [
            "2030-01-01T01:00:00+00:00"
        ]


def test_a_signal_wakes_an_evicted_workflow_through_the_engine_wake() -> None:
    with WorkflowEnv(seed=3, evict="every_wait") as env:
        env.use(apps.app)
        run = env.start(apps.mixed_flow, "o2")
        env.advance(hours=2, minutes=10)
        assert "signal 'approve'" in (env.describe(run).suspended or "")
        executions = env.executions(apps.mixed_flow)
        env.signal(run, "approve", "ok")
        env.run_until_idle()
        # woken at the signal's instant, re-executed, now suspended on its child workflow
        assert env.executions(apps.mixed_flow) == executions + 1
        assert run.result["approval"] == "ok"


def test_a_cancel_ends_an_evicted_workflow_at_once() -> None:
    with WorkflowEnv(seed=4, evict="every_wait") as env:
        env.use(apps.app)
        run = env.start(apps.hourly, 10)
        env.advance(minutes=90)
        env.cancel(run, "stop")
        env.run_until_idle()
        assert run.done
        assert env.describe(run).status == "failed"
        assert env.now.isoformat() == "2030-01-01T01:30:00+00:00"


def _history_digest(seed: int, hashseed: str) -> str:
    code = textwrap.dedent(
        f"""
        import hashlib, json
        from pynenc_wf_testing import WorkflowEnv
        from tests import eviction_apps as apps
        with WorkflowEnv(seed={seed}, evict="every_wait") as env:
            env.use(apps.app)
            run = env.start(apps.mixed_flow, "o3")
            env.advance(hours=3)
            env.signal(run, "approve", 1)
            run.result
            data = json.dumps([s.to_dict() for s in env.history], sort_keys=True, default=str)
        print(hashlib.sha256(data.encode()).hexdigest())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONHASHSEED": hashseed},
    )
    return out.stdout.strip().splitlines()[-1]


def test_evicted_histories_are_the_same_bytes_in_any_process() -> None:
    assert _history_digest(11, "0") == _history_digest(11, "12345")


def test_a_divergent_re_execution_fails_with_nondeterminism_naming_the_call() -> None:
    with WorkflowEnv(seed=5, evict="every_wait") as env:
        env.use(apps.app)
        run = env.start(apps.drifting_flow)
        with pytest.raises(NondeterminismError, match=r"child call #1.*call from start 2"):
            env.advance(hours=1)
        assert not run.done


def test_evict_at_wait_evicts_only_that_wait() -> None:
    with WorkflowEnv(seed=6) as env:
        env.use(apps.app)
        env.evict_at_wait(2)
        run = env.start(apps.hourly, 3)
        env.advance(hours=3)
        assert run.result == 3
        assert env.executions(apps.hourly) == 2  # cached at waits 1 and 3
        env.check_faults_fired()


def test_an_eviction_point_never_reached_is_an_error() -> None:
    with WorkflowEnv(seed=7) as env:
        env.use(apps.app)
        env.evict_at_wait(4)
        run = env.start(apps.hourly, 2)
        env.advance(hours=2)
        # At .result once nothing can run any more, as an unreached crash_after is.
        with pytest.raises(UnknownStepError, match=r"^evict_at_wait\(4\): the run reached "
                           r"only 2 waits that block, so that eviction never happened\."):
            run.result
        assert run.done
        with pytest.raises(UnknownStepError, match=r"evict_at_wait\(4\).*only 2 waits"):
            env.check_faults_fired()


def test_an_unreached_eviction_and_crash_point_fail_result_alike() -> None:
    for arm in (lambda env: env.evict_at_wait(3), lambda env: env.crash_after("nope")):
        with WorkflowEnv(seed=7) as env:
            env.use(apps.app)
            arm(env)
            run = env.start(apps.hourly, 1)
            with pytest.raises(UnknownStepError, match="never"):
                run.result


@pytest.mark.parametrize("bad", [0, -1, True, "1", 1.5])
def test_bad_eviction_arguments_are_rejected(bad: Any) -> None:
    with WorkflowEnv(seed=8) as env, pytest.raises(InvalidArgument, match="evict_at_wait"):
        env.evict_at_wait(bad)
    with pytest.raises(InvalidArgument, match=r"ScheduledEviction\.wait"):
        ScheduledEviction(bad)


def test_an_unknown_evict_mode_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="evict must be one of 'never', 'every_wait'"):
        WorkflowEnv(seed=1, evict="sometimes")


def test_check_crash_safety_explores_evictions_and_finds_what_only_they_reveal() -> None:
    with WorkflowEnv(seed=3) as env:
        env.use(apps.app)
        report = env.check_crash_safety(apps.swallowing_flow, before_each=apps.reset)
        assert report.golden_waits == 1
        failing = report.failing
        assert [str(o.schedule) for o in failing] == ["env.evict_at_wait(1)"]
        assert "NondeterminismError" in failing[0].violations[0].message
        assert all(not o.schedule.evictions for o in report.explored if o.ok)
        # without eviction points the same check passes: no crash point reveals it
        assert env.check_crash_safety(
            apps.swallowing_flow, before_each=apps.reset, evictions=False
        ).ok


def test_a_correct_workflow_passes_every_eviction_point() -> None:
    with WorkflowEnv(seed=4) as env:
        env.use(apps.app)
        report = env.check_crash_safety(
            apps.mixed_flow, "o4", before_each=apps.reset,
            after_start=lambda e, run: e.signal(run, "approve", "yes"),
        )
        evictions = [o for o in report.explored if o.schedule.evictions]
        assert len(evictions) == report.golden_waits >= 3
        assert report.ok, report.summary()


def test_an_eviction_schedule_round_trips_through_json() -> None:
    schedule = FaultSchedule(evictions=(ScheduledEviction(2),))
    doc = json.loads(json.dumps(schedule.to_json()))
    assert doc["evictions"] == [{"wait": 2}]
    assert FaultSchedule.from_json(doc) == schedule
    assert schedule.snippet_lines() == ["wf_env.evict_at_wait(2)"]
    assert "evictions" not in FaultSchedule().to_json()


PLUGIN_APP = """
import datetime as dt

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "APP_ID"}))


@app.workflow
def napper() -> str:
    napper.wf.root.sleep(dt.timedelta(hours=1))
    return "rested"
"""

PLUGIN_TEST = """
import pytest
import evapp

def test_default(wf_env):
    run = wf_env.start(evapp.napper)
    wf_env.advance(hours=1)
    assert run.result == "rested"
    print("EXECUTIONS", wf_env.executions(evapp.napper))

@pytest.mark.wf(evict="never")
def test_marked_never(wf_env):
    run = wf_env.start(evapp.napper)
    wf_env.advance(hours=1)
    assert wf_env.executions(evapp.napper) == 1
"""


def test_the_plugin_option_ini_and_marker_choose_eviction(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(evapp=PLUGIN_APP.replace("APP_ID", f"evapp-{pytester.path.name}"))
    pytester.makepyfile(test_ev=PLUGIN_TEST)
    result = pytester.runpytest("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*EXECUTIONS 1*"])
    result = pytester.runpytest("-s", "-p", "no:randomly", "--wf-evict=every_wait")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*EXECUTIONS 2*"])
    pytester.makeini("[pytest]\nwf_evict = every_wait\n")
    result = pytester.runpytest("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*EXECUTIONS 2*"])
    pytester.makeini("[pytest]\nwf_evict = always\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*wf_evict = 'always': expected one of never, every_wait*"])


def test_crashes_and_eviction_compose() -> None:
    with WorkflowEnv(seed=9, evict="every_wait") as env:
        env.use(apps.app)
        env.crash_after("timer#1")
        run = env.start(apps.hourly, 3)
        env.advance(hours=3)
        assert run.result == 3
        assert env.crashes == 1
        assert [s.time for s in env.history if s.name.startswith("timer#")] == [
            "2030-01-01T01:00:00+00:00", "2030-01-01T02:00:00+00:00", "2030-01-01T03:00:00+00:00",
        ]


def test_every_crash_point_of_an_evicting_world_recovers() -> None:
    with WorkflowEnv(seed=10, evict="every_wait") as env:
        env.use(apps.app)
        report = env.check_crash_safety(
            apps.mixed_flow, "o5", before_each=apps.reset,
            after_start=lambda e, run: e.signal(run, "approve", "yes"),
        )
        assert not any(o.schedule.evictions for o in report.explored)  # all evicted already
        assert report.ok, report.summary()


# ---------------------------------------------------------------- the last waits that polled


def _watch(evict: str) -> tuple[Any, list[dict[str, Any]], list[str], int]:
    apps.reset()
    with WorkflowEnv(seed=8, evict=evict) as env:
        env.use(apps.app)
        run = env.start(apps.job_watcher, 5)
        env.advance(hours=2)
        assert not run.done
        if evict == "every_wait":
            assert env.describe(run).suspended == "a run of task outside_job"
            members = atomic_store(apps.app).members(schema.WATCHED_TASKS)
            key = apps.outside_job.task_id.key
            assert members == [f"0 {run.invocation_id} {key}"]
        env.start(apps.outside_job, 4)
        result = run.result
        assert atomic_store(apps.app).members(schema.WATCHED_TASKS) == []
        return result, [s.to_dict() for s in env.history], list(apps.CALLS), env.executions(
            apps.job_watcher
        )


def test_wait_for_any_run_of_a_task_is_evicted_and_woken_by_the_tick() -> None:
    cached = _watch("never")
    evicted = _watch("every_wait")
    assert cached[0] == evicted[0] == 40
    assert (cached[3], evicted[3]) == (1, 2)  # one re-execution: woken by the new run
    assert evicted[1] == cached[1] and evicted[2] == cached[2]


def test_an_evicted_wait_for_a_task_times_out_at_its_instant() -> None:
    from pynenc_wf_testing.engine import WaitTimeout

    with WorkflowEnv(seed=8, evict="every_wait") as env:
        env.use(apps.app)
        run = env.start(apps.job_watcher, 3)
        env.advance(hours=2, minutes=59)
        assert not run.done
        env.advance(minutes=1)
        assert run.done
        with pytest.raises(WaitTimeout, match="a run of task outside_job"):
            run.result


def _compensate(evict: str) -> tuple[list[str], list[dict[str, Any]], list[str], int]:
    apps.reset()
    with WorkflowEnv(seed=9, evict=evict) as env:
        env.use(apps.app)
        run = env.start(apps.compensating_flow, "o7")
        env.advance(minutes=30)
        assert not run.done  # the slow compensation runs for an hour
        if evict == "every_wait":
            assert "slow_undo" in (env.describe(run).suspended or "")
        with pytest.raises(ValueError, match="card declined for o7") as failed:
            run.result
        return failed.value.__notes__, [s.to_dict() for s in env.history], list(apps.CALLS), (
            env.executions(apps.compensating_flow)
        )


def test_an_evicted_compensation_waits_for_its_child_and_keeps_the_original_error() -> None:
    cached = _compensate("never")
    evicted = _compensate("every_wait")
    notes = [
        "compensation refuse('o7') failed: RuntimeError: the refund service is down for o7"
    ]
    assert cached[0] == evicted[0] == notes
    # each compensation ran once although the body re-executed after each wait
    assert evicted[2] == cached[2] == ["book o7", "refuse o7", "undo o7"]
    assert evicted[1] == cached[1]
    # first run + the sleep, then each compensation's wait for its child, evicted
    assert (cached[3], evicted[3]) == (1, 4)


def test_a_saga_passes_every_eviction_point_of_its_compensations() -> None:
    with WorkflowEnv(seed=4) as env:
        env.use(apps.app)
        report = env.check_crash_safety(apps.compensating_flow, "o8", before_each=apps.reset)
        evictions = [o for o in report.explored if o.schedule.evictions]
        # the saga's sleep, its two compensations' waits, the slow compensation's own sleep
        assert len(evictions) == report.golden_waits == 4
        assert report.ok, report.summary()


def test_the_tick_counts_a_watched_task_once_whatever_the_number_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No per-workflow polling: one count of final runs per watched task per tick."""
    from pynenc_wf_testing.engine._service import tick

    with WorkflowEnv(seed=8, evict="every_wait") as env:
        env.use(apps.app)
        runs = [env.start(apps.job_watcher, 5) for _ in range(6)]
        env.advance(hours=1)
        store = atomic_store(apps.app)
        assert len(store.members(schema.WATCHED_TASKS)) == 6
        counted: list[Any] = []
        original = apps.app.orchestrator.count_invocations

        def counting(*args: Any, **kwargs: Any) -> int:
            counted.append(args)
            return int(original(*args, **kwargs))

        monkeypatch.setattr(apps.app.orchestrator, "count_invocations", counting)
        assert tick(apps.app, store, now=0.0) == 0  # nothing new: nobody woken
        assert len(counted) == 1
        monkeypatch.undo()
        env.start(apps.outside_job, 2)
        assert [run.result for run in runs] == [20] * 6
        assert store.members(schema.WATCHED_TASKS) == []
