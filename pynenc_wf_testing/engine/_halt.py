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
        app.orchestrator.set_invocation_status(
            invocation.invocation_id, InvocationStatus.PAUSED, runner_ctx
        )
