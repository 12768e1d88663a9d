"""docs/engine.md "Workflow ids and the client" and README's engine section, probed as a user
would: the client functions by workflow id, invocation id, run and invocation, the id-reuse
table, and the errors each bad call must raise at the call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
    NotAWorkflow,
    UnknownWorkflow,
    WorkflowAlreadyStarted,
    WorkflowCancelled,
    WorkflowEngineError,
    WorkflowFinished,
    WorkflowIdConflict,
    WorkflowNotFinished,
    cancel_workflow,
    describe_workflow,
    query_workflow,
    resume_workflow,
    signal_workflow,
    start_workflow,
    workflow_result,
)
from tests import probe_apps as pa

app = pa.app


@pytest.fixture(autouse=True)
def outside_world() -> None:
    pa.reset()


def test_the_workflow_id_is_the_only_handle_needed(wf_env: WorkflowEnv) -> None:
    wf_env.use(app)
    start_workflow(pa.subscription, "acct-1", workflow_id="acct-1")
    assert signal_workflow(app, "acct-1", "payment", {"ref": "pay_1"}) == 1
    info = describe_workflow(app, "acct-1")
    assert (info.workflow_id, info.finished, info.status) == ("acct-1", False, "registered")
    with pytest.raises(WorkflowNotFinished, match="has not finished"):
        workflow_result(app, "acct-1")
    wf_env.advance(days=27)
    info = describe_workflow(app, "acct-1")
    assert info.finished
    run = wf_env.run_of("acct-1")
    expected = "paid {'ref': 'pay_1'}"
    # every spelling of the workflow reaches the same run
    for target in ("acct-1", run.invocation_id, run, run.invocation):
        assert workflow_result(app, target) == expected
    with pytest.raises(WorkflowFinished, match="a signal reaches only a running workflow"):
        signal_workflow(app, "acct-1", "payment", 1)


def test_id_reuse_table_run_still_going(wf_env: WorkflowEnv) -> None:
    wf_env.use(app)
    first = start_workflow(pa.subscription, "acct-1", workflow_id="acct-1")
    again = start_workflow(pa.subscription, "acct-1", workflow_id="acct-1")
    assert again.invocation_id == first.invocation_id
    same = start_workflow(
        pa.subscription, "acct-1", workflow_id="acct-1", id_reuse="allow_after_completion"
    )
    assert same.invocation_id == first.invocation_id
    with pytest.raises(WorkflowAlreadyStarted, match="id_reuse='reject'"):
        start_workflow(pa.subscription, "acct-1", workflow_id="acct-1", id_reuse="reject")
    for policy in ("reuse", "reject", "allow_after_completion"):
        with pytest.raises(WorkflowIdConflict, match="other arguments"):
            start_workflow(pa.subscription, "acct-9", workflow_id="acct-1", id_reuse=policy)  # type: ignore[arg-type]
    assert issubclass(WorkflowIdConflict, WorkflowAlreadyStarted)
    assert issubclass(WorkflowIdConflict, ValueError)


def test_id_reuse_table_run_finished(wf_env: WorkflowEnv) -> None:
    wf_env.use(app)
    first = start_workflow(pa.fulfill, "o-1", workflow_id="order-1")
    wf_env.run_of("order-1").result
    assert start_workflow(pa.fulfill, "o-1", workflow_id="order-1").invocation_id == (
        first.invocation_id
    )
    with pytest.raises(WorkflowAlreadyStarted):
        start_workflow(pa.fulfill, "o-1", workflow_id="order-1", id_reuse="reject")
    with pytest.raises(WorkflowIdConflict):
        start_workflow(pa.fulfill, "o-2", workflow_id="order-1")
    new = start_workflow(pa.fulfill, "o-1", workflow_id="order-1", id_reuse="allow_after_completion")
    assert new.invocation_id != first.invocation_id
    assert describe_workflow(app, "order-1").run_id == new.invocation_id


def test_cancel_and_resume_by_workflow_id(wf_env: WorkflowEnv) -> None:
    wf_env.use(app)
    start_workflow(pa.approval, "doc-1", workflow_id="doc-1")
    wf_env.run_until_idle()
    assert query_workflow(app, "doc-1").state == {"phase": "waiting"}
    cancel_workflow(app, "doc-1", "withdrawn")
    with pytest.raises(WorkflowCancelled, match="withdrawn"):
        wf_env.run_of("doc-1").result
    assert describe_workflow(app, "doc-1").cancelled == "withdrawn"
    with pytest.raises(WorkflowCancelled):
        workflow_result(app, "doc-1")
    with pytest.raises(WorkflowFinished, match="nothing left to cancel"):
        cancel_workflow(app, "doc-1")
    start_workflow(pa.gated, "d", workflow_id="gate-1")
    wf_env.run_until_idle()
    assert describe_workflow(app, "gate-1").halted == "needs approval"
    resume_workflow(app, "gate-1")
    assert wf_env.run_of("gate-1").result == "d released"


def test_client_errors_name_the_problem(wf_env: WorkflowEnv) -> None:
    wf_env.use(app)
    with pytest.raises(UnknownWorkflow, match="no workflow with id or invocation id 'nope'"):
        describe_workflow(app, "nope")
    assert issubclass(UnknownWorkflow, LookupError)
    with pytest.raises(NotAWorkflow, match="got NoneType"):
        describe_workflow(app, None)
    plain = pa.plain(4)
    assert plain.result == 8
    with pytest.raises(NotAWorkflow, match="call of task plain"):
        signal_workflow(app, plain.invocation_id, "x", 1)
    with pytest.raises(NotAWorkflow, match=r"@app\.workflow"):
        start_workflow(pa.plain, 1, workflow_id="p")
    start_workflow(pa.approval, "doc-1", workflow_id="doc-1")
    with pytest.raises(InvalidWorkflowArgument, match="signal name must be a non-empty string"):
        signal_workflow(app, "doc-1", "", 1)
    with pytest.raises(InvalidWorkflowArgument, match="id_reuse must be"):
        start_workflow(pa.fulfill, "o", workflow_id="o", id_reuse="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize("workflow_id", [5, "", b"acct"])
def test_start_workflow_refuses_a_workflow_id_that_is_not_a_string(
    wf_env: WorkflowEnv, workflow_id: Any
) -> None:
    """An int or empty id used to be accepted, unlike the simulator's start_workflow."""
    wf_env.use(app)
    with pytest.raises(InvalidWorkflowArgument, match="expected a non-empty string"):
        start_workflow(pa.fulfill, "o-1", workflow_id=workflow_id)
    with pytest.raises(WorkflowEngineError):
        start_workflow(pa.fulfill, "o-1", workflow_id=workflow_id)
    assert wf_env.steps == []  # nothing was started


