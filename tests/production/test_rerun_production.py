"""Re-run from a step and cache invalidation on pynenc's ThreadRunner with SQLite.

Nothing simulated: the steps are named by the engine's own production rule (the run's
children in the order they were routed, numbered per task), the re-run is routed to a real
runner and reads the recorded results from the SQLite store.
"""

from __future__ import annotations

import pytest

from pynenc_wf_testing.engine import (
    UnknownStep,
    WorkflowNotFinished,
    describe_workflow,
    invalidate_result,
    rerun_workflow,
    start_workflow,
    workflow_result,
    workflow_steps,
)
from tests.production import prod_app as pa
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    # pynenc's ThreadRunner re-raises a failed task's error in its thread after storing it
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


def logged(name: str) -> list[object]:
    return [arg for called, arg, _ in pa.LOG if called == name]


def test_a_failed_run_is_rerun_from_its_failed_step(prod: Production) -> None:
    prod.start_runner()
    pa.FLAKY["o-1"] = 1
    run = start_workflow(pa.rerunnable, "o-1", workflow_id="order-1")
    with pytest.raises(pa.Transient):
        prod.result(run)
    assert workflow_steps(prod.app, "order-1") == ["note#1", "note#2", "flaky#1"]

    again = rerun_workflow(prod.app, "order-1", from_step="flaky#1")
    assert prod.result(again) == "reserve o-1|charge o-1|o-1: ok"
    assert logged("note") == ["reserve o-1", "charge o-1"]  # reused, not executed again
    assert logged("flaky") == ["o-1", "o-1"]
    shown = describe_workflow(prod.app, "order-1")
    assert (shown.run_id, shown.rerun_of, shown.rerun_from_step) == (
        str(again.invocation_id), str(run.invocation_id), "flaky#1"
    )
    assert workflow_result(prod.app, "order-1") == "reserve o-1|charge o-1|o-1: ok"
    assert workflow_steps(prod.app, "order-1") == ["note#1", "note#2", "flaky#1"]
    # a start under the id (which claims it atomically) now answers with the re-run
    same = start_workflow(pa.rerunnable, "o-1", workflow_id="order-1")
    assert str(same.invocation_id) == str(again.invocation_id)


def test_a_rerun_from_an_earlier_step_executes_it_and_what_follows(prod: Production) -> None:
    prod.start_runner()
    run = start_workflow(pa.rerunnable, "o-2")
    prod.result(run)
    again = rerun_workflow(prod.app, run.invocation_id, from_step="note#2")
    prod.result(again)
    assert logged("note") == ["reserve o-2", "charge o-2", "charge o-2"]
    assert logged("flaky") == ["o-2", "o-2"]


def test_an_invalidated_result_is_computed_again_by_the_next_rerun(prod: Production) -> None:
    prod.start_runner()
    run = start_workflow(pa.rerunnable, "o-3", workflow_id="order-3")
    prod.result(run)
    assert invalidate_result(prod.app, "order-3", "note#1") == ["note#1"]
    again = rerun_workflow(prod.app, "order-3")
    assert prod.result(again) == "reserve o-3|charge o-3|o-3: ok"
    assert logged("note") == ["reserve o-3", "charge o-3", "reserve o-3"]
    assert logged("flaky") == ["o-3"]  # still valid: reused


def test_invalidating_a_task_and_the_errors(prod: Production) -> None:
    prod.start_runner()
    run = start_workflow(pa.rerunnable, "o-4", workflow_id="order-4")
    prod.result(run)
    assert invalidate_result(prod.app, "order-4", pa.note) == ["note#1", "note#2"]
    with pytest.raises(UnknownStep, match=r"no step 'ship#1'\. Its steps are: note#1, "
                       r"note#2, flaky#1\."):
        rerun_workflow(prod.app, "order-4", from_step="ship#1")
    with pytest.raises(UnknownStep, match="'note#3' is after the end"):
        invalidate_result(prod.app, "order-4", "note#3")
    with pytest.raises(UnknownStep, match="never called timed_sleep"):
        invalidate_result(prod.app, "order-4", pa.timed_sleep)


def test_a_running_workflow_cannot_be_rerun_or_invalidated(prod: Production) -> None:
    run = start_workflow(pa.rerunnable, "o-5")  # no runner: it stays registered
    with pytest.raises(WorkflowNotFinished, match="still running"):
        rerun_workflow(prod.app, run, from_step="note#1")
    with pytest.raises(WorkflowNotFinished, match="still running"):
        invalidate_result(prod.app, run, "note#1")


def test_the_store_report_shows_both_runs(prod: Production) -> None:
    from pynenc_wf_testing.env.report_sources import read_sqlite_store

    prod.start_runner()
    run = start_workflow(pa.rerunnable, "o-6", workflow_id="order-6")
    prod.result(run)
    again = rerun_workflow(prod.app, "order-6", from_step="flaky#1")
    prod.result(again)
    expected = {str(run.invocation_id): "success", str(again.invocation_id): "success"}

    def runs() -> dict[str, str]:
        report = read_sqlite_store(prod.db_path, app_id=prod.app_id)
        return {v.invocation_id: v.status for v in report.invocations
                if v.invocation_id in expected}

    # pynenc writes the status history (what the report reads) right after the status the
    # result waits for: on a loaded machine the last entry can lag; wait for it.
    prod.wait_until(lambda: runs() == expected)
    assert runs() == expected
