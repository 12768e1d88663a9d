"""Continue-as-new: a workflow ends its run and starts the next run of its chain.

A workflow that loops for years (a monthly renewal) replays its whole history at every
resume: the cost of a resume grows with the history. ``wf.root.continue_as_new(*args)`` ends
the current run and starts a new run of the same workflow with ``args`` and an empty history
(Temporal's ``workflow.continue_as_new``; pynenc's design calls these execution chains).

What a continuation writes, in this order (each step is safe to repeat: a replay of the old
run after a crash at any point redoes the missing ones and never starts a second new run):

1. the new run, under an invocation id derived from the old run's id (``uuid5``): a replay
   that finds it stored adopts it instead of routing another;
2. in the new run's data, the signals the old run received and did not consume (so a signal
   sent between the runs is not lost), the run deadline if there is one (``run_timeout``
   bounds the chain), a cancellation that arrived after the old run last checked, and the
   link back (``schema.CONTINUED_FROM``);
3. in the old run's data, the link forward (``schema.CONTINUED_AS``): the decision, recorded;
4. the workflow id (the ``workflow_id`` given to ``start_workflow``, else the chain's first
   run id) now names the new run;
5. the old run ends SUCCESS with ``{"continued_as_new": <new run id>}`` as its result.

Steps 2 and 3 hold the engine's store lock, as ``signal_workflow`` and ``cancel_workflow``
do while they resolve their target and write: a signal or a cancellation in the same process
lands before the carry-over or follows the link to the new run.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, NoReturn

from pynenc import context

from pynenc_wf_testing.engine import _ids, _ops, schema
from pynenc_wf_testing.engine._checks import check_round_trip
from pynenc_wf_testing.engine.exceptions import (
    ContinuedAsNew,
    InvalidWorkflowArgument,
    InvalidWorkflowOperation,
)

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.task import Task
    from pynenc.workflow.workflow_identity import WorkflowIdentity

#: Namespace of the ids of continued runs (``uuid5(namespace, old run id)``).
_RUN_NAMESPACE = uuid.UUID("8f0b4a4e-3c1d-5e7a-9b2f-6a1c0d7e4b53")

#: The result pynenc stores for a run that continued as new (its status is SUCCESS).
RESULT_KEY = "continued_as_new"


def next_run_id(run_id: str) -> str:
    """The invocation id of the run that ``run_id`` continues as (derived, so a replay of
    the old run finds the run it started)."""
    return str(uuid.uuid5(_RUN_NAMESPACE, run_id))


def continued_as(app: Pynenc, identity: WorkflowIdentity) -> str | None:
    """The run that the run of ``identity`` continued as, if it did."""
    value = app.state_backend.get_workflow_data(identity, schema.CONTINUED_AS, None)
    return None if value is None else str(value)


def current_execution(task: Task[Any, Any]) -> _ops.WorkflowExecution:
    """The execution of the workflow body calling ``continue_as_new``, or a clear error."""
    _ops.require_enabled(task.app, "wf.root.continue_as_new()")
    invocation = context.get_dist_invocation_context(task.app.app_id)
    if invocation is None or invocation.task.task_id != task.task_id:
        where = (
            "outside any invocation" if invocation is None
            else f"in task {invocation.task.task_id.func_name}"
        )
        raise InvalidWorkflowOperation(
            f"{task.task_id.func_name}.wf.root.continue_as_new() was called {where}: it ends "
            f"the running {task.task_id.func_name} workflow, so only that workflow's own body "
            "can call it. From outside, start a new run with start_workflow(..., "
            "workflow_id=..., id_reuse='allow_after_completion')."
        )
    return _ops.current_execution(task, "continue_as_new")


def _checked_arguments(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The call of the next run: arguments bound to the workflow's signature and checked to
    come back from pynenc's serializer as what was given (jsonpickle writes a lambda or an
    open file as null without complaint)."""
    from pynenc.arguments import Arguments
    from pynenc.call import Call

    name = task.task_id.func_name
    try:
        arguments = Arguments.from_call(task.func, *args, **kwargs)
    except TypeError as error:
        raise InvalidWorkflowArgument(
            f"continue_as_new(): {name} cannot be called with these arguments ({error}). "
            f"Pass the arguments of {name}'s function: the next run calls {name}(*args, "
            "**kwargs)."
        ) from None
    for key, value in arguments.kwargs.items():
        check_round_trip(
            task.app, "continue_as_new()", f"argument {key!r} of {name}", value,
            hint=" Build functions, files or clients inside the workflow.", in_simulator=True,
        )
    return Call(task, arguments)


