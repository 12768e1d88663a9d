"""docs/engine.md's promises on timers, signals, waits and retry policies, probed as a user.

Each test names the passage it checks. The workflows are module-level tasks of the user's app
of the doc examples (tests/docs_shop.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

from pynenc_wf_testing import DeadlockError, WorkflowEnv
from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
    RetryPolicy,
    SignalTimeout,
    WaitTimeout,
)
from tests.docs_shop import app

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@app.task
def flaky(name: str) -> str:
    if name.startswith("bad"):
        raise ValueError(f"{name} failed")
    return name


@app.workflow
def until(instant: str) -> str:
    root = until.wf.root
    root.sleep_until(dt.datetime.fromisoformat(instant))
    return root.now().isoformat()


@app.workflow
def naive_sleep_until() -> None:
    naive_sleep_until.wf.root.sleep_until(dt.datetime(2030, 1, 2))


@app.workflow
def negative_sleep() -> None:
    negative_sleep.wf.root.sleep(dt.timedelta(seconds=-1))


@app.workflow
def two_waits() -> list[object]:
    root = two_waits.wf.root
    first = root.wait_for_signal("payment", timeout=dt.timedelta(hours=1), default=None)
    root.sleep(dt.timedelta(hours=2))
    second = root.wait_for_signal("payment", timeout=dt.timedelta(hours=1), default=None)
    return [first, second]


@app.workflow
def strict_wait() -> object:
    return strict_wait.wf.root.wait_for_signal("payment", timeout=dt.timedelta(hours=1))


@app.workflow
def forever() -> object:
    return forever.wf.root.wait_for_signal("payment")


UNDONE: list[str] = []


@app.task
def undo(what: str) -> str:
    UNDONE.append(what)
    if what.startswith("bad"):
        raise RuntimeError(f"cannot undo {what}")
    return what


@app.workflow
def explicit_compensation(items: list[str]) -> str:
    root = explicit_compensation.wf.root
    saga = root.saga()
    for item in items:
        saga.add_compensation(undo, item)
    saga.compensate()
    return "compensated"


@app.workflow
def gather(names: list[str]) -> list[str]:
    root = gather.wf.root
    return root.wait_all([root.execute_task(flaky, name) for name in names])


def test_retry_policy_default_is_three_attempts_one_then_two_seconds() -> None:
    """ "else `RetryPolicy()` (3 attempts, 1 s then 2 s)"."""
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert [policy.delay(attempt, "any") for attempt in (1, 2)] == [
        dt.timedelta(seconds=1), dt.timedelta(seconds=2),
    ]


def test_sleep_until_a_past_instant_returns_at_once(wf_env: WorkflowEnv) -> None:
    """ "`sleep_until` a past instant returns at once"."""
    wf_env.advance(hours=1)
    run = wf_env.start(until, START.isoformat())
    assert run.result == (START + dt.timedelta(hours=1)).isoformat()
    assert wf_env.now == START + dt.timedelta(hours=1)


def test_sleep_until_a_future_instant_wakes_then(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(until, (START + dt.timedelta(days=3)).isoformat())
    assert run.result == (START + dt.timedelta(days=3)).isoformat()


@pytest.mark.parametrize(
    ("workflow", "message"),
    [(naive_sleep_until, "naive"), (negative_sleep, "negative|must not be|>= 0")],
)
def test_a_naive_datetime_or_a_negative_duration_is_refused(
    wf_env: WorkflowEnv, workflow: object, message: str
) -> None:
    """ "A naive datetime or a negative duration raises `InvalidWorkflowArgument`"."""
    run = wf_env.start(workflow)  # type: ignore[arg-type]
    with pytest.raises(InvalidWorkflowArgument, match=message):
        run.result


def test_a_signal_sent_after_a_wait_timed_out_is_kept_for_the_next_wait(wf_env: WorkflowEnv) -> None:
    """ "a signal sent after a wait timed out is stored but not consumed by that wait"."""
    run = wf_env.start(two_waits)
    wf_env.advance(minutes=90)  # the first wait timed out at +1 h; the workflow sleeps
    assert wf_env.signal(run, "payment", {"ref": "late"}) == 1
    assert run.result == [None, {"ref": "late"}]


def test_a_signal_sent_before_the_wait_is_not_lost(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(strict_wait)
    wf_env.signal(run, "payment", "early")  # before the workflow ran at all
    assert run.result == "early"


def test_a_timeout_without_a_default_raises_signal_timeout(wf_env: WorkflowEnv) -> None:
    """ "On timeout the wait returns `default` if given, else raises `SignalTimeout` (a
    `WaitTimeout`, a `TimeoutError`)"."""
    run = wf_env.start(strict_wait)
    with pytest.raises(SignalTimeout) as caught:
        run.result
    assert isinstance(caught.value, WaitTimeout) and isinstance(caught.value, TimeoutError)
    assert wf_env.now == START + dt.timedelta(hours=1)


