"""A module-level pynenc app for the report tests (tests/test_render.py).

    order(item, amount)
      reserve            2 s
      charge             3 s, retried on Transient (the tests inject failures)
      ship(item)         a sub-workflow
        uuid#1           a recorded value
        print_label      fails once with Transient, then succeeds (a natural retry)
        dispatch         waits 4 h for the courier
"""

from __future__ import annotations

import time

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "render-apps"})


class Transient(Exception):
    """A retriable error."""


@app.task
def reserve(item: str) -> str:
    time.sleep(2)
    return f"r-{item}"


@app.task(retry_for=(Transient,), max_retries=3)
def charge(amount: int) -> str:
    time.sleep(3)
    return f"ch-{amount}"


@app.task(retry_for=(Transient,), max_retries=3)
def print_label(item: str) -> str:
    time.sleep(1)
    if print_label.invocation.num_retries < 1:
        raise Transient("the label printer is busy")
    return f"label-{item}"


@app.task
def dispatch(label: str) -> str:
    time.sleep(4 * 60 * 60)
    return f"sent-{label}"


@app.workflow
def ship(item: str) -> str:
    root = ship.wf.root
    token = root.uuid()
    label = root.execute_task(print_label, item).result
    sent = root.execute_task(dispatch, label).result
    return f"{sent}/{str(token)[:4]}"


@app.workflow
def order(item: str, amount: int) -> str:
    root = order.wf.root
    root.execute_task(reserve, item).result
    root.execute_task(charge, amount).result
    return root.execute_task(ship, item).result


@app.workflow
def courier(label: str) -> str:
    """Waits for one dispatch: unfinished until the clock passes 4 h."""
    return courier.wf.root.execute_task(dispatch, label).result
