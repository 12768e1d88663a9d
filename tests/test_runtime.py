"""The simulated runtime: scheduling, children, sub-workflows, retries, failures."""

from __future__ import annotations

import re

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing import InvalidArgument, WorkflowEnv
from tests.apps import flows
from tests.apps.flows import OrderError
from tests.apps.guard import guard_app


def outcomes(env: WorkflowEnv, name_prefix: str) -> list[tuple[str, int, str]]:
    return [(e.name, e.attempt, e.outcome) for e in env.ledger if e.name.startswith(name_prefix)]


# --------------------------------------------------------------------------- sequential


@pytest.mark.parametrize("n", [1, 5, 25])
def test_sequential_direct_children_complete_with_the_right_result(n: int) -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.running_sum, n)
        assert run.result == sum(range(n))
        assert run.done
        assert run.status == InvocationStatus.SUCCESS
        assert env.executions(flows.add) == n
        assert env.executions("add") == n
        assert env.executions(flows.running_sum) == 1
        expected = ["route:running_sum#1"]
        for i in range(1, n + 1):
            expected += [f"route:add#{i}", f"add#{i}"]
        assert env.steps == [*expected, "running_sum#1"]


def test_sequential_durable_children_record_every_step() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.sequential, 3)
        assert run.result == [0, 10, 20]
        assert [str(s) for s in run.history] == [
            "#1 route:sequential#1",
            "#2 route:child#1",
            "#3 record:child#1",
            "#4 child#1",
            "#5 route:child#2",
            "#6 record:child#2",
            "#7 child#2",
            "#8 route:child#3",
            "#9 record:child#3",
            "#10 child#3",
            "#11 sequential#1",
        ]
        assert all(s.workflow_id == run.workflow_id for s in run.history)
        assert [s.number for s in env.history] == list(range(1, 12))


def test_start_runs_nothing_until_the_simulation_is_driven() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.sequential, 2)
        assert not run.done
        assert run.status == InvocationStatus.REGISTERED
        assert env.ledger == []
        assert env.steps == ["route:sequential#1"]
        assert run.name == "sequential#1"
        assert repr(run) == f"<WorkflowRun {run.invocation_id[:8]} status=registered>"
        env.run_until_idle()
        assert run.done
        assert run.result == [0, 10]
        assert repr(run) == f"<WorkflowRun {run.invocation_id[:8]} status=success>"


def test_run_ids_a_workflow_is_its_own_workflow_a_top_level_task_has_none() -> None:
    with WorkflowEnv() as env:
        wf_run = env.start(flows.sequential, 1)
        task_run = env.start(flows.child, 1)
        assert wf_run.workflow_id == wf_run.invocation_id
        assert task_run.workflow_id is None
        assert task_run.result == 10
        assert task_run.name == "child#1"


def test_result_can_be_read_again_without_running_anything() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.sequential, 2)
        assert run.result == [0, 10]
        steps = env.steps
        assert run.result == [0, 10]
        assert env.steps == steps


# --------------------------------------------------------------------------- parallel


@pytest.mark.parametrize("n", [1, 4, 12])
def test_parallel_children_routed_first_then_awaited(n: int) -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.fan_out, n)
        assert run.result == [10 * i for i in range(n)]
        assert env.executions(flows.child) == n
        names = env.steps
        # The parent routes all its children before it first waits: every route precedes
        # every child result.
        routes = [names.index(f"route:child#{i}") for i in range(1, n + 1)]
        results = [names.index(f"child#{i}") for i in range(1, n + 1)]
        assert max(routes) < min(results)


@pytest.mark.parametrize("n", [1, 5])
def test_parallelize_group_results(n: int) -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.fan_out_parallelize, n)
        assert run.result == [10 * i for i in range(n)]
        assert env.executions(flows.child) == n
        assert sorted(e.arguments["i"] for e in env.ledger if e.name.startswith("child")) == [
            str(i) for i in range(n)
        ]


