"""Recording a halt in the workflow's durable data, on its own so that ``exceptions`` (whose
``WorkflowHaltException`` records itself when raised) depends on nothing above ``schema``.

A resume or a cancel can arrive while a halt is being recorded, after ``halt#n`` is written
but before the workflow is parked: the resumer then finds no ``HALTED`` flag and routes
nothing. ``recheck_halt`` (called by ``wf.root.halt()`` once parked) closes that window like
a suspension's record-then-recheck: the halting workflow reads its halt record again and, if
it was resumed or cancelled meanwhile and nobody else routes it, goes on in place.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pynenc import context

from pynenc_wf_testing.engine import schema

if TYPE_CHECKING:
    from pynenc.app import Pynenc


def record_halt(app: Pynenc, invocation: Any, reason: str) -> None:
    """Mark the workflow halted in its data and move its invocation to pynenc's PAUSED
    status (pynenc itself swallows WorkflowPauseError and would leave it RUNNING, where a
    crash recovery would re-run it)."""
    from pynenc.invocation.status import InvocationStatus

    from pynenc_wf_testing.engine.hooks import active_hooks

    runner_ctx = context.get_runner_context(app.app_id)
    parks = runner_ctx is not None and invocation.task.is_workflow_root_task
    if parks and active_hooks() is None:
        status = app.orchestrator.get_invocation_status(invocation.invocation_id)
        if status == InvocationStatus.RUNNING:
            # Production: the suspension record (the wake claim's generation) goes first, so
            # a resumer that sees HALTED always wakes it through the claim, never directly.
            _record_suspension(app, invocation, reason)
    app.state_backend.set_workflow_data(invocation.workflow, schema.HALTED, reason or "halted")
    if not parks:
        return
    status = app.orchestrator.get_invocation_status(invocation.invocation_id)
    if status == InvocationStatus.RUNNING:
        app.orchestrator.set_invocation_status(
            invocation.invocation_id, InvocationStatus.PAUSED, runner_ctx
        )


def _record_suspension(app: Pynenc, invocation: Any, reason: str) -> None:
    """In production a halted workflow is also suspended (no wake keys): resume, cancel and
    the halting workflow's own recheck race through one wake claim. With a run timeout the
    deadline is indexed too: the timer service routes it again then, and its ``halt()``
    raises the timeout (a halt does not outlive the run)."""
    from pynenc_wf_testing.engine._timers import ensure_timer_service
    from pynenc_wf_testing.engine.atomic import atomic_store

    deadline = app.state_backend.get_workflow_data(invocation.workflow, schema.DEADLINE)
    previous = app.state_backend.get_workflow_data(invocation.workflow, schema.SUSPENDED)
    record = schema.SuspensionRecord(
        gen=(previous["gen"] if previous else 0) + 1,
        keys=[],
        deadline=deadline,
        what=f"halt {reason!r}" + ("" if deadline is None else " (run timeout)"),
        at=dt.datetime.now(dt.UTC).isoformat(),
    )
    app.state_backend.set_workflow_data(invocation.workflow, schema.SUSPENDED, record)
    if deadline is None:
        return
    workflow_id = str(invocation.workflow.workflow_id)
    atomic_store(app).schedule(
        schema.DUE_INDEX, workflow_id, dt.datetime.fromisoformat(deadline).timestamp()
    )
    ensure_timer_service(app)


def recheck_halt(app: Pynenc, invocation: Any, halt_key: str) -> bool:
    """Called by ``wf.root.halt()`` once the halt is recorded and the workflow parked: True
    if a resume or cancel came in between and this execution must go on in place (it is
    RUNNING again, no longer marked halted); False: stay parked (raise the halt).

    Who routes it again is decided once: in production by the suspension's wake claim
    (whoever claims it, this execution or a waker); under a simulator, which runs one thing
    at a time, by the HALTED flag (a resumer that saw it cleared it and routed the workflow;
    one that came before it was written routed nothing)."""
    from pynenc.invocation.status import InvocationStatus

    from pynenc_wf_testing.engine.hooks import active_hooks

    identity = invocation.workflow
    backend = app.state_backend
    record = backend.get_workflow_data(identity, halt_key)
    resumed = record is not None and bool(record.get("resumed"))
    if not resumed and backend.get_workflow_data(identity, schema.CANCEL) is None:
        return False  # the usual case: nothing arrived while parking
    workflow_id = str(identity.workflow_id)
    if active_hooks() is None:
        from pynenc_wf_testing.engine.atomic import atomic_store

        suspension = backend.get_workflow_data(identity, schema.SUSPENDED)
        if suspension is None:
            return False  # not parked by record_halt (no runner): nothing to recheck
        backend.set_workflow_data(identity, schema.HALTED, None)  # the halt is over
        store = atomic_store(app)
        if store.put_if_absent(schema.wake_claim(workflow_id, suspension["gen"]), "self") is not None:
            return False  # a waker claimed it first: it routes the workflow again
        store.unschedule(schema.DUE_INDEX, workflow_id)  # a halt's only index: its run deadline
    else:
        if backend.get_workflow_data(identity, schema.HALTED) is None:
            return False  # the resumer saw the halt: it routed the workflow again
        backend.set_workflow_data(identity, schema.HALTED, None)
    runner_ctx = context.get_runner_context(app.app_id)
    status = app.orchestrator.get_invocation_status(invocation.invocation_id)
    if status == InvocationStatus.PAUSED:
        app.orchestrator.set_invocation_status(
            invocation.invocation_id, InvocationStatus.RUNNING, runner_ctx
        )
    return True
