"""The engine seen from outside a workflow: enable it, start, signal, query, resume, cancel."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pynenc_wf_testing.engine import _chain, _close, _ids, _ops, _timers, crypto, schema
from pynenc_wf_testing.engine._checks import (
    check_call,
    check_round_trip,
    check_task,
    deadline_after,
)
from pynenc_wf_testing.engine._waits import _TASK_POLICIES, policy_ref
from pynenc_wf_testing.engine.crypto import Keyring
from pynenc_wf_testing.engine.exceptions import (
    AmbiguousWorkflowId,
    InvalidWorkflowArgument,
    NotAWorkflow,
    UnknownWorkflow,
    WorkflowAlreadyStarted,
    WorkflowFinished,
    WorkflowIdConflict,
    WorkflowNotFinished,
)
from pynenc_wf_testing.engine.hooks import active_hooks
from pynenc_wf_testing.engine.retry import RetryPolicy
from pynenc_wf_testing.engine.task_wf import install_task_wf

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.task import Task
    from pynenc.workflow.workflow_identity import WorkflowIdentity

__all__ = [
    "WorkflowDescription",
    "WorkflowQuery",
    "cancel_workflow",
    "describe_workflow",
    "enable_workflows",
    "enable_workflows_in_config",
    "query_workflow",
    "resume_workflow",
    "set_retry_policy",
    "signal_workflow",
    "start_workflow",
    "workflow_result",
]

R = TypeVar("R")
IdReuse = Literal["reuse", "reject", "allow_after_completion"]


_UNSET: Any = object()

#: App-wide index of the ids given to ``start_workflow`` (the per-type alias records cannot
#: be found from an id alone): the workflow types that use an id, and the id a run was
#: started under.
ID_TYPES_KEY = schema.ID_TYPES
RUN_ID_KEY = schema.ID_OF_RUN


def default_policy(
    retry_policy: RetryPolicy | None, workflow_max_retries: int | Any | None
) -> RetryPolicy | None:
    """The app's default retry policy from ``enable_workflows``' two settings."""
    if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
        raise InvalidWorkflowArgument(
            f"enable_workflows(retry_policy={retry_policy!r}): expected a RetryPolicy or None, "
            "e.g. retry_policy=RetryPolicy.exponential(timedelta(seconds=10), max_attempts=5)."
        )
    if workflow_max_retries is _UNSET:
        return retry_policy
    if workflow_max_retries is not None and (
        isinstance(workflow_max_retries, bool)
        or not isinstance(workflow_max_retries, int)
        or workflow_max_retries < 0
    ):
        raise InvalidWorkflowArgument(
            f"workflow_max_retries must be an int >= 0, or None to retry forever; got "
            f"{workflow_max_retries!r}."
        )
    from dataclasses import replace

    attempts = None if workflow_max_retries is None else workflow_max_retries + 1
    return replace(retry_policy or RetryPolicy(), max_attempts=attempts)


def engine_config(
    policy: RetryPolicy | None,
    encryption: Keyring | None = None,
    serializer_cls: str | None = None,
) -> dict[str, Any]:
    """The config values that switch the engine on for an app, with its defaults (kept in
    the app's own config, so they belong to that app whatever its id or build order).
    ``serializer_cls``: the app's serializer, which an encrypted one wraps."""
    values: dict[str, Any] = {_ops.ENABLE_KEY: True}
    defaults: dict[str, Any] = {}
    if policy is not None:
        defaults["retry_policy"] = policy_ref(policy)
    if encryption is not None:
        ref, cls_name = crypto.register_keyring(encryption, crypto.inner_serializer(serializer_cls))
        defaults["encryption"] = ref
        values["serializer_cls"] = cls_name
    if defaults:
        values[_ops.DEFAULTS_KEY] = defaults
    return values


def enable_workflows(
    app: Pynenc,
    *,
    retry_policy: RetryPolicy | None = None,
    workflow_max_retries: int | Any | None = _UNSET,
    encryption: Keyring | None = None,
) -> Pynenc:
    """Switch on the durable-workflow engine for ``app`` (off by default; apps that do not
    call this behave exactly as before). Call once, where the app is defined, or build the
    app with ``PynencBuilder().enable_workflows(...)``.

    Defaults of ``wf.root.execute_task_with_retry`` when neither the call nor the task
    (``set_retry_policy``) names a policy: ``retry_policy``, and ``workflow_max_retries``,
    how many times a failed call is retried (``None``: forever). A workflow's recorded
    failures replay identically, so retries are made per call, each attempt a fresh child.

    ``encryption``: a ``Keyring``; the app's serializer then encrypts every payload the store
    keeps (arguments, results, workflow data, signals, saved state; docs/security.md).
    """
    from pynenc.app import Pynenc as _Pynenc

    if not isinstance(app, _Pynenc):
        raise InvalidWorkflowArgument(
            f"enable_workflows() expects a pynenc app, got {type(app).__name__}: {app!r}."
        )
    policy = default_policy(retry_policy, workflow_max_retries)
    values = dict(app.config_values or {})
    values.update(engine_config(policy, encryption, values.get("serializer_cls")))
    if encryption is not None:
        crypto.check_serializer_applies(values, values["serializer_cls"], app.config_filepath)
    app.config_values = values
    app._conf = None
    app._serializer = None  # rebuilt from the config (an encrypting one, if asked)
    install_task_wf()
    for task in app.tasks.values():
        task.__dict__.pop("wf", None)  # rebuilt by the engine on next access
    return app


def enable_workflows_in_config(
    config: dict[str, Any],
    *,
    retry_policy: RetryPolicy | None = None,
    workflow_max_retries: int | Any | None = _UNSET,
    encryption: Keyring | None = None,
) -> None:
    """``enable_workflows`` for an app not built yet: switch the engine on in the config
    mapping the app will be created with (what ``PynencBuilder().enable_workflows()`` does
    with its own). The settings go into that mapping, so they belong to the app it builds
    whatever its id or the order of the builder calls (``.app_id()`` may come later)."""
    if not isinstance(config, dict):
        raise InvalidWorkflowArgument(
            f"enable_workflows_in_config() expects the config dict the app will be built "
            f"with, got {type(config).__name__}: {config!r}."
        )
    policy = default_policy(retry_policy, workflow_max_retries)
    config.update(engine_config(policy, encryption, config.get("serializer_cls")))
    install_task_wf()


def set_retry_policy(task: Task[Any, Any], policy: RetryPolicy) -> None:
    """The retry policy of ``task`` when a workflow calls it with
    ``wf.root.execute_task_with_retry`` without an explicit one."""
    check_task("set_retry_policy()", task)
    if not isinstance(policy, RetryPolicy):
        raise InvalidWorkflowArgument(f"expected a RetryPolicy, got {policy!r}.")
    _TASK_POLICIES[task.task_id.key] = policy


@dataclass(frozen=True)
class _Run:
    """A client operation's target, resolved to the current run of a workflow."""

    run_id: str
    invocation: DistributedInvocation[Any, Any]
    identity: WorkflowIdentity
    label: str


def _index_identity() -> WorkflowIdentity:
    identity: WorkflowIdentity = _ids.index_identity()
    return identity


def _stored_invocation(app: Pynenc, invocation_id: str) -> DistributedInvocation[Any, Any] | None:
    from pynenc.exceptions import InvocationNotFoundError

    try:
        invocation: DistributedInvocation[Any, Any] = app.state_backend.get_invocation(
            invocation_id
        )
    except (InvocationNotFoundError, KeyError):
        return None
    return invocation


def _run_of_workflow_id(app: Pynenc, workflow_id: str) -> str | None:
    """The current run (invocation id) started under ``workflow_id``, if any."""
    types: list[str] = app.state_backend.get_workflow_data(
        _index_identity(), ID_TYPES_KEY.format(workflow_id)
    ) or []
    crypto.require_readable(app, types, f"the index of workflow id {workflow_id!r}")
    if active_hooks() is None:
        from pynenc_wf_testing.engine.atomic import atomic_store

        types = sorted({*types, *atomic_store(app).members(schema.id_types(workflow_id))})
    runs = {}
    for task_key in types:
        run = app.state_backend.get_workflow_data(
            _alias_identity_of(task_key), schema.alias(workflow_id)
        )
        if run is not None:
            runs[task_key] = str(run)
    if len(runs) > 1:
        listing = ", ".join(f"{key} (run {run})" for key, run in sorted(runs.items()))
        raise AmbiguousWorkflowId(
            f"workflow id {workflow_id!r} was given to runs of several workflow types: "
            f"{listing}. Pass the run's invocation id (or its WorkflowRun / invocation) instead."
        )
    return next(iter(runs.values()), None)


def _unindexed_run(app: Pynenc, workflow_id: str) -> str | None:
    """The run of a workflow id missing from the app-wide index (started before the index
    existed, or a crash between the alias record and the index): looked up in the alias
    records of the workflow types this process knows."""
    runs = set()
    for task in list(app.tasks.values()):
        if task.is_workflow_root_task:
            run = app.state_backend.get_workflow_data(
                _alias_identity(task), schema.alias(workflow_id)
            )
            if run is not None:
                runs.add(str(run))
    return runs.pop() if len(runs) == 1 else None


def _resolve(app: Pynenc, target: Any, operation: str) -> _Run:
    """The current run of a workflow given by the id passed to ``start_workflow``, its
    invocation id, a ``WorkflowRun`` or a workflow invocation (the last run of its chain, if
    it continued as new)."""
    from pynenc.invocation.dist_invocation import DistributedInvocation

    invocation: DistributedInvocation[Any, Any] | None
    if isinstance(target, DistributedInvocation):
        invocation = target
        label = str(target.invocation_id)
        if target.app.app_id != app.app_id:
            # its records live in the other app's store: reading them here finds nothing
            raise UnknownWorkflow(
                f"{operation}: invocation {label} belongs to app {target.app.app_id!r}, and "
                f"this call was given app {app.app_id!r}. Pass the app the workflow runs in "
                "(its task's .app)."
            )
    elif isinstance(target, str) or _is_run_handle(target):
        if not isinstance(target, str):
            if target.workflow_id is None:
                raise NotAWorkflow(
                    f"{operation} needs a workflow, and {target!r} is a run of a plain task "
                    "(start workflows, functions decorated with @app.workflow)."
                )
            target = str(target.invocation_id)
        label = target
        run_id = _run_of_workflow_id(app, target)
        invocation = _stored_invocation(app, run_id or target)
        if invocation is None and run_id is None:
            run_id = _unindexed_run(app, target)
            invocation = None if run_id is None else _stored_invocation(app, run_id)
        if invocation is None:
            raise UnknownWorkflow(
                f"{operation}: app {app.app_id!r} has no workflow with id or invocation id "
                f"{target!r}. Pass the workflow_id given to start_workflow(..., "
                "workflow_id=...) or the invocation id it returned, and check that the client "
                "uses the same app (app_id and store) as the workflow."
            )
    else:
        raise NotAWorkflow(
            f"{operation} expects a workflow id (str), a WorkflowRun or a workflow "
            f"invocation, got {type(target).__name__}: {target!r}."
        )
    run_id = str(invocation.invocation_id)
    workflow = invocation.workflow
    if workflow is not None and str(workflow.workflow_id) == run_id:
        # A run that continued as new stands for its chain: act on the chain's last run.
        invocation = _chain.latest_run(app, invocation)
        run_id, workflow = str(invocation.invocation_id), invocation.workflow
    if workflow is None or str(workflow.workflow_id) != run_id:
        where = "" if workflow is None else f" inside workflow {workflow.workflow_id}"
        hint = (
            "pass the workflow's id" if workflow is not None
            else "start workflows, functions decorated with @app.workflow"
        )
        raise NotAWorkflow(
            f"{operation} needs a workflow, and invocation {run_id} is a call of task "
            f"{invocation.task.task_id.func_name}{where}: {hint}."
        )
    return _Run(run_id=run_id, invocation=invocation, identity=workflow, label=label)


def _is_run_handle(target: Any) -> bool:
    """A ``WorkflowRun`` of the simulator (duck-typed: the engine does not import it)."""
    return isinstance(getattr(target, "invocation_id", None), str) and hasattr(
        target, "workflow_id"
    )


def _settled(app: Pynenc, run: _Run) -> tuple[_Run, Any]:
    """``run`` and its status record, moved on to the next run of its chain if it continued
    as new after ``_resolve`` looked (its final status would otherwise read as the end of
    the chain: ``finished`` with the continuation's link as its result)."""
    invocation, record = _chain.settled_run(app, run.invocation)
    if str(invocation.invocation_id) != run.run_id and invocation.workflow is not None:
        run = _Run(
            run_id=str(invocation.invocation_id), invocation=invocation,
            identity=invocation.workflow, label=run.label,
        )
    return run, record


def _require_running(app: Pynenc, run: _Run, operation: str, hint: str) -> _Run:
    """The current run of ``run``'s chain (see ``_settled``); raises if it finished."""
    if active_hooks() is None:
        from pynenc_wf_testing.engine._timers import ensure_timer_service

        ensure_timer_service(app)  # restarts a service lost with a killed runner
    run, record = _settled(app, run)
    status = record.status
    if status.is_final():
        raise WorkflowFinished(
            f"{operation}: workflow {run.label} (run {run.run_id}) already finished with "
            f"status {status.value}; {hint}"
        )
    return run


def signal_workflow(app: Pynenc, workflow: Any, name: str, payload: Any = None) -> int:
    """Send signal ``name`` with ``payload`` to a running workflow (its workflow id, its
    invocation id, a run or the invocation). Stored durably on arrival: a signal sent before
    the workflow waits for it is not lost. Returns the signal's sequence number for that name
    (1, 2, ...). A finished workflow raises ``WorkflowFinished``; a payload that pynenc's
    serializer would change (a dict's int keys) raises ``InvalidWorkflowArgument``."""
    _ops.require_enabled(app, "signal_workflow()")
    if not isinstance(name, str) or not name:
        raise InvalidWorkflowArgument(f"a signal name must be a non-empty string, got {name!r}.")
    check_round_trip(app, f"signal_workflow({name!r})", "the payload", payload)
    # Held from the lookup to the store: a continue-as-new in this process (which carries
    # unconsumed signals over under the same lock) cannot slip in between and lose it.
    with _ops.STORE_LOCK:
        run = _resolve(app, workflow, "signal_workflow()")
        run = _require_running(
            app, run, f"signal {name!r}",
            "a signal reaches only a running workflow. Start a new run to act on it "
            "(start_workflow(..., workflow_id=..., id_reuse='allow_after_completion')).",
        )
        names_key = schema.SIGNAL_NAMES.format(run.run_id)
        names = list(app.state_backend.get_workflow_data(_index_identity(), names_key) or [])
        if name not in names:
            app.state_backend.set_workflow_data(
                _index_identity(), names_key, sorted([*names, name])
            )
        return _ops.send_signal(app, run.run_id, name, payload)


@dataclass(frozen=True)
class WorkflowDescription:
    """The current run of a workflow, as ``describe_workflow`` found it."""

    workflow_id: str
    """The id given to ``start_workflow(..., workflow_id=...)``; the run id if none was."""
    run_id: str
    """The invocation id of the current run."""
    workflow_type: str
    """The workflow task's key (``module.function``)."""
    status: str
    """pynenc's status of the run (``"running"``, ``"paused"``, ``"success"``, ...)."""
    status_at: dt.datetime
    """When the run entered that status."""
    finished: bool
    """Whether the status is final: ``workflow_result`` then returns or raises its outcome."""
    halted: str | None = None
    """The reason of a halt the run waits in, if it is halted."""
    cancelled: str | None = None
    """The reason given to ``cancel_workflow``, if it was cancelled."""
    continued_from: str | None = None
    """The run this one continued (``wf.root.continue_as_new``), if any."""
    runs: tuple[str, ...] = ()
    """The run ids of the workflow's chain, oldest first, ending with ``run_id`` (one run
    for a workflow that never continued as new)."""
    suspended: str | None = None
    """What a suspended run waits for (production, or evicted in a simulator:
    ``"signal 'payment'"``, ``"timer #1 (until ...)"``), None while it runs (or waits cached
    in a simulator), is halted only, or has finished."""
    rerun_of: str | None = None
    """The run this run re-runs (``rerun_workflow``), if it is a re-run."""
    rerun_from_step: str | None = None
    """The step a re-run executed again from (None: it reused every valid result)."""


def describe_workflow(app: Pynenc, workflow: Any) -> WorkflowDescription:
    """The current run of a workflow (its workflow id, invocation id, run or invocation):
    status, the ids to reach it and, after ``continue_as_new``, its chain of runs. Reads the
    store; runs nothing."""
    _ops.require_enabled(app, "describe_workflow()")
    run, record = _settled(app, _resolve(app, workflow, "describe_workflow()"))
    alias = app.state_backend.get_workflow_data(_index_identity(), RUN_ID_KEY.format(run.run_id))
    rerun = _ops.get_data(app, run.identity, schema.RERUN_OF) or {}
    return WorkflowDescription(
        workflow_id=str(alias) if alias is not None else run.run_id,
        run_id=run.run_id,
        workflow_type=run.invocation.task.task_id.key,
        status=str(record.status.value),
        status_at=record.timestamp,
        finished=bool(record.status.is_final()),
        halted=_ops.get_data(app, run.identity, schema.HALTED),
        cancelled=_ops.get_data(app, run.identity, schema.CANCEL),
        continued_from=_ops.get_data(app, run.identity, schema.CONTINUED_FROM),
        runs=tuple(_chain.chain_runs(app, run.invocation)),
        suspended=_suspended(app, run, record.status),
        rerun_of=rerun.get("run"),
        rerun_from_step=rerun.get("from_step"),
    )


def _suspended(app: Pynenc, run: _Run, status: Any) -> str | None:
    from pynenc.invocation.status import InvocationStatus

    from pynenc_wf_testing.engine._suspend import suspension_of

    if status != InvocationStatus.PAUSED:
        return None
    record = suspension_of(app, run.identity)
    return None if record is None else record["what"]


def workflow_result(app: Pynenc, workflow: Any) -> Any:
    """The result of a workflow's current run once it finished (its workflow id, invocation
    id, run or invocation); raises the run's own exception if it failed, and
    ``WorkflowNotFinished`` (without waiting) while it runs. A workflow that continued as new
    gives its chain's last run's result."""
    _ops.require_enabled(app, "workflow_result()")
    run, record = _settled(app, _resolve(app, workflow, "workflow_result()"))
    status = record.status
    if not status.is_final():
        raise WorkflowNotFinished(
            f"workflow {run.label} (run {run.run_id}) has not finished (status "
            f"{status.value}). Check describe_workflow(app, id).finished first, or wait with "
            "the invocation's .result (in the simulator: env.run_of(id).result)."
        )
    result = run.invocation.get_final_result()
    crypto.require_readable(app, result, f"the result of workflow {run.label}")
    return result


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
    run, record = _settled(app, _resolve(app, workflow, "query_workflow()"))
    workflow_id, identity = run.run_id, run.identity
    status = record.status
    latest = int(_ops.get_data(app, identity, schema.STATE_LATEST) or 0)
    snapshots: list[tuple[dt.datetime, Any]] = []
    n = 0
    # Up to the latest-snapshot pointer, and on past it while snapshots exist (a writer
    # that crashed between a snapshot and the pointer).
    while True:
        n += 1
        snapshot = _ops.get_data(app, identity, schema.state(n))
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
        halted=_ops.get_data(app, identity, schema.HALTED),
        cancelled=_ops.get_data(app, identity, schema.CANCEL),
    )


