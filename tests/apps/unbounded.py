"""Workflows and tasks that never end on their own: the hard bounds on work must stop them."""

from __future__ import annotations

import datetime as dt
import time

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "wf-tests-unbounded"})


@app.task
def leaf(i: int) -> int:
    return i


@app.workflow
def route_forever() -> None:
    """Routes children forever and never waits for one: never leaves its first slice."""
    i = 0
    while True:
        route_forever.wf.root.execute_task(leaf, i)
        i += 1


@app.workflow
def uuid_forever() -> None:
    """Records a deterministic uuid forever: one history step each, no parking."""
    while True:
        uuid_forever.wf.root.uuid()


@app.task
def busy_wait_now(seconds: float) -> str:
    """Busy-waits on datetime.now(): the virtual clock never moves inside a slice."""
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    while dt.datetime.now(dt.UTC) < deadline:
        pass
    return "done"


@app.task
def busy_wait_time(seconds: float) -> str:
    """The same busy wait on time.time()."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        pass
    return "done"


@app.task
def spin() -> None:
    """A pure-CPU loop that never reads the clock and never yields."""
    n = 0
    while True:
        n += 1


@app.task
def slow_but_finite(rounds: int) -> int:
    """Reads the clock a lot while doing real work (committing nothing): not a busy wait
    only while under the detector's threshold."""
    total = 0
    for i in range(rounds):
        total += i + int(time.time() > 0)
    return total


@app.task
def sleep_forever() -> None:
    """Parks on a virtual sleep forever: many slices, no step."""
    while True:
        time.sleep(1)
