"""The parent-close policy: what happens to a workflow's running children when it ends.

When a workflow completes, fails, is cancelled or times out, each of its children that has
not finished is cancelled (``ParentClosePolicy.CANCEL``, the default) unless the call that
made it chose ``ParentClosePolicy.ABANDON`` (``wf.root.start_child(..., parent_close=...)``).
Cancelling a child:

- a sub-workflow (of an app with the engine) gets a cancellation request, as from
  ``cancel_workflow``: it ends through its own ``WorkflowCancelled`` (its sagas compensate)
  and closes its own children in turn;
- any other invocation is terminated: its status becomes FAILED with a ``WorkflowCancelled``
  error, so a ``.result`` waiting on it raises at once. A thread still running its code
  (production) finishes on its own; pynenc then refuses its late SUCCESS/FAILED (the
  transition from FAILED is not allowed) and only logs a warning.

The same cancellation reaches the running children at the instant a workflow is cancelled
(``cancel_workflow``) or its run timeout is raised (in production, for a run still RUNNING
at its deadline, by the timer service: ``_close_watch``): that is how a workflow blocked in a
plain ``.result`` on a child ends at that instant (the child it waits on fails with
``WorkflowCancelled`` / ``WorkflowTimeout``). The end of a run that completes or fails by
itself reaches the timer service through pynenc's status conditions (``_close_watch``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine.exceptions import (
    InvalidWorkflowArgument,
    WorkflowCancelled,
    WorkflowTimeout,
)
from pynenc_wf_testing.engine.hooks import active_hooks
from pynenc_wf_testing.engine.parent_close import ParentClosePolicy

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.task import Task

__all__ = ["cancel_children", "parse_policy", "request_cancel"]


def parse_policy(value: Any) -> ParentClosePolicy:
    """``value`` as a policy: a ``ParentClosePolicy`` or its value (``"cancel"``,
    ``"abandon"``); anything else is an ``InvalidWorkflowArgument``."""
    if isinstance(value, ParentClosePolicy):
        return value
    if isinstance(value, str):
        for policy in ParentClosePolicy:
            if value == policy.value:
                return policy
    valid = ", ".join(f"ParentClosePolicy.{p.name} ({p.value!r})" for p in ParentClosePolicy)
    raise InvalidWorkflowArgument(
        f"parent_close must be one of {valid}; got {value!r}."
    )


def call_id(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    from pynenc.arguments import Arguments
    from pynenc.call import Call

    return str(Call(task=task, arguments=Arguments.from_call(task.func, *args, **kwargs)).call_id)


def _is_workflow_root(invocation: Any) -> bool:
    workflow = invocation.workflow
    return workflow is not None and str(workflow.workflow_id) == str(invocation.invocation_id)


def _enabled(app: Pynenc) -> bool:
    return bool((app.config_values or {}).get("enable_workflows"))


def cancel_children(
    app: Pynenc,
    workflow_run_id: str,
    why: str,
    *,
    deadline: str | None = None,
    message: str | None = None,
) -> list[str]:
    """Cancel every unfinished child of workflow run ``workflow_run_id`` (and the unfinished
    member tasks they called) that was not abandoned; return the ids cancelled, in order.
    ``deadline``: the run timeout (ISO-8601) the workflow passed, if that is why;
    ``message``: the error message of the terminated children (see :func:`apply_close`)."""
    children = open_children(app, workflow_run_id)
    return apply_close(app, workflow_run_id, children, why, deadline=deadline, message=message)


def open_children(app: Pynenc, workflow_run_id: str) -> list[Any]:
    """The unfinished, not abandoned children of a workflow run and the member tasks they
    called, depth first, sorted by id under each parent (the same order in every replay).
    Sub-workflows are listed, not entered: each closes its own children. The invocation
    running this code and its ancestors are left out (an activity that cancels its own
    workflow finishes)."""
    from pynenc import context

    workflow = app.state_backend.get_invocation(workflow_run_id).workflow
    if workflow is None:
        return []
    spared: set[str] = set()
    current = context.get_dist_invocation_context(app.app_id)
    while current is not None:
        spared.add(str(current.invocation_id))
        parent = current.parent_invocation_id
        current = None if parent is None else app.state_backend.get_invocation(parent)
    found: list[Any] = []

    def visit(parent_id: str) -> None:
        for child_id in sorted(str(i) for i in app.state_backend.get_child_invocations(parent_id)):
            child = app.state_backend.get_invocation(child_id)
            if _abandoned(app, workflow, child):
                continue
            final = app.orchestrator.get_invocation_status(child_id).is_final()
            if not final and child_id not in spared:
                found.append(child)
            if not _is_workflow_root(child):
                visit(child_id)

    visit(workflow_run_id)
    return found


def apply_close(
    app: Pynenc,
    workflow_run_id: str,
    children: list[Any],
    why: str,
    *,
    deadline: str | None = None,
    message: str | None = None,
) -> list[str]:
    """Cancel ``children`` (from :func:`open_children`): request the cancellation of
    sub-workflows, terminate the others. Returns the ids actually cancelled.

    ``message``: the terminated children's error message; a cancellation or timeout gives
    the workflow's own (``workflow <id> was cancelled: <reason>``), so that a workflow that
    ends through the error of the child it waited on raises what it would have raised
    itself. Each error carries a note naming the child and why it was cancelled.

    When the parent timed out (``deadline``), a terminated child fails with
    ``WorkflowTimeout`` and a sub-workflow gets the parent's deadline as its own (it times
    out at once, closing its own children), else they end with ``WorkflowCancelled``. A
    parent waiting on one in a plain ``.result`` raises that error, and raises it again in
    every replay, where the child is found final."""
    done: list[str] = []
    for child in children:
        child_id = str(child.invocation_id)
        if _is_workflow_root(child):
            if not app.orchestrator.get_invocation_status(child_id).is_final():
                _cancel_sub_workflow(
                    app, child, f"its parent workflow {workflow_run_id} {why}", deadline
                )
                done.append(child_id)
        else:
            note = (
                f"task {child.task.task_id.func_name} ({child_id}) was cancelled: its "
                f"parent workflow {workflow_run_id} {why}"
            )
            error = (WorkflowCancelled if deadline is None else WorkflowTimeout)(
                message or note
            )
            if message is not None:
                error.add_note(note)
            if terminate(app, child, error):
                done.append(child_id)
    return done


def _abandoned(app: Pynenc, workflow: Any, child: Any) -> bool:
    return bool(
        app.state_backend.get_workflow_data(workflow, schema.abandon(str(child.call.call_id)))
    )


def _cancel_sub_workflow(app: Pynenc, child: Any, reason: str, deadline: str | None) -> None:
    sub_id = str(child.invocation_id)
    if not _enabled(app):
        error = (WorkflowCancelled if deadline is None else WorkflowTimeout)(
            f"sub-workflow {sub_id} was cancelled: {reason}"
        )
        terminate(app, child, error)
        return
    if deadline is None:
        request_cancel(app, sub_id, child.workflow, reason)
        return
    # The parent's run timeout becomes the sub-workflow's (if earlier than its own): it
    # times out, with WorkflowTimeout, wherever it waits.
    own = app.state_backend.get_workflow_data(child.workflow, schema.DEADLINE)
    if own is None or dt.datetime.fromisoformat(own) > dt.datetime.fromisoformat(deadline):
        app.state_backend.set_workflow_data(child.workflow, schema.DEADLINE, deadline)
        # a sub-workflow blocked in a plain .result times out through the timer service
        from pynenc_wf_testing.engine._timers import index_run_deadline

        index_run_deadline(app, sub_id, deadline)
    unpark(app, sub_id, child.workflow)
    wake(app, sub_id)


def request_cancel(app: Pynenc, workflow_id: str, identity: Any, reason: str) -> list[str]:
    """What ``cancel_workflow`` does once it found the run: record the request (the first
    reason stays), cancel the running children (production), route a halted run again, and
    wake the workflow wherever it waits. Returns the children cancelled."""
    # Children are listed before the request is recorded: the workflow routes its
    # compensations only once it sees the request, so none of them is among these.
    cancelled: list[str] = []
    if app.state_backend.get_workflow_data(identity, schema.CANCEL) is None:
        # In production nothing else reaches a workflow blocked in pynenc's .result: the
        # children are cancelled here, and the one it waits on fails. A simulator wakes
        # the workflow instead, which cancels them when it first sees the request (as on
        # every wait), so children it routes afterwards (cleanup) are left alone.
        hooks = active_hooks()
        simulated = hooks is not None and hooks.drives(app)
        children = [] if simulated else open_children(app, workflow_id)
        app.state_backend.set_workflow_data(identity, schema.CANCEL, reason)
        cancelled = apply_close(
            app, workflow_id, children, f"was cancelled: {reason}",
            message=f"workflow {workflow_id} was cancelled: {reason}",
        )
    unpark(app, workflow_id, identity)
    wake(app, workflow_id)
    return cancelled


def wake(app: Pynenc, workflow_id: str) -> None:
    """Wake a simulated workflow wherever it waits: its events (engine waits) and a plain
    ``.result`` it is blocked in."""
    hooks = active_hooks()
    if hooks is not None:
        hooks.notify(app, schema.wake(workflow_id))
        hooks.notify(app, schema.interrupt(workflow_id))


def unpark(app: Pynenc, workflow_id: str, identity: Any) -> None:
    """Route a halted or suspended workflow again (it replays from the top); no-op if it is
    neither. A suspended one (production, or evicted in a simulator) goes through the atomic wake claim: once, whoever
    races."""
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext

    from pynenc_wf_testing.engine import _suspend

    # A suspended workflow (production, or evicted in a simulator) goes through the claim.
    if app.state_backend.get_workflow_data(identity, schema.HALTED) is None:
        _suspend.wake(app, workflow_id)
        return
    app.state_backend.set_workflow_data(identity, schema.HALTED, None)
    if _suspend.suspension_of(app, identity) is not None:
        # a halt with a run deadline is also in the due-time index: one claim decides
        _suspend.wake(app, workflow_id)
        return
    record = app.orchestrator.get_invocation_status_record(workflow_id)
    if record.status not in (InvocationStatus.PAUSED, InvocationStatus.RUNNING):
        return
    # KILLED -> REROUTED is pynenc's own path back to the queue; the transition needs the
    # owner's id, which a caller outside the runner does not have a context for.
    owner = RunnerContext(runner_cls="Owner", runner_id=record.runner_id or "unknown")
    app.orchestrator.set_invocation_status(workflow_id, InvocationStatus.KILLED, owner)
    app.orchestrator.reroute_invocations([workflow_id], owner)
    hooks = active_hooks()
    if hooks is not None:
        hooks.workflow_restarted(app, workflow_id)
        hooks.notify(app, schema.wake(workflow_id))


#: The next status on the way to FAILED (only RUNNING may become FAILED in pynenc's graph).
_TOWARD_FAILED = {
    "registered": "pending",
    "pending": "running",
    "paused": "running",
    "rerouted": "pending",
    "retry": "pending",
    "killed": "rerouted",
    "running_recovery": "rerouted",
    "pending_recovery": "rerouted",
    "concurrency_controlled": "rerouted",
}


def terminate(app: Pynenc, invocation: DistributedInvocation[Any, Any], error: Exception) -> bool:
    """Make ``invocation`` FAILED with ``error`` through pynenc's status graph (as its
    owner); False if it became final on its own first."""
    from pynenc.exceptions import InvocationStatusOwnershipError, InvocationStatusTransitionError
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext

    inv_id = str(invocation.invocation_id)
    hooks = active_hooks()
    if hooks is not None:
        hooks.invocation_cancelled(app, inv_id)
    for _ in range(8):  # the longest path: KILLED, REROUTED, PENDING, RUNNING, FAILED
        record = app.orchestrator.get_invocation_status_record(inv_id)
        if record.status.is_final():
            return False
        owner = RunnerContext(
            runner_cls="WorkflowEngine", runner_id=record.runner_id or "pynenc-wf-engine"
        )
        try:
            if record.status == InvocationStatus.RUNNING:
                app.orchestrator.set_invocation_exception(invocation, error, owner)
                return True
            following = InvocationStatus(_TOWARD_FAILED[record.status.value])
            app.orchestrator.set_invocation_status(inv_id, following, owner)
        except (InvocationStatusTransitionError, InvocationStatusOwnershipError):
            continue  # it moved on meanwhile: look again
    return False