@pytest.mark.parametrize("run_timeout", [dt.timedelta(seconds=-1), dt.timedelta(0), 5, "1h"])
def test_start_workflow_refuses_a_bad_run_timeout(wf_env: WorkflowEnv, run_timeout: Any) -> None:
    """A number used to fail deep in the engine with a bare TypeError, and a negative
    timedelta timed the run out at its first step."""
    wf_env.use(app)
    with pytest.raises(InvalidWorkflowArgument, match=r"expected a positive datetime\.timedelta"):
        start_workflow(pa.fulfill, "o-1", workflow_id="o-1", run_timeout=run_timeout)
    assert wf_env.steps == []


def test_a_positive_run_timeout_still_times_the_run_out(wf_env: WorkflowEnv) -> None:
    from pynenc_wf_testing.engine import WorkflowTimeout

    wf_env.use(app)
    start_workflow(pa.approval, "doc-1", workflow_id="doc-1", run_timeout=dt.timedelta(hours=1))
    with pytest.raises(WorkflowTimeout):
        wf_env.run_of("doc-1").result


@pytest.mark.parametrize(
    "call",
    [
        lambda: signal_workflow("acct-1", "payment", 1),  # type: ignore[call-arg]
        lambda: describe_workflow("acct-1", "x"),  # type: ignore[arg-type]
        lambda: query_workflow(None, "x"),  # type: ignore[arg-type]
        lambda: workflow_result(pa.fulfill, "x"),  # type: ignore[arg-type]
        lambda: cancel_workflow("acct-1", "x"),  # type: ignore[arg-type]
        lambda: resume_workflow(3, "x"),  # type: ignore[arg-type]
    ],
)
def test_client_functions_refuse_a_missing_app(wf_env: WorkflowEnv, call: Any) -> None:
    """Forgetting the app used to be ``AttributeError: 'str' object has no attribute
    'config_values'`` from deep inside the engine."""
    wf_env.use(app)
    with pytest.raises(InvalidWorkflowArgument, match="takes the pynenc app first"):
        call()


