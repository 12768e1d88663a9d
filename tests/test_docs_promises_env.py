"""README.md's promises about ``WorkflowEnv`` / ``wf_env``, probed as a user would write them.

Each test names the README passage it checks; bad inputs are tried at every call. The app is
tests/probe_apps.py (a user's module-level app).
"""

from __future__ import annotations

import datetime as dt

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing import (
    DeadlockError,
    InvalidArgument,
    Step,
    UnknownStepError,
    WorkflowEnv,
)
from pynenc_wf_testing.engine import WorkflowFinished
from tests import probe_apps as pa

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def outside_world() -> None:
    pa.reset()
    pa.PRICE["amount"] = 10


# --------------------------------------------------------------------------- "What a test looks like"


def test_quick_start_crash_after_runs_the_step_once(wf_env: WorkflowEnv) -> None:
    wf_env.crash_after("charge_payment")
    run = wf_env.start(pa.fulfill, "o-1")
    assert run.result == "shipped o-1"
    assert wf_env.executions(pa.charge_payment) == 1
    assert wf_env.crashes == 1


def test_quick_start_advance_30_days_fires_the_timer(wf_env: WorkflowEnv) -> None:
    wf_env.start(pa.subscription, "acct-1")
    wf_env.advance(days=30)
    assert wf_env.executions(pa.send_reminder) == 1
    assert wf_env.now == START + dt.timedelta(days=30)


def test_quick_start_any_crash_point(wf_env: WorkflowEnv) -> None:
    wf_env.check_crash_safety(pa.fulfill, "o-2", before_each=pa.reset).assert_ok()


def test_context_manager_without_pytest() -> None:
    with WorkflowEnv(seed=7) as env:
        run = env.start(pa.fulfill, "o-1")
        assert run.result == "shipped o-1"
        assert env.now == START and env.seed == 7 and env.steps[-1] == "fulfill#1"


def test_a_second_open_environment_names_the_first() -> None:
    with WorkflowEnv(seed=1), pytest.raises(InvalidArgument, match=r"test_docs_promises_env\.py"):
        WorkflowEnv(seed=2).__enter__()


# --------------------------------------------------------------------------- the member table


