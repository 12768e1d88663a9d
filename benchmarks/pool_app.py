"""The pool benchmark's app (``benchmarks/pool.py``): ``bench_app``'s chain, plus the same chain
whose children have a higher pynenc priority. Each step is a virtual second of I/O."""

from __future__ import annotations

import time

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "bench-pool", "logging_level": "error"})


@app.task
def step(workflow_index: int, index: int, total: int) -> int:
    time.sleep(1)  # a virtual second of I/O: it holds the slot
    return total + workflow_index + index


@app.task(priority=10)
def step_urgent(workflow_index: int, index: int, total: int) -> int:
    time.sleep(1)
    return total + workflow_index + index


@app.workflow
def chain(workflow_index: int, n_steps: int) -> int:
    total = 0
    for i in range(n_steps):
        total = chain.wf.root.execute_task(step, workflow_index, i, total).result
    return total


@app.workflow
def chain_urgent(workflow_index: int, n_steps: int) -> int:
    total = 0
    for i in range(n_steps):
        total = chain_urgent.wf.root.execute_task(step_urgent, workflow_index, i, total).result
    return total
