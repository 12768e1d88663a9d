"""The main test app: small tasks and workflows exercising the simulated runtime.

Everything here is module-level on purpose: pynenc resolves a task by ``module.function``.
Step names in the tests are these function names (``child#2`` is the second ``child`` call).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import random
import time
import uuid
from time import sleep as imported_sleep  # bound before any WorkflowEnv patches time.sleep
from typing import Any

from pynenc import Pynenc
from pynenc.workflow.workflow_exceptions import WorkflowPauseError

app = Pynenc(config_values={"app_id": "wf-tests-flows"})


class OrderError(Exception):
    """A domain error of the user's code: tests check it comes back unchanged."""


# --------------------------------------------------------------------------- plain tasks


@app.task
def child(i: int) -> int:
    return i * 10


@app.task
def add(x: int, y: int) -> int:
    return x + y


TASK_CONTEXT: contextvars.ContextVar[str] = contextvars.ContextVar("task_context", default="")


@app.task
def mark_context(tag: str) -> str:
    """Sets a context variable and returns what it held before (each run starts afresh)."""
    seen = TASK_CONTEXT.get()
    TASK_CONTEXT.set(tag)
    return seen


@app.workflow
def mark_contexts(n: int) -> list[str]:
    root = mark_contexts.wf.root
    return [root.execute_task(mark_context, f"run-{i}").result for i in range(n)]


@app.task
def explode(message: str) -> None:
    raise OrderError(message)


@app.task(retry_for=(ValueError,), max_retries=3)
def flaky(fail_times: int) -> int:
    """Fails with ValueError on its first ``fail_times`` attempts; returns the attempt number."""
    retries = flaky.invocation.num_retries
    if retries < fail_times:
        raise ValueError(f"flaky attempt {retries + 1}")
    return retries + 1


@app.task(retry_for=(ValueError,), max_retries=2)
def flaky_wrong_error() -> None:
    """Raises an error that is not in ``retry_for``: never retried."""
    raise OrderError("not retriable")


@app.task(retry_for=(Exception,), max_retries=10**9)
def always_fails() -> None:
    raise RuntimeError("always fails")


@app.task
def pause_me() -> None:
    # pynenc 0.4 swallows WorkflowPauseError and leaves the invocation RUNNING for good.
    raise WorkflowPauseError("waiting for a human")


# --------------------------------------------------------------------------- time


@app.task
def nap(tag: str, seconds: float) -> tuple[str, str, str]:
    """Sleeps (virtually) and reports the virtual instants before and after."""
    before = dt.datetime.now(dt.UTC).isoformat()
    time.sleep(seconds)
    return tag, before, dt.datetime.now(dt.UTC).isoformat()


@app.task
def nap_with_imported_sleep(seconds: float) -> str:
    """Uses ``from time import sleep`` bound at import time (before the env patched it)."""
    imported_sleep(seconds)
    return dt.datetime.now(dt.UTC).isoformat()


@app.task
def nap_with_local_import(seconds: float) -> str:
    """``from time import sleep`` inside the function: resolved while the env is open."""
    from time import sleep

    sleep(seconds)
    return dt.datetime.now(dt.UTC).isoformat()


@app.workflow
def napper(tag: str, seconds: float, times: int) -> list[str]:
    """Sleeps ``times`` times in a row (one ``nap`` child each) and lists the wake-up instants."""
    return [nap(tag, seconds).result[2] for _ in range(times)]


@app.task
def clock_reads() -> dict[str, Any]:
    """Every wall-clock read a user might do, plus two real-duration reads across real work."""
    pc0, mono0 = time.perf_counter(), time.monotonic()
    pc0_ns, mono0_ns = time.perf_counter_ns(), time.monotonic_ns()
    total = 0
    for i in range(50_000):
        total += i
    while time.perf_counter() == pc0:  # pragma: no cover - guards a coarse clock
        total += 1
    return {
        "now_naive": dt.datetime.now().isoformat(),
        "now_utc": dt.datetime.now(dt.UTC).isoformat(),
        "utcnow": dt.datetime.utcnow().isoformat(),
        "today": dt.date.today().isoformat(),
        "time": time.time(),
        "time_ns": time.time_ns(),
        "perf_counter_delta": time.perf_counter() - pc0,
        "monotonic_delta": time.monotonic() - mono0,
        "perf_counter_ns_delta": time.perf_counter_ns() - pc0_ns,
        "monotonic_ns_delta": time.monotonic_ns() - mono0_ns,
    }


