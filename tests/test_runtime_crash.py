"""Crash basics: crash_after / crash_before a step, then pynenc's recovery finishes the run."""

from __future__ import annotations

from typing import Any

import pytest

from pynenc_wf_testing import Step, WorkflowEnv
from tests.apps import flows


def run_sequential(*, after: Any = None, before: Any = None, seed: int = 0) -> dict[str, Any]:
    with WorkflowEnv(seed=seed) as env:
        if after is not None:
            env.crash_after(after)
        if before is not None:
            env.crash_before(before)
        run = env.start(flows.sequential, 3)
        result = run.result
        return {
            "result": result,
            "crashes": env.crashes,
            "history": [str(s) for s in env.history],
            "kinds": [s.kind for s in env.history],
            "ledger": [(e.name, e.attempt, e.outcome) for e in env.ledger],
            "child_runs": env.executions(flows.child),
            "steps": env.steps,
            "events": [s for s in env.history if not s.is_step],
        }


def test_no_crash_baseline() -> None:
    out = run_sequential()
    assert out["result"] == [0, 10, 20]
    assert out["crashes"] == 0
    assert "crash" not in out["kinds"]
    assert out["child_runs"] == 3


def test_crash_after_a_child_commits_does_not_run_it_again() -> None:
    out = run_sequential(after="child#2")
    assert out["result"] == [0, 10, 20]
    assert out["crashes"] == 1
    assert out["history"] == [
        "#1 route:sequential#1",
        "#2 route:child#1",
        "#3 record:child#1",
        "#4 child#1",
        "#5 route:child#2",
        "#6 record:child#2",
        "#7 child#2",
        "-- crash",
        "-- recover",
        "#8 route:child#3",
        "#9 record:child#3",
        "#10 child#3",
        "#11 sequential#1",
    ]
    assert out["ledger"] == [
        ("sequential#1", 1, "crashed"),
        ("child#1", 1, "success"),
        ("child#2", 1, "success"),
        ("sequential#1", 2, "success"),
        ("child#3", 1, "success"),
    ]
    assert out["child_runs"] == 3
    crash, recover = out["events"]
    assert crash.kind == "crash" and crash.number is None
    assert crash.detail == {
        "reason": "crash_after('child#2') at child#2",
        "worker": 1,
        "phase": "after",
        "step": "child#2",
        "step_number": 7,
    }
    assert recover.kind == "recover" and recover.detail == {"worker": 2}


def test_crash_before_a_child_commits_runs_it_again() -> None:
    out = run_sequential(before="child#2")
    assert out["result"] == [0, 10, 20]
    assert out["crashes"] == 1
    assert out["history"] == [
        "#1 route:sequential#1",
        "#2 route:child#1",
        "#3 record:child#1",
        "#4 child#1",
        "#5 route:child#2",
        "#6 record:child#2",
        "-- crash",
        "-- recover",
        "#7 child#2",
        "#8 route:child#3",
        "#9 record:child#3",
        "#10 child#3",
        "#11 sequential#1",
    ]
    # At-least-once: child#2 ran, its result was not recorded, it runs again (same invocation).
    assert out["ledger"] == [
        ("sequential#1", 1, "crashed"),
        ("child#1", 1, "success"),
        ("child#2", 1, "crashed"),
        ("child#2", 2, "success"),
        ("sequential#1", 2, "success"),
        ("child#3", 1, "success"),
    ]
    assert out["child_runs"] == 4
    assert out["events"][0].detail["reason"] == "crash_before('child#2') at child#2"


def test_crash_by_step_number_matches_crash_by_name() -> None:
    by_name = run_sequential(after="child#2")
    by_number = run_sequential(after=7)  # "#7 child#2" in the run without a crash
    assert by_number["steps"] == by_name["steps"]
    assert by_number["ledger"] == by_name["ledger"]
    assert by_number["events"][0].detail["reason"] == "crash_after(step 7) at child#2"


def test_crash_by_task_object_means_its_first_result() -> None:
    by_task = run_sequential(after=flows.child)
    by_name = run_sequential(after="child#1")
    by_bare_name = run_sequential(after="child")
    assert by_task["steps"] == by_name["steps"] == by_bare_name["steps"]
    assert by_task["crashes"] == 1
    assert by_task["history"].index("-- crash") == by_task["history"].index("#4 child#1") + 1


