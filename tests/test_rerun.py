"""Re-run from a step and cache invalidation under the simulator (tests/rerun_apps.py).

The activities return how many times they ran, so a result shows whether a re-run reused the
recorded one (an old count) or computed it again (a new count).
"""

from __future__ import annotations

import re

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
    UnknownStep,
    WorkflowNotFinished,
    describe_workflow,
    workflow_result,
)
from tests import rerun_apps as ra

STEPS = ["reserve#1", "charge_payment#1", "charge_payment#2", "ship#1"]


@pytest.fixture(autouse=True)
def _clean() -> None:
    ra.reset()


def _executed() -> list[str]:
    return [name for name, _ in ra.CALLS]


def test_a_finished_run_lists_its_steps_in_call_order(wf_env) -> None:
    run = wf_env.start(ra.fulfill, "o-1")
    assert run.result == "r1/c1:10/c2:5/s1"
    assert wf_env.workflow_steps(run) == STEPS


def test_rerun_from_a_step_reuses_what_came_before_and_executes_the_rest(wf_env) -> None:
    run = wf_env.start(ra.fulfill, "o-1")
    run.result
    before = len(ra.CALLS)
    again = wf_env.rerun(run, from_step="charge_payment#2")
    assert again.invocation_id != run.invocation_id
    assert again.result == "r1/c1:10/c3:5/s2"  # reserve and the first charge reused
    assert ra.CALLS[before:] == [("charge_payment", ("o-1", 5)), ("ship", "o-1")]
    assert wf_env.workflow_steps(again) == STEPS  # the reused steps keep their names


def test_the_rerun_takes_the_workflow_id_and_links_to_the_old_run(wf_env) -> None:
    run = wf_env.start_workflow(ra.fulfill, "o-2", workflow_id="order-2")
    run.result
    again = wf_env.rerun("order-2", from_step="ship")  # a bare name is the first call
    again.result
    shown = wf_env.describe("order-2")
    assert (shown.workflow_id, shown.run_id) == ("order-2", again.invocation_id)
    assert (shown.rerun_of, shown.rerun_from_step) == (run.invocation_id, "ship#1")
    assert describe_workflow(ra.app, run.invocation).rerun_of is None  # the old run itself
    assert workflow_result(ra.app, "order-2") == "r1/c1:10/c2:5/s2"


def test_a_run_without_a_workflow_id_is_rerun_under_its_run_id(wf_env) -> None:
    run = wf_env.start(ra.fulfill, "o-3")
    run.result
    again = wf_env.rerun(run, from_step="reserve#1")
    assert again.result == "r2/c3:10/c4:5/s2"  # every step executed again
    shown = wf_env.describe(run.invocation_id)  # the id now names the workflow's re-run
    assert (shown.workflow_id, shown.run_id) == (run.invocation_id, again.invocation_id)


def test_a_failed_run_is_rerun_from_its_failed_step_once_the_world_is_fixed(wf_env) -> None:
    ra.BROKEN.add("o-4")
    run = wf_env.start(ra.fulfill, "o-4")
    with pytest.raises(ra.ShippingDown):
        run.result
    ra.BROKEN.clear()
    again = wf_env.rerun(run, from_step="ship#1")
    assert again.result == "r1/c1:10/c2:5/s2"
    assert _executed().count("charge_payment") == 2  # not charged again


def test_a_rerun_of_a_rerun_follows_the_workflow_id(wf_env) -> None:
    run = wf_env.start_workflow(ra.fulfill, "o-5", workflow_id="order-5")
    run.result
    second = wf_env.rerun("order-5", from_step="ship#1")
    second.result
    third = wf_env.rerun("order-5", from_step="charge_payment#2")
    assert third.result == "r1/c1:10/c3:5/s3"
    assert wf_env.describe("order-5").rerun_of == second.invocation_id
    assert wf_env.workflow_steps(third) == STEPS


