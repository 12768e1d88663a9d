"""Every engine feature on pynenc's stock ThreadRunner with the SQLite backend, in real time.

No simulation here: durations are real (tenths of a second), signals come from other
threads, and restarts stop a real runner (pynenc's graceful stop reroutes what it was
running) and start a new one on the same database, in this process or in a new one.
Bounds on real durations are loose on purpose: the point of each check is a difference of
a whole timer (restarted from scratch or not), far larger than any scheduling jitter.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import (
    NotAWorkflow,
    RetryPolicy,
    SignalTimeout,
    UnknownWorkflow,
    WaitTimeout,
    WorkflowAlreadyStarted,
    WorkflowCancelled,
    WorkflowFinished,
    WorkflowIdConflict,
    WorkflowNotFinished,
    WorkflowTimeout,
    cancel_workflow,
    describe_workflow,
    query_workflow,
    resume_workflow,
    schema,
    signal_workflow,
    start_workflow,
    workflow_result,
)
from tests.production import prod_app as pa
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    # pynenc's ThreadRunner re-raises a failed task's error in its thread after storing it
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


def later(seconds: float, action: object) -> threading.Thread:
    """Run ``action()`` in another thread after ``seconds`` (an outside caller)."""

    def run() -> None:
        time.sleep(seconds)
        action()  # type: ignore[operator]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def logged(name: str) -> list[object]:
    return [arg for called, arg, _ in pa.LOG if called == name]


# =========================================================================== timers


def test_a_durable_sleep_on_a_thread_runner(prod: Production) -> None:
    prod.start_runner()
    began = time.time()
    run = pa.timed_sleep(0.3)
    out = prod.result(run)
    assert out["woke"] - out["started"] >= 0.3
    assert time.time() - began < 5


def test_sleep_until_an_instant(prod: Production) -> None:
    prod.start_runner()
    target = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)
    woke = prod.result(pa.until(target.isoformat()))
    assert woke >= target.timestamp()


def test_a_restarted_runner_resumes_a_timer_with_what_remains(prod: Production) -> None:
    duration = 1.5
    first = prod.start_runner()
    run = pa.timed_sleep(duration)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED)
    time.sleep(0.75)
    stop_took = prod.stop_runner(first)
    # The stop does not wait for the timer: the waiting workflow holds no thread (suspended,
    # PAUSED); only the timer service had to move.
    assert stop_took < 1.0
    assert prod.status(run) == InvocationStatus.PAUSED
    restarted = time.time()
    prod.start_runner()
    out = prod.result(run)
    # Not cut short ...
    assert out["woke"] - out["started"] >= duration
    # ... and not restarted from scratch: from scratch it would end >= duration after the
    # restart; it ends at its first deadline, about 0.75 s after the restart.
    assert out["woke"] - restarted < duration - 0.3


def test_a_stopping_runner_does_not_wait_out_a_sleeping_workflow(prod: Production) -> None:
    # pynenc's graceful stop joins the threads of what it ran: a workflow in a 30 s durable
    # sleep holds none (suspended), so the stop is quick and leaves it suspended.
    first = prod.start_runner()
    run = pa.timed_sleep(30.0)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED)
    assert prod.stop_runner(first) < 2.0
    # PAUSED; or rerouted, if the stop came while the suspending thread was still ending
    # (the next runner re-executes the body and suspends again)
    assert prod.status(run) in (
        InvocationStatus.PAUSED, InvocationStatus.REROUTED, InvocationStatus.PENDING
    )
    prod.start_runner()
    cancel_workflow(prod.app, run, "enough")  # wakes it at once: it ends with the error
    with pytest.raises(WorkflowCancelled, match="enough"):
        prod.result(run)


def test_a_timer_survives_a_worker_process_restart(prod: Production) -> None:
    # The runner lives in its own process; SIGTERM stops it (pynenc's graceful stop); a new
    # process starts on the same database. Only the SQLite file connects them.
    duration = 15.0
    worker = prod.spawn_worker()
    run = pa.timed_sleep(duration)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED)
    identity = run.workflow
    deadline = prod.wait_until(
        lambda: prod.app.state_backend.get_workflow_data(identity, schema.timer(1))
    )
    due = dt.datetime.fromisoformat(deadline).timestamp()
    # Stop the first process well before the deadline (its timer service must not get to
    # wake the workflow) and late enough that a restart from scratch would show (below).
    prod.wait_until(lambda: time.time() >= due - 6.0, timeout=duration)
    prod.terminate_worker(worker, timeout=60)
    status = prod.status(run)
    if time.time() < due:
        assert status == InvocationStatus.PAUSED  # suspended, in no process
    else:  # a stop slower than 6 s (a loaded machine): its timer service may have woken it
        assert status in (
            InvocationStatus.PAUSED, InvocationStatus.REROUTED, InvocationStatus.PENDING
        )
    restarted = time.time()
    prod.spawn_worker()
    out = prod.result(run)
    # The deadline recorded by the first process is the one the second one waits for ...
    assert prod.app.state_backend.get_workflow_data(identity, schema.timer(1)) == deadline
    assert out["woke"] >= due
    assert out["woke"] - out["started"] >= duration
    # ... so it does not start over: a sleep started again in the new process would end a
    # full duration after the restart at the earliest. (No tighter bound: the new process
    # may be slow to start on a loaded machine; the margin here is about 6 s.)
    assert out["woke"] < restarted + duration


def test_side_effect_and_now_are_not_redone_by_a_restart(prod: Production) -> None:
    first = prod.start_runner()
    run = pa.drawn_then_sleep(1.0)
    prod.wait_until(lambda: pa.DRAWS)
    time.sleep(0.3)
    prod.stop_runner(first)
    prod.start_runner()
    value, at = prod.result(run)
    assert value == 1001.0
    assert len(pa.DRAWS) == 1
    assert at == pytest.approx(pa.DRAWS[0], abs=0.5)  # now() replayed, not re-read


def test_waiting_workflows_do_not_use_up_the_runners_slots(prod: Production) -> None:
    # One thread slot: a workflow waiting for a signal is suspended (PAUSED, no thread), so
    # three of them do not keep the fourth from running.
    prod.rebuild(threads=1)
    prod.start_runner()
    waiting = [pa.signals(30.0) for _ in range(3)]
    for run in waiting:
        prod.wait_until(lambda run=run: prod.status(run) == InvocationStatus.PAUSED)
    assert prod.result(pa.timed_sleep(0.05))["woke"] > 0
    for run in waiting:
        signal_workflow(prod.app, run, "go", 1)
        signal_workflow(prod.app, run, "go", 2)
    assert [prod.result(run) for run in waiting] == [[1, 2]] * 3


# =========================================================================== signals


def test_signals_from_another_thread(prod: Production) -> None:
    prod.start_runner()
    run = pa.signals(5.0)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED)

    def send() -> None:
        signal_workflow(prod.app, run, "go", {"n": 1})
        time.sleep(0.1)
        signal_workflow(prod.app, run, "go", {"n": 2})

    later(0.2, send)
    began = time.time()
    assert prod.result(run) == [{"n": 1}, {"n": 2}]
    assert time.time() - began < 4  # woken by the signals, not by the 5 s timeouts


def test_a_signal_sent_before_the_wait_and_ordering(prod: Production) -> None:
    run = pa.signals(5.0)  # nobody runs it yet
    assert signal_workflow(prod.app, run, "go", "first") == 1
    assert signal_workflow(prod.app, run, "go", "second") == 2
    prod.start_runner()
    assert prod.result(run) == ["first", "second"]


def test_signal_timeout_with_default_and_with_signal_timeout(prod: Production) -> None:
    prod.start_runner()
    run = pa.signals(0.3)
    with pytest.raises(SignalTimeout, match="'go'"):
        prod.result(run)
    run = pa.signals(0.3)
    signal_workflow(prod.app, run, "go", "only one")
    began = time.time()
    assert prod.result(run) == ["only one", "no second signal"]
    assert time.time() - began >= 0.3


def test_a_signal_sent_while_no_runner_runs_is_consumed_after_the_restart(
    prod: Production,
) -> None:
    first = prod.start_runner()
    run = pa.signals(30.0)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED)
    time.sleep(0.2)
    prod.stop_runner(first)
    signal_workflow(prod.app, run, "go", "while down")
    signal_workflow(prod.app, run, "go", "again")
    prod.start_runner()
    assert prod.result(run) == ["while down", "again"]


# =========================================================================== queries


def test_query_while_running_and_after_the_end(prod: Production) -> None:
    prod.start_runner()
    run = pa.progress(0.2)
    started = prod.wait_until(lambda: query_workflow(prod.app, run).state)
    assert started in ({"phase": "started"}, {"phase": "slept"})
    q = prod.wait_until(
        lambda: (q := query_workflow(prod.app, run)).state == {"phase": "slept"} and q
    )
    assert q.status in ("running", "paused")  # paused once suspended on the signal wait
    signal_workflow(prod.app, run, "finish")
    assert prod.result(run) == "done"
    q = query_workflow(prod.app, run)
    assert q.status == "success"
    assert [s for _, s in q.snapshots] == [
        {"phase": "started"}, {"phase": "slept"}, {"phase": "finished"}
    ]
    first_at, second_at = q.snapshots[0][0], q.snapshots[1][0]
    assert (second_at - first_at).total_seconds() >= 0.2


# =========================================================================== waits


def test_wait_any_wait_all_wait_for_task(prod: Production) -> None:
    prod.start_runner()
    out = prod.result(pa.waits(1))
    assert out == {"any": [1, "fast"], "all": ["slow", "fast"], "task": "child"}


def test_wait_any_picks_the_first_to_finish_when_both_finished_before_the_wait(
    prod: Production,
) -> None:
    prod.start_runner()
    # Margins of seconds, not tenths: on a loaded machine the fast child's thread may start
    # late (0.3 s against 0.05 s flaked at load 40).
    assert prod.result(pa.late_race(2.0, 0.05, 4.0)) == [1, "fast"]
    assert logged("work") == ["fast", "slow"]


def test_wait_for_a_task_started_elsewhere(prod: Production) -> None:
    prod.start_runner()
    run = pa.watcher(10.0)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED)  # suspended
    later(0.1, lambda: pa.external_job(21))
    assert prod.result(run) == 42


def test_wait_for_task_timeout(prod: Production) -> None:
    prod.start_runner()
    with pytest.raises(WaitTimeout):
        prod.result(pa.watcher(0.3))


# =========================================================================== retries


def test_fixed_backoff_in_real_time(prod: Production) -> None:
    prod.start_runner()
    pa.FLAKY["k"] = 2
    assert prod.result(pa.retrying("k", 0.2, 5)) == "k: ok"
    times = [at for name, _, at in pa.LOG if name == "flaky"]
    assert len(times) == 3
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(times))


def test_retries_run_out_and_non_retryable_errors(prod: Production) -> None:
    prod.start_runner()
    pa.FLAKY["k"] = 10
    with pytest.raises(pa.Transient):  # the error type survives the SQLite round trip
        prod.result(pa.retrying("k", 0.05, 3))
    assert logged("flaky") == ["k"] * 3
    with pytest.raises(pa.Fatal):
        prod.result(pa.never_retried("d"))
    assert logged("declined") == ["d"]


def test_the_apps_default_policy_from_the_builder(prod: Production) -> None:
    prod.rebuild(retry_policy=RetryPolicy.fixed(dt.timedelta(seconds=0.1), max_attempts=None))
    prod.start_runner()
    pa.FLAKY["inf"] = 4
    assert prod.result(pa.by_default("inf")) == "inf: ok"
    assert len(logged("flaky")) == 5


def test_builder_settings_given_before_the_app_id_belong_to_the_app(prod: Production) -> None:
    prod.rebuild(engine_first={"workflow_max_retries": 1})
    prod.start_runner()
    pa.FLAKY["late"] = 5
    with pytest.raises(pa.Transient):
        prod.result(pa.by_default("late"))
    assert logged("flaky") == ["late"] * 2  # one retry, not the default policy's two


# =========================================================================== halt / cancel / timeout


def test_halt_and_resume_from_another_thread(prod: Production) -> None:
    prod.start_runner()
    run = pa.approval(1)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED)
    assert query_workflow(prod.app, run).halted == "needs approval"
    time.sleep(0.2)
    assert prod.status(run) == InvocationStatus.PAUSED
    later(0.0, lambda: resume_workflow(prod.app, run))
    assert prod.result(run) == 2
    assert logged("note") == ["before 1", "after 1"]


def test_cancel_during_a_sleep_runs_the_compensations(prod: Production) -> None:
    prod.start_runner()
    run = pa.booking("b1", 10.0)
    prod.wait_until(lambda: len(logged("book")) == 2)
    began = time.time()
    later(0.1, lambda: cancel_workflow(prod.app, run, "customer left"))
    with pytest.raises(WorkflowCancelled, match="customer left"):
        prod.result(run)
    assert time.time() - began < 5  # not the 10 s sleep
    assert logged("unbook") == ["hotel b1", "flight b1"]


def test_a_failing_compensation_keeps_the_original_error(prod: Production) -> None:
    prod.start_runner()
    with pytest.raises(pa.Fatal, match="b3: declined") as failure:
        prod.result(pa.fragile_booking("b3"))
    # the notes survive pynenc's serialization of the error into SQLite
    assert failure.value.__notes__ == [
        "compensation refuse_unbook('hotel b3') failed: Fatal: cannot unbook hotel b3"
    ]
    assert logged("refuse_unbook") == ["hotel b3"]
    assert logged("unbook") == ["flight b3"]


def test_cancel_during_a_signal_wait(prod: Production) -> None:
    prod.start_runner()
    run = pa.booking("b2", 0.05)
    prod.wait_until(lambda: len(logged("book")) == 2)
    time.sleep(0.2)
    cancel_workflow(prod.app, run)
    with pytest.raises(WorkflowCancelled):
        prod.result(run)
    assert logged("unbook") == ["hotel b2", "flight b2"]


def test_run_timeout(prod: Production) -> None:
    prod.start_runner()
    began = time.time()
    run = start_workflow(pa.timed_sleep, 10.0, run_timeout=dt.timedelta(seconds=0.3))
    with pytest.raises(WorkflowTimeout):
        prod.result(run)
    assert 0.3 <= time.time() - began < 5


# =========================================================================== identity


def test_workflow_id_aliases(prod: Production) -> None:
    first = start_workflow(pa.timed_sleep, 0.2, workflow_id="acct-1")
    assert start_workflow(pa.timed_sleep, 0.2, workflow_id="acct-1").invocation_id == (
        first.invocation_id
    )
    with pytest.raises(WorkflowAlreadyStarted):
        start_workflow(pa.timed_sleep, 0.2, workflow_id="acct-1", id_reuse="reject")
    running = start_workflow(
        pa.timed_sleep, 0.2, workflow_id="acct-1", id_reuse="allow_after_completion"
    )
    assert running.invocation_id == first.invocation_id
    prod.start_runner()
    prod.result(first)
    second = start_workflow(
        pa.timed_sleep, 0.2, workflow_id="acct-1", id_reuse="allow_after_completion"
    )
    assert second.invocation_id != first.invocation_id
    prod.result(second)


def test_client_operations_take_the_workflow_id(prod: Production) -> None:
    run = start_workflow(pa.booking, "L", 0.05, workflow_id="L-6b")
    prod.start_runner()
    prod.wait_until(lambda: len(logged("book")) == 2)
    assert describe_workflow(prod.app, "L-6b").status in ("running", "paused")
    with pytest.raises(WorkflowNotFinished, match="has not finished"):
        workflow_result(prod.app, "L-6b")
    assert signal_workflow(prod.app, "L-6b", "confirm", True) == 1
    assert prod.result(run) == "booked L"
    assert workflow_result(prod.app, "L-6b") == "booked L"
    described = describe_workflow(prod.app, "L-6b")
    assert (described.workflow_id, described.run_id) == ("L-6b", str(run.invocation_id))
    assert (described.status, described.finished) == ("success", True)
    assert query_workflow(prod.app, "L-6b").status == "success"
    with pytest.raises(WorkflowFinished, match="already finished"):
        signal_workflow(prod.app, "L-6b", "confirm", True)
    with pytest.raises(WorkflowFinished):
        cancel_workflow(prod.app, "L-6b")


def test_resume_and_cancel_by_workflow_id(prod: Production) -> None:
    prod.start_runner()
    gate = start_workflow(pa.approval, 1, workflow_id="gate-1")
    prod.wait_until(lambda: prod.status(gate) == InvocationStatus.PAUSED)
    assert describe_workflow(prod.app, "gate-1").halted == "needs approval"
    resume_workflow(prod.app, "gate-1")
    assert prod.result(gate) == 2
    trip = start_workflow(pa.booking, "c", 10.0, workflow_id="trip-c")
    prod.wait_until(lambda: len(logged("book")) == 2)
    cancel_workflow(prod.app, "trip-c", "customer left")
    with pytest.raises(WorkflowCancelled, match="customer left"):
        prod.result(trip)
    with pytest.raises(WorkflowCancelled, match="customer left"):
        workflow_result(prod.app, "trip-c")


def test_client_errors_on_sqlite(prod: Production) -> None:
    with pytest.raises(UnknownWorkflow, match="no workflow with id"):
        signal_workflow(prod.app, "L-404", "confirm", True)
    plain = pa.note("x")
    with pytest.raises(NotAWorkflow, match="call of task note"):
        describe_workflow(prod.app, str(plain.invocation_id))
    start_workflow(pa.timed_sleep, 0.2, workflow_id="acct-2")
    for policy in ("reuse", "reject", "allow_after_completion"):
        with pytest.raises(WorkflowIdConflict, match="other arguments"):
            start_workflow(pa.timed_sleep, 0.3, workflow_id="acct-2", id_reuse=policy)


def test_patched_new_runs_and_runs_of_the_old_code(prod: Production) -> None:
    prod.start_runner()
    old = pa.versioned(1)  # version 1: records now#1, then halts
    prod.wait_until(lambda: prod.status(old) == InvocationStatus.PAUSED)
    pa.VERSION["current"] = 2  # the deploy
    new = pa.versioned(2)
    prod.wait_until(lambda: prod.status(new) == InvocationStatus.PAUSED)
    resume_workflow(prod.app, old)
    resume_workflow(prod.app, new)
    assert prod.result(old) is False  # it had gone past the patch point under version 1
    assert prod.result(new) is True
