"""Continue-as-new (``wf.root.continue_as_new``) in the simulator: chains of runs under one
workflow id, the client following the chain, signals between runs, crashes at every step,
replay of each run's history, bad inputs. The workflows are in tests/chain_apps.py."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.checks.replay import Replayer, load_history
from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
    InvalidWorkflowOperation,
    WorkflowCancelled,
    WorkflowFinished,
    WorkflowIdConflict,
    WorkflowNotFinished,
    describe_workflow,
    signal_workflow,
    workflow_result,
)
from tests import chain_apps as ca


@pytest.fixture(autouse=True)
def outside_world() -> None:
    ca.reset()


def test_a_chain_runs_under_one_workflow_id_and_returns_the_last_runs_result(
    wf_env: WorkflowEnv,
) -> None:
    wf_env.use(ca.app)
    run = wf_env.start_workflow(ca.renewal, "acct-1", months=3, workflow_id="acct-1")
    assert run.result == {"account": "acct-1", "months": 3}
    assert ca.CHARGES == [("acct-1", 1), ("acct-1", 2), ("acct-1", 3)]
    runs = run.runs
    assert len(runs) == 3
    assert runs[0] is run
    ids = [r.invocation_id for r in runs]
    assert len(set(ids)) == 3
    # The old runs ended SUCCESS with a link to the next; the next is a top-level run.
    for old, new in itertools.pairwise(runs):
        assert old.invocation.get_final_result() == {"continued_as_new": new.invocation_id}
        assert old.invocation.status == InvocationStatus.SUCCESS
        assert new.invocation.workflow.parent_workflow_id is None
    assert [r.invocation.call.arguments.kwargs["month"] for r in runs] == [1, 2, 3]
    info = wf_env.describe("acct-1")
    assert (info.workflow_id, info.run_id, info.runs) == ("acct-1", ids[2], tuple(ids))
    assert info.continued_from == ids[1] and info.finished
    assert workflow_result(ca.app, "acct-1") == {"account": "acct-1", "months": 3}
    # The first run's own id and handle stand for the chain as well.
    assert describe_workflow(ca.app, ids[0]).run_id == ids[2]
    assert run.current.invocation_id == ids[2]
    assert run.status == InvocationStatus.SUCCESS and run.done


def test_each_run_starts_with_an_empty_history(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)
    run = wf_env.start(ca.renewal, "acct-2", months=3)
    run.result
    per_run = [
        [s.name for s in wf_env.history if s.is_step and s.workflow_id == r.workflow_id]
        for r in run.runs
    ]
    # Every run replays only its own month: the same steps, numbered from 1 again.
    assert per_run[0] == [
        "route:renewal#1", "route:charge#1", "record:charge#1", "charge#1", "sleep#1",
        "timer#1", "continue_as_new#1", "renewal#1",
    ]
    assert per_run[1][:2] == ["route:renewal#2", "continued_from#1"]
    assert per_run[1][2:] == [
        "route:charge#1", "record:charge#1", "charge#1", "sleep#1", "timer#1",
        "continue_as_new#1", "renewal#2",
    ]
    assert per_run[2][-1] == "renewal#3" and "continue_as_new#1" not in per_run[2]
    # run.history covers the whole chain; the report names each run's successor.
    assert {s.workflow_id for s in run.history if s.is_step} >= {
        r.workflow_id for r in run.runs
    }
    text = wf_env.render()
    assert "continued as renewal#2" in text and "continued as renewal#3" in text
    # each run names the one before it too, and an exported history draws the same links
    first, second, third = (r.invocation_id[:8] for r in run.runs)
    line = next(ln for ln in text.splitlines() if ln.startswith(f"renewal#2 [{second}]"))
    assert line.endswith(
        f"continued from renewal#1 [{first}]; continued as renewal#3 [{third}]"
    )
    from pynenc_wf_testing.env.report import render_text
    from pynenc_wf_testing.env.report_sources import read_history

    exported = render_text(read_history(wf_env.history_json()))
    assert f"continued from renewal#2 [{second}]" in exported
    assert f"continued as renewal#3 [{third}]" in exported


def test_client_operations_reach_the_current_run(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)
    run = wf_env.start_workflow(ca.renewal, "acct-3", months=5, workflow_id="acct-3")
    wf_env.advance(days=31)  # month 1 done: the chain is in its second run
    second = run.runs[1].invocation_id
    assert len(run.runs) == 2 and run.current.invocation_id == second
    assert wf_env.describe("acct-3").run_id == second
    assert wf_env.query("acct-3").workflow_id == second
    assert wf_env.run_of("acct-3").current.invocation_id == second
    with pytest.raises(WorkflowNotFinished, match="acct-3"):
        workflow_result(ca.app, "acct-3")
    # The same id started again with its first arguments is the chain (its current run).
    again = wf_env.start_workflow(ca.renewal, "acct-3", months=5, workflow_id="acct-3")
    assert again.invocation_id == second
    with pytest.raises(WorkflowIdConflict, match="acct-3"):
        wf_env.start_workflow(ca.renewal, "acct-3", months=6, workflow_id="acct-3")
    wf_env.cancel("acct-3", "closed the account")
    with pytest.raises(WorkflowCancelled, match="closed the account"):
        run.result
    assert ca.CHARGES == [("acct-3", 1), ("acct-3", 2)]
    with pytest.raises(WorkflowFinished):
        wf_env.signal("acct-3", "msg", "late")


def test_signals_sent_before_and_between_runs_are_not_lost(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)
    run = wf_env.start_workflow(ca.inbox, [], workflow_id="box")
    for message in ("a", "b", "c"):  # all before the first run takes one
        wf_env.signal("box", "msg", message)
    wf_env.run_until_idle()
    # One signal per run: three runs consumed a, b, c; the fourth waits.
    assert len(run.runs) == 4
    assert run.status == InvocationStatus.RUNNING
    assert wf_env.signal("box", "msg", "stop") == 1  # slot 1 of the fourth run
    assert run.result == ["a", "b", "c", "stop"]
    assert len(run.runs) == 4


def test_every_crash_point_of_a_chain_is_safe(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)

    def one_charge_per_month(env: WorkflowEnv) -> None:
        assert sorted(set(ca.CHARGES)) == [("acct-4", 1), ("acct-4", 2), ("acct-4", 3)]
        routes = [s for s in env.history if s.is_step and s.name.startswith("route:renewal")]
        assert len({s.invocation_id for s in routes}) == 3, "a continuation started twice"

    report = wf_env.check_crash_safety(
        ca.renewal, "acct-4", months=3, before_each=ca.reset, invariant=one_charge_per_month
    )
    report.assert_ok()
    assert len([s for s in report.golden_steps if s.is_step]) >= 20


def test_every_crash_point_with_signals_between_runs(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)

    def send(env: WorkflowEnv, run: object) -> None:
        for message in ("a", "b", "stop"):
            env.signal(run, "msg", message)  # type: ignore[arg-type]

    report = wf_env.check_crash_safety(ca.inbox, [], after_start=send)
    report.assert_ok()
    assert report.golden_outcome == "returned ['a', 'b', 'stop']"


def test_a_crash_right_after_routing_the_next_run_adopts_it(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)
    wf_env.crash_after("route:renewal#2")
    run = wf_env.start(ca.renewal, "acct-5", months=2)
    assert run.result == {"account": "acct-5", "months": 2}
    assert wf_env.crashes == 1
    assert len(run.runs) == 2
    routed = {s.invocation_id for s in wf_env.history if s.name == "route:renewal#2"}
    assert routed == {run.runs[1].invocation_id}
    assert ca.CHARGES.count(("acct-5", 2)) == 1


def test_each_runs_history_replays(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)
    run = wf_env.start(ca.renewal, "acct-6", months=3)
    run.result
    history = load_history(wf_env.history_json())
    ids = [r.invocation_id for r in run.runs]
    results = []
    for run_id in ids:
        replayed = Replayer(ca.app).replay(history, workflow_id=run_id)
        assert replayed.ok and replayed.completed
        results.append(replayed.result)
    assert results == [
        {"continued_as_new": ids[1]},
        {"continued_as_new": ids[2]},
        {"account": "acct-6", "months": 3},
    ]


def test_the_same_seed_gives_the_same_chain() -> None:
    texts = []
    for _ in range(2):
        with WorkflowEnv(seed=11) as env:
            env.use(ca.app)
            env.start_workflow(ca.renewal, "acct-7", months=3, workflow_id="acct-7").result
            texts.append(env.history_json())
        ca.reset()
    assert texts[0] == texts[1]


# ---------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("lambda", r"argument 'kind' of bad_arguments \(function\) does not survive pynenc's "
                   r"serializer: <function> reads back as None\. Pass plain data"),
        ("int keys", r"argument 'kind' of bad_arguments \(dict\) does not survive pynenc's "
                     r"serializer: \{1: 'a'\} reads back as \{'1': 'a'\}\. Pass plain data"),
        ("too many", r"bad_arguments cannot be called with these arguments \(too many "
                     r"positional arguments\)"),
    ],
)
def test_arguments_that_cannot_make_the_next_run_fail_at_the_call(
    wf_env: WorkflowEnv, kind: str, message: str
) -> None:
    wf_env.use(ca.app)
    run = wf_env.start(ca.bad_arguments, kind)
    with pytest.raises(InvalidWorkflowArgument, match=message):
        run.result
    assert len(run.runs) == 1  # nothing was started


def test_continue_as_new_outside_its_workflow_body_is_an_error(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)
    with pytest.raises(InvalidWorkflowOperation, match="called outside any invocation"):
        ca.renewal.wf.root.continue_as_new("x")
    with pytest.raises(InvalidWorkflowOperation, match="called in task member: it ends the "
                       "running renewal workflow, so only that workflow's own body"):
        wf_env.start(ca.calls_member).result


def test_continue_as_new_in_a_sub_workflow_is_an_error(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)
    with pytest.raises(InvalidWorkflowOperation, match=r"in sub-workflow renewal .*Loop inside "
                       r"the sub-workflow"):
        wf_env.start(ca.parent_of_chain).result
    assert ca.CHARGES == [("sub", 1)]


def test_signal_to_an_old_run_id_reaches_the_current_run(wf_env: WorkflowEnv) -> None:
    wf_env.use(ca.app)
    run = wf_env.start(ca.inbox, [])
    wf_env.signal(run, "msg", "a")
    wf_env.run_until_idle()
    first_id = run.invocation_id
    assert len(run.runs) == 2
    # By the first run's invocation id (the chain's id when none was given).
    signal_workflow(ca.app, first_id, "msg", "stop")
    assert run.result == ["a", "stop"]


def test_the_benchmark_counts_flat_replays_with_continue_as_new() -> None:
    from benchmarks.continue_as_new import renewal_loop

    one_run = renewal_loop(4, chain=False)
    chained = renewal_loop(4, chain=True)
    assert one_run["replayed_months_per_resume"] == [1, 2, 3, 4]
    assert chained["replayed_months_per_resume"] == [1, 1, 1, 1]
    assert (one_run["runs"], chained["runs"]) == (1, 4)
    assert one_run["result"] == chained["result"] == {"account": "acct", "months": 4}
    assert chained["records_per_run_max"] < one_run["records_per_run_max"]


def test_a_run_timeout_bounds_the_whole_chain(wf_env: WorkflowEnv) -> None:
    import datetime as dt

    from pynenc_wf_testing.engine import WorkflowTimeout

    wf_env.use(ca.app)
    run = wf_env.start_workflow(
        ca.renewal, "acct-8", months=5, workflow_id="acct-8", run_timeout=dt.timedelta(days=45)
    )
    with pytest.raises(WorkflowTimeout, match="run timeout"):
        run.result
    assert len(run.runs) == 2  # the second run's sleep was cut at day 45
    assert ca.CHARGES == [("acct-8", 1), ("acct-8", 2)]
    assert wf_env.now - wf_env.world.start == dt.timedelta(days=45)


def test_a_cancel_between_routing_the_next_run_and_linking_it_reaches_the_next_run(
    wf_env: WorkflowEnv,
) -> None:
    import datetime as dt

    wf_env.use(ca.app)

    def cancel_then_crash(step: Any) -> bool:
        # A client cancels at the instant the next run is routed, and the worker dies before
        # the first run links it: the cancellation lands in the first run.
        if step.name != "route:renewal#2":
            return False
        wf_env.cancel("acct-9", "closed")
        return True

    wf_env.crash_after(cancel_then_crash, restart_after=dt.timedelta(hours=1))
    run = wf_env.start_workflow(ca.renewal, "acct-9", months=3, workflow_id="acct-9")
    with pytest.raises(WorkflowCancelled, match="closed"):
        run.result
    # The recovered first run linked the run it had routed (no orphan, no second one), and
    # that run got the cancellation.
    assert len(run.runs) == 2
    routed = {s.invocation_id for s in wf_env.history if s.name.startswith("route:renewal")}
    assert routed == {r.invocation_id for r in run.runs}
    assert wf_env.describe("acct-9").cancelled == "closed"
