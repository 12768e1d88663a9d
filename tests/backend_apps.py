"""Module-level pynenc app for the backend tests (memory, sqlite, redis).

The same workflows run on every backend: the tests compare their results and step names.
``kill_point`` serves the two-process SQLite crash test: it ends its whole process with
``os._exit`` when the environment variable ``WF_KILL_AT`` names its argument.
"""

from __future__ import annotations

import os
import threading
import time

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "wf-backend-tests"})

#: Attempts per argument of ``flaky`` (an external counter that survives worker crashes).
FLAKY_RUNS: dict[int, int] = {}


def reset() -> None:
    FLAKY_RUNS.clear()


class Transient(Exception):
    """A transient failure that ``flaky`` retries on."""


@app.task
def double(i: int) -> int:
    return i * 2


@app.task
def slow_double(i: int) -> int:
    time.sleep(30)  # durable I/O: half a virtual minute
    return i * 2


@app.task(retry_for=(Transient,), max_retries=3)
def flaky(i: int) -> int:
    """Fails with ``Transient`` on its first two attempts for each argument."""
    FLAKY_RUNS[i] = FLAKY_RUNS.get(i, 0) + 1
    if FLAKY_RUNS[i] <= 2:
        raise Transient(f"attempt {FLAKY_RUNS[i]} of flaky({i})")
    return i + 100


@app.workflow
def chain(n: int) -> int:
    """``n`` sequential children, each a durable step."""
    total = 0
    for i in range(n):
        total += chain.wf.root.execute_task(slow_double, i).result
    return total


@app.workflow
def order(n: int) -> dict[str, object]:
    """Children, a retried child, workflow data, a deterministic uuid and a sub-workflow."""
    token = order.wf.root.uuid()
    order.wf.set_data("stage", "charging")
    first = order.wf.root.execute_task(double, n).result
    retried = order.wf.root.execute_task(flaky, n).result
    order.wf.set_data("stage", "shipping")
    shipped = order.wf.root.execute_task(chain, 2).result
    return {
        "token_len": len(token),
        "first": first,
        "retried": retried,
        "shipped": shipped,
        "stage": order.wf.get_data("stage"),
    }


@app.task
def remember_callback(key: str) -> str:
    """Stores a lambda in workflow data: fine in memory, lost by a serializing backend."""
    remember_callback.wf.set_data(key, lambda amount: amount * 2)
    return key


@app.task
def remember_lock(key: str) -> str:
    """Stores a lock in workflow data (jsonpickle rebuilds a new lock: it survives)."""
    remember_lock.wf.set_data(key, threading.Lock())
    return key


@app.workflow
def stores_callback() -> str:
    return stores_callback.wf.root.execute_task(remember_callback, "on_paid").result


@app.workflow
def stores_lock() -> str:
    return stores_lock.wf.root.execute_task(remember_lock, "guard").result


@app.task
def kill_point(i: int) -> int:
    """Ends the whole process, without any cleanup, when ``WF_KILL_AT`` equals ``i``."""
    if os.environ.get("WF_KILL_AT") == str(i):
        os._exit(17)
    return i * 10


@app.workflow
def killable(n: int) -> list[int]:
    return [killable.wf.root.execute_task(kill_point, i).result for i in range(n)]


@app.task
def slow_kill_point(i: int) -> int:
    """An hour of (virtual) work, then the same kill switch as ``kill_point``."""
    time.sleep(3600)
    if os.environ.get("WF_KILL_AT") == str(i):
        os._exit(17)
    return i


@app.workflow
def slow_killable(n: int) -> list[int]:
    return [slow_killable.wf.root.execute_task(slow_kill_point, i).result for i in range(n)]
