"""The engine seen from outside a workflow: enable it, start, signal, query, resume, cancel."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pynenc_wf_testing.engine import _ops
from pynenc_wf_testing.engine._waits import _APP_POLICIES, _TASK_POLICIES
from pynenc_wf_testing.engine.exceptions import WorkflowAlreadyStarted
from pynenc_wf_testing.engine.retry import RetryPolicy
from pynenc_wf_testing.errors import InvalidArgument

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.task import Task

__all__ = [
    "WorkflowQuery",
    "cancel_workflow",
    "enable_workflows",
    "query_workflow",
    "resume_workflow",
    "set_retry_policy",
    "signal_workflow",
    "start_workflow",
]

R = TypeVar("R")
IdReuse = Literal["reuse", "reject", "allow_after_completion"]


_UNSET: Any = object()


def default_policy(
    retry_policy: RetryPolicy | None, workflow_max_retries: int | Any | None
) -> RetryPolicy | None:
    """The app's default retry policy from ``enable_workflows``' two settings."""
    if workflow_max_retries is _UNSET:
        return retry_policy
    if workflow_max_retries is not None and (
        isinstance(workflow_max_retries, bool)
        or not isinstance(workflow_max_retries, int)
        or workflow_max_retries < 0
    ):
        raise InvalidArgument(
            f"workflow_max_retries must be an int >= 0, or None to retry forever; got "
            f"{workflow_max_retries!r}."
        )
    from dataclasses import replace

    attempts = None if workflow_max_retries is None else workflow_max_retries + 1
    return replace(retry_policy or RetryPolicy(), max_attempts=attempts)


def enable_workflows(
    app: Pynenc,
    *,
    retry_policy: RetryPolicy | None = None,
    workflow_max_retries: int | Any | None = _UNSET,
) -> Pynenc:
    """Switch on the durable-workflow engine for ``app`` (off by default; apps that do not
    call this behave exactly as before). Call once, where the app is defined, or build the
    app with ``PynencBuilder().enable_workflows(...)``.

    Defaults of ``wf.root.execute_task_with_retry`` when neither the call nor the task
    (``set_retry_policy``) names a policy: ``retry_policy``, and ``workflow_max_retries``,
    how many times a failed call is retried (``None``: forever). A workflow's recorded
    failures replay identically, so retries are made per call, each attempt a fresh child.
    """
    from pynenc.app import Pynenc as _Pynenc

    if not isinstance(app, _Pynenc):
        raise InvalidArgument(
            f"enable_workflows() expects a pynenc app, got {type(app).__name__}: {app!r}."
        )
    policy = default_policy(retry_policy, workflow_max_retries)
    values = dict(app.config_values or {})
    values[_ops.ENABLE_KEY] = True
    app.config_values = values
    app._conf = None
    if policy is not None:
        _APP_POLICIES[app.app_id] = policy
    from pynenc_wf_testing.runtime.patches import install_task_wf

    install_task_wf()
    for task in app.tasks.values():
        task.__dict__.pop("wf", None)  # rebuilt by the engine on next access
    return app


def set_retry_policy(task: Task[Any, Any], policy: RetryPolicy) -> None:
    """The retry policy of ``task`` when a workflow calls it with
    ``wf.root.execute_task_with_retry`` without an explicit one."""
    if not isinstance(policy, RetryPolicy):
        raise InvalidArgument(f"expected a RetryPolicy, got {policy!r}.")
    _TASK_POLICIES[task.task_id.key] = policy


def _workflow_id(target: Any) -> str:
    workflow_id = getattr(target, "workflow_id", None)
    if workflow_id is not None:
        return str(workflow_id)
    workflow = getattr(target, "workflow", None)
    if workflow is not None:
        return str(workflow.workflow_id)
    if isinstance(target, str):
        return target
    raise InvalidArgument(
        f"expected a workflow id, a WorkflowRun or a workflow invocation, got {target!r}."
    )


def signal_workflow(app: Pynenc, workflow: Any, name: str, payload: Any = None) -> int:
    """Send signal ``name`` with ``payload`` to a workflow (id, run or invocation). Stored
    durably on arrival: a signal sent before the workflow waits for it is not lost.
    Returns the signal's sequence number for that name (1, 2, ...)."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"a signal name must be a non-empty string, got {name!r}.")
    return _ops.send_signal(app, _workflow_id(workflow), name, payload)


@dataclass
class WorkflowQuery:
    """A workflow's published state and status, read without affecting it."""

    workflow_id: str
    status: str
    state: Any = None
    state_at: dt.datetime | None = None
    snapshots: list[tuple[dt.datetime, Any]] = field(default_factory=list)
    halted: str | None = None
    cancelled: str | None = None


def query_workflow(app: Pynenc, workflow: Any) -> WorkflowQuery:
    """Read a workflow's status and the snapshots it published with ``wf.save_state``."""
    _ops.require_enabled(app, "query_workflow()")
    workflow_id = _workflow_id(workflow)
    identity = _ops.identity_of(app, workflow_id)
    status = app.orchestrator.get_invocation_status(workflow_id)
    latest = int(_ops.get_data(app, identity, "wfx:state_latest") or 0)
    snapshots: list[tuple[dt.datetime, Any]] = []
    n = 0
    # Up to the latest-snapshot pointer, and on past it while snapshots exist (a writer
    # that crashed between a snapshot and the pointer).
    while True:
        n += 1
        snapshot = _ops.get_data(app, identity, f"wfx:state:{n}")
        if snapshot is None and n > latest:
            break
        if snapshot is not None:
            snapshots.append((_ops._parse(snapshot["at"]), snapshot["state"]))
    return WorkflowQuery(
        workflow_id=workflow_id,
        status=str(status.value),
        state=snapshots[-1][1] if snapshots else None,
        state_at=snapshots[-1][0] if snapshots else None,
        snapshots=snapshots,
        halted=_ops.get_data(app, identity, "wfx:halted"),
        cancelled=_ops.get_data(app, identity, "wfx:cancel"),
    )