@app.task
def sleep_and_measure(seconds: float) -> dict[str, float]:
    """A long virtual sleep between two reads of both clocks."""
    t0, pc0 = time.time(), time.perf_counter()
    time.sleep(seconds)
    return {"virtual": time.time() - t0, "real": time.perf_counter() - pc0}


@app.task
def clock_samples(n: int, step: float) -> list[float]:
    """Reads ``time.time()`` around ``n`` sleeps: a clock that never goes back gives a sorted list."""
    samples = [time.time()]
    for _ in range(n):
        time.sleep(step)
        samples.append(time.time())
    return samples


# --------------------------------------------------------------------------- workflows


@app.workflow
def sequential(n: int) -> list[int]:
    """``n`` durable children one after the other (recorded: a replay reuses them)."""
    return [sequential.wf.root.execute_task(child, i).result for i in range(n)]


@app.workflow
def running_sum(n: int) -> int:
    """``n`` sequential direct child calls, each using the previous result."""
    total = 0
    for i in range(n):
        total = add(total, i).result
    return total


@app.workflow
def fan_out(n: int) -> list[int]:
    """Routes ``n`` children first, then waits on each in order."""
    invocations = [child(i) for i in range(n)]
    return [inv.result for inv in invocations]


@app.workflow
def fan_out_parallelize(n: int) -> list[int]:
    """pynenc's own fan-out: ``task.parallelize`` and the group's ``.results``."""
    return sorted(child.parallelize([(i,) for i in range(n)]).results)


@app.workflow
def parent_of_subworkflows(sizes: list[int]) -> list[list[int]]:
    """Starts one ``sequential`` sub-workflow per size, concurrently, and collects them."""
    runs = [sequential(size) for size in sizes]
    return [run.result for run in runs]


@app.workflow
def fails_through_child(message: str) -> None:
    """The child's ``OrderError`` propagates through ``.result`` and fails the workflow."""
    explode(message).result


@app.workflow
def waits_on_paused() -> None:
    pause_me().result


@app.workflow
def spawn_forever() -> None:
    i = 0
    while True:
        child(i).result
        i += 1


@app.workflow
def uuid_then_child() -> tuple[str, int]:
    """A deterministic uuid recorded before a child runs."""
    value = uuid_then_child.wf.root.uuid()
    return value, uuid_then_child.wf.root.execute_task(child, 1).result


@app.task
def activity_randomness() -> dict[str, Any]:
    """An activity that draws from the stdlib: seeded by the environment."""
    return {
        "uuid4": str(uuid.uuid4()),
        "random": random.random(),
        "randint": random.randint(0, 10**9),
    }


@app.workflow
def branch(k: int) -> int:
    """One branch of ``concurrent_world``: parallel children, a sleep, a durable child."""
    invocations = [child(k * 100 + i) for i in range(3)]
    total = sum(inv.result for inv in invocations)
    nap(f"branch-{k}", 1 + k % 2).result
    return total + branch.wf.root.execute_task(add, total, k).result


@app.workflow
def concurrent_world(n: int) -> list[int]:
    """``n`` concurrent sub-workflows plus direct children: many interleavings per seed."""
    subs = [branch(k) for k in range(n)]
    extra = [child(1000 + k) for k in range(n)]
    return [s.result for s in subs] + [e.result for e in extra]


@app.task
def calls_unused_app() -> int:
    """Calls a task of an app that no WorkflowEnv uses."""
    from tests.apps import other

    return other.echo(1).result


#: Lets a test hand an object to a task (only for misuse tests: tasks must not drive the env).
SIDE_CHANNEL: dict[str, Any] = {}


@app.task
def drives_the_env() -> None:
    SIDE_CHANNEL["env"].run_until_idle()


@app.task
def asserts(value: int) -> int:
    assert value > 0, f"value must be positive, got {value}"
    return value


@app.task(retry_for=(Exception,), max_retries=3)
def asserts_with_retries(value: int) -> int:
    assert value > 0, f"value must be positive, got {value}"
    return value


@app.workflow
def workflow_asserting(value: int) -> int:
    got = child(value).result
    assert got > 100, f"child returned {got}"
    return got
