"""Re-run from a step and cache invalidation on pynenc's ThreadRunner, with SQLite and Redis.

Nothing simulated: the steps are named by the engine's own production rule (the run's
children in the order they were routed, numbered per task), the re-run is routed to a real
runner and reads the recorded results from the store. Every test runs on both stores: a
SQLite file, and a real Redis server for state, orchestrator and broker (``redis_url``:
the CI's ``PYNENC_WF_REDIS_URL`` or a ``redis-server`` of the test's own, else skipped).
"""

from __future__ import annotations

import re

import pytest

from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
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


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, prod: Production) -> Production:
    """``prod`` on the store of the parameter."""
    if request.param == "redis":
        prod.use_redis(request.getfixturevalue("redis_url"))
    return prod


def logged(name: str) -> list[object]:
    return [arg for called, arg, _ in pa.LOG if called == name]


def test_a_failed_run_is_rerun_from_its_failed_step(store: Production) -> None:
    store.start_runner()
    pa.FLAKY["o-1"] = 1
    run = start_workflow(pa.rerunnable, "o-1", workflow_id="order-1")
    with pytest.raises(pa.Transient):
        store.result(run)
    assert workflow_steps(store.app, "order-1") == ["note#1", "note#2", "flaky#1"]

    again = rerun_workflow(store.app, "order-1", from_step="flaky#1")
    assert store.result(again) == "reserve o-1|charge o-1|o-1: ok"
    assert logged("note") == ["reserve o-1", "charge o-1"]  # reused, not executed again
    assert logged("flaky") == ["o-1", "o-1"]
    shown = describe_workflow(store.app, "order-1")
    assert (shown.run_id, shown.rerun_of, shown.rerun_from_step) == (
        str(again.invocation_id), str(run.invocation_id), "flaky#1"
    )
    assert workflow_result(store.app, "order-1") == "reserve o-1|charge o-1|o-1: ok"
    assert workflow_steps(store.app, "order-1") == ["note#1", "note#2", "flaky#1"]
    # a start under the id (which claims it atomically) now answers with the re-run
    same = start_workflow(pa.rerunnable, "o-1", workflow_id="order-1")
    assert str(same.invocation_id) == str(again.invocation_id)


def test_a_rerun_from_an_earlier_step_executes_it_and_what_follows(store: Production) -> None:
    store.start_runner()
    run = start_workflow(pa.rerunnable, "o-2")
    store.result(run)
    again = rerun_workflow(store.app, run.invocation_id, from_step="note#2")
    store.result(again)
    assert logged("note") == ["reserve o-2", "charge o-2", "charge o-2"]
    assert logged("flaky") == ["o-2", "o-2"]


def test_an_invalidated_result_is_computed_again_by_the_next_rerun(store: Production) -> None:
    store.start_runner()
    run = start_workflow(pa.rerunnable, "o-3", workflow_id="order-3")
    store.result(run)
    assert invalidate_result(store.app, "order-3", "note#1") == ["note#1"]
    again = rerun_workflow(store.app, "order-3")
    assert store.result(again) == "reserve o-3|charge o-3|o-3: ok"
    assert logged("note") == ["reserve o-3", "charge o-3", "reserve o-3"]
    assert logged("flaky") == ["o-3"]  # still valid: reused


def test_invalidating_a_task_and_the_errors(store: Production) -> None:
    store.start_runner()
    run = start_workflow(pa.rerunnable, "o-4", workflow_id="order-4")
    store.result(run)
    assert invalidate_result(store.app, "order-4", pa.note) == ["note#1", "note#2"]
    with pytest.raises(UnknownStep, match=r"no step 'ship#1'\. Its steps are: note#1, "
                       r"note#2, flaky#1\."):
        rerun_workflow(store.app, "order-4", from_step="ship#1")
    with pytest.raises(UnknownStep, match="'note#3' is after the end"):
        invalidate_result(store.app, "order-4", "note#3")
    with pytest.raises(UnknownStep, match="never called timed_sleep"):
        invalidate_result(store.app, "order-4", pa.timed_sleep)


def test_a_running_workflow_cannot_be_rerun_or_invalidated(store: Production) -> None:
    run = start_workflow(pa.rerunnable, "o-5")  # no runner: it stays registered
    with pytest.raises(WorkflowNotFinished, match="still running"):
        rerun_workflow(store.app, run, from_step="note#1")
    with pytest.raises(WorkflowNotFinished, match="still running"):
        invalidate_result(store.app, run, "note#1")