# --------------------------------------------------------------------------- sub-workflows


def test_sub_workflows_run_concurrently_and_belong_to_the_parent_run() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.parent_of_subworkflows, [2, 3])
        assert run.result == [[0, 10], [0, 10, 20]]
        assert env.executions(flows.sequential) == 2
        assert env.executions(flows.child) == 5
        sub_ids = {
            s.invocation_id
            for s in run.history
            if s.kind == "route" and s.name.startswith("route:sequential#")
        }
        assert len(sub_ids) == 2
        # The sub-workflows' own steps (children, records) are part of the parent's run history.
        sub_steps = [s for s in run.history if s.workflow_id in sub_ids]
        assert {s.name for s in sub_steps} >= {"child#1", "child#2", "child#3", "record:child#1"}
        assert run.history[-1].name == "parent_of_subworkflows#1"
        assert len(run.history) == len(env.history)


def test_run_history_only_contains_its_own_workflow_family() -> None:
    with WorkflowEnv() as env:
        first = env.start(flows.sequential, 1)
        second = env.start(flows.running_sum, 2)
        assert first.result == [0]
        assert second.result == 1
        assert {s.workflow_id for s in first.history} == {first.workflow_id}
        assert {s.workflow_id for s in second.history} == {second.workflow_id}
        assert len(first.history) + len(second.history) == len(env.history)


# --------------------------------------------------------------------------- retries


def test_retries_until_success_are_recorded_in_the_ledger() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.flaky, 2)
        assert run.result == 3
        assert outcomes(env, "flaky") == [
            ("flaky#1", 1, "retry"),
            ("flaky#1", 2, "retry"),
            ("flaky#1", 3, "success"),
        ]
        assert env.executions(flows.flaky) == 3
        assert env.steps == [
            "route:flaky#1",
            "retry_status:flaky#1",  # pynenc wrote RETRY (fine-grained window) ...
            "retry:flaky#1",  # ... and routed the retry
            "retry_status:flaky#1",
            "retry:flaky#1",
            "flaky#1",
        ]
        # A retry keeps the invocation id (pynenc re-routes the same invocation).
        assert {e.invocation_id for e in env.ledger} == {run.invocation_id}


def test_retries_exhausted_raise_the_last_error() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.flaky, 10)
        with pytest.raises(ValueError, match=r"^flaky attempt 4$"):
            run.result
        assert run.status == InvocationStatus.FAILED
        assert outcomes(env, "flaky") == [
            ("flaky#1", 1, "retry"),
            ("flaky#1", 2, "retry"),
            ("flaky#1", 3, "retry"),
            ("flaky#1", 4, "failed"),
        ]


def test_error_outside_retry_for_is_not_retried() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.flaky_wrong_error)
        with pytest.raises(OrderError, match=r"^not retriable$"):
            run.result
        assert outcomes(env, "flaky_wrong_error") == [("flaky_wrong_error#1", 1, "failed")]


# --------------------------------------------------------------------------- failures


def test_failing_task_result_raises_the_tasks_own_exception() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.explode, "out of stock")
        with pytest.raises(OrderError, match=r"^out of stock$"):
            run.result
        assert run.done
        assert run.status == InvocationStatus.FAILED
        assert env.history[-1].detail == {"status": "failed"}
        # Reading it again raises again, without running anything.
        with pytest.raises(OrderError):
            run.result


def test_child_failure_propagates_through_the_workflow() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.fails_through_child, "card declined")
        with pytest.raises(OrderError, match=r"^card declined$"):
            run.result
        assert outcomes(env, "") == [
            ("fails_through_child#1", 1, "failed"),
            ("explode#1", 1, "failed"),
        ]


def test_one_failing_run_does_not_stop_the_others() -> None:
    with WorkflowEnv() as env:
        bad = env.start(flows.explode, "boom")
        good = env.start(flows.sequential, 2)
        assert good.result == [0, 10]
        with pytest.raises(OrderError):
            bad.result


