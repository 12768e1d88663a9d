"""Interleavings: external events at step boundaries (wf_env.deliver_after) and
wf_env.check_interleavings: what counts as a violation, reports, bad inputs, determinism."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import find

from pynenc_wf_testing import (
    Advance,
    Cancel,
    EventSchedule,
    InterleavingError,
    InvalidArgument,
    Resume,
    ScheduledEvent,
    Signal,
    UnknownStepError,
    WorkflowEnv,
)
from pynenc_wf_testing.checks.strategies import event_schedules
from pynenc_wf_testing.engine import WorkflowCancelled
from tests import interleave_apps as apps

ROOT = Path(__file__).resolve().parents[1]
START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    apps.reset()


# ---------------------------------------------------------------------- deliver_after


def test_a_signal_is_delivered_right_after_its_step() -> None:
    with WorkflowEnv(seed=3) as env:
        env.deliver_after("route:go_or_expire", Signal("go", 7))
        run = env.start(apps.go_or_expire, "k")
        assert run.result == "go:7"
        names = [s.name for s in env.history if s.is_step]
    # the signal is stored right after the route, before the workflow ran at all
    assert names[:2] == ["route:go_or_expire#1", "signal:go#1"]


def test_an_event_inside_a_slice_lands_before_the_invocation_goes_on() -> None:
    """After ``wait_signal:go#1`` (the wait timed out) the workflow's own slice is stopped,
    the signal stored, then the same slice goes on: the signal comes after the timeout."""
    with WorkflowEnv(seed=3, start=START) as env:
        env.deliver_after("wait_signal:go#1", Signal("go", 1))
        run = env.start(apps.go_or_expire, "k")
        assert run.result == "expired"
        steps = [s for s in env.history if s.is_step]
    names = [s.name for s in steps]
    at = names.index("wait_signal:go#1")
    assert names[at + 1] == "signal:go#1"
    assert names[-1] == "go_or_expire#1"


def test_advance_moves_the_clock_at_the_boundary_without_running_anything() -> None:
    with WorkflowEnv(seed=3, start=START) as env:
        env.deliver_after("route:timed", Advance(dt.timedelta(hours=5)))
        run = env.start(apps.timed, "k")
        started, woke = run.result.split(" -> ")
    assert dt.datetime.fromisoformat(started) == START + dt.timedelta(hours=5)
    assert dt.datetime.fromisoformat(woke) == START + dt.timedelta(hours=6)


def test_advance_then_signal_at_one_step_arrives_as_the_timer_fires() -> None:
    """Advance past the wait's deadline, then a signal, at the step right before the wait
    starts: the wait begins at the advanced instant, so its hour is still to come and the
    signal is there first."""
    with WorkflowEnv(seed=3, start=START) as env:
        env.deliver_after("route:go_or_expire", Advance(dt.timedelta(hours=2)))
        env.deliver_after("route:go_or_expire", Signal("go", "late"))
        run = env.start(apps.go_or_expire, "k")
        assert run.result == "go:late"
        signal = next(s for s in env.history if s.name == "signal:go#1")
    assert dt.datetime.fromisoformat(signal.time) == START + dt.timedelta(hours=2)


def test_an_event_after_the_workflow_finished_is_dropped() -> None:
    with WorkflowEnv(seed=3) as env:
        env.deliver_after("go_or_expire#1", Signal("go"))
        run = env.start(apps.go_or_expire, "k")
        assert run.result == "expired"
        env.run_until_idle()
        assert not [s for s in env.history if s.name.startswith("signal:")]


def test_deliver_after_a_step_never_reached_is_an_error_at_the_end() -> None:
    with WorkflowEnv(seed=3) as env:
        env.deliver_after("wait_signal:nope#1", Signal("go"))
        run = env.start(apps.go_or_expire, "k")
        with pytest.raises(UnknownStepError, match=r"deliver_after\('wait_signal:nope#1'"):
            run.result


def test_deliver_after_refuses_what_is_not_an_event() -> None:
    with WorkflowEnv(seed=3) as env:
        with pytest.raises(InvalidArgument, match=r"got the class Cancel, not an event.*Cancel\(\)"):
            env.deliver_after("route:go_or_expire", Cancel)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="'go' \\(str\\) is not an event"):
            env.deliver_after("route:go_or_expire", "go")  # type: ignore[arg-type]


def test_event_types_refuse_bad_arguments() -> None:
    with pytest.raises(InvalidArgument, match=r"non-empty string"):
        Signal("")
    with pytest.raises(InvalidArgument, match=r"positive datetime\.timedelta"):
        Advance(dt.timedelta(0))
    with pytest.raises(InvalidArgument, match=r"positive datetime\.timedelta"):
        Advance(3600)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="must be a string"):
        Cancel(3)  # type: ignore[arg-type]


def test_a_payload_the_serializer_loses_is_a_clear_error() -> None:
    with WorkflowEnv(seed=3) as env:
        env.deliver_after("route:go_or_expire", Signal("go", lambda: 1))
        run = env.start(apps.go_or_expire, "k")
        with pytest.raises(InvalidArgument, match=r"Signal\('go', <function.*could not be delivered"):
            run.result


# ---------------------------------------------------------------------- the check


def test_a_correct_workflow_passes_every_event_at_every_boundary() -> None:
    events = [Signal("go", 1), Cancel(), Advance(dt.timedelta(minutes=30))]
    with WorkflowEnv(seed=5) as env:
        report = env.check_interleavings(apps.go_or_expire, "k", events=events, max_examples=10)
    report.assert_ok()
    boundaries = [s.name for s in report.boundaries]
    assert boundaries == ["route:go_or_expire#1", "wait_signal:go#1"]
    # first each event alone at each boundary, in order
    singles = report.explored[: len(boundaries) * len(events)]
    assert [(o.schedule.events[0].step, o.schedule.events[0].event) for o in singles] == [
        (step.number, event) for step in report.boundaries for event in events
    ]
    outcomes = {str(o.schedule): o.outcome for o in singles}
    assert outcomes["env.deliver_after('route:go_or_expire#1', Signal('go', 1))"] == "returned 'go:1'"
    # a cancellation legitimately ends the workflow with WorkflowCancelled: no violation
    cancelled = outcomes["env.deliver_after('route:go_or_expire#1', Cancel())"]
    assert cancelled.startswith("raised WorkflowCancelled")
    assert len(report.explored) > len(singles)  # the Hypothesis combinations ran too
    assert "0 failing" in report.summary()


def test_a_bug_that_needs_two_events_is_found_by_combinations_and_shrunk() -> None:
    events = [Signal("a", 1), Signal("b", 2)]
    with WorkflowEnv(seed=5) as env:
        report = env.check_interleavings(apps.both_signals_break_it, "k", events=events)
    singles = report.explored[: len(report.boundaries) * len(events)]
    assert all(len(o.schedule) == 1 and o.ok for o in singles)
    worst = report.smallest_failure()
    assert worst is not None and len(worst.schedule) == 2
    assert {type(e.event).__name__ for e in worst.schedule.events} == {"Signal"}
    assert {e.event.name for e in worst.schedule.events} == {"a", "b"}  # type: ignore[union-attr]
    assert worst.violations[0][0] == "error"
    assert "ValueError: a and b both arrived" in worst.violations[0][1]


def test_a_deadlock_under_an_event_is_a_violation() -> None:
    with WorkflowEnv(seed=5) as env:
        report = env.check_interleavings(
            apps.waits_forever_after_go, "k", events=[Signal("go", 1)], max_examples=0
        )
    kinds = {k for o in report.failing for k, _ in o.violations}
    assert kinds == {"incomplete"}
    assert "waits for signal 'never'" in report.failing[0].violations[0][1]


def test_an_unexpected_exception_is_a_violation_the_golden_ones_are_not() -> None:
    with WorkflowEnv(seed=5) as env:
        found = env.check_interleavings(
            apps.raises_on_go, "k", events=[Signal("go", "x")], max_examples=0
        )
        same = env.check_interleavings(
            apps.fails_anyway, "k", events=[Signal("go"), Cancel()], max_examples=0
        )
    assert not found.ok
    assert found.failing[0].violations[0][0] == "error"
    assert "KeyError" in found.failing[0].violations[0][1]
    same.assert_ok()
    assert same.golden_outcome == "raised RuntimeError: always"


def test_compare_judges_each_result() -> None:
    with WorkflowEnv(seed=5) as env:
        report = env.check_interleavings(
            apps.go_or_expire, "k", events=[Signal("go", 2)], max_examples=0,
            compare=lambda result: result != "go:2",
        )
    assert [k for o in report.failing for k, _ in o.violations] == ["result"] * len(report.failing)
    assert "compare(result) returned False; the result was 'go:2'" in report.failing[0].violations[0][1]


def test_the_invariant_is_checked_after_every_run() -> None:
    seen: list[int] = []

    def invariant(env: WorkflowEnv) -> bool:
        seen.append(1)
        return "charge:o-1" in apps.EFFECTS

    with WorkflowEnv(seed=5) as env:
        report = env.check_interleavings(
            apps.charges_once, "o-1", events=[Signal("go"), Cancel()], max_examples=0,
            invariant=invariant, before_each=apps.reset,
        )
    assert len(seen) == len(report.explored) + 1  # and the golden run
    # cancelled before the charge: no charge, the invariant says so
    assert report.failing and all(k == "invariant" for o in report.failing for k, _ in o.violations)
    assert all("Cancel()" in str(o.schedule) for o in report.failing)


def test_a_halted_workflow_is_waiting_not_deadlocked_and_a_resume_while_parking_is_not_lost() -> None:
    """A halted run waits for a person: not a violation. A Resume() that arrives after
    ``halt#1`` is recorded but before the workflow parks (the resumer finds no HALTED flag
    and routes nothing) used to be lost; the halting workflow now re-reads its halt record
    once parked and goes on: the check finds nothing."""
    with WorkflowEnv(seed=5) as env:
        report = env.check_interleavings(
            apps.halts_for_approval, "k", events=[Resume()], max_examples=0
        )
    assert report.golden_outcome.startswith("halted (needs approval)")
    early, after_halt = report.explored
    assert str(early.schedule) == "env.deliver_after('route:halts_for_approval#1', Resume())"
    assert early.ok and early.outcome.startswith("halted")  # not halted yet: nothing to resume
    assert str(after_halt.schedule) == "env.deliver_after('halt#1', Resume())"
    assert after_halt.violations == []
    assert after_halt.outcome == "returned 'resumed'"
    report.assert_ok()


def test_a_resume_delivered_while_the_workflow_parks_is_not_lost() -> None:
    """The same race driven by hand: the resume lands right after ``halt#1`` is written."""
    with WorkflowEnv(seed=5) as env:
        run = env.start(apps.halts_for_approval, "k")
        env.deliver_after("halt#1", Resume())
        assert run.result == "resumed"
        assert env.describe(run).halted is None


