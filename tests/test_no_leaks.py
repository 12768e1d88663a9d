"""Nothing leaks: every way out of an environment puts the real clock, ids and sleep back and
frees the process for the next environment (issue 14, point 1)."""

from __future__ import annotations

import datetime as dt
import gc
import random
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import greenlet
import pytest

from pynenc_wf_testing import InvalidArgument, WorkflowEnv
from pynenc_wf_testing.runtime.backends import MemoryBackend
from pynenc_wf_testing.runtime.world import active_world, take_forgotten
from tests import leak_apps

REAL_TIME = time.time
REAL_SLEEP = time.sleep
REAL_UUID4 = uuid.uuid4
REAL_DATETIME = dt.datetime


def assert_nothing_leaked() -> None:
    assert time.time is REAL_TIME
    assert time.sleep is REAL_SLEEP
    assert uuid.uuid4 is REAL_UUID4
    assert dt.datetime is REAL_DATETIME
    assert abs(time.time() - time.monotonic() - (REAL_TIME() - time.monotonic())) < 60
    assert dt.datetime.now().year < 2030  # the simulation's default start is 2030
    assert active_world() is None
    with WorkflowEnv(seed=9) as env:  # the slot is free and patches install again
        assert env.start(leak_apps.noop).result == 1
    assert time.time is REAL_TIME


@pytest.fixture(autouse=True)
def _check_after() -> Iterator[None]:
    leak_apps.ENV.clear()
    yield
    leak_apps.ENV.clear()
    assert_nothing_leaked()


@pytest.mark.parametrize(
    ("task", "error"),
    [
        (leak_apps.exits, SystemExit),
        (leak_apps.interrupted, KeyboardInterrupt),
        (leak_apps.greenlet_exit, greenlet.GreenletExit),
    ],
    ids=["SystemExit", "KeyboardInterrupt", "GreenletExit"],
)
def test_a_base_exception_raised_in_a_task(task: Any, error: type[BaseException]) -> None:
    with pytest.raises(error), WorkflowEnv(seed=1) as env:
        env.start(task).result


def test_fail_with_greenlet_exit_is_refused_at_the_call() -> None:
    """fail() injects failures pynenc records; a BaseException would escape the run (a
    GreenletExit raised by the task itself is the parametrized case above)."""
    with WorkflowEnv(seed=1) as env:
        with pytest.raises(InvalidArgument, match=r"GreenletExit is not an Exception"):
            env.fail(leak_apps.noop, exc=greenlet.GreenletExit)
        assert env.start(leak_apps.calls_noop).result is not None


def test_a_base_exception_in_the_test_body() -> None:
    with pytest.raises(KeyboardInterrupt), WorkflowEnv(seed=1) as env:
        env.start(leak_apps.noop).result
        raise KeyboardInterrupt


class _BrokenCloseBackend(MemoryBackend):
    def close(self) -> None:
        raise ConnectionError("the store went away")


def test_a_backend_whose_close_raises() -> None:
    with pytest.raises(ConnectionError, match="the store went away"):  # noqa: SIM117
        with WorkflowEnv(seed=1, backend=_BrokenCloseBackend()) as env:
            assert env.start(leak_apps.noop).result == 1


def test_a_redis_backend_that_cannot_connect() -> None:
    pytest.importorskip("redis")
    url = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once
    with pytest.raises(Exception, match=r"127\.0\.0\.1:1"):  # noqa: SIM117
        with WorkflowEnv(seed=1, backend="redis", backend_options={"url": url}) as env:
            env.start(leak_apps.noop).result


def test_close_from_inside_a_task() -> None:
    env = WorkflowEnv(seed=1)
    leak_apps.ENV.append(env)
    run = env.start(leak_apps.closes_its_env)
    with pytest.raises(InvalidArgument, match=r"env.close\(\) was called from inside a simulated task"):
        run.result
    assert env.closed
    env.close()  # idempotent


def test_close_from_inside_a_task_under_with() -> None:
    with pytest.raises(InvalidArgument, match="from inside a simulated task"), WorkflowEnv(seed=1) as env:
        leak_apps.ENV.append(env)
        env.start(leak_apps.closes_its_env).result


def _forget(start: Callable[[WorkflowEnv], object]) -> None:
    start(WorkflowEnv(seed=1))


def test_a_forgotten_env_is_closed_when_it_becomes_garbage() -> None:
    take_forgotten()
    with pytest.warns(ResourceWarning, match=r"a WorkflowEnv opened at .*test_no_leaks\.py:\d+ was never closed"):
        _forget(lambda env: env.start(leak_apps.noop))
    (where,) = take_forgotten()
    assert where.startswith(__file__)


def test_a_forgotten_env_in_a_reference_cycle_does_not_block_the_next() -> None:
    take_forgotten()
    gc.disable()  # the cycle must still be there when the next env opens
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            env = WorkflowEnv(seed=1)
            env.start(leak_apps.noop)
            env.cycle = env  # type: ignore[attr-defined]
            del env
            assert active_world() is not None
            with WorkflowEnv(seed=2) as other:  # collects the cycle, which closes it
                assert other.start(leak_apps.noop).result == 1
    finally:
        gc.enable()
    assert len(take_forgotten()) == 1


def test_a_closed_env_is_not_reported_as_forgotten() -> None:
    take_forgotten()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        env = WorkflowEnv(seed=1)
        env.start(leak_apps.noop).result
        env.close()
        del env
        gc.collect()
    assert take_forgotten() == []


def test_random_state_is_restored() -> None:
    state = random.getstate()
    with pytest.raises(SystemExit), WorkflowEnv(seed=1) as env:
        env.start(leak_apps.exits).result
    assert random.getstate() == state


@pytest.mark.parametrize(
    "arm",
    [
        lambda env: env.crash_after("noop"),
        lambda env: env.crash_before("noop"),
        lambda env: env.crash_during(leak_apps.noop),
        lambda env: env.fail(leak_apps.noop),
        lambda env: env.mark_non_idempotent(leak_apps.noop),
    ],
    ids=["crash_after", "crash_before", "crash_during", "fail", "mark_non_idempotent"],
)
def test_faults_on_a_closed_env_are_refused_at_the_call(arm: Callable[[WorkflowEnv], None]) -> None:
    with WorkflowEnv(seed=1) as env:
        env.start(leak_apps.noop).result
    with pytest.raises(InvalidArgument, match=r"\(\) on a closed WorkflowEnv: this WorkflowEnv is closed; create a new one\.$"):
        arm(env)


def test_faults_may_be_armed_before_open() -> None:
    env = WorkflowEnv(seed=1)
    env.crash_after("noop")
    assert active_world() is None  # arming does not open
    with env:
        assert env.start(leak_apps.calls_noop).result == 1
        assert env.crashes == 1



def test_close_from_inside_a_task_during_a_crash_check() -> None:
    state = random.getstate()
    with pytest.raises(InvalidArgument, match="closed"), WorkflowEnv(seed=1) as env:
        leak_apps.ENV.append(env)
        env.check_crash_safety(leak_apps.closes_its_env)
    assert random.getstate() == state


def test_a_base_exception_during_a_crash_check() -> None:
    with pytest.raises(SystemExit), WorkflowEnv(seed=1) as env:
        env.check_crash_safety(leak_apps.exits)