# --------------------------------------------------------------------------- direct calls


def test_calling_a_task_directly_inside_an_open_env() -> None:
    with WorkflowEnv() as env:
        env.use(flows.app)
        inv = flows.child(4)
        assert inv.result == 40
        wf_inv = flows.sequential(2)
        assert wf_inv.result == [0, 10]
        assert env.executions(flows.child) == 3
        assert env.steps[:2] == ["route:child#1", "child#1"]


def test_env_without_with_block_opens_on_first_use() -> None:
    env = WorkflowEnv()
    try:
        run = env.start(flows.child, 2)
        assert run.result == 20
    finally:
        env.close()
    env.close()  # closing twice is harmless


def test_env_cannot_be_reopened_after_close() -> None:
    env = WorkflowEnv()
    with env:
        pass
    with pytest.raises(
        InvalidArgument, match=re.escape("this WorkflowEnv was closed; create a new one.")
    ):
        env.open()


def test_start_after_close_is_refused_and_leaves_the_app_alone() -> None:
    env = WorkflowEnv()
    with env:
        pass
    with guard_app(flows.app):
        before = flows.app.config_values
        try:
            with pytest.raises(
                InvalidArgument, match=re.escape("this WorkflowEnv is closed; create a new one.")
            ):
                env.start(flows.child, 1)
        finally:
            assert flows.app.config_values == before


def test_driving_the_simulation_from_inside_a_task_is_refused() -> None:
    with WorkflowEnv() as env:
        flows.SIDE_CHANNEL["env"] = env
        try:
            run = env.start(flows.drives_the_env)
            with pytest.raises(
                InvalidArgument,
                match=re.escape(
                    "the simulation can only be driven from the test (the code that created the "
                    "WorkflowEnv), not from inside a simulated task: a task that needs another's "
                    "result should call .result on its invocation."
                ),
            ):
                run.result
        finally:
            flows.SIDE_CHANNEL.clear()


def test_ledger_arguments_and_timestamps() -> None:
    with WorkflowEnv() as env:
        assert env.start(flows.add, 2, 3).result == 5
        (execution,) = env.ledger
        assert execution.task == "tests.apps.flows.add"
        assert execution.name == "add#1"
        assert execution.arguments == {"x": "2", "y": "3"}
        assert execution.started == "2030-01-01T00:00:00+00:00"
        assert execution.workflow_id is None
        assert execution.to_dict()["outcome"] == "success"
        # env.ledger is a copy: mutating it does not change the environment.
        env.ledger.clear()
        assert len(env.ledger) == 1


def test_history_of_a_plain_task_run() -> None:
    with WorkflowEnv() as env:
        other = env.start(flows.child, 1)
        run = env.start(flows.add, 1, 2)
        assert run.result == 3
        assert other.result == 10
        assert [s.name for s in run.history] == ["route:add#1", "add#1"]
        assert all(s.invocation_id == run.invocation_id for s in run.history)


def test_parallelize_and_results_directly_in_the_test_body() -> None:
    with WorkflowEnv() as env:
        env.use(flows.app)
        group = flows.child.parallelize([(i,) for i in range(4)])
        assert sorted(group.results) == [0, 10, 20, 30]
        assert env.executions(flows.child) == 4


def test_start_passes_keyword_arguments() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.add, y=2, x=40)
        assert run.result == 42
        assert env.ledger[0].arguments == {"x": "40", "y": "2"}


def test_each_invocation_starts_with_a_fresh_contextvars_context() -> None:
    # Invocations share a few worker greenlets (reused once finished): what one invocation
    # puts in a ContextVar must not show up in the next, as with a new thread per invocation.
    with WorkflowEnv(seed=3) as env:
        env.use(flows.app)
        assert env.start(flows.mark_contexts, 6).result == [""] * 6
        assert [env.start(flows.mark_context, f"top-{i}").result for i in range(4)] == [""] * 4
        assert flows.TASK_CONTEXT.get() == ""  # the test's own context is untouched