# --------------------------------------------------------------------------- re-run, invalidation


def test_rerun_from_the_failed_step_reuses_the_charges(wf_env: WorkflowEnv) -> None:
    from pynenc_wf_testing.engine import UnknownStep, invalidate_result, workflow_steps

    pa.BROKEN.append("o-1")
    run = wf_env.start_workflow(pa.fulfill, "o-1", workflow_id="order-1")
    with pytest.raises(pa.CarrierDown):
        run.result
    assert workflow_steps(app, "order-1") == ["reserve#1", "charge_payment#1", "ship#1"]
    pa.BROKEN.clear()  # the carrier is back
    with pytest.raises(UnknownStep, match=r"no step 'refund#1'\. Its steps are: reserve#1"):
        wf_env.rerun(run, from_step="refund#1")
    with pytest.raises(UnknownStep, match="after the end of workflow 'order-1' \\(run "):
        wf_env.rerun(run, from_step="ship#2")
    with pytest.raises(InvalidWorkflowArgument, match="a step is a step name"):
        wf_env.rerun(run, from_step=pa.ship)  # type: ignore[arg-type]
    again = wf_env.rerun(run, from_step="ship#1")
    assert again.result == "shipped o-1"
    assert (wf_env.executions(pa.charge_payment), wf_env.executions(pa.ship)) == (1, 2)
    info = describe_workflow(app, "order-1")
    assert (info.run_id, info.rerun_of, info.rerun_from_step) == (
        again.invocation_id, run.invocation_id, "ship#1",
    )
    assert invalidate_result(app, "order-1", pa.charge_payment) == ["charge_payment#1"]
    with pytest.raises(UnknownStep, match="never called plain"):
        invalidate_result(app, "order-1", pa.plain)
    assert wf_env.rerun(again).result == "shipped o-1"
    assert wf_env.executions(pa.charge_payment) == 2  # the invalidated call ran again
    assert wf_env.executions(pa.reserve) == 1  # the others were reused


def test_rerun_and_invalidate_refuse_a_running_workflow(wf_env: WorkflowEnv) -> None:
    from pynenc_wf_testing.engine import rerun_workflow

    run = wf_env.start_workflow(pa.approval, "d", workflow_id="doc")
    wf_env.run_until_idle()
    with pytest.raises(WorkflowNotFinished, match="still running"):
        wf_env.rerun(run)
    with pytest.raises(WorkflowNotFinished, match="still running"):
        wf_env.invalidate(run, "save_state#1")
    with pytest.raises(InvalidWorkflowArgument, match=r"e\.g\. rerun_workflow\(app, "):
        rerun_workflow("doc", "doc")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- production-built apps


@pytest.mark.parametrize(
    "first_use",
    [
        lambda: start_workflow(pa.prod_flow, "o-1", workflow_id="order-1"),
        lambda: describe_workflow(pa.prod_app, "order-1"),
        lambda: query_workflow(pa.prod_app, "order-1"),
        lambda: signal_workflow(pa.prod_app, "order-1", "go"),
    ],
)
def test_a_client_call_first_never_opens_the_production_store(first_use: Any) -> None:
    """The engine's client read ``app.state_backend`` before the environment had taken the
    app (a task call does that), so a ``start_workflow`` or ``describe_workflow`` first
    created and read the app's real SQLite file."""
    import os

    assert not os.path.exists(pa.PROD_DB)
    with WorkflowEnv(seed=1) as env:
        with contextlib.suppress(UnknownWorkflow):  # describe/query/signal: nothing started
            first_use()
        assert not os.path.exists(pa.PROD_DB)
        env.start_workflow(pa.prod_flow, "o-1", workflow_id="order-1")
        assert env.run_of("order-1").result == "stepped o-1"
        assert workflow_result(pa.prod_app, "order-1") == "stepped o-1"
    assert not os.path.exists(pa.PROD_DB)


# --------------------------------------------------------------------------- README engine examples


def test_readme_saga_compensates_the_others_when_one_fails(wf_env: WorkflowEnv) -> None:
    pa.BROKEN.append("o-1")
    with pytest.raises(pa.CarrierDown) as caught:
        wf_env.start(pa.saga_order, "o-1").result
    assert caught.value.__notes__ == [
        "compensation refund('o-1') failed: RuntimeError: refund of o-1 bounced"
    ]
    assert pa.CALLS[-2:] == [("refund", "o-1"), ("release", "o-1")]  # newest first, both ran


