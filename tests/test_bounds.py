"""Hard bounds on work: never a hang, never unbounded memory.

A run that routes children or records values forever is stopped by the step limit (which
counts committed steps as well as slices, from inside the slice that never parks); a busy wait
on the frozen virtual clock is a BusyWaitError; a slice that spins is stopped by the watchdog.
No assertion here depends on how fast the machine is.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import tracemalloc

import greenlet
import pytest

from pynenc_wf_testing import (
    BusyWaitError,
    InvalidArgument,
    SliceTimeoutError,
    StepLimitExceeded,
    WorkflowEnv,
    WorkflowTestingError,
)
from tests.apps import unbounded


def line_of(function: object, text: str) -> str:
    """``unbounded.py:<line>`` of the first source line of ``function`` containing ``text``."""
    lines, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    for offset, line in enumerate(lines):
        if text in line:
            return f"unbounded.py:{first + offset}"
    raise AssertionError(f"{text!r} not in {function!r}")


def test_the_new_errors_are_workflow_testing_errors() -> None:
    assert issubclass(BusyWaitError, WorkflowTestingError)
    assert issubclass(SliceTimeoutError, WorkflowTestingError)


# --------------------------------------------------------------------------- step limit


def test_routing_children_forever_without_waiting_hits_the_step_limit() -> None:
    tracemalloc.start()
    try:
        with WorkflowEnv(max_steps=2000) as env:
            env.use(unbounded.app)
            run = env.start(unbounded.route_forever)
            with pytest.raises(StepLimitExceeded) as info:
                run.result
            steps = len([s for s in env.history if s.number is not None])
            # Driving again raises again (the run is over), at once.
            with pytest.raises(StepLimitExceeded):
                env.run_until_idle()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(
        "the simulation committed 2000 history steps without finishing (limit "
        "max_steps=2000, which bounds both scheduler slices and committed steps). If the run "
        "is meant to be this long, raise the limit: WorkflowEnv(max_steps=...) or "
        "@pytest.mark.wf(max_steps=...) (or --wf-max-steps / the wf_max_steps ini value)."
    )
    assert re.search(r"Busiest invocations over the last 200 steps: route_forever#1 \[", message)
    assert re.search(r"Last steps: (route:leaf#\d+, record:leaf#\d+, ){3}", message), message
    assert steps == 2001  # the one over the limit stops the run
    assert peak < 64 * 1024 * 1024, peak  # bounded: ~30 MB/s before the limit counted steps


def test_a_uuid_loop_hits_the_step_limit_and_the_env_closes_cleanly() -> None:
    with WorkflowEnv(max_steps=500) as env:
        env.use(unbounded.app)
        with pytest.raises(StepLimitExceeded, match=r"committed 500 history steps") as info:
            env.start(unbounded.uuid_forever).result
    assert "Last steps: uuid#493, uuid#494" in str(info.value)
    assert "uuid_forever#1 [" in str(info.value)
    assert env.closed
    # The aborted greenlet was ended on close: nothing of it is left running.
    leftovers = [
        o for o in __import__("gc").get_objects()
        if isinstance(o, greenlet.greenlet) and not o.dead and o is not greenlet.getcurrent()
        and o.gr_frame is not None and "uuid_forever" in str(o.gr_frame.f_code)
    ]
    assert leftovers == []
    # Another environment runs normally afterwards.
    with WorkflowEnv() as env:
        env.use(unbounded.app)
        assert env.start(unbounded.leaf, 3).result == 3


def test_slices_still_count() -> None:
    """A run with few steps but many slices (a sleep loop) stops on slices, named so."""
    with WorkflowEnv(max_steps=50) as env:
        env.use(unbounded.app)
        run = env.start(unbounded.sleep_forever)
        with pytest.raises(StepLimitExceeded, match=r"the simulation ran 50 scheduler steps"):
            run.result


def test_a_step_over_the_limit_outside_any_slice_raises_where_it_is_made() -> None:
    with WorkflowEnv(max_steps=3) as env:
        env.use(unbounded.app)
        for i in range(3):
            env.start(unbounded.leaf, i)
        with pytest.raises(StepLimitExceeded, match=r"committed 3 history steps"):
            env.start(unbounded.leaf, 3)


# --------------------------------------------------------------------------- busy wait


@pytest.mark.parametrize(
    ("task", "line"),
    [
        (unbounded.busy_wait_now, "while dt.datetime.now"),
        (unbounded.busy_wait_time, "while time.time()"),
    ],
)
def test_a_busy_wait_on_the_virtual_clock_is_an_error(task: object, line: str) -> None:
    with WorkflowEnv() as env:
        env.use(unbounded.app)
        run = env.start(task, 5.0)  # type: ignore[arg-type]
        with pytest.raises(BusyWaitError) as info:
            run.result
    message = str(info.value)
    name = task.func.__name__  # type: ignore[attr-defined]
    assert message.startswith(
        f"{name}#1 [{str(run.invocation_id)[:8]}] reads the virtual clock over and over "
        "without doing anything else (a busy wait) at "
    )
    assert f"{line_of(task.func, line)} in {name}." in message  # type: ignore[attr-defined]
    for advice in ("time.sleep(seconds)", "wf.root.sleep(...)", "env.advance(...)",
                   "the clock is virtual"):
        assert advice in message


def test_many_clock_reads_with_progress_are_not_a_busy_wait() -> None:
    with WorkflowEnv() as env:
        env.use(unbounded.app)
        assert env.start(unbounded.slow_but_finite, 60_000).result == sum(range(60_000)) + 60_000


# --------------------------------------------------------------------------- watchdog


def test_the_watchdog_stops_a_spinning_slice() -> None:
    with WorkflowEnv(slice_timeout=dt.timedelta(seconds=0.1)) as env:
        env.use(unbounded.app)
        run = env.start(unbounded.spin)
        with pytest.raises(SliceTimeoutError) as info:
            run.result
        # The environment goes on: other invocations still run.
        assert env.start(unbounded.leaf, 7).result == 7
    message = str(info.value)
    assert message.startswith(
        f"spin#1 [{str(run.invocation_id)[:8]}] ran for more than 0.1 s of real time without "
        "parking (no child result awaited, no sleep, no wait): it spins at "
    )
    # The loop's line (either of its two: where the interrupt lands).
    loop = {line_of(unbounded.spin.func, "while True"), line_of(unbounded.spin.func, "n += 1")}
    where = re.search(r"it spins at \S*(unbounded\.py:\d+) in spin\. ", message)
    assert where is not None and where.group(1) in loop, message
    assert "--wf-slice-timeout" in message and "slice_timeout=None" in message


def test_slice_timeout_accepts_seconds_and_none() -> None:
    assert WorkflowEnv(slice_timeout=2).world.slice_timeout == 2.0
    assert WorkflowEnv(slice_timeout=None).world.slice_timeout is None
    assert WorkflowEnv().world.slice_timeout == 5.0


@pytest.mark.parametrize("value", [0, -1, dt.timedelta(0), "5", True])
def test_slice_timeout_must_be_positive(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"slice_timeout must be a positive timedelta"):
        WorkflowEnv(slice_timeout=value)  # type: ignore[arg-type]