def resume_workflow(app: Pynenc, workflow: Any) -> None:
    """Resume a halted workflow: it replays from the top and goes past its ``halt()``."""
    _ops.require_enabled(app, "resume_workflow()")
    workflow_id = _workflow_id(workflow)
    identity = _ops.identity_of(app, workflow_id)
    n = 1
    while (record := _ops.get_data(app, identity, f"wfx:halt:{n}")) is not None:
        if not record.get("resumed"):
            _ops.set_data(app, identity, f"wfx:halt:{n}", {**record, "resumed": True})
        n += 1
    _unpark(app, workflow_id, identity)


def _unpark(app: Pynenc, workflow_id: str, identity: Any) -> None:
    """Route a halted workflow again (it replays from the top); no-op if not halted."""
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext

    if _ops.get_data(app, identity, "wfx:halted") is None:
        return
    _ops.set_data(app, identity, "wfx:halted", None)
    record = app.orchestrator.get_invocation_status_record(workflow_id)
    if record.status not in (InvocationStatus.PAUSED, InvocationStatus.RUNNING):
        return
    # KILLED -> REROUTED is pynenc's own path back to the queue; the transition needs the
    # owner's id, which a caller outside the runner does not have a context for.
    owner = RunnerContext(runner_cls="Owner", runner_id=record.runner_id or "unknown")
    app.orchestrator.set_invocation_status(workflow_id, InvocationStatus.KILLED, owner)
    app.orchestrator.reroute_invocations([workflow_id], owner)
    _forget_stall(app, workflow_id)
    _ops.notify(app, workflow_id)


def _forget_stall(app: Pynenc, workflow_id: str) -> None:
    from pynenc_wf_testing.runtime.components import sim_of

    sim = sim_of(app)
    if sim is not None:
        sim.stalled.pop(workflow_id, None)


def cancel_workflow(app: Pynenc, workflow: Any, reason: str = "cancelled") -> None:
    """Cancel a workflow: the durable operation it waits in (or its next one) raises
    ``WorkflowCancelled``, so its compensations can run. A halted workflow is routed again
    and the cancellation is raised at its ``halt()``."""
    _ops.require_enabled(app, "cancel_workflow()")
    workflow_id = _workflow_id(workflow)
    identity = _ops.identity_of(app, workflow_id)
    if _ops.get_data(app, identity, "wfx:cancel") is None:
        _ops.set_data(app, identity, "wfx:cancel", reason)
    _unpark(app, workflow_id, identity)
    _ops.notify(app, workflow_id)


def _alias_identity(task: Task[Any, Any]) -> Any:
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.workflow.workflow_identity import WorkflowIdentity

    return WorkflowIdentity(
        workflow_id=InvocationId(f"pynenc-wf-aliases:{task.task_id.key}"),
        workflow_type=task.task_id,
    )


def start_workflow(
    task: Task[Any, R],
    *args: Any,
    workflow_id: str | None = None,
    id_reuse: IdReuse = "reuse",
    run_timeout: dt.timedelta | None = None,
    **kwargs: Any,
) -> DistributedInvocation[Any, R]:
    """Start ``task`` (a workflow) and return its invocation.

    ``workflow_id``: a user-defined alias. Starting the same alias again returns the
    existing run (``id_reuse="reuse"``), raises ``WorkflowAlreadyStarted`` (``"reject"``), or
    starts a new run only once the previous one finished (``"allow_after_completion"``):
    one instance at a time per key. ``run_timeout``: the run fails with ``WorkflowTimeout``
    at its first durable operation after that long.
    """
    app = task.app
    _ops.require_enabled(app, "start_workflow()")
    if id_reuse not in ("reuse", "reject", "allow_after_completion"):
        raise InvalidArgument(
            f"id_reuse must be 'reuse', 'reject' or 'allow_after_completion', got {id_reuse!r}."
        )
    with _ops.STORE_LOCK:  # one start per alias at a time in this process
        alias_key = None
        if workflow_id is not None:
            registry = _alias_identity(task)
            alias_key = f"alias:{workflow_id}"
            existing = app.state_backend.get_workflow_data(registry, alias_key)
            if existing is not None:
                final = app.orchestrator.get_invocation_status(existing).is_final()
                if id_reuse == "reject":
                    raise WorkflowAlreadyStarted(
                        f"workflow id {workflow_id!r} of {task.task_id.func_name} is already "
                        f"taken by run {existing} (id_reuse='reject')."
                    )
                if id_reuse == "reuse" or not final:
                    invocation: DistributedInvocation[Any, R] = (
                        app.state_backend.get_invocation(existing)
                    )
                    return invocation
        invocation = task(*args, **kwargs)
        if alias_key is not None:
            app.state_backend.set_workflow_data(
                _alias_identity(task), alias_key, str(invocation.invocation_id)
            )
    if run_timeout is not None:
        assert invocation.workflow is not None
        _ops.set_data(
            app, invocation.workflow, "wfx:deadline", _ops._iso(_ops.utc_now() + run_timeout)
        )
    return invocation
