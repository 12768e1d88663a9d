"""A resume (or cancel) that arrives while a halting workflow parks, on ThreadRunner + SQLite.

The race is driven with barriers inside the engine's halt path (``monkeypatch`` wrappers that
stop the workflow's thread at one point until the test has resumed it), not with sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import (
    WorkflowCancelled,
    _halt,
    _ops,
    cancel_workflow,
    describe_workflow,
    resume_workflow,
)
from tests.production import prod_app as pa
from tests.production.conftest import Production
from tests.production.test_engine_production import logged

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

BOUND = 30.0  # generous bound on each barrier: a failure, never a timing


class Barrier:
    """Holds the workflow's thread at one point until the test releases it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def hold(self) -> None:
        self.reached.set()
        assert self.release.wait(BOUND), "the test never released the workflow"

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            self.hold()
            return fn(*args, **kwargs)

        return held

    def wrap_after(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            value = fn(*args, **kwargs)
            self.hold()
            return value

        return held


def test_a_resume_before_the_halt_is_recorded_is_not_lost(
    prod: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``halt#1`` is written, the resume comes before HALTED: the resumer finds nothing
    parked and routes nothing; the halting workflow re-reads its halt once parked and goes
    on in its own thread."""
    barrier = Barrier()
    monkeypatch.setattr(_halt, "record_halt", barrier.wrap(_halt.record_halt))
    prod.start_runner()
    run = pa.approval(1)
    assert barrier.reached.wait(BOUND)
    resume_workflow(prod.app, run)  # halt#1 marked resumed; nothing halted to route yet
    assert describe_workflow(prod.app, run).halted is None
    barrier.release.set()
    assert prod.result(run, timeout=BOUND) == 2
    assert logged("note") == ["before 1", "after 1"]
    assert describe_workflow(prod.app, run).halted is None


def test_a_resume_after_parking_but_before_the_recheck_wakes_it_once(
    prod: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resumer sees the halt (PAUSED) and claims the wake-up; the workflow's recheck then
    finds the claim taken and leaves: routed again exactly once."""
    barrier = Barrier()
    monkeypatch.setattr(_ops, "recheck_halt", barrier.wrap(_halt.recheck_halt))
    prod.start_runner()
    run = pa.approval(2)
    assert barrier.reached.wait(BOUND)
    assert prod.status(run) == InvocationStatus.PAUSED
    resume_workflow(prod.app, run)
    barrier.release.set()
    assert prod.result(run, timeout=BOUND) == 3
    assert logged("note") == ["before 2", "after 2"]  # one re-execution went on, not two


def test_a_cancel_before_the_halt_is_recorded_is_not_lost(
    prod: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    barrier = Barrier()
    monkeypatch.setattr(_halt, "record_halt", barrier.wrap(_halt.record_halt))
    prod.start_runner()
    run = pa.approval(3)
    assert barrier.reached.wait(BOUND)
    cancel_workflow(prod.app, run, "no longer needed")
    barrier.release.set()
    with pytest.raises(WorkflowCancelled, match="no longer needed"):
        prod.result(run, timeout=BOUND)
    assert logged("note") == ["before 3"]


def test_a_halt_is_a_suspension_without_wake_keys(prod: Production) -> None:
    """In production a halt records a suspension (its wake claim is what resume, cancel and
    the halting workflow's recheck race for); nothing but those routes it again."""
    from pynenc_wf_testing.engine import schema

    prod.start_runner()
    run = pa.approval(4)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED, timeout=BOUND)
    description = describe_workflow(prod.app, run)
    assert description.halted == "needs approval"
    assert description.suspended == "halt 'needs approval'"
    record = prod.app.state_backend.get_workflow_data(run.workflow, schema.SUSPENDED)
    assert record["keys"] == [] and record["deadline"] is None
    resume_workflow(prod.app, run)
    assert prod.result(run, timeout=BOUND) == 5
    assert describe_workflow(prod.app, run).suspended is None
