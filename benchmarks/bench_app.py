"""The benchmark's pynenc app: module-level tasks, as a user's project would define them.

pynenc needs tasks at module level in an importable module (not ``__main__``), so the workloads
of ``benchmarks/run.py`` live here. The app is created with no component keys: each contender
puts it on its own components (the harness through ``WorkflowEnv.use``, the baselines by setting
``config_values`` and resetting the cached components), so every round starts from empty
in-memory stores.
"""

from __future__ import annotations

import time

from pynenc import Pynenc

APP_ID = "bench"

app = Pynenc(config_values={"app_id": APP_ID, "logging_level": "error"})


def step_body(workflow_index: int, index: int, total: int) -> int:
    """The trivial work of one child step (shared with the plain-Python ceiling)."""
    return total + workflow_index + index


@app.task
def step(workflow_index: int, index: int, total: int) -> int:
    """A trivial child task (its arguments differ per call: pynenc keys children by call)."""
    return step_body(workflow_index, index, total)


@app.workflow
def chain(workflow_index: int, n_steps: int) -> int:
    """A workflow that calls ``n_steps`` child tasks in sequence, each awaiting the last."""
    total = 0
    for i in range(n_steps):
        total = chain.wf.root.execute_task(step, workflow_index, i, total).result
    return total


def plain_chain(workflow_index: int, n_steps: int) -> int:
    """The same work as :func:`chain` as plain Python function calls (the ceiling)."""
    total = 0
    for i in range(n_steps):
        total = step_body(workflow_index, i, total)
    return total


def expected_chain(workflow_index: int, n_steps: int) -> int:
    return plain_chain(workflow_index, n_steps)


@app.task
def hourly_sleeper(hours: int) -> int:
    """Sleeps ``hours`` times one hour (durable sleeps under the harness: virtual time)."""
    for _ in range(hours):
        time.sleep(3600)
    return hours


@app.workflow
def month_workflow(hours: int) -> int:
    """A workflow whose child sleeps ``hours`` hourly sleeps (720 = 30 days)."""
    return month_workflow.wf.root.execute_task(hourly_sleeper, hours).result