def test_rerunning_a_running_workflow_says_to_wait_or_cancel(wf_env) -> None:
    run = wf_env.start(ra.fulfill, "o-6")  # routed, not driven: still registered
    with pytest.raises(WorkflowNotFinished, match=r"still running .*cancel_workflow\(\)"):
        wf_env.rerun(run, from_step="ship#1")
    with pytest.raises(WorkflowNotFinished, match="still running"):
        wf_env.invalidate(run, "ship#1")


def test_an_unknown_step_lists_the_steps_of_the_run(wf_env) -> None:
    run = wf_env.start(ra.fulfill, "o-7")
    run.result
    with pytest.raises(UnknownStep, match=r"no step 'refund#1'\. Its steps are: "
                       r"reserve#1, charge_payment#1, charge_payment#2, ship#1\."):
        wf_env.rerun(run, from_step="refund#1")
    with pytest.raises(UnknownStep, match=r"'charge_payment#3' is after the end .* called "
                       r"charge_payment 2 time\(s\), last 'charge_payment#2'"):
        wf_env.rerun(run, from_step="charge_payment#3")
    with pytest.raises(InvalidWorkflowArgument, match="a step name like 'charge_payment#1'"):
        wf_env.rerun(run, from_step=3)
    with pytest.raises(UnknownStep, match="never called napping"):
        wf_env.invalidate(run, ra.napping)
    with pytest.raises(UnknownStep, match="no step 'refund'"):
        wf_env.invalidate(run, "refund")


def test_errors_name_the_workflow_as_the_user_knows_it(wf_env) -> None:
    """The workflow id the user gave (or the one a run handle was started under), else the
    run id alone: never 'workflow <run id>' for a workflow that has an id of its own."""
    run = wf_env.start_workflow(ra.fulfill, "o-9", workflow_id="order-9")
    run.result
    given_id = rf"rerun_workflow\(\): workflow 'order-9' \(run {run.invocation_id}\) has no step"
    with pytest.raises(UnknownStep, match=given_id):
        wf_env.rerun("order-9", from_step="refund#1")
    with pytest.raises(UnknownStep, match=given_id):  # a handle: the id it was started under
        wf_env.rerun(run, from_step="refund#1")
    with pytest.raises(UnknownStep, match=r"is after the end of workflow 'order-9' \(run "):
        wf_env.rerun("order-9", from_step="ship#2")
    plain = wf_env.start(ra.fulfill, "o-10")
    plain.result
    with pytest.raises(UnknownStep, match=rf"invalidate_result\(\): workflow run "
                       rf"{plain.invocation_id} never called napping\."):
        wf_env.invalidate(plain, ra.napping)
    waiting = wf_env.start_workflow(ra.fulfill, "o-11", workflow_id="order-11")
    with pytest.raises(WorkflowNotFinished, match=r"workflow 'order-11' \(run .*\) is still"):
        wf_env.rerun(waiting)


def test_an_invalidated_step_is_computed_again_by_the_next_rerun(wf_env) -> None:
    run = wf_env.start(ra.fulfill, "o-8")
    run.result
    assert wf_env.invalidate(run, "charge_payment#1") == ["charge_payment#1"]
    before = len(ra.CALLS)
    again = wf_env.rerun(run)  # no step: reuse every result still valid
    assert again.result == "r1/c3:10/c2:5/s1"
    assert ra.CALLS[before:] == [("charge_payment", ("o-8", 10))]
    assert wf_env.describe(again).rerun_from_step is None


def test_invalidating_a_task_invalidates_each_of_its_calls(wf_env) -> None:
    run = wf_env.start(ra.fulfill, "o-9")
    run.result
    assert wf_env.invalidate(run, ra.charge_payment) == ["charge_payment#1", "charge_payment#2"]
    before = len(ra.CALLS)
    assert wf_env.rerun(run).result == "r1/c3:10/c4:5/s1"
    assert _executed()[before:] == ["charge_payment", "charge_payment"]