def test_readme_wait_any_first_by_final_status_ties_to_the_lowest_index(
    wf_env: WorkflowEnv,
) -> None:
    assert tuple(wf_env.start(pa.race).result) == (1, "fast")  # both done while it slept
    assert tuple(wf_env.start(pa.tie).result) == (0, "b")


def test_readme_continue_as_new_is_one_handle_for_the_chain(wf_env: WorkflowEnv) -> None:
    run = wf_env.start_workflow(pa.renewal, "acct-1", workflow_id="acct-1")
    assert run.result == "acct-1 renewed 3 times"
    info = describe_workflow(app, "acct-1")
    assert len(info.runs) == 3 and [r.invocation_id for r in run.runs] == list(info.runs)
    assert run.current.invocation_id == info.run_id
    assert workflow_result(app, "acct-1") == "acct-1 renewed 3 times"


def test_parent_close_policy_values() -> None:
    from pynenc_wf_testing.engine import ParentClosePolicy

    assert [p.value for p in ParentClosePolicy] == ["cancel", "abandon"]


def test_the_names_table_of_docs_engine_md() -> None:
    """Every public name docs/engine.md "Names" lists, with the bases it promises."""
    from pynenc.workflow.workflow_exceptions import WorkflowPauseError

    from pynenc_wf_testing import engine as e

    for pause in (e.WorkflowHaltException, e.ContinuedAsNew, e.WorkflowSuspended):
        assert issubclass(pause, WorkflowPauseError)
    assert issubclass(e.WaitTimeout, TimeoutError) and issubclass(e.SignalTimeout, e.WaitTimeout)
    assert issubclass(e.InvalidWorkflowOperation, RuntimeError)
    assert issubclass(e.UnknownStep, e.InvalidWorkflowArgument)
    assert issubclass(e.UnknownStep, LookupError)
    assert issubclass(e.AmbiguousWorkflowId, LookupError)
    assert issubclass(e.NotAWorkflow, TypeError)
    assert issubclass(e.MissingEncryptionKey, LookupError)
    assert hasattr(e.atomic, "atomic_store") and hasattr(e.crypto, "EncryptedSerializer")
    for name in ("SuspendingHooks", "AdoptingHooks", "suspension_mode", "register_hooks"):
        assert hasattr(e.hooks, name), name


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: e_retry().fixed(5), "initial_delay must be a datetime.timedelta"),
        (lambda: e_retry().fixed(dt.timedelta(seconds=-1)), "delays must not be negative"),
        (lambda: e_retry().fixed(dt.timedelta(seconds=1), max_attempts=0), "max_attempts must be"),
        (lambda: e_retry().exponential(multiplier=0.5), "multiplier must be >= 1"),
        (lambda: e_retry().exponential(multiplier=float("nan")), "multiplier must be a number"),
        (lambda: e_retry().exponential(jitter=2), "jitter must be between 0 and 1"),
        (lambda: e_retry().exponential(retry_on=(int,)), "retry_on must be exception classes"),
        (lambda: e_retry().fixed(dt.timedelta(1), non_retryable=("ValueError",)),
         "non_retryable must be exception classes"),
    ],
)
def test_retry_policy_refuses_what_it_cannot_use(make: Any, message: str) -> None:
    """A number of seconds was a bare ``TypeError`` from a comparison; ``retry_on=(int,)``
    and a NaN multiplier were accepted (the first silently retried nothing)."""
    with pytest.raises(InvalidWorkflowArgument, match=message):
        make()


def e_retry() -> Any:
    from pynenc_wf_testing.engine import RetryPolicy

    return RetryPolicy


@pytest.mark.parametrize("op", sorted(pa.BAD_OPS))
def test_wf_root_operations_refuse_bad_arguments(wf_env: WorkflowEnv, op: str) -> None:
    """Each used to be accepted silently (a non-policy ``retry=``, an empty change id), to
    deadlock (a signal name that is not a string), to time out at once (a negative signal
    timeout) or to fail with a bare ``AttributeError``/``TypeError`` from inside the engine."""
    with pytest.raises(InvalidWorkflowArgument):
        wf_env.start(pa.misuses, op).result