def test_a_cancel_delivered_while_the_workflow_parks_is_not_lost() -> None:
    with WorkflowEnv(seed=5) as env:
        run = env.start(apps.halts_for_approval, "k")
        env.deliver_after("halt#1", Cancel("stop"))
        with pytest.raises(WorkflowCancelled, match="stop"):
            run.result


def test_the_report_prints_a_runnable_reproduction() -> None:
    with WorkflowEnv(seed=5) as env:
        report = env.check_interleavings(
            apps.raises_on_go, "k", events=[Advance(dt.timedelta(minutes=1)), Signal("go", "x")],
        )
    with pytest.raises(InterleavingError) as raised:
        report.assert_ok()
    text = str(raised.value)
    assert text.startswith("interleaving check failed: ")
    assert "Smallest failing schedule:" in text and "[error]" in text
    assert "Reproduce: WorkflowEnv(seed=5)" in text
    lines = report.reproduction()
    assert lines[-2:] == ["run = wf_env.start(raises_on_go, 'k')", "run.result"]
    # Run the printed lines: the same failure.
    namespace: dict[str, Any] = {"raises_on_go": apps.raises_on_go}
    with WorkflowEnv(seed=5) as wf_env:
        namespace["wf_env"] = wf_env
        with pytest.raises(KeyError):
            exec("\n".join(lines), namespace)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_events_at_boundaries_on_a_persistent_backend(backend: str) -> None:
    """An invocation preempted inside a store write while the test writes a signal."""
    with WorkflowEnv(seed=5, backend=backend) as env:
        report = env.check_interleavings(
            apps.both_signals_break_it, "k", events=[Signal("a", 1), Signal("b", 2)],
            max_examples=10,
        )
    singles = report.explored[: len(report.boundaries) * 2]
    assert all(o.ok for o in singles)
    assert {o.outcome for o in singles} == {"returned 'ok'"}
    assert not report.ok  # the combination is found here too