def test_a_signal_that_never_comes_is_a_deadlock_naming_it(wf_env: WorkflowEnv) -> None:
    """ "makes `run.result` raise `DeadlockError` naming the workflow and the signal"."""
    run = wf_env.start(forever)
    with pytest.raises(DeadlockError, match=r"forever#1 \[\w+\] waits for signal 'payment' \(no timeout\)"):
        run.result


def test_wait_all_returns_in_the_order_given_and_raises_the_first_failure_in_that_order(
    wf_env: WorkflowEnv,
) -> None:
    """ "`wait_all` ... returns the results in the order given (raising the error of the first
    failed one in that order"."""
    assert wf_env.start(gather, ["c", "a", "b"]).result == ["c", "a", "b"]
    with pytest.raises(ValueError, match="bad-1 failed"):
        wf_env.start(gather, ["ok", "bad-1", "bad-2"]).result


def test_saga_compensate_runs_every_compensation_and_raises_the_first_failure_with_notes(
    wf_env: WorkflowEnv,
) -> None:
    """ "`saga.compensate()` runs them explicitly; if some fail, it raises the first failure
    with a note for each of the others"."""
    UNDONE.clear()
    assert wf_env.start(explicit_compensation, ["a", "b"]).result == "compensated"
    assert UNDONE == ["b", "a"]  # newest first
    UNDONE.clear()
    run = wf_env.start(explicit_compensation, ["bad-1", "ok", "bad-2"])
    with pytest.raises(RuntimeError, match="cannot undo bad-2") as caught:
        run.result
    assert UNDONE == ["bad-2", "ok", "bad-1"]
    assert len(caught.value.__notes__) == 1
    assert caught.value.__notes__[0].startswith("compensation undo('bad-1') failed: ")


def test_the_stored_schema_and_the_hook_protocol_are_as_documented() -> None:
    """ "The stored schema" and "Plugging a simulator in": every name and signature given."""
    import re
    from pathlib import Path

    from pynenc_wf_testing.engine import hooks, schema
    from tests.test_docs_promises_names import _check_call

    text = (Path(__file__).resolve().parent.parent / "docs" / "engine.md").read_text()
    assert schema.SCHEMA_VERSION == 1 and "(`SCHEMA_VERSION`, currently 1)" in text
    assert schema.timer(1) == "wfx:timer:1" and "(`wfx:timer:1` is the deadline" in text
    for name in ("CANCEL", "DEADLINE", "HALTED", "STATE_LATEST", "SignalRecord", "StateRecord",
                 "HaltRecord"):
        assert hasattr(schema, name), name
    _check_call(schema, "classify(key, value, child_name)", "engine.md, The stored schema")
    _check_call(schema, "signal(name, slot)", "engine.md, The stored schema")
    section = text.split("### Plugging a simulator in", 1)[1].split("\n\n", 2)[1]
    calls = [" ".join(c.split()) for c in re.findall(r"`(\w+\([^`]*\))`", section)]
    assert len(calls) >= 10, calls
    owners = (hooks.SimulatorHooks, hooks.SuspendingHooks, hooks.AdoptingHooks)
    for call in calls:
        name = call.split("(", 1)[0]
        owner = next((o for o in owners if hasattr(o, name)), None)
        assert owner is not None, f"engine.md names the hook {name}, which no hook protocol has"
        _check_call(owner, call, "engine.md, Plugging a simulator in")
    for name in ("register_hooks", "unregister_hooks", "active_hooks"):
        assert hasattr(hooks, name), name


def test_the_query_and_description_fields_the_docs_read_exist() -> None:
    """ "Queries" reads ``q.status, q.state, ...``; "Workflow ids and the client" reads
    ``info.workflow_id, info.run_id, ...``: each is a field of the returned class."""
    import dataclasses
    import re
    from pathlib import Path

    from pynenc_wf_testing.engine import WorkflowDescription, WorkflowQuery

    text = (Path(__file__).resolve().parent.parent / "docs" / "engine.md").read_text()
    for prefix, cls in (("q", WorkflowQuery), ("info", WorkflowDescription)):
        read = set(re.findall(rf"\b{prefix}\.(\w+)", text))
        fields = {field.name for field in dataclasses.fields(cls)}
        assert len(read) >= 5 and read <= fields, sorted(read - fields)
