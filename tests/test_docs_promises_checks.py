"""README "Crash checks" / "Interleaving checks" / "Mocks" and docs/faults.md, probed as a user:
the reports' members, the failure text, the vocabulary (``FaultSchedule`` and friends) and
the bad inputs each check refuses at the call.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pynenc_wf_testing import (
    Advance,
    Cancel,
    CrashSafetyError,
    FaultSchedule,
    InterleavingError,
    InvalidArgument,
    Resume,
    ScheduledCrash,
    ScheduledFailure,
    Signal,
    UnknownStepError,
    UnusedMockError,
    WorkflowEnv,
    non_idempotent,
)
from tests import probe_apps as pa


@pytest.fixture(autouse=True)
def outside_world() -> None:
    pa.reset()


# --------------------------------------------------------------------------- check_crash_safety


def test_a_correct_workflow_passes_every_crash_point(wf_env: WorkflowEnv) -> None:
    report = wf_env.check_crash_safety(
        pa.fulfill, "o-2",
        compare=lambda golden, got: golden == got,
        invariant=lambda env: pa.CALLS.count(("ship", "o-2")) >= 1,
        before_each=pa.reset,
    )
    report.assert_ok()
    assert report.golden_outcome == "returned 'shipped o-2'"
    # a run before and one after every golden step (no fine-grained windows), at least
    assert len(report.explored) >= 2 * 3


def test_a_non_idempotent_step_run_twice_is_reported_with_a_runnable_snippet(
    wf_env: WorkflowEnv,
) -> None:
    wf_env.mark_non_idempotent(pa.charge_payment)
    report = wf_env.check_crash_safety(pa.fulfill, "o-1", before_each=pa.reset)
    with pytest.raises(CrashSafetyError) as caught:
        report.assert_ok()
    text = str(caught.value)
    assert text.startswith("crash safety violated: ")
    assert "wf_env.crash_before('charge_payment#1')" in text
    assert "run = wf_env.start(fulfill, 'o-1')" in text
    assert "[duplicate] non-idempotent charge_payment ran 2 times for one logical call" in text
    assert f"--wf-seed={wf_env.seed}" in text


def test_the_golden_run_must_behave(wf_env: WorkflowEnv) -> None:
    with pytest.raises(CrashSafetyError, match=r"the golden run of approval, 'd' .* DeadlockError"):
        wf_env.check_crash_safety(pa.approval, "d")
    with pytest.raises(CrashSafetyError, match="invariant returned False"):
        wf_env.check_crash_safety(pa.fulfill, "o", invariant=lambda env: False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_crashes": 0}, "max_crashes must be an int >= 1"),
        ({"max_crashes": 2, "max_examples": 0}, "max_examples must be an int >= 1"),
        ({"compare": 5}, "compare must be a function"),
    ],
)
def test_check_crash_safety_refuses_bad_options(
    wf_env: WorkflowEnv, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        wf_env.check_crash_safety(pa.fulfill, "o", **kwargs)  # type: ignore[arg-type]


def test_check_crash_safety_refuses_non_tasks_and_bad_arguments(wf_env: WorkflowEnv) -> None:
    with pytest.raises(InvalidArgument, match="expects a pynenc task"):
        wf_env.check_crash_safety(lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="missing a required argument: 'order'"):
        wf_env.check_crash_safety(pa.fulfill)


def test_multi_crash_schedules_with_hypothesis(wf_env: WorkflowEnv) -> None:
    report = wf_env.check_crash_safety(
        pa.fulfill, "o", max_crashes=2, max_examples=5, before_each=pa.reset
    )
    report.assert_ok()
    assert any(len(o.schedule.crashes) == 2 for o in report.explored)


# --------------------------------------------------------------------------- check_interleavings


def test_interleavings_of_a_signal_and_a_cancel(wf_env: WorkflowEnv) -> None:
    report = wf_env.check_interleavings(
        pa.review, "d",
        events=[Signal("approved", {"by": "ann"}), Cancel("withdrawn")],
        compare=lambda result: result in ("d archived", "d approved by ann"),
        max_examples=3,
    )
    report.assert_ok()
    assert report.ok and report.violations == [] and report.failing == []
    assert report.boundaries[0].name == "route:review#1"
    assert "review" in report.summary()


def test_a_failing_interleaving_prints_the_smallest_schedule(wf_env: WorkflowEnv) -> None:
    report = wf_env.check_interleavings(
        pa.review, "d", events=[Signal("approved", {"by": "ann"})],
        compare=lambda result: result == "d archived" or result.endswith("by bob"),
        max_examples=3,
    )
    assert not report.ok
    with pytest.raises(InterleavingError) as caught:
        report.assert_ok()
    text = str(caught.value)
    assert "Smallest failing schedule:" in text
    assert "wf_env.deliver_after('route:review#1', Signal('approved', {'by': 'ann'}))" in text
    assert "Golden run (no events): returned 'd archived'" in text
    assert all(line in text for line in report.reproduction())  # "the lines above"


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "events is empty"),
        ("approved", "events must be a list of events"),
        ([Cancel], "got the class Cancel, not an event"),
        ([Signal("nope")], "never waited for a signal named 'nope'"),
        ([Resume()], "the workflow never halted"),
    ],
)
def test_check_interleavings_refuses_events_that_cannot_work(
    wf_env: WorkflowEnv, events: object, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        wf_env.check_interleavings(pa.review, "d", events=events)  # type: ignore[arg-type]


def test_check_interleavings_needs_a_workflow(wf_env: WorkflowEnv) -> None:
    with pytest.raises(InvalidArgument, match="plain is a plain task"):
        wf_env.check_interleavings(pa.plain, 1, events=[Cancel()])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Advance(dt.timedelta(hours=-1)), "needs a positive datetime.timedelta"),
        (lambda: Advance(5), "needs a positive datetime.timedelta"),
        (lambda: Signal(5), "must be a non-empty string"),
        (lambda: Cancel(5), "must be a string"),
    ],
)
def test_events_check_their_arguments(make: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        make()  # type: ignore[operator]


def test_deliver_after_delivers_before_the_invocation_goes_on(wf_env: WorkflowEnv) -> None:
    wf_env.deliver_after("route:review#1", Signal("approved", {"by": "x"}))
    assert wf_env.start(pa.review, "d").result == "d approved by x"
    with pytest.raises(InvalidArgument, match="is not an event"):
        wf_env.deliver_after("route:review#1", "approved")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- vocabulary, eviction


def test_fault_schedule_round_trips_and_prints_as_wf_env_calls() -> None:
    schedule = FaultSchedule(
        crashes=(ScheduledCrash(4, "after"),),
        failures=(ScheduledFailure("tests.probe_apps.ship"),),
    )
    assert FaultSchedule.from_json(schedule.to_json()) == schedule
    assert schedule.snippet_lines() == [
        "wf_env.fail(ship, times=1, exc=RuntimeError)", "wf_env.crash_after(4)",
    ]
    with pytest.raises(InvalidArgument, match="phase must be 'before' or 'after'"):
        ScheduledCrash(4, "during")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="step must be an int >= 1"):
        ScheduledCrash(0, "after")
    with pytest.raises(InvalidArgument, match=r"takes the dict to_json\(\) returns, got str .*"
                       r"Parse JSON text first: FaultSchedule\.from_json\(json\.loads\(text\)\)"):
        FaultSchedule.from_json('{"crashes": 5}')


def test_evict_at_wait_and_its_bad_inputs() -> None:
    with WorkflowEnv(seed=1) as env:
        env.evict_at_wait(1)
        assert env.start(pa.subscription, "a").result == "lapsed"
    with WorkflowEnv(seed=1) as env:
        with pytest.raises(InvalidArgument, match="an int >= 1"):
            env.evict_at_wait(0)
        env.evict_at_wait(5)
        run = env.start(pa.fulfill, "o")
        with pytest.raises(UnknownStepError, match="that eviction never happened"):
            run.result  # at the end of the run, as an unreached crash point
        with pytest.raises(UnknownStepError, match="that eviction never happened"):
            env.check_faults_fired()


# --------------------------------------------------------------------------- mocks


def test_mocks_replace_executions_and_are_recorded(wf_env: WorkflowEnv) -> None:
    wf_env.use(pa.app)
    wf_env.mock(pa.charge_payment, returns="pay-1")
    wf_env.mock(pa.ship, side_effect=lambda order: f"fake {order}", delay=dt.timedelta(hours=2))
    assert wf_env.start(pa.fulfill, "o").result == "fake o"
    assert pa.CALLS == [("reserve", "o")]  # the mocked bodies never ran
    assert [c.mocked for c in wf_env.calls(pa.charge_payment)] == [True]
    assert wf_env.now == dt.datetime(2030, 1, 1, 2, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"returns": 1, "raises": ValueError}, "returns and raises conflict"),
        ({"returns": lambda: 1}, "does not survive pynenc's serializer"),
        ({"side_effect": lambda x: 1}, "cannot take them: missing a required argument: 'x'"),
        ({"per_attempt": {"x": 1}}, "per_attempt key 'x'"),
        ({"per_attempt": {"0-2": 1, "1": 2}}, "attempts overlap"),
        ({"returns": 1, "delay": 5}, "expected a non-negative datetime.timedelta"),
    ],
)
def test_mock_refuses_bad_arguments(
    wf_env: WorkflowEnv, kwargs: dict[str, object], message: str
) -> None:
    wf_env.use(pa.app)
    with pytest.raises(InvalidArgument, match=message):
        wf_env.mock(pa.ship, **kwargs)  # type: ignore[arg-type]


def test_a_mock_never_called_is_an_error() -> None:
    with WorkflowEnv(seed=1) as env:
        env.use(pa.app)
        env.mock(pa.plain, returns=1)
        env.start(pa.fulfill, "o").result
        with pytest.raises(UnusedMockError, match=r"wf_env\.mock\(plain\) was never called"):
            env.check_faults_fired()
        env.mock(pa.plain, returns=2)  # mocking again replaces it; still unused
        with pytest.raises(UnusedMockError):
            env.check_faults_fired()
        pa.plain(1).result  # now it is used
        env.check_faults_fired()


def test_the_non_idempotent_decorator_is_importable() -> None:
    assert callable(non_idempotent)