def test_the_store_report_shows_both_runs(store: Production) -> None:
    store.start_runner()
    run = start_workflow(pa.rerunnable, "o-6", workflow_id="order-6")
    store.result(run)
    again = rerun_workflow(store.app, "order-6", from_step="flaky#1")
    store.result(again)
    wanted = {str(run.invocation_id): "success", str(again.invocation_id): "success"}

    def runs() -> dict[str, str]:
        return {v.invocation_id: v.status for v in store.report().invocations
                if v.invocation_id in wanted}

    # pynenc sets the status before it appends the status history the report reads
    store.wait_until(lambda: runs() == wanted)
    # the report links the two runs, read from the store as from an exported history
    from pynenc_wf_testing.checks.replay import export_histories
    from pynenc_wf_testing.env.report import render_html, render_text
    from pynenc_wf_testing.env.report_sources import read_history

    models = [store.report()]
    if store.redis_url is None:  # export_histories lists workflow data of memory/SQLite only
        models.append(
            read_history(export_histories(store.app, workflow_type=pa.rerunnable.task_id.key))
        )
    for model in models:
        # an export holds no steps: its runs are named in workflow-id order, not by time
        names = {v.invocation_id: f"{v.name} [{v.invocation_id[:8]}]" for v in model.invocations}
        old, new = names[str(run.invocation_id)], names[str(again.invocation_id)]
        text = render_text(model)
        assert text.count("re-run") == 2, text
        assert _line(text, new).endswith(f"re-run of {old} from flaky#1")
        assert _line(text, old).endswith(f"re-run as {new}")
        assert f"re-run of {old} from flaky#1" in render_html(model, title="t")


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_the_cli_report_shows_the_rerun_link(
    store: Production, capsys: pytest.CaptureFixture[str]
) -> None:
    from pynenc_wf_testing.tools.cli import main

    store.start_runner()
    run = start_workflow(pa.rerunnable, "o-7", workflow_id="order-7")
    store.result(run)
    again = rerun_workflow(store.app, "order-7")
    store.result(again)
    for runner, _ in list(store.runners):
        store.stop_runner(runner)
    where = (
        ["--redis", store.redis_url] if store.redis_url is not None
        else ["--sqlite", store.db_path]
    )
    assert main(["report", *where, "--app-id", store.app_id, "--text"]) == 0
    text = capsys.readouterr().out
    old, new = str(run.invocation_id)[:8], str(again.invocation_id)[:8]
    # from_step=None: no step to name
    assert _line(text, f"rerunnable#2 [{new}]").endswith(f"re-run of rerunnable#1 [{old}]")


def test_a_sub_workflow_is_rerun_through_its_parent(store: Production) -> None:
    store.start_runner()
    run = start_workflow(pa.rerunnable_parent, "o-8", workflow_id="parent-8")
    assert store.result(run) == "[reserve o-8|charge o-8|o-8: ok]"
    assert workflow_steps(store.app, "parent-8") == ["note#1", "rerunnable#1"]
    sub = next(
        str(c) for c in store.app.state_backend.get_child_invocations(run.invocation_id)
        if store.app.state_backend.get_invocation(str(c)).task.task_id.func_name == "rerunnable"
    )
    with pytest.raises(InvalidWorkflowArgument, match=re.escape(
        f"run {sub} is a sub-workflow of workflow 'parent-8' (its step 'rerunnable#1')"
    )) as refused:
        rerun_workflow(store.app, sub, from_step="flaky#1")
    assert str(refused.value).endswith(
        "rerun_workflow(app, 'parent-8', from_step='rerunnable#1')."
    )
    with pytest.raises(InvalidWorkflowArgument, match=re.escape(
        "invalidate_result(app, 'parent-8', 'rerunnable#1')."
    )):
        invalidate_result(store.app, sub, "note#1")
    again = rerun_workflow(store.app, "parent-8", from_step="rerunnable#1")
    assert store.result(again) == "[reserve o-8|charge o-8|o-8: ok]"
    # the parent's note reused; the sub-workflow ran again from the top
    assert logged("note") == ["open o-8", "reserve o-8", "charge o-8", "reserve o-8", "charge o-8"]