def resume_workflow(app: Pynenc, workflow: Any) -> None:
    """Resume a halted workflow: it replays from the top and goes past its ``halt()``. A
    workflow that is not halted ends no wait (one suspended in a durable wait is routed once,
    re-executes to that wait and suspends again); a finished one raises
    ``WorkflowFinished``."""
    _ops.require_enabled(app, "resume_workflow()")
    run = _resolve(app, workflow, "resume_workflow()")
    run = _require_running(app, run, "resume_workflow()", "there is nothing to resume.")
    workflow_id, identity = run.run_id, run.identity
    n = 1
    while (record := _ops.get_data(app, identity, schema.halt(n))) is not None:
        if not record.get("resumed"):
            _ops.set_data(app, identity, schema.halt(n), {**record, "resumed": True})
        n += 1
    _unpark(app, workflow_id, identity)


def _unpark(app: Pynenc, workflow_id: str, identity: Any) -> None:
    """Route a halted or suspended workflow again (it replays from the top); no-op if it is
    neither (a suspended one goes through the atomic wake claim: once, whoever races)."""
    _close.unpark(app, workflow_id, identity)


def cancel_workflow(app: Pynenc, workflow: Any, reason: str = "cancelled") -> None:
    """Cancel a workflow: the durable operation it waits in (or its next one) raises
    ``WorkflowCancelled``, so its compensations can run; its running children are cancelled
    (the parent-close policy), so a plain ``.result`` it is blocked in raises the same
    error at once. A halted workflow is routed again and the cancellation is raised at its
    ``halt()``. A finished workflow raises ``WorkflowFinished``."""
    _ops.require_enabled(app, "cancel_workflow()")
    if not isinstance(reason, str):
        raise InvalidWorkflowArgument(
            f"cancel_workflow(reason={reason!r}): expected a string (it becomes the message of "
            "WorkflowCancelled), e.g. reason='customer withdrew the order'."
        )
    with _ops.STORE_LOCK:  # as signal_workflow: no continue-as-new between lookup and write
        run = _resolve(app, workflow, "cancel_workflow()")
        run = _require_running(app, run, "cancel_workflow()", "there is nothing left to cancel.")
        _close.request_cancel(app, run.run_id, run.identity, reason)


