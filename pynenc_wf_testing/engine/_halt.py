"""Recording a halt in the workflow's durable data, on its own so that ``exceptions`` (whose
``WorkflowHaltException`` records itself when raised) depends on nothing above ``schema``."""

from __future__ import annotations

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

    app.state_backend.set_workflow_data(invocation.workflow, schema.HALTED, reason or "halted")
    runner_ctx = context.get_runner_context(app.app_id)
    if runner_ctx is None or not invocation.task.is_workflow_root_task:
        return
    status = app.orchestrator.get_invocation_status(invocation.invocation_id)
    if status == InvocationStatus.RUNNING:
        _index_run_deadline(app, invocation, reason)
        app.orchestrator.set_invocation_status(
            invocation.invocation_id, InvocationStatus.PAUSED, runner_ctx
        )


def _index_run_deadline(app: Pynenc, invocation: Any, reason: str) -> None:
    """In production, a halted workflow with a run timeout is also suspended on that
    deadline: the timer service routes it again then, and its ``halt()`` raises the timeout
    (a halt does not outlive the run)."""
    from pynenc_wf_testing.engine.hooks import active_hooks

    deadline = app.state_backend.get_workflow_data(invocation.workflow, schema.DEADLINE)
    if deadline is None or active_hooks() is not None:
        return
    import datetime as dt

    from pynenc_wf_testing.engine._timers import ensure_timer_service
    from pynenc_wf_testing.engine.atomic import atomic_store

    previous = app.state_backend.get_workflow_data(invocation.workflow, schema.SUSPENDED)
    record = schema.SuspensionRecord(
        gen=(previous["gen"] if previous else 0) + 1,
        keys=[],
        deadline=deadline,
        what=f"halt {reason!r} (run timeout)",
        at=dt.datetime.now(dt.UTC).isoformat(),
    )
    app.state_backend.set_workflow_data(invocation.workflow, schema.SUSPENDED, record)
    workflow_id = str(invocation.workflow.workflow_id)
    atomic_store(app).schedule(
        schema.DUE_INDEX, workflow_id, dt.datetime.fromisoformat(deadline).timestamp()
    )
    ensure_timer_service(app)