def test_same_seed_same_schedules_and_report() -> None:
    first = _example_report(7)
    second = _example_report(7)
    assert first == second


# ---------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "events is empty"),
        (Signal("go"), "events must be a list of events"),
        ([Signal("go"), "cancel"], r"events\[1\]: 'cancel' \(str\) is not an event"),
        ([Cancel], r"events\[0\]: got the class Cancel, not an event"),
    ],
)
def test_bad_events_are_refused_at_the_call(events: Any, message: str) -> None:
    with WorkflowEnv(seed=5) as env, pytest.raises(InvalidArgument, match=message):
        env.check_interleavings(apps.go_or_expire, "k", events=events)


def test_a_signal_the_workflow_never_waits_for_is_refused() -> None:
    with WorkflowEnv(seed=5) as env, pytest.raises(
        InvalidArgument,
        match=r"never waited for a signal named 'og' \(.*it waited for 'go'\)",
    ):
        env.check_interleavings(apps.go_or_expire, "k", events=[Signal("og")])


def test_resume_of_a_workflow_that_never_halts_is_refused() -> None:
    with WorkflowEnv(seed=5) as env, pytest.raises(
        InvalidArgument, match=r"Resume\(\) can change nothing"
    ):
        env.check_interleavings(apps.go_or_expire, "k", events=[Resume()])