def test_a_rerun_takes_durable_timers_afresh(wf_env) -> None:
    run = wf_env.start(ra.napping, "o-10")
    run.result
    began = wf_env.now
    again = wf_env.rerun(run, from_step="ship#1")
    assert again.result == "r1/s2"
    assert (wf_env.now - began).total_seconds() == 3600


def test_a_rerun_survives_a_crash_at_any_step(wf_env) -> None:
    def starter(env: WorkflowEnv):
        first = env.start(ra.fulfill, "o-11")
        env.run_until_idle()  # not .result: crash points armed past its end are not unfired
        return env.rerun(first, from_step="charge_payment#2")

    def shape(result: str) -> str:
        # Execution counts differ when a crash repeats an activity (at-least-once).
        return re.sub(r"(?<=[rcs])\d+", "", result)

    report = wf_env.check_crash_safety(
        ra.fulfill, "o-11", starter=starter, before_each=ra.reset,
        compare=lambda golden, got: shape(golden) == shape(got),
    )
    report.assert_ok()
    names = [s.name for s in report.golden_steps if s.is_step]
    assert names.index("route:fulfill#2") < names.index("fulfill#2")  # the re-run's steps
    assert len(report.explored) > len(names)  # before and after each (bar pynenc's window)


def test_the_same_seed_gives_the_same_history_with_a_rerun() -> None:
    def history() -> str:
        ra.reset()
        with WorkflowEnv(seed=5) as env:
            run = env.start_workflow(ra.fulfill, "o-12", workflow_id="order-12")
            run.result
            env.invalidate(run, "reserve#1")
            env.rerun("order-12", from_step="ship#1").result
            return env.history_json()

    assert history() == history()


def test_the_history_replays_both_runs(wf_env) -> None:
    from pynenc_wf_testing import Replayer

    run = wf_env.start(ra.fulfill, "o-13")
    run.result
    again = wf_env.rerun(run, from_step="charge_payment#2")
    again.result
    import json

    doc = json.loads(wf_env.history_json())
    ids = [w["workflow_id"] for w in doc["workflows"]]
    assert ids == [run.invocation_id, again.invocation_id]
    for workflow_id in ids:
        assert Replayer(ra.app).replay(doc, workflow_id=workflow_id).ok


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_the_report_shows_both_runs(wf_env) -> None:
    from pynenc_wf_testing.env.report import render_html

    run = wf_env.start(ra.fulfill, "o-14")
    run.result
    again = wf_env.rerun(run, from_step="ship#1")
    again.result
    third = wf_env.rerun(again)  # every valid result reused: no step named
    third.result
    old, new, last = (r.invocation_id[:8] for r in (run, again, third))
    text = wf_env.render()
    assert _line(text, f"fulfill#1 [{old}]").endswith(f"1 run  re-run as fulfill#2 [{new}]")
    assert _line(text, f"fulfill#2 [{new}]").endswith(
        f"re-run of fulfill#1 [{old}] from ship#1; re-run as fulfill#3 [{last}]"
    )
    assert _line(text, f"fulfill#3 [{last}]").endswith(f"re-run of fulfill#2 [{new}]")
    page = render_html(wf_env, title="t")
    assert f"re-run of fulfill#1 [{old}] from ship#1" in page
    assert f"re-run as fulfill#2 [{new}]" in page


def test_an_exported_history_shows_the_rerun_links(wf_env) -> None:
    from pynenc_wf_testing.env.report import render_text
    from pynenc_wf_testing.env.report_sources import read_history

    run = wf_env.start_workflow(ra.fulfill, "o-18", workflow_id="order-18")
    run.result
    again = wf_env.rerun("order-18", from_step="charge_payment#2")
    again.result
    old, new = run.invocation_id[:8], again.invocation_id[:8]
    model = read_history(wf_env.history_json())
    views = {v.invocation_id: v for v in model.invocations}
    assert views[again.invocation_id].rerun_of == run.invocation_id
    assert views[again.invocation_id].rerun_from_step == "charge_payment#2"
    assert views[run.invocation_id].rerun_as == (again.invocation_id,)
    text = render_text(model)
    assert f"re-run as fulfill#2 [{new}]" in _line(text, f"fulfill#1 [{old}]")
    assert _line(text, f"fulfill#2 [{new}]").endswith(
        f"re-run of fulfill#1 [{old}] from charge_payment#2"
    )


