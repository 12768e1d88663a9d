"""The last waits that held a thread, on ThreadRunner + SQLite: ``wait_for_task(task)`` (any
new run of a task) and a compensation waiting for its child suspend like every other wait
(PAUSED, no thread held) and are routed again by the timer service.

Waits are on conditions with generous bounds (``prod.wait_until``), never on sleeps; the
children block on in-process gates (``prod_app.GATES``) the test opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import WaitTimeout, describe_workflow, schema
from pynenc_wf_testing.engine.atomic import atomic_store
from tests.production import prod_app as pa
from tests.production.conftest import Production
from tests.production.test_engine_production import logged
from tests.production.test_suspension import busy_threads, suspension

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

PAUSED = InvocationStatus.PAUSED
BOUND = 30.0


@pytest.fixture(autouse=True)
def _gates() -> Iterator[None]:
    pa.GATES.clear()
    yield
    for gate in pa.GATES.values():
        gate.set()  # nothing left blocked for the next test


def _task_key() -> str:
    return str(pa.gated_work.task_id.key)


def _suspended_and_free(prod: Production, runner: Any, run: Any, gen: int = 1) -> None:
    """``run`` is PAUSED on its ``gen``-th suspension and no runner thread holds it."""
    prod.wait_until(
        lambda: prod.status(run) == PAUSED and (suspension(prod, run) or {}).get("gen") == gen,
        timeout=BOUND,
    )
    prod.wait_until(lambda: str(run.invocation_id) not in busy_threads(runner), timeout=BOUND)


def test_wait_for_any_new_run_of_a_task_suspends_and_a_new_run_wakes_it(
    prod: Production,
) -> None:
    runner = prod.start_runner()
    run = pa.gate_watcher(600.0)
    _suspended_and_free(prod, runner, run)
    record = suspension(prod, run)
    assert record["keys"] == [f"task:{_task_key()}"]
    assert record["finals"] == {_task_key(): 0}
    assert describe_workflow(prod.app, run).suspended == "a run of task gated_work"
    members = atomic_store(prod.app).members(schema.WATCHED_TASKS)
    assert members == [f"0 {run.invocation_id} {_task_key()}"]
    pa.GATES["new"].set()
    pa.gated_work("new")
    assert prod.result(run, timeout=BOUND) == "new"
    assert atomic_store(prod.app).members(schema.WATCHED_TASKS) == []


def test_a_run_going_before_the_wait_wakes_it_for_nothing_and_it_suspends_again(
    prod: Production,
) -> None:
    """The timer service counts final runs of the task, one query per tick for every waiting
    workflow: a run routed before the wait changes the count when it finishes, the workflow
    re-checks (that run is not new) and suspends again with the new count."""
    runner = prod.start_runner()
    early = pa.gated_work("early")  # its gate is closed: it runs on
    prod.wait_until(lambda: prod.status(early) == InvocationStatus.RUNNING, timeout=BOUND)
    run = pa.gate_watcher(600.0)
    _suspended_and_free(prod, runner, run)
    pa.GATES["early"].set()
    _suspended_and_free(prod, runner, run, gen=2)
    assert suspension(prod, run)["finals"] == {_task_key(): 1}
    pa.GATES["late"].set()
    pa.gated_work("late")
    assert prod.result(run, timeout=BOUND) == "late"


def test_wait_for_a_task_times_out_through_the_timer_service(prod: Production) -> None:
    runner = prod.start_runner()
    run = pa.gate_watcher(1.0)
    _suspended_and_free(prod, runner, run)
    assert suspension(prod, run)["deadline"] is not None
    with pytest.raises(WaitTimeout, match="a run of task gated_work"):
        prod.result(run, timeout=BOUND)
    assert atomic_store(prod.app).members(schema.WATCHED_TASKS) == []


def test_a_compensation_waiting_for_its_child_holds_no_thread(prod: Production) -> None:
    """The compensations of a failed saga: the failing one is recorded, the slow one
    suspends the workflow until its child finishes; re-executions return the recorded
    results (each compensation ran once) and the workflow fails with its own error, the
    compensation's failure attached as a note."""
    runner = prod.start_runner()
    run = pa.slow_compensation("trip")
    # (the failing compensation's wait may suspend first, if its child is not final yet)
    prod.wait_until(
        lambda: "gated_work" in (describe_workflow(prod.app, run).suspended or ""),
        timeout=BOUND,
    )
    prod.wait_until(lambda: str(run.invocation_id) not in busy_threads(runner), timeout=BOUND)
    record = suspension(prod, run)
    assert len(record["keys"]) == 1 and record["keys"][0].startswith("inv:")
    assert prod.status(run) == PAUSED
    pa.GATES["trip-undo"].set()
    with pytest.raises(pa.Fatal, match="trip: declined") as failed:
        prod.result(run, timeout=BOUND)
    assert failed.value.__notes__ == [
        "compensation refuse_unbook('trip') failed: Fatal: cannot unbook trip"
    ]
    assert logged("refuse_unbook") == ["trip"]
    assert logged("gated_work") == ["trip-undo"]
    assert logged("book") == ["trip"] and logged("declined") == ["trip"]