def test_a_plain_task_or_an_app_without_the_engine_is_refused() -> None:
    with WorkflowEnv(seed=5) as env:
        with pytest.raises(InvalidArgument, match="plain_task is a plain task"):
            env.check_interleavings(apps.plain_task, 1, events=[Cancel()])
        with pytest.raises(InvalidArgument, match=r"Cancel\(\) needs the durable-workflow engine"):
            env.check_interleavings(apps.plain_engine_less, "k", events=[Cancel()])


def test_bad_counts_and_callbacks_are_refused() -> None:
    with WorkflowEnv(seed=5) as env:
        with pytest.raises(InvalidArgument, match="max_examples must be an int >= 0"):
            env.check_interleavings(apps.go_or_expire, "k", events=[Cancel()], max_examples=-1)
        with pytest.raises(InvalidArgument, match="max_events must be an int >= 1"):
            env.check_interleavings(apps.go_or_expire, "k", events=[Cancel()], max_events=0)
        with pytest.raises(InvalidArgument, match=r"compare must be a function \(result\)"):
            env.check_interleavings(apps.go_or_expire, "k", events=[Cancel()], compare=1)  # type: ignore[arg-type]


def test_a_golden_run_that_cannot_finish_is_reported_with_the_fix() -> None:
    with WorkflowEnv(seed=5) as env:
        with pytest.raises(InterleavingError, match=r"(?s)golden run .*after_start=lambda env, run"):
            env.check_interleavings(apps.needs_a_signal, "k", events=[Cancel()])
        report = env.check_interleavings(
            apps.needs_a_signal, "k", events=[Cancel()], max_examples=0,
            after_start=lambda env, run: env.signal(run, "go", "ok"),
        )
    report.assert_ok()
    assert report.golden_outcome == "returned 'ok'"


# ---------------------------------------------------------------------- the strategy


def test_event_schedules_orders_by_boundary_and_shrinks_to_the_first() -> None:
    with WorkflowEnv(seed=5) as env:
        env.start(apps.go_or_expire, "k").result
        steps = [s for s in env.history if s.is_step]
    events = [Signal("go"), Cancel()]
    smallest = find(event_schedules(steps, events, min_events=2), lambda s: True)
    assert [e.name for e in smallest.events] == [steps[0].name] * 2
    assert [type(e.event) for e in smallest.events] == [Signal, Signal]
    late_first = find(
        event_schedules(steps, events, min_events=2),
        lambda s: s.events[-1].step > s.events[0].step,
    )
    assert [e.step for e in late_first.events] == sorted(e.step for e in late_first.events)
    with pytest.raises(InvalidArgument, match="min_events must be between 1 and max_events=2"):
        event_schedules(steps, events, min_events=3, max_events=2)


def test_schedules_are_data() -> None:
    schedule = EventSchedule((ScheduledEvent(3, Signal("go", {"by": "ann"}), "timer#1"),))
    assert str(schedule) == "env.deliver_after('timer#1', Signal('go', {'by': 'ann'}))"
    assert schedule.event_types() == ["Signal"]
    with pytest.raises(InvalidArgument, match=r"ScheduledEvent\.step must be an int >= 1"):
        ScheduledEvent(0, Cancel())


# ---------------------------------------------------------------------- determinism


def _example_report(seed: int) -> list[str]:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from review import tasks
        from review.services import documents
    finally:
        sys.path.remove(str(ROOT / "examples"))
    with WorkflowEnv(seed=seed) as env:
        report = env.check_interleavings(
            tasks.review_document, "doc-1",
            events=[Signal("approved", {"by": "ann"}), Cancel(), Advance(dt.timedelta(hours=6))],
            invariant=lambda env: not documents.both_published_and_archived(),
            before_each=documents.reset, max_examples=20,
        )
    lines = [f"{o.schedule} => {o.outcome} {o.violations}" for o in report.explored]
    try:
        report.assert_ok()
    except InterleavingError as error:
        lines.append(str(error))
    return lines


SCRIPT = """
import json, sys
from tests.test_interleavings import _example_report
json.dump(_example_report(int(sys.argv[1])), sys.stdout)
"""


def test_same_seed_same_report_in_processes_with_other_hash_seeds() -> None:
    import json

    outputs = []
    for hash_seed in ("0", "4242"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": hash_seed,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, "7"], cwd=ROOT, env=env, capture_output=True,
            text=True, check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert any("interleaving check failed" in line for line in outputs[0])
