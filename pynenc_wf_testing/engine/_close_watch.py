"""Production: the ends of workflows that no engine operation sees, handled by the timer service.

Two things a workflow's own code cannot do in production:

- **The parent-close policy when a workflow ends by itself** (completes or fails). pynenc 0.4
  calls nobody at the end of an invocation, and the engine patches nothing. The seam is
  pynenc's trigger system: when an invocation's status changes, pynenc itself records a
  *valid condition* in the trigger store for every registered status condition of its task,
  synchronously, in the process that finished it. The engine registers, per workflow type,
  a status condition on SUCCESS and FAILED (:func:`watch_workflow_type`, the first time a
  run of that type routes a child through ``wf.root``) and no trigger for it: pynenc's trigger
  loop, which routes triggers only every ``atomic_service_interval_minutes``, skips
  conditions no trigger uses and never clears them. The timer service reads them each tick
  (:func:`close_finished`), applies the policy to the children of each finished run and
  clears them.
- **A run timeout of a workflow blocked in a plain ``.result``** (not an engine wait, so not
  suspended): its run deadline is indexed (``_timers.index_run_deadline``, a sorted set of
  the atomic store) and at the deadline the timer service cancels its open children with
  the workflow's ``WorkflowTimeout`` (:func:`time_out_running`), as ``cancel_workflow``
  does with ``WorkflowCancelled``: the child it waits on fails, and its ``.result`` raises.

Cost per tick, whatever the number of workflows running or waiting: one range read of the
run-deadline index (it returns only the entries due) and one read of the trigger store's
valid conditions (those recorded since the previous tick, plus conditions of the app's own
triggers still waiting for pynenc's trigger loop). Work beyond that is per workflow that
ended or timed out since the last tick.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine._close import apply_close, cancel_children, open_children
from pynenc_wf_testing.engine._errors import UnsupportedStateBackend
from pynenc_wf_testing.engine._timers import ensure_timer_service, tick_seconds
from pynenc_wf_testing.engine.atomic import AtomicStore
from pynenc_wf_testing.engine.hooks import active_hooks

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.task import Task

__all__ = [
    "close_finished",
    "close_run",
    "every_call",
    "tick",
    "time_out_running",
    "watch_workflow_type",
]

#: Workflow types whose condition this process registered, per trigger component.
_WATCHED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def every_call(arguments: dict[str, Any]) -> bool:
    """The argument filter of the engine's status conditions: every run matches. A
    module-level function: pynenc names a callable filter by its module and name, which
    makes the condition the engine's own, distinct from a user's on the same task."""
    return True


def _filter_id() -> str:
    return f"callable_{every_call.__module__}.{every_call.__name__}"


def _production(app: Pynenc) -> bool:
    """Not driven by a simulator (which applies the policy at the final status itself)."""
    hooks = active_hooks()
    return hooks is None or not hooks.drives(app)


def watch_workflow_type(app: Pynenc, task: Task[Any, Any]) -> None:
    """Production: make pynenc record the end (SUCCESS, FAILED) of every run of workflow
    ``task`` for the timer service, and make sure the service runs. Called when a run
    routes a child through ``wf.root`` (a workflow without children has nothing to close);
    one registration per type and process."""
    if not _production(app):
        return
    from pynenc.invocation.status import InvocationStatus
    from pynenc.trigger.arguments.argument_filters import CallableArgumentFilter
    from pynenc.trigger.conditions.status import StatusCondition

    trigger = app.trigger
    key = task.task_id.key
    with _LOCK:
        new = key not in _WATCHED.setdefault(trigger, set())
    if new:
        # Idempotent in the store (pynenc keys a condition by its id): several processes
        # registering the same type write the same rows.
        trigger.register_condition(
            StatusCondition(
                task.task_id,
                [InvocationStatus.SUCCESS, InvocationStatus.FAILED],
                CallableArgumentFilter(every_call),
            )
        )
        with _LOCK:
            _WATCHED[trigger].add(key)
    try:
        ensure_timer_service(app)
    except UnsupportedStateBackend:
        # No atomic store, no timer service: children are routed as before, and the policy
        # applies only where the workflow itself sees its end (cancellation, timeout).
        return


def tick(app: Pynenc, store: AtomicStore, now: float) -> int:
    """The timer service's part for this module; returns how many runs it closed or
    timed out. Nothing under a simulator (it applies both at their virtual instant)."""
    if not _production(app):
        return 0
    done = 0
    due = [workflow_id for workflow_id, _when in store.due(schema.RUN_DEADLINES, now)]
    for workflow_id in due:
        try:
            done += time_out_running(app, store, workflow_id, now)
        except Exception:  # one bad run must not stop the service: looked at again later
            app.logger.exception(f"engine timer service: run timeout of {workflow_id}")
            store.schedule(schema.RUN_DEADLINES, workflow_id, now + 4 * tick_seconds(app))
    try:
        done += close_finished(app)
    except Exception:  # the conditions stay recorded: the next tick tries again
        app.logger.exception("engine timer service: parent-close of finished runs")
    return done


def time_out_running(app: Pynenc, store: AtomicStore, workflow_id: str, now: float) -> bool:
    """Run ``workflow_id``'s deadline passed. If it is RUNNING, has not seen its timeout
    itself and has open children, cancel them with its ``WorkflowTimeout`` (a plain
    ``.result`` on one of them raises it) and record the first sight for it (step
    ``interrupted#1``: the compensations it routes next are left alone). With no open
    child it is computing, or has not routed the child it will block on yet: looked at
    again in four ticks, until it sees the timeout itself or ends. A suspended or halted run
    is woken at the same deadline by its suspension; a run not started yet is looked at
    again in four ticks too. True if it cancelled children."""
    from pynenc.invocation.status import InvocationStatus

    status = app.orchestrator.get_invocation_status(workflow_id)
    identity = app.state_backend.get_invocation(workflow_id).workflow
    recorded = app.state_backend.get_workflow_data(identity, schema.DEADLINE)
    seen = app.state_backend.get_workflow_data(identity, schema.INTERRUPTED)
    if (
        recorded is None or seen is not None or status.is_final()
        or status == InvocationStatus.PAUSED
    ):
        store.unschedule(schema.RUN_DEADLINES, workflow_id)
        return False
    when = dt.datetime.fromisoformat(recorded).timestamp()
    again = max(when, now + 4 * tick_seconds(app))
    if when > now or status != InvocationStatus.RUNNING:
        store.schedule(schema.RUN_DEADLINES, workflow_id, again)
        return False
    children = open_children(app, workflow_id)
    # Listed first, checked after: a run that saw its timeout recorded it before routing
    # its compensations, so if it is not recorded now none of them is in the list.
    if app.state_backend.get_workflow_data(identity, schema.INTERRUPTED) is not None:
        store.unschedule(schema.RUN_DEADLINES, workflow_id)
        return False
    if not children:
        store.schedule(schema.RUN_DEADLINES, workflow_id, again)
        return False
    why = f"passed its run timeout ({recorded})"
    cancelled = apply_close(
        app, workflow_id, children, why, deadline=recorded,
        message=f"workflow {workflow_id} {why}",
    )
    app.state_backend.set_workflow_data(
        identity, schema.INTERRUPTED, schema.InterruptRecord(why=why, deadline=recorded)
    )
    store.unschedule(schema.RUN_DEADLINES, workflow_id)
    return bool(cancelled)


def close_finished(app: Pynenc) -> int:
    """Apply the parent-close policy to the runs whose end pynenc recorded since the last
    call (see the module); returns how many runs it closed."""
    if not _production(app):
        return 0
    trigger = app.trigger
    valid = trigger.get_valid_conditions()
    filter_id = _filter_id()
    ours = [
        valid[key] for key in sorted(valid)
        if getattr(getattr(valid[key].condition, "arguments_filter", None), "filter_id", None)
        == filter_id
    ]
    done = []
    for found in ours:
        context = found.context
        try:
            close_run(app, str(context.invocation_id), str(context.status.value))
        except Exception:  # left recorded: the next tick tries again
            app.logger.exception(f"engine timer service: parent-close of {context.invocation_id}")
            continue
        done.append(found)
    if done:
        # after closing: a service that dies in between closes them again (idempotent)
        trigger.clear_valid_conditions(done)
    return len(done)


def close_run(app: Pynenc, workflow_id: str, status: str) -> list[str]:
    """Workflow run ``workflow_id`` reached final ``status`` (``"success"``, ``"failed"``):
    cancel its open children that were not abandoned. The reason named in their errors is
    "completed", "failed", or the cancellation or timeout the run saw. Used by the timer
    service and, at the final status itself, by the simulator. Returns the ids cancelled."""
    from pynenc_wf_testing.engine._ops import workflows_enabled

    if not workflows_enabled(app):
        return []
    invocation = app.state_backend.get_invocation(workflow_id)
    identity = invocation.workflow
    if identity is None or str(identity.workflow_id) != workflow_id:
        return []  # not the root of a workflow run
    deadline = None
    if status == "success":
        why = "completed"
    else:
        seen = app.state_backend.get_workflow_data(identity, schema.INTERRUPTED)
        why = "failed" if seen is None else seen["why"]
        deadline = None if seen is None else seen["deadline"]
    return cancel_children(app, workflow_id, why, deadline=deadline)
