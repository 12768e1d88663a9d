"""Module-level apps for the eviction tests (tests/test_eviction.py).

``tally_flow`` and ``drifting_flow`` are wrong on purpose: they keep state in a module global
across a wait, which a cached workflow never notices and an evicted one (its body re-executed
from the store) does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "eviction-tests"}))

#: Activities' executions, in order (the outside world: survives crashes and evictions).
CALLS: list[str] = []
#: Bug: counts the workflow's executions in process memory.
TALLY: list[int] = []
#: Bug: how many times ``drifting_flow``'s body started, in process memory.
STARTS = {"n": 0}


def reset() -> None:
    CALLS.clear()
    TALLY.clear()
    STARTS["n"] = 0


@app.task
def note(what: str) -> str:
    CALLS.append(what)
    return what.upper()


@app.workflow
def errand() -> str:
    """A child workflow: one activity after an hour."""
    root = errand.wf.root
    root.sleep(dt.timedelta(hours=1))
    return root.execute_task(note, "errand").result  # type: ignore[no-any-return]


@app.workflow
def mixed_flow(order: str) -> dict[str, Any]:
    """Every kind of wait: timers, a signal with a timeout, a child workflow, a child task."""
    root = mixed_flow.wf.root
    first = root.execute_task(note, f"{order}:start").result
    root.sleep(dt.timedelta(hours=2))
    approval = root.wait_for_signal("approve", timeout=dt.timedelta(days=1))
    child = root.execute_task(errand).result
    root.sleep(dt.timedelta(minutes=30))
    last = root.execute_task(note, f"{order}:done").result
    return {"first": first, "approval": approval, "child": child, "last": last,
            "at": root.now().isoformat()}


@app.workflow
def hourly(hours: int) -> int:
    """``hours`` durable sleeps of an hour each."""
    root = hourly.wf.root
    for _ in range(hours):
        root.sleep(dt.timedelta(hours=1))
    return hours


@app.workflow
def tally_flow() -> int:
    """Bug: the number of items is kept in a module global across the wait."""
    root = tally_flow.wf.root
    TALLY.append(1)
    root.sleep(dt.timedelta(hours=1))
    root.execute_task(note, f"tally {len(TALLY)}").result
    return len(TALLY)


@app.workflow
def drifting_flow() -> str:
    """Bug: which activity it calls depends on process memory, not on its history."""
    root = drifting_flow.wf.root
    STARTS["n"] += 1
    first = root.execute_task(note, f"call from start {STARTS['n']}").result
    root.sleep(dt.timedelta(hours=1))
    return first  # type: ignore[no-any-return]


@app.workflow
def swallowing_flow() -> str:
    """Bug: a broad ``except Exception`` around a wait also catches the engine's
    ``WorkflowSuspended`` (a pynenc ``WorkflowPauseError``) that leaves the worker: cached
    waits and crashes never raise it, an evicted (production) wait does."""
    root = swallowing_flow.wf.root
    try:
        root.sleep(dt.timedelta(hours=1))
        outcome = "rested"
    except Exception:  # meant for a failing sleep; swallows the suspension too
        outcome = "interrupted"
    return root.execute_task(note, outcome).result  # type: ignore[no-any-return]


@app.workflow
def second_nap_swallower() -> str:
    """Bug: like ``swallowing_flow``, but only around its second wait: an eviction there (and
    nowhere else, and no crash) takes the suspension for a failure."""
    root = second_nap_swallower.wf.root
    root.sleep(dt.timedelta(hours=1))
    try:
        root.sleep(dt.timedelta(hours=1))
        outcome = "rested"
    except Exception:  # meant for a failing sleep; swallows the suspension too
        outcome = "interrupted"
    root.sleep(dt.timedelta(hours=1))
    return root.execute_task(note, outcome).result  # type: ignore[no-any-return]


@app.task
def outside_job(n: int) -> int:
    CALLS.append(f"outside {n}")
    return n * 10


@app.workflow
def job_watcher(hours: int) -> int:
    """Waits for any new run of ``outside_job`` (``wait_for_task(task)``)."""
    root = job_watcher.wf.root
    return root.wait_for_task(outside_job, timeout=dt.timedelta(hours=hours))  # type: ignore[no-any-return]


@app.task
def refuse(what: str) -> None:
    CALLS.append(f"refuse {what}")
    raise RuntimeError(f"the refund service is down for {what}")


@app.workflow
def slow_undo(what: str) -> str:
    """A compensation that takes an hour (a child workflow)."""
    root = slow_undo.wf.root
    root.sleep(dt.timedelta(hours=1))
    return root.execute_task(note, f"undo {what}").result  # type: ignore[no-any-return]


@app.workflow
def compensating_flow(order: str) -> str:
    """Fails after booking; compensations newest first: one fails, one takes an hour."""
    root = compensating_flow.wf.root
    with root.saga() as saga:
        root.execute_task(note, f"book {order}").result
        saga.add_compensation(slow_undo, order)
        saga.add_compensation(refuse, order)
        root.sleep(dt.timedelta(minutes=5))
        raise ValueError(f"card declined for {order}")
