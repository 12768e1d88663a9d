"""Workflows for the parent-close policy and enforced cancellation (tests/test_parent_close.py).

They run on the engine app of tests/engine_apps.py and record into its ``CALLS`` (reset by
``engine_apps.reset()``). Tasks live at module level: pynenc resolves them by name.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pynenc_wf_testing.engine import ParentClosePolicy, WorkflowCancelled
from tests.engine_apps import CALLS, app, now


@app.task
def slow_job(label: str, hours: float) -> str:
    """Busy (in virtual time) for ``hours``, then records that it finished."""
    time.sleep(hours * 3600)
    CALLS.append(("slow_job", label, now()))
    return label


@app.task
def undo(label: str) -> str:
    CALLS.append(("undo", label, now()))
    return label


@app.task
def spawner(label: str) -> str:
    """A member task busy for 5 hours."""
    time.sleep(5 * 3600)
    CALLS.append(("spawner", label, now()))
    return label


@app.workflow
def blocked_on_child(hours: float) -> str:
    """Blocked in a plain ``.result`` on a child busy for ``hours``."""
    root = blocked_on_child.wf.root
    with root.saga() as saga:
        saga.add_compensation(undo, "booking")
        return str(root.execute_task(slow_job, "child", hours).result)


@app.workflow
def blocked_on_abandoned_child(hours: float) -> str:
    """Blocked in a plain ``.result`` on a child it abandons if it closes."""
    root = blocked_on_abandoned_child.wf.root
    child = root.start_child(slow_job, "abandoned", hours, parent_close=ParentClosePolicy.ABANDON)
    return str(child.result)


@app.workflow
def fire_and_forget(policy: str) -> str:
    """Starts a child it never waits for, then completes at once."""
    root = fire_and_forget.wf.root
    root.start_child(slow_job, f"forgotten-{policy}", 2, parent_close=policy)
    return "done"


@app.workflow
def fails_with_children() -> str:
    """Starts a long child and a member task with a grandchild, then fails."""
    root = fails_with_children.wf.root
    root.execute_task(slow_job, "sibling", 3)
    root.execute_task(spawner, "member")
    root.sleep(dt.timedelta(minutes=1))
    raise ValueError("the workflow itself failed")


@app.workflow
def sub_with_saga(label: str) -> str:
    """A sub-workflow with a compensation, blocked on its own slow child."""
    root = sub_with_saga.wf.root
    with root.saga() as saga:
        saga.add_compensation(undo, label)
        return str(root.execute_task(slow_job, f"{label}-child", 8).result)


@app.workflow
def parent_of_sub(wait: bool) -> str:
    """Starts a sub-workflow; waits for it (``wait``) or completes at once."""
    sub = parent_of_sub.wf.root.execute_task(sub_with_saga, "sub")
    return str(sub.result) if wait else "parent done"


@app.workflow
def cleans_up_after_cancel(hours: float) -> list[Any]:
    """Catches its cancellation and then waits on a cleanup child with a plain ``.result``."""
    root = cleans_up_after_cancel.wf.root
    try:
        root.execute_task(slow_job, "work", hours).result
    except WorkflowCancelled:
        return ["cleaned", root.execute_task(undo, "cleanup").result]
    return ["not cancelled"]


@app.workflow
def sleeps_with_a_child(hours: float) -> str:
    """Starts a child busy for ``hours`` without waiting for it, then sleeps a day."""
    root = sleeps_with_a_child.wf.root
    root.execute_task(slow_job, "background", hours)
    root.sleep(dt.timedelta(days=1))
    return "slept"