def test_workflow_run_handle_members(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(pa.fulfill, "o-1")
    assert run.result == "shipped o-1"
    assert run.done and run.status == InvocationStatus.SUCCESS
    assert run.workflow_id == run.invocation_id and run.name == "fulfill#1"
    assert next(s.name for s in run.history if s.is_step) == "route:fulfill#1"
    assert str(run.invocation.invocation_id) == run.invocation_id


def test_executions_accepts_every_documented_spelling(wf_env: WorkflowEnv) -> None:
    wf_env.start(pa.fulfill, "o-1").result
    spellings = [
        pa.charge_payment, "charge_payment", "tests.probe_apps.charge_payment",
        "charge_payment#1",
    ]
    assert [wf_env.executions(s) for s in spellings] == [1, 1, 1, 1]
    assert wf_env.executions("charge_payment#2") == 0


@pytest.mark.parametrize("bad", ["charge_paymnt", 3, None])
def test_executions_refuses_what_no_task_is(wf_env: WorkflowEnv, bad: object) -> None:
    wf_env.use(pa.app)
    with pytest.raises(InvalidArgument, match="executions"):
        wf_env.executions(bad)  # type: ignore[arg-type]


def test_calls_records_arguments_in_start_order(wf_env: WorkflowEnv) -> None:
    wf_env.start(pa.fulfill, "o-1").result
    wf_env.start(pa.fulfill, "o-2").result
    calls = wf_env.calls(pa.ship)
    assert [c.kwargs["order"] for c in calls] == ["o-1", "o-2"]
    assert [(c.name, c.executions, c.mocked) for c in calls] == [
        ("ship#1", 1, False), ("ship#1", 1, False),
    ]


def test_step_is_a_readable_immutable_named_tuple(wf_env: WorkflowEnv) -> None:
    wf_env.start(pa.fulfill, "o-1").result
    first = wf_env.history[0]
    assert isinstance(first, Step) and first.is_step
    assert (first.number, first.kind, first.name) == (1, "route", "route:fulfill#1")
    assert str(first) == "#1 route:fulfill#1"
    assert first.to_dict()["task"] == "tests.probe_apps.fulfill"
    with pytest.raises(AttributeError):
        first.name = "x"  # type: ignore[misc]


def test_history_json_is_the_same_bytes_for_the_same_seed() -> None:
    docs = []
    for _ in range(2):
        pa.reset()
        with WorkflowEnv(seed=3) as env:
            env.start(pa.fulfill, "o-1").result
            docs.append(env.history_json())
    assert docs[0] == docs[1]
    assert '"format": "pynenc-wf-history"' in docs[0]


def test_run_of_by_invocation_id_and_by_workflow_id(wf_env: WorkflowEnv) -> None:
    run = wf_env.start_workflow(pa.fulfill, "o-1", workflow_id="order-1")
    assert wf_env.run_of(run.invocation_id).result == "shipped o-1"
    assert wf_env.run_of("order-1").invocation_id == run.invocation_id
    with pytest.raises(InvalidArgument, match="neither an invocation id nor a workflow id"):
        wf_env.run_of("nope")
    with pytest.raises(InvalidArgument, match="got int"):
        wf_env.run_of(3)  # type: ignore[arg-type]


def test_blocked_names_the_signal_and_result_raises_deadlock(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(pa.approval, "doc-1")
    wf_env.run_until_idle()
    assert list(wf_env.blocked().values()) == ["waits for signal 'approved' (no timeout)"]
    with pytest.raises(DeadlockError, match="waits for signal 'approved'"):
        run.result


def test_blocked_names_a_timer_deadline_once(wf_env: WorkflowEnv) -> None:
    """The engine's timer already names its deadline: the report must not say it twice."""
    wf_env.start(pa.subscription, "acct-1")
    wf_env.run_until_idle()
    (what,) = wf_env.blocked().values()
    assert what == "waits for timer #1 (until 2030-01-28T00:00:00+00:00)"


def test_signal_query_describe_on_the_simulator(wf_env: WorkflowEnv) -> None:
    run = wf_env.start_workflow(pa.approval, "doc-1", workflow_id="doc-1")
    wf_env.run_until_idle()
    assert wf_env.query("doc-1").state == {"phase": "waiting"}
    assert wf_env.signal("doc-1", "approved", {"by": "ann"}) == 1
    assert run.result == "doc-1 approved by ann"
    info = wf_env.describe(run.invocation_id)
    assert (info.workflow_id, info.finished, info.status) == ("doc-1", True, "success")
    with pytest.raises(WorkflowFinished, match="already finished"):
        wf_env.signal(run, "approved", {"by": "bob"})


def test_halted_workflow_resumes(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(pa.gated, "d")
    with pytest.raises(DeadlockError, match=r"halted \(needs approval\).*wf_env.resume"):
        run.result
    assert wf_env.describe(run).halted == "needs approval"
    wf_env.resume(run)
    assert run.result == "d released"
    with pytest.raises(WorkflowFinished, match="nothing to resume"):
        wf_env.resume(run)


def test_cancel_reason_must_be_a_string(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(pa.approval, "doc-1")
    wf_env.run_until_idle()
    with pytest.raises(InvalidArgument, match=r"cancel\(reason=5\)"):
        wf_env.cancel(run, 5)  # type: ignore[arg-type]
    wf_env.cancel(run, "withdrawn")
    assert wf_env.describe(run).cancelled == "withdrawn"


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": -1}, "time only moves forward"),
        ({"days": "3"}, "expected a number of days"),
        ({"days": True}, "expected a number of days"),
        ({"seconds": float("nan")}, "finite"),
        ({"seconds": float("inf")}, "finite"),
        ({"weeks": 10**9}, "last representable instant"),
    ],
)
def test_advance_refuses_bad_durations(
    wf_env: WorkflowEnv, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        wf_env.advance(**kwargs)  # type: ignore[arg-type]
    assert wf_env.now == START


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"seed": "1"}, "seed must be a non-negative int"),
        ({"start": dt.datetime(2030, 1, 1)}, "timezone-aware"),
        ({"backend": "mongo"}, "unknown backend 'mongo'"),
        ({"max_steps": 0}, "max_steps must be a positive int"),
        ({"slice_timeout": -1}, "slice_timeout must be a positive"),
        ({"log_level": "loud"}, "log_level must be one of"),
        ({"evict": "sometimes"}, "evict must be one of"),
        ({"workers": 0}, "workers must be a positive int"),
    ],
)
def test_constructor_refuses_bad_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        WorkflowEnv(**kwargs)  # type: ignore[arg-type]


