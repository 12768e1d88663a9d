"""A small module-level app for the API fuzz test (tests/test_fuzz_api.py).

pynenc resolves a task by ``module.function``: every task lives here. Every workflow is
bounded (no loop waits on anything the fuzz may never send without a timeout).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "wf-tests-fuzz"}))


class FuzzBoom(Exception):
    """The workflows' own failure: it may surface from ``run.result``."""


@app.task
def double(x: int) -> int:
    return 2 * x


@app.task
def boom(x: int) -> int:
    raise FuzzBoom(x)


@app.workflow
def chain(n: int) -> int:
    """A few children, then a durable timer."""
    root = chain.wf.root
    total = 0
    for i in range(n % 3 + 1):
        total += root.execute_task(double, i).result
    root.sleep(dt.timedelta(minutes=5))
    return total


@app.workflow
def waiter(hours: int) -> Any:
    """Waits for signal ``go`` at most ``hours`` hours, publishing its state."""
    root = waiter.wf.root
    waiter.wf.save_state({"waiting": True})
    payload = root.wait_for_signal("go", timeout=dt.timedelta(hours=hours % 5 + 1), default=None)
    waiter.wf.save_state({"waiting": False})
    return payload


@app.workflow
def failing(x: int) -> int:
    """Fails through its child (``FuzzBoom``)."""
    return int(failing.wf.root.execute_task(boom, x).result)