def test_crash_by_predicate() -> None:
    def second_record(step: Step) -> bool:
        return step.name == "record:child#2"

    out = run_sequential(after=second_record)
    assert out["crashes"] == 1
    assert out["history"].index("-- crash") == out["history"].index("#6 record:child#2") + 1
    assert out["events"][0].detail["reason"] == "crash_after(second_record) at record:child#2"
    assert out["result"] == [0, 10, 20]


def test_crash_after_the_final_result_changes_nothing() -> None:
    out = run_sequential(after="sequential#1")
    assert out["result"] == [0, 10, 20]
    assert out["crashes"] == 1
    assert out["history"][-2:] == ["-- crash", "-- recover"]
    assert out["child_runs"] == 3


def test_two_crash_points_fire_once_each() -> None:
    with WorkflowEnv() as env:
        env.crash_after("child#1")
        env.crash_before("child#3")
        run = env.start(flows.sequential, 3)
        assert run.result == [0, 10, 20]
        assert env.crashes == 2
        assert [s.kind for s in env.history].count("crash") == 2
        env.check_faults_fired()


@pytest.mark.parametrize("phase", ["after", "before"])
def test_crash_around_a_recorded_uuid_replays_the_same_value(phase: str) -> None:
    with WorkflowEnv(seed=3) as env:
        baseline = env.start(flows.uuid_then_child).result
    with WorkflowEnv(seed=3) as env:
        getattr(env, f"crash_{phase}")("uuid#1")
        run = env.start(flows.uuid_then_child)
        assert run.result == baseline
        assert env.crashes == 1
        assert [s.name for s in env.history].count("uuid#1") == 1


def test_crash_of_a_direct_call_workflow_reexecutes_unrecorded_children() -> None:
    """Direct child calls are not recorded by pynenc: a replay routes new children."""
    with WorkflowEnv() as env:
        env.crash_after("add#2")
        run = env.start(flows.running_sum, 3)
        assert run.result == 3
        assert env.crashes == 1
        assert env.executions(flows.add) == 5
        assert env.steps[-1] == "running_sum#1"


def golden_step_names(n: int = 3) -> set[str]:
    with WorkflowEnv() as env:
        env.start(flows.sequential, n).result
        return set(env.steps)


def test_crash_before_a_route_keeps_the_step_names_of_the_golden_run() -> None:
    golden = golden_step_names()
    with WorkflowEnv() as env:
        env.crash_before("route:child#2")
        run = env.start(flows.sequential, 3)
        assert run.result == [0, 10, 20]
        assert env.crashes == 1
        assert env.executions(flows.child) == 3
        assert set(env.steps) == golden


def test_crash_after_a_route_duplicates_the_child_as_pynenc_does() -> None:
    """pynenc's crash window (docs/faults.md): routed, not yet recorded -> duplicate child."""
    with WorkflowEnv() as env:
        env.crash_after("route:child#2")
        run = env.start(flows.sequential, 3)
        assert run.result == [0, 10, 20]
        assert env.executions(flows.child) == 4
        assert [e.arguments["i"] for e in env.ledger if e.name.startswith("child")] == [
            "0",
            "1",
            "1",
            "2",
        ]


def test_crash_while_another_run_sleeps_does_not_rewind_time() -> None:
    with WorkflowEnv() as env:
        sleeper = env.start(flows.nap, "s", 100)
        env.advance(seconds=40)
        env.crash_after("child#1")
        run = env.start(flows.sequential, 2)
        assert run.result == [0, 10]
        assert env.crashes == 1
        # time.sleep is not durable: the recovered sleeper runs again from the crash instant.
        _tag, before, after = sleeper.result
        assert (before, after) == ("2030-01-01T00:00:40+00:00", "2030-01-01T00:02:20+00:00")
        assert [e.outcome for e in env.ledger if e.name == "nap#1"] == ["crashed", "success"]
        times = [s.time for s in env.history]
        assert times == sorted(times)