def _alias_identity(task: Task[Any, Any]) -> Any:
    return _alias_identity_of(task.task_id.key)


def _alias_identity_of(task_key: str) -> Any:
    return _ids.alias_identity_of(task_key)


def _call_id(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    from pynenc.arguments import Arguments
    from pynenc.call import Call

    return str(Call(task=task, arguments=Arguments.from_call(task.func, *args, **kwargs)).call_id)


def _index_start(app: Pynenc, task: Task[Any, Any], workflow_id: str, run_id: str) -> None:
    index = _index_identity()
    types_key = ID_TYPES_KEY.format(workflow_id)
    types = list(app.state_backend.get_workflow_data(index, types_key) or [])
    if task.task_id.key not in types:
        app.state_backend.set_workflow_data(index, types_key, sorted([*types, task.task_id.key]))
    app.state_backend.set_workflow_data(index, RUN_ID_KEY.format(run_id), workflow_id)


def _check_same_call(
    app: Pynenc,
    task: Task[Any, Any],
    workflow_id: str,
    existing: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    id_reuse: str,
) -> None:
    previous = app.state_backend.get_invocation(existing)
    if str(previous.call.call_id) != _call_id(task, args, kwargs):
        status = app.orchestrator.get_invocation_status(existing).value
        shown = repr(previous.call.arguments.kwargs)
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        raise WorkflowIdConflict(
            f"workflow id {workflow_id!r} of {task.task_id.func_name} is taken by run "
            f"{existing} ({status}), started with other arguments {shown} "
            f"(id_reuse={id_reuse!r}). Use another workflow id, or the same arguments to get "
            "that run back."
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

    ``workflow_id``: a user-defined id (per workflow type) that every client function
    accepts in place of the invocation id. Starting the same id again returns the existing
    run (``id_reuse="reuse"``), raises ``WorkflowAlreadyStarted`` (``"reject"``), or starts a
    new run only once the previous one finished (``"allow_after_completion"``): one instance
    at a time per key. Starting it with other arguments than the run it names raises
    ``WorkflowIdConflict`` under every policy (a finished run does not block
    ``"allow_after_completion"``). ``run_timeout``: the run fails with ``WorkflowTimeout``
    after that long, at the durable operation it waits in or its next one (in the
    simulator also in a plain ``.result``), and its running children are cancelled.

    Arguments the workflow's function does not accept, or a ``run_timeout`` whose deadline
    is past the year 9999, raise ``InvalidWorkflowArgument`` before the id is claimed.
    """
    from pynenc.task import Task as _Task

    if not isinstance(task, _Task) or not task.is_workflow_root_task:
        raise NotAWorkflow(
            f"start_workflow() starts a workflow (a function decorated with @app.workflow), "
            f"got {type(task).__name__}: {task!r}. Call a plain task directly: task(*args)."
        )
    app = task.app
    _ops.require_enabled(app, "start_workflow()")
    if id_reuse not in ("reuse", "reject", "allow_after_completion"):
        raise InvalidWorkflowArgument(
            f"id_reuse must be 'reuse', 'reject' or 'allow_after_completion', got {id_reuse!r}."
        )
    if workflow_id is not None and (not isinstance(workflow_id, str) or not workflow_id):
        raise InvalidWorkflowArgument(
            f"start_workflow(workflow_id={workflow_id!r}): expected a non-empty string (your "
            "business id, e.g. workflow_id=f'order-{order_id}') or None."
        )
    if run_timeout is not None and (
        not isinstance(run_timeout, dt.timedelta) or run_timeout <= dt.timedelta(0)
    ):
        raise InvalidWorkflowArgument(
            f"start_workflow(run_timeout={run_timeout!r}): expected a positive "
            "datetime.timedelta, e.g. run_timeout=timedelta(days=7), or None for no timeout."
        )
    if run_timeout is not None:
        deadline_after("start_workflow(run_timeout=)", _ops.utc_now(), run_timeout)
    check_call("start_workflow()", task, args, kwargs)
    for position, value in enumerate(args):  # pynenc would store a lambda as None, silently
        check_round_trip(app, "start_workflow()", f"argument #{position + 1}", value)
    for name, value in kwargs.items():
        check_round_trip(app, "start_workflow()", f"argument {name!r}", value)
    if workflow_id is not None and active_hooks() is None:
        run, started = _start_claimed(task, workflow_id, id_reuse, args, kwargs)
        if started:
            _set_run_timeout(app, run, run_timeout)
        return run
    with _ops.STORE_LOCK:  # one start per alias at a time in this process
        alias_key = None
        if workflow_id is not None:
            registry = _alias_identity(task)
            alias_key = schema.alias(workflow_id)
            existing = app.state_backend.get_workflow_data(registry, alias_key)
            if existing is not None:
                answer = _run_holding_id(task, workflow_id, str(existing), id_reuse, args, kwargs)
                if answer is not None:
                    return answer
        invocation = task(*args, **kwargs)
        if alias_key is not None:
            assert workflow_id is not None
            app.state_backend.set_workflow_data(
                _alias_identity(task), alias_key, str(invocation.invocation_id)
            )
            _index_start(app, task, workflow_id, str(invocation.invocation_id))
    _set_run_timeout(app, invocation, run_timeout)
    return invocation


def _run_holding_id(
    task: Task[Any, R],
    workflow_id: str,
    run_id: str,
    id_reuse: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> DistributedInvocation[Any, R] | None:
    """What a start under ``workflow_id``, already held by run ``run_id``, answers: that
    workflow's current run, or None when ``id_reuse='allow_after_completion'`` lets a new run
    start. Raises for ``'reject'`` and for a call with other arguments."""
    app = task.app
    # A chain (continue-as-new) answers with its last run, and was started with the
    # arguments of its first.
    latest, record = _chain.settled_run(app, app.state_backend.get_invocation(run_id))
    first = _chain.chain_runs(app, latest)[0]
    current = str(latest.invocation_id)
    final = record.status.is_final()
    if id_reuse != "allow_after_completion" or not final:
        # The id names that run: handing it back (or refusing) for a call with other
        # arguments would answer a question that was not asked.
        _check_same_call(app, task, workflow_id, first, args, kwargs, id_reuse)
    if id_reuse == "reject":
        raise WorkflowAlreadyStarted(
            f"workflow id {workflow_id!r} of {task.task_id.func_name} is already "
            f"taken by run {current} (id_reuse='reject'). Use another workflow id; to get "
            "that run back, start with id_reuse='reuse' or pass the id to describe_workflow."
        )
    if id_reuse == "reuse" or not final:
        found: DistributedInvocation[Any, R] = app.state_backend.get_invocation(current)
        return found
    return None


def _set_run_timeout(app: Pynenc, invocation: Any, run_timeout: dt.timedelta | None) -> None:
    if run_timeout is not None:
        assert invocation.workflow is not None
        deadline = _ops._iso(_ops.utc_now() + run_timeout)
        _ops.set_data(app, invocation.workflow, schema.DEADLINE, deadline)
        # the timer service ends it at the deadline even if blocked in a plain .result
        _timers.index_run_deadline(app, str(invocation.invocation_id), deadline)


#: How long a start may hold a workflow id before routing its run; past it, the starter is
#: taken for dead (crashed between claiming the id and routing) and another start takes over.
STARTING_GRACE_SECONDS = 30.0


def _start_claimed(
    task: Task[Any, R],
    workflow_id: str,
    id_reuse: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[DistributedInvocation[Any, R], bool]:
    """``start_workflow`` with a workflow id in production: the id is claimed atomically
    (``engine.atomic``) before the run is routed, so two processes starting the same id at
    one instant start one run and both get it back. Returns (the run, whether this call
    started it)."""
    import time
    import uuid

    from pynenc_wf_testing.engine.atomic import atomic_store

    app = task.app
    store = atomic_store(app)
    claim_key = schema.id_claim(task.task_id.key, workflow_id)
    registry, alias_key = _alias_identity(task), schema.alias(workflow_id)
    token = f"starting:{uuid.uuid4().hex}:{time.time()}"
    while True:
        existing = store.get(claim_key)
        if existing is None:
            legacy = app.state_backend.get_workflow_data(registry, alias_key)
            if legacy is not None:  # an id recorded before the claims existed
                store.put_if_absent(claim_key, str(legacy))
                continue
            if store.put_if_absent(claim_key, token) is None:
                break
            continue
        if existing.startswith("starting:"):
            started = float(existing.rsplit(":", 1)[1])
            if time.time() - started > STARTING_GRACE_SECONDS:
                if store.compare_and_set(claim_key, existing, token):
                    break
            else:
                time.sleep(0.005)  # another start is routing the run: wait for its id
            continue
        # the claim keeps the run id it was taken with (a chain's first run)
        found = _run_holding_id(task, workflow_id, existing, id_reuse, args, kwargs)
        if found is not None:
            return found, False
        if store.compare_and_set(claim_key, existing, token):  # a new run after completion
            break
    invocation = task(*args, **kwargs)
    run_id = str(invocation.invocation_id)
    store.compare_and_set(claim_key, token, run_id)
    # the per-type alias record and the id index, read by the lookups (and by a simulator)
    app.state_backend.set_workflow_data(registry, alias_key, run_id)
    store.add_member(schema.id_types(workflow_id), task.task_id.key)
    app.state_backend.set_workflow_data(
        _index_identity(), ID_TYPES_KEY.format(workflow_id),
        store.members(schema.id_types(workflow_id)),
    )
    app.state_backend.set_workflow_data(_index_identity(), RUN_ID_KEY.format(run_id), workflow_id)
    return invocation, True
