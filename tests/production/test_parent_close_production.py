"""Enforced cancellation and the parent-close policy on pynenc's ThreadRunner + SQLite.

Real time, real threads: children block on in-process gates (``prod_app.GATES``) that the
test opens, so "the workflow ended while its child was still running" is a fact checked on
the store, not a duration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import (
    WorkflowCancelled,
    WorkflowTimeout,
    cancel_workflow,
    start_workflow,
)
from tests.production import prod_app as pa
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


@pytest.fixture(autouse=True)
def gates(prod: Production) -> Iterator[None]:
    """Closed gates for the test; opened before ``prod`` stops its runners (this fixture
    depends on it, so it ends first): every stale child thread ends within the test."""
    pa.GATES.clear()
    yield
    for gate in pa.GATES.values():
        gate.set()


def logged(name: str) -> list[object]:
    return [arg for called, arg, _ in pa.LOG if called == name]


def children(prod: Production, run: object) -> dict[str, str]:
    """The children of ``run`` by their ``gated_work`` label -> invocation id."""
    found = {}
    for child_id in prod.app.state_backend.get_child_invocations(run.invocation_id):  # type: ignore[attr-defined]
        child = prod.app.state_backend.get_invocation(child_id)
        found[child.arguments.kwargs.get("label", child.task.task_id.func_name)] = str(child_id)
    return found


def stored_result(prod: Production, invocation_id: str) -> object:
    try:
        return prod.app.state_backend.get_result(invocation_id)
    except Exception:  # none stored yet
        return None


def status(prod: Production, invocation_id: str) -> InvocationStatus | None:
    try:
        return prod.app.orchestrator.get_invocation_status(invocation_id)
    except KeyError:  # stored, not registered with the orchestrator yet
        return None


def test_a_cancel_ends_a_workflow_blocked_in_a_plain_result(prod: Production) -> None:
    prod.start_runner()
    run = pa.blocked_on_gate("g1")
    prod.wait_until(lambda: "g1" in children(prod, run))
    child_id = children(prod, run)["g1"]
    prod.wait_until(lambda: status(prod, child_id) == InvocationStatus.RUNNING)
    cancel_workflow(prod.app, run, "customer left")
    with pytest.raises(WorkflowCancelled, match="customer left"):
        prod.result(run)
    # It ended while its child was still running (the gate is closed): the child was
    # cancelled, the saga compensated.
    assert "g1" not in logged("gated_work")
    assert logged("unbook") == ["g1"]
    assert status(prod, child_id) == InvocationStatus.FAILED
    # The child's thread ends on its own; pynenc refuses its late result.
    pa.GATES["g1"].set()
    prod.wait_until(lambda: "g1" in logged("gated_work"))
    # pynenc stores the late result, then refuses the FAILED -> SUCCESS transition.
    prod.wait_until(lambda: stored_result(prod, child_id) == "g1")
    assert status(prod, child_id) == InvocationStatus.FAILED
    with pytest.raises(WorkflowCancelled):
        prod.app.state_backend.get_invocation(child_id).result


def test_cancel_spares_an_abandoned_child(prod: Production) -> None:
    prod.start_runner()
    run = pa.keeps_one_child("k")
    prod.wait_until(lambda: len(children(prod, run)) == 2)
    ids = children(prod, run)
    prod.wait_until(
        lambda: all(status(prod, i) == InvocationStatus.RUNNING for i in ids.values())
    )
    cancel_workflow(prod.app, run, "stop")
    with pytest.raises(WorkflowCancelled, match="stop"):
        prod.result(run)
    assert status(prod, ids["k-dropped"]) == InvocationStatus.FAILED
    assert status(prod, ids["k-kept"]) == InvocationStatus.RUNNING
    pa.GATES["k-kept"].set()
    pa.GATES["k-dropped"].set()
    kept = prod.app.state_backend.get_invocation(ids["k-kept"])
    assert prod.result(kept) == "k-kept"
    assert status(prod, ids["k-dropped"]) == InvocationStatus.FAILED


def test_a_run_timeout_cancels_the_running_children(prod: Production) -> None:
    prod.start_runner()
    run = start_workflow(pa.sleeps_past_its_timeout, "t", run_timeout=dt.timedelta(seconds=0.5))
    with pytest.raises(WorkflowTimeout, match="run timeout"):
        prod.result(run)
    [child_id] = children(prod, run).values()
    assert status(prod, child_id) == InvocationStatus.FAILED
    assert "t" not in logged("gated_work")
    with pytest.raises(WorkflowTimeout, match="run timeout"):
        prod.app.state_backend.get_invocation(child_id).result


# ---------------------------------------------------------------- through the timer service


def test_a_run_timeout_ends_a_workflow_blocked_in_a_plain_result(prod: Production) -> None:
    # No engine wait: only the timer service (run-deadline index) can reach it.
    prod.start_runner()
    run = start_workflow(pa.blocked_past_its_timeout, "b", run_timeout=dt.timedelta(seconds=0.5))
    with pytest.raises(WorkflowTimeout, match=f"workflow {run.invocation_id} passed its run timeout"):
        prod.result(run)
    # It ended while its child was still running (the gate is closed): the child failed
    # with the workflow's timeout, and the saga compensated.
    child_id = children(prod, run)["b"]
    assert "b" not in logged("gated_work")
    assert logged("unbook") == ["b"]
    assert status(prod, child_id) == InvocationStatus.FAILED
    with pytest.raises(WorkflowTimeout, match="run timeout") as raised:
        prod.app.state_backend.get_invocation(child_id).result
    assert any("was cancelled: its parent workflow" in n for n in raised.value.__notes__)


def test_a_parent_run_timeout_reaches_its_blocked_sub_workflow(prod: Production) -> None:
    # The parent's deadline becomes the sub-workflow's, indexed too: the next tick times
    # the sub-workflow out (its saga compensates), and the parent raises its error.
    prod.start_runner()
    run = start_workflow(pa.blocked_on_a_sub_workflow, "s", run_timeout=dt.timedelta(seconds=0.5))
    with pytest.raises(WorkflowTimeout, match="passed its run timeout"):
        prod.result(run)
    sub = prod.app.state_backend.get_invocation(children(prod, run)["s"])  # keyed by label
    with pytest.raises(WorkflowTimeout, match=f"workflow {sub.invocation_id} passed"):
        sub.result
    assert logged("unbook") == ["s"]
    assert "s" not in logged("gated_work")  # its child never finished: it was cancelled
    assert status(prod, children(prod, sub)["s"]) == InvocationStatus.FAILED


def test_a_blocked_workflow_that_ends_in_time_is_not_interrupted(prod: Production) -> None:
    prod.start_runner()
    run = start_workflow(pa.blocked_past_its_timeout, "in-time", run_timeout=dt.timedelta(hours=1))
    prod.wait_until(lambda: "in-time" in children(prod, run))
    pa.GATES["in-time"].set()
    assert prod.result(run) == "in-time"
    assert logged("unbook") == []


@pytest.mark.parametrize("fail", [False, True], ids=["completes", "fails"])
def test_a_workflow_that_ends_by_itself_cancels_its_running_children(
    prod: Production, fail: bool
) -> None:
    prod.start_runner()
    run = pa.leaves_children("p", fail)
    if fail:
        with pytest.raises(ValueError, match="failed by itself"):
            prod.result(run)
    else:
        assert prod.result(run) == "done"
    why = "failed" if fail else "completed"
    ids = children(prod, run)
    # Within a tick or two of the timer service (bounded wait, not a timing assert).
    prod.wait_until(lambda: status(prod, ids["p-dropped"]) == InvocationStatus.FAILED)
    with pytest.raises(WorkflowCancelled, match=f"parent workflow {run.invocation_id} {why}"):
        prod.app.state_backend.get_invocation(ids["p-dropped"]).result
    # The sub-workflow was asked to cancel and ended through its own WorkflowCancelled.
    sub = prod.app.state_backend.get_invocation(ids["await_signal"])
    with pytest.raises(WorkflowCancelled, match=f"parent workflow {run.invocation_id} {why}"):
        prod.result(sub)
    # The abandoned child runs on to its own end.
    assert status(prod, ids["p-kept"]) == InvocationStatus.RUNNING
    pa.GATES["p-kept"].set()
    assert prod.result(prod.app.state_backend.get_invocation(ids["p-kept"])) == "p-kept"
    # The cancelled child's thread ends on its own; pynenc refuses its late result.
    pa.GATES["p-dropped"].set()
    prod.wait_until(lambda: "p-dropped" in logged("gated_work"))
    assert status(prod, ids["p-dropped"]) == InvocationStatus.FAILED
    # The ends pynenc recorded for the timer service (its valid conditions) were cleared once
    # handled: they do not pile up for the service to read at every tick.
    prod.wait_until(lambda: engine_conditions(prod) == [])


def engine_conditions(prod: Production) -> list[object]:
    """The valid conditions pynenc recorded for the engine's status conditions (a workflow
    run's end, not yet handled by the timer service)."""
    return [
        vc for vc in prod.app.trigger.get_valid_conditions().values()
        if getattr(vc.condition.arguments_filter, "filter_id", "").endswith(".every_call")
    ]


def test_a_users_condition_on_the_same_workflow_is_left_to_pynenc(prod: Production) -> None:
    # The engine's condition has its own id (its argument filter): the engine clears only
    # its own valid conditions, a user's stays for pynenc's trigger loop.
    from pynenc.trigger.arguments.argument_filters import create_argument_filter
    from pynenc.trigger.conditions.status import StatusCondition

    user = StatusCondition(
        pa.leaves_children.task_id,
        [InvocationStatus.SUCCESS, InvocationStatus.FAILED],
        create_argument_filter(None),
    )
    prod.app.trigger.register_condition(user)
    prod.start_runner()
    run = pa.leaves_children("u", False)
    assert prod.result(run) == "done"
    dropped = children(prod, run)["u-dropped"]
    prod.wait_until(lambda: status(prod, dropped) == InvocationStatus.FAILED)
    prod.wait_until(lambda: engine_conditions(prod) == [])
    kept = [
        str(vc.context.invocation_id)
        for vc in prod.app.trigger.get_valid_conditions().values()
        if vc.condition.condition_id == user.condition_id
    ]
    assert kept == [str(run.invocation_id)]