def test_the_attempts_of_a_retried_call_are_reused(wf_env) -> None:
    ra.WOBBLY["o-15"] = 1
    run = wf_env.start(ra.retrying, "o-15")
    assert run.result == "w2/s1"
    assert wf_env.workflow_steps(run) == ["wobbly#1", "wobbly#2", "ship#1"]
    before, began = len(ra.CALLS), wf_env.now
    again = wf_env.rerun(run, from_step="ship#1")
    assert again.result == "w2/s2"
    assert ra.CALLS[before:] == [("ship", "o-15")]  # both attempts reused, not made again
    assert (wf_env.now - began).total_seconds() == 60  # the backoff timer is taken afresh


def test_a_workflow_that_continued_as_new_is_rerun_from_its_last_run(wf_env) -> None:
    from tests import chain_apps as ca

    ca.reset()
    wf_env.start_workflow(ca.renewal, "acct", workflow_id="acct").result
    chain = wf_env.describe("acct").runs
    assert len(chain) == 3
    assert wf_env.workflow_steps("acct") == ["charge#1"]  # the last run's (month 3)
    again = wf_env.rerun("acct", from_step="charge#1")
    assert again.result == {"account": "acct", "months": 3}
    assert ca.CHARGES == [("acct", 1), ("acct", 2), ("acct", 3), ("acct", 3)]
    shown = wf_env.describe("acct")
    assert (shown.rerun_of, shown.runs) == (chain[-1], (again.invocation_id,))


def test_a_rerun_on_a_worker_pool() -> None:
    with WorkflowEnv(seed=2, workers=2, slots=1) as env:
        run = env.start(ra.fulfill, "o-16")
        assert run.result == "r1/c1:10/c2:5/s1"
        again = env.rerun(run, from_step="charge_payment#2")
        assert again.result == "r1/c1:10/c3:5/s2"
        assert env.workflow_steps(again) == STEPS


def test_a_sub_workflow_is_rerun_through_its_parent(wf_env) -> None:
    run = wf_env.start_workflow(ra.parent_order, "o-17", workflow_id="parent-17")
    assert run.result == "r1+r2/c1:10/c2:5/s1"
    assert wf_env.workflow_steps(run) == ["reserve#1", "fulfill#1"]
    sub = next(
        str(c) for c in ra.app.state_backend.get_child_invocations(run.invocation_id)
        if ra.app.state_backend.get_invocation(str(c)).task.task_id.func_name == "fulfill"
    )
    with pytest.raises(InvalidWorkflowArgument, match=re.escape(
        f"rerun_workflow(): run {sub} is a sub-workflow of workflow 'parent-17' (its step "
        "'fulfill#1'): the parent recorded its result, and a run of the sub-workflow alone "
        "would reach no one. Re-run the parent from that step instead (it runs the "
        "sub-workflow again): rerun_workflow(app, 'parent-17', from_step='fulfill#1')."
    )):
        wf_env.rerun(sub, from_step="ship#1")
    with pytest.raises(InvalidWorkflowArgument, match=re.escape(
        "Invalidate the parent's step instead (its next re-run runs the sub-workflow "
        "again): invalidate_result(app, 'parent-17', 'fulfill#1')."
    )):
        wf_env.invalidate(sub, "ship#1")
    # what the message says to do: the parent runs the sub-workflow again, reserve reused
    before = len(ra.CALLS)
    again = wf_env.rerun("parent-17", from_step="fulfill#1")
    assert again.result == "r1+r3/c3:10/c4:5/s2"
    assert [name for name, _ in ra.CALLS[before:]] == [
        "reserve", "charge_payment", "charge_payment", "ship"
    ]
