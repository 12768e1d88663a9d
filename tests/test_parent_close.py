"""Enforced cancellation and run timeouts, and the parent-close policy, in the simulator.

A workflow blocked in a plain ``.result`` ends at the virtual instant it is cancelled or times
out; when a workflow ends, its running children are cancelled unless the call abandoned them.
The apps are in tests/close_apps.py (on the engine app of tests/engine_apps.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
    ParentClosePolicy,
    WorkflowCancelled,
    WorkflowTimeout,
)
from tests import close_apps as ca
from tests import engine_apps as ea

MIN = dt.timedelta(minutes=1)
H = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def outside_world() -> None:
    ea.reset()


def _children(env: WorkflowEnv, run: Any, task: str) -> list[Any]:
    """The ledger entries of ``task`` (function name) run by ``run``'s workflow."""
    return [e for e in env.ledger if e.task.endswith(f".{task}") and e.workflow_id == run.invocation_id]


def _status(invocation_id: str) -> InvocationStatus:
    return ea.app.orchestrator.get_invocation_status(invocation_id)


def _child_ids(parent_id: str) -> list[str]:
    return sorted(str(i) for i in ea.app.state_backend.get_child_invocations(parent_id))


# =========================================================================== blocked in .result


def test_a_cancel_ends_a_workflow_blocked_in_result_at_its_instant(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ca.blocked_on_child, 1.0)  # the child is busy for an hour
    wf_env.advance(minutes=10)
    assert "slow_job" in " ".join(wf_env.blocked().values())
    wf_env.cancel(run, "customer left")
    with pytest.raises(WorkflowCancelled, match="customer left"):
        run.result
    assert wf_env.now - start == 10 * MIN  # not at 1 hour, when the child would have ended
    # The saga compensated at that instant; the child never finished its work.
    assert [("undo", "booking", start + 10 * MIN)] == ea.CALLS
    wf_env.advance(hours=3)
    assert ea.calls("slow_job") == []
    [child] = _children(wf_env, run, "slow_job")
    assert child.outcome == "cancelled" and child.finished == child.started.replace(
        "00:00:00", "00:10:00"
    )


def test_the_history_shows_the_cancelled_child_failing_at_the_cancel(wf_env) -> None:
    run = wf_env.start(ca.blocked_on_child, 1.0)
    wf_env.advance(minutes=10)
    wf_env.cancel(run)
    with pytest.raises(WorkflowCancelled):
        run.result
    names = [(s.name, s.detail.get("status")) for s in run.history if s.is_step]
    assert names[names.index(("cancel#1", None)) + 1] == ("slow_job#1", "failed")
    assert names[-1] == ("blocked_on_child#1", "failed")
    [child_id] = _child_ids(run.invocation_id)[:1]
    with pytest.raises(WorkflowCancelled) as raised:
        ea.app.state_backend.get_invocation(child_id).result
    # The workflow's own error (it ended with it), with a note on the child.
    assert str(raised.value) == f"workflow {run.invocation_id} was cancelled: cancelled"
    assert raised.value.__notes__ == [
        f"task slow_job ({child_id}) was cancelled: its parent workflow {run.invocation_id} "
        "was cancelled: cancelled"
    ]