def continue_as_new(
    execution: _ops.WorkflowExecution, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> NoReturn:
    """End the current run and start the next one with ``args``/``kwargs`` (see the module
    docstring for the order of the writes)."""
    app = execution.app
    invocation = execution.invocation
    task = invocation.task
    identity = execution.identity
    if identity.parent_workflow_id is not None:
        raise InvalidWorkflowOperation(
            f"continue_as_new() in sub-workflow {task.task_id.func_name} (of workflow "
            f"{identity.parent_workflow_id}): a sub-workflow's parent waits for the result of "
            "its invocation, which a new run would not give it. Loop inside the sub-workflow, "
            "or call continue_as_new() from the top-level workflow."
        )
    call = _checked_arguments(task, args, kwargs)
    old_id = execution.workflow_id
    recorded = execution.get(schema.CONTINUED_AS)
    if recorded is None:
        new_id = next_run_id(old_id)
        if _stored(app, new_id) is None:
            execution.check_interrupts()  # a cancelled or timed-out run does not go on
        # else an earlier execution decided and routed it: link it (a cancellation that came
        # since is carried over) rather than leave a run nobody can reach.
        new_run = _route_or_adopt(app, call, new_id)
        _link(execution, new_run)
    else:
        new_run = app.state_backend.get_invocation(str(recorded))
        _ops.note_child(app, new_run)
    new_id = str(new_run.invocation_id)
    _name_new_run(app, task, old_id, new_id)
    runner_ctx = context.get_runner_context(app.app_id)
    if runner_ctx is not None:
        app.orchestrator.set_invocation_result(invocation, {RESULT_KEY: new_id}, runner_ctx)
    _ops.notify(app, new_id)
    raise ContinuedAsNew(new_id)


def _stored(app: Pynenc, invocation_id: str) -> DistributedInvocation[Any, Any] | None:
    from pynenc.exceptions import InvocationNotFoundError

    try:
        invocation: DistributedInvocation[Any, Any] = app.state_backend.get_invocation(
            invocation_id
        )
    except (InvocationNotFoundError, KeyError):
        return None
    return invocation


def _route_or_adopt(app: Pynenc, call: Any, new_id: str) -> DistributedInvocation[Any, Any]:
    """Route the next run under ``new_id``, or adopt it if an earlier execution of the old
    run routed it and crashed before recording it."""
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.invocation.dist_invocation import WorkflowInvocation
    from pynenc.workflow.workflow_identity import WorkflowIdentity

    existing = _stored(app, new_id)
    if existing is not None:
        try:
            app.orchestrator.get_invocation_status(new_id)
        except Exception:  # stored, but the crash came before pynenc registered it
            app.orchestrator.register_new_invocations([existing])
        else:
            _ops.note_child(app, existing)
        return existing
    task = call.task
    run = WorkflowInvocation(
        call=call,
        invocation_id=InvocationId(new_id),
        # A top-level run, not a child of the old one: the chain is linked in the data.
        parent_invocation_id=None,
        workflow=WorkflowIdentity(
            workflow_id=InvocationId(new_id), workflow_type=task.task_id
        ),
        stored_in_backend=False,
    )
    app.orchestrator.register_new_invocations([run])
    return run


def _link(execution: _ops.WorkflowExecution, new_run: Any) -> None:
    """Carry unconsumed signals over, link the runs both ways (the forward link last: it is
    the recorded decision)."""
    app = execution.app
    new_identity = new_run.workflow
    backend = app.state_backend
    set_new = backend.set_workflow_data
    index = _ids.index_identity()
    with _ops.STORE_LOCK:
        carried: list[str] = []
        names_key = schema.SIGNAL_NAMES.format(execution.workflow_id)
        for name in backend.get_workflow_data(index, names_key) or []:
            slot = execution.counters.get(f"consumed:{name}", 0) + 1
            count = 0
            while (record := execution.get(schema.signal(name, slot))) is not None:
                count += 1
                set_new(new_identity, schema.signal(name, count), record)
                slot += 1
            if count:
                set_new(new_identity, schema.signal_count(name), count)
                carried.append(name)
        if carried:
            backend.set_workflow_data(
                index, schema.SIGNAL_NAMES.format(new_run.invocation_id), carried
            )
        deadline = execution.get(schema.DEADLINE)
        if deadline is not None:  # start_workflow's run_timeout bounds the whole chain
            set_new(new_identity, schema.DEADLINE, deadline)
            from pynenc_wf_testing.engine._timers import index_run_deadline

            index_run_deadline(app, str(new_run.invocation_id), deadline)
        cancel = execution.get(schema.CANCEL)
        if cancel is not None:  # arrived after this run checked: the next run gets it
            set_new(new_identity, schema.CANCEL, cancel)
        set_new(new_identity, schema.CONTINUED_FROM, execution.workflow_id)
        execution.set(schema.CONTINUED_AS, str(new_run.invocation_id))


def _name_new_run(app: Pynenc, task: Task[Any, Any], old_id: str, new_id: str) -> None:
    """Point the chain's workflow id at the new run. Only if it still names the old run: a
    late replay of an old run must not take the id back from a run further down the chain
    (client lookups follow the links anyway, so a stale pointer costs reads, not answers)."""
    backend = app.state_backend
    index = _ids.index_identity()
    workflow_id = str(backend.get_workflow_data(index, schema.ID_OF_RUN.format(old_id)) or old_id)
    registry = _ids.alias_identity_of(task.task_id.key)
    key = schema.alias(workflow_id)
    with _ops.STORE_LOCK:
        current = backend.get_workflow_data(registry, key)
        if current is None or str(current) == old_id:
            backend.set_workflow_data(registry, key, new_id)
        types_key = schema.ID_TYPES.format(workflow_id)
        types = list(backend.get_workflow_data(index, types_key) or [])
        if task.task_id.key not in types:
            backend.set_workflow_data(index, types_key, sorted([*types, task.task_id.key]))
        if backend.get_workflow_data(index, schema.ID_OF_RUN.format(new_id)) is None:
            backend.set_workflow_data(index, schema.ID_OF_RUN.format(new_id), workflow_id)


def latest_run(app: Pynenc, invocation: DistributedInvocation[Any, Any]) -> DistributedInvocation[Any, Any]:
    """The last run of the chain ``invocation`` belongs to (itself if it did not continue)."""
    current = invocation
    while current.workflow is not None:
        following = continued_as(app, current.workflow)
        if following is None:
            break
        current = app.state_backend.get_invocation(following)
    return current


def settled_run(
    app: Pynenc, invocation: DistributedInvocation[Any, Any]
) -> tuple[DistributedInvocation[Any, Any], Any]:
    """The last run of ``invocation``'s chain and its pynenc status record, read so that a
    run that continues as new between the lookup and the status read is not taken for the
    chain's end: its final status comes after its forward link (``continue_as_new`` writes
    the link first), so a final run read with no link is the end."""
    current = latest_run(app, invocation)
    while True:
        record = app.orchestrator.get_invocation_status_record(current.invocation_id)
        if not record.status.is_final() or current.workflow is None:
            return current, record
        following = continued_as(app, current.workflow)
        if following is None:
            return current, record
        current = latest_run(app, app.state_backend.get_invocation(following))


def chain_runs(app: Pynenc, invocation: DistributedInvocation[Any, Any]) -> list[str]:
    """The run ids of ``invocation``'s chain up to it, oldest first."""
    runs = [str(invocation.invocation_id)]
    identity = invocation.workflow
    while identity is not None:
        previous = app.state_backend.get_workflow_data(identity, schema.CONTINUED_FROM, None)
        if previous is None:
            break
        runs.append(str(previous))
        identity = app.state_backend.get_invocation(str(previous)).workflow
    runs.reverse()
    return runs