def test_start_refuses_non_tasks_and_wrong_arguments(wf_env: WorkflowEnv) -> None:
    with pytest.raises(InvalidArgument, match="expects a pynenc task"):
        wf_env.start(lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="too many positional arguments"):
        wf_env.start(pa.fulfill, "a", "b")
    with pytest.raises(InvalidArgument, match="missing a required argument: 'order'"):
        wf_env.start(pa.fulfill)


def test_a_closed_environment_refuses_everything() -> None:
    with WorkflowEnv(seed=1) as env:
        run = env.start(pa.fulfill, "o-1")
        run.result
    for call in (
        lambda: env.start(pa.fulfill, "o-2"),
        lambda: env.crash_after("ship"),
        lambda: env.fail(pa.ship),
        lambda: env.advance(days=1),
        lambda: env.history,
        lambda: run.status,
        lambda: run.result,
        lambda: env.__enter__(),
    ):
        with pytest.raises(InvalidArgument, match="closed"):
            call()
    env.close()  # closing twice is harmless


def test_fault_arguments_are_checked_at_the_call(wf_env: WorkflowEnv) -> None:
    wf_env.use(pa.app)
    with pytest.raises(InvalidArgument, match=r"n >= 1"):
        wf_env.crash_after("x#0")
    with pytest.raises(InvalidArgument, match="step numbers start at 1"):
        wf_env.crash_before(0)
    with pytest.raises(InvalidArgument, match="as a step"):
        wf_env.crash_after(3.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="restart_after must be a non-negative"):
        wf_env.crash_after("ship", restart_after=dt.timedelta(minutes=-1))
    with pytest.raises(InvalidArgument, match=r"fail\(times=0\)"):
        wf_env.fail(pa.ship, times=0)
    with pytest.raises(InvalidArgument, match="exception class or instance"):
        wf_env.fail(pa.ship, exc=int)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="expects a pynenc task"):
        wf_env.crash_during("ship")  # type: ignore[arg-type]


def test_a_crash_point_that_never_fires_lists_the_steps_seen() -> None:
    with WorkflowEnv(seed=1) as env:
        env.crash_after("nope")
        run = env.start(pa.fulfill, "o-1")
        # the run ends with the point unfired: driving it to the end says so
        with pytest.raises(UnknownStepError, match=r"crash_after\('nope#1'\).*Steps seen: .*ship#1"):
            run.result


def test_crash_before_runs_the_side_effect_again(wf_env: WorkflowEnv) -> None:
    wf_env.crash_before("charge_payment")
    assert wf_env.start(pa.fulfill, "o-1").result == "shipped o-1"
    assert wf_env.executions(pa.charge_payment) == 2
    assert pa.CALLS.count(("charge_payment", "o-1")) == 2


def test_restart_after_keeps_the_worker_down_in_virtual_time(wf_env: WorkflowEnv) -> None:
    wf_env.crash_after("charge_payment", restart_after=dt.timedelta(minutes=30))
    assert wf_env.start(pa.fulfill, "o-1").result == "shipped o-1"
    assert wf_env.now >= START + dt.timedelta(minutes=30)


def test_the_errors_section_hierarchy() -> None:
    """README "Errors": every name in pynenc_wf_testing.errors, with the bases it promises."""
    from pynenc_wf_testing import engine, errors

    assert issubclass(errors.UnusedMockError, errors.UnknownStepError)
    assert issubclass(errors.ArgumentSerializationError, errors.UnserializableValueError)
    assert issubclass(errors.ArgumentSerializationError, TypeError)
    assert issubclass(errors.WorkflowDataSerializationError, errors.UnserializableValueError)
    assert issubclass(errors.CrashSafetyError, AssertionError)
    assert issubclass(errors.InterleavingError, AssertionError)
    assert issubclass(errors.IncompatibleVersionError, errors.AppConfigurationError)
    for name in ("DeadlockError", "StepLimitExceeded", "BusyWaitError", "SliceTimeoutError",
                 "InvalidArgument", "NondeterminismError", "HistoryFormatError"):
        assert issubclass(getattr(errors, name), errors.WorkflowTestingError), name
    assert issubclass(engine.InvalidWorkflowArgument, TypeError)
    assert issubclass(engine.InvalidWorkflowArgument, engine.WorkflowEngineError)