def test_a_run_timeout_ends_a_workflow_blocked_in_result_at_the_deadline(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start_workflow(ca.blocked_on_child, 1.0, run_timeout=10 * MIN)
    with pytest.raises(WorkflowTimeout, match="run timeout"):
        run.result
    assert wf_env.now - start == 10 * MIN
    assert [("undo", "booking", start + 10 * MIN)] == ea.CALLS
    wf_env.advance(hours=3)
    assert ea.calls("slow_job") == []  # the child was cancelled with it


def test_a_plain_result_on_an_abandoned_child_is_not_interrupted(wf_env) -> None:
    # The abandoned child is not cancelled, and pynenc's .result has nowhere to record an
    # interruption a replay could repeat: the workflow ends when the child does (and, with
    # no engine operation after it, completes).
    start = wf_env.now
    run = wf_env.start(ca.blocked_on_abandoned_child, 2.0)
    wf_env.advance(minutes=30)
    wf_env.cancel(run)
    assert run.result == "abandoned"
    assert wf_env.now - start == 2 * H
    assert [("slow_job", "abandoned", start + 2 * H)] == ea.CALLS


def test_a_workflow_that_caught_its_cancellation_may_wait_on_results(wf_env) -> None:
    # Cleanup after a cancellation: a plain .result is not interrupted a second time.
    start = wf_env.now
    run = wf_env.start(ca.cleans_up_after_cancel, 1.0)
    wf_env.advance(minutes=5)
    wf_env.cancel(run)
    assert run.result == ["cleaned", "cleanup"]
    assert wf_env.now - start == 5 * MIN


def test_a_run_that_ends_in_time_is_not_interrupted(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start_workflow(ca.blocked_on_child, 1.0, run_timeout=2 * H)
    assert run.result == "child"
    assert wf_env.now - start == H
    assert ea.calls("undo") == []


# =========================================================================== parent close


def test_a_completed_workflow_cancels_its_running_children_by_default(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ca.fire_and_forget, "cancel")
    assert run.result == "done"
    [child_id] = _child_ids(run.invocation_id)
    assert _status(child_id) == InvocationStatus.FAILED
    wf_env.advance(hours=3)
    assert ea.calls("slow_job") == []
    assert wf_env.now - start == 3 * H


def test_an_abandoned_child_runs_on_after_its_parent_completed(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ca.fire_and_forget, "abandon")
    assert run.result == "done"
    wf_env.advance(hours=3)
    assert [("slow_job", "forgotten-abandon", start + 2 * H)] == ea.CALLS
    assert "abandon:slow_job" in [s.name for s in run.history]  # recorded before routing


def test_a_failed_workflow_cancels_its_children_and_their_member_tasks(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ca.fails_with_children)
    with pytest.raises(ValueError, match="the workflow itself failed"):
        run.result
    assert wf_env.now - start == MIN
    wf_env.advance(hours=6)
    assert ea.calls("slow_job") == []
    outcomes = sorted((e.task.rsplit(".", 1)[1], e.outcome) for e in wf_env.ledger)
    assert outcomes == [
        ("fails_with_children", "failed"),
        ("slow_job", "cancelled"),
        ("spawner", "cancelled"),
    ]
    assert ea.CALLS == []


def test_a_completed_parent_asks_its_sub_workflow_to_cancel(wf_env) -> None:
    # The sub-workflow (not started yet when its parent completed) sees its cancellation at
    # its first wait: it cancels its own child, its saga compensates, all at that instant.
    start = wf_env.now
    run = wf_env.start(ca.parent_of_sub, False)
    assert run.result == "parent done"
    wf_env.run_until_idle()
    [sub_id] = _child_ids(run.invocation_id)
    sub = ea.app.state_backend.get_invocation(sub_id)
    with pytest.raises(WorkflowCancelled, match=f"parent workflow {run.invocation_id} completed"):
        sub.result
    assert wf_env.now == start
    assert [("undo", "sub", start)] == ea.CALLS
    wf_env.advance(hours=10)
    assert ea.calls("slow_job") == []


def test_a_cancel_cascades_through_a_waiting_sub_workflow(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start(ca.parent_of_sub, True)
    wf_env.advance(hours=1)
    wf_env.cancel(run, "abort all")
    with pytest.raises(WorkflowCancelled, match="abort all"):
        run.result
    assert wf_env.now - start == H
    assert [("undo", "sub", start + H)] == ea.CALLS
    assert wf_env.query(run).cancelled == "abort all"


def test_a_workflow_whose_children_finished_closes_without_a_step(wf_env) -> None:
    run = wf_env.start(ea.fan_out, 3)
    assert run.result == [0, 1, 4]
    assert not any(s.name.startswith(("cancel", "abandon")) for s in run.history)


def test_a_run_timeout_cancels_the_running_children_at_the_deadline(wf_env) -> None:
    # The same case as tests/production (a durable wait, a child it never waits for): the
    # child fails with the workflow's WorkflowTimeout at the deadline, not when it would end.
    start = wf_env.now
    run = wf_env.start_workflow(ca.sleeps_with_a_child, 5.0, run_timeout=2 * H)
    with pytest.raises(WorkflowTimeout, match="run timeout"):
        run.result
    assert wf_env.now - start == 2 * H
    [child_id] = _child_ids(run.invocation_id)
    assert _status(child_id) == InvocationStatus.FAILED
    with pytest.raises(WorkflowTimeout, match="run timeout"):
        ea.app.state_backend.get_invocation(child_id).result
    wf_env.advance(hours=10)
    assert ea.calls("slow_job") == []


@pytest.mark.parametrize("bad", ["kill", "CANCEL", 1, None, ParentClosePolicy])
def test_a_bad_parent_close_value_is_an_error_at_the_call(wf_env, bad: Any) -> None:
    run = wf_env.start(ca.fire_and_forget, bad)
    with pytest.raises(InvalidWorkflowArgument) as raised:
        run.result
    message = str(raised.value)
    assert "parent_close must be one of ParentClosePolicy.CANCEL ('cancel'), " in message
    assert f"ParentClosePolicy.ABANDON ('abandon'); got {bad!r}." in message
    assert ea.calls("slow_job") == [] and _child_ids(run.invocation_id) == []


def test_the_policy_accepts_the_enum_and_its_value() -> None:
    from pynenc_wf_testing.engine._close import parse_policy

    assert parse_policy("abandon") is ParentClosePolicy.ABANDON
    assert parse_policy(ParentClosePolicy.CANCEL) is ParentClosePolicy.CANCEL


# =========================================================================== crashes and replay


def test_a_crash_of_the_parent_does_not_cancel_its_children(wf_env) -> None:
    # The worker dies while the workflow waits; after recovery the child is still the one
    # it waits for, and it completes.
    start = wf_env.now
    wf_env.crash_after("record:slow_job#1", restart_after=dt.timedelta(minutes=20))
    run = wf_env.start(ca.blocked_on_child, 1.0)
    assert run.result == "child"
    assert wf_env.crashes == 1
    assert ea.calls("undo") == []
    assert all(e.outcome != "cancelled" for e in wf_env.ledger)
    assert wf_env.now - start >= H


def _cancel_at_ten_minutes(env: WorkflowEnv, run: Any) -> None:
    env.advance(minutes=10)
    env.cancel(run, "stop")


def test_cancelling_a_blocked_workflow_is_crash_safe(wf_env) -> None:
    def compensated_once_or_twice(env: WorkflowEnv) -> None:
        assert 1 <= len(ea.calls("undo")) <= 2

    report = wf_env.check_crash_safety(
        ca.blocked_on_child, 1.0, before_each=ea.reset, after_start=_cancel_at_ten_minutes,
        invariant=compensated_once_or_twice,
    )
    report.assert_ok()
    assert report.golden_outcome.startswith("raised WorkflowCancelled")


def _child_cancelled_and_compensated(env: WorkflowEnv) -> None:
    assert ea.calls("slow_job") == []
    assert ea.calls("undo") in (["sub"], ["sub", "sub"])  # at-least-once, like any activity


def test_a_timed_out_parent_blocked_on_a_sub_workflow_is_crash_safe(wf_env) -> None:
    # The sub-workflow inherits the deadline, cancels its child and compensates; the parent
    # fails with the sub-workflow's WorkflowTimeout: under every crash too.
    report = wf_env.check_crash_safety(
        ca.parent_of_sub, True, before_each=ea.reset,
        starter=lambda env: env.start_workflow(ca.parent_of_sub, True, run_timeout=2 * H),
        invariant=_child_cancelled_and_compensated,
    )
    report.assert_ok()
    assert report.golden_outcome.startswith("raised WorkflowTimeout")


def test_a_parent_timeout_reaches_its_sub_workflow_at_the_deadline(wf_env) -> None:
    start = wf_env.now
    run = wf_env.start_workflow(ca.parent_of_sub, True, run_timeout=2 * H)
    with pytest.raises(WorkflowTimeout, match="run timeout"):
        run.result
    assert wf_env.now - start == 2 * H
    assert [("undo", "sub", start + 2 * H)] == ea.CALLS
    [sub_id] = _child_ids(run.invocation_id)
    assert _status(sub_id) == InvocationStatus.FAILED


def test_the_same_seed_gives_the_same_history() -> None:
    def history(seed: int) -> str:
        ea.reset()
        with WorkflowEnv(seed=seed) as env:
            env.use(ea.app)
            run = env.start(ca.fails_with_children)
            with pytest.raises(ValueError):
                run.result
            env.advance(hours=1)
            return env.history_json()

    first = history(7)
    assert "interrupted" not in first and '"slow_job#1"' in first
    assert history(7) == first
