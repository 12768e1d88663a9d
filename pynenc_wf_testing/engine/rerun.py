"""Re-run a finished workflow from a step, and invalidate recorded child results.

A pynenc workflow replays from its records: ``wf.root.execute_task`` returns the child it
recorded under ``task_invocation:<call id>`` instead of routing a new one. A re-run is a new
run of the same workflow (same task, same arguments) whose workflow data starts with the
records of the child calls made *before* the chosen step: its body replays those from the
records and executes the chosen step and everything after it again. It takes the workflow id
of the run it re-runs (``describe_workflow`` then shows the re-run, linked to the old run).

Steps are the run's child calls, named as the simulator names them (``charge_payment#1``:
the first call of ``charge_payment`` by that workflow). Without the simulator's recorder, the
engine orders the run's direct children (pynenc's ``parent_invocation_id``) by the instant of
their first status record (when they were routed), ties in the store's order, and numbers
them per task function name.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import _ops, schema
from pynenc_wf_testing.engine.client import (
    RUN_ID_KEY,
    _alias_identity,
    _index_identity,
    _index_start,
    _resolve,
    _Run,
)
from pynenc_wf_testing.engine.exceptions import (
    InvalidWorkflowArgument,
    UnknownStep,
    WorkflowNotFinished,
)
from pynenc_wf_testing.engine.hooks import active_hooks

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.task import Task

__all__ = ["invalidate_result", "rerun_workflow", "workflow_steps"]


def _first_seen(app: Pynenc, invocation_id: str) -> dt.datetime:
    """The instant of an invocation's first status record (when it was routed)."""
    history = app.state_backend.get_history(invocation_id)
    if history:
        first: dt.datetime = min(h.timestamp for h in history)
        return first
    record: dt.datetime = app.orchestrator.get_invocation_status_record(invocation_id).timestamp
    return record


def _steps(app: Pynenc, run: _Run) -> list[tuple[str, str]]:
    """(step name, child invocation id) of every child call of ``run``: for a re-run, the
    steps it reused (named as in the run it re-runs) first, then the children it routed
    itself, numbered per task after the reused ones."""
    record = _ops.get_data(app, run.identity, schema.RERUN_OF) or {}
    reused = [(str(name), str(child)) for name, child in record.get("reused", [])]
    hooks = active_hooks()
    if hooks is not None:
        simulated = hooks.child_steps(app, run.run_id)
        if simulated is not None:
            # The simulator's own names (crash_after's and the history's).
            return reused + simulated
    children = [str(c) for c in app.state_backend.get_child_invocations(run.run_id)]
    order = {c: i for i, c in enumerate(children)}
    children.sort(key=lambda c: (_first_seen(app, c), order[c]))
    counters: dict[str, int] = {}
    for name, _ in reused:
        func, _, number = name.rpartition("#")
        counters[func] = max(counters.get(func, 0), int(number))
    steps = list(reused)
    for child in children:
        func = app.state_backend.get_invocation(child).task.task_id.func_name
        counters[func] = counters.get(func, 0) + 1
        steps.append((f"{func}#{counters[func]}", child))
    return steps


def workflow_steps(app: Pynenc, workflow: Any) -> list[str]:
    """The step names of a workflow run's child calls, in call order (``reserve#1``,
    ``charge_payment#1``, ``charge_payment#2``, ...): the names ``rerun_workflow`` and
    ``invalidate_result`` accept. ``workflow``: its workflow id, invocation id, a run or
    the invocation (the current run of a workflow id)."""
    _ops.require_enabled(app, "workflow_steps()")
    run = _resolve(app, workflow, "workflow_steps()")
    return [name for name, _ in _steps(app, run)]


def _named(app: Pynenc, run: _Run) -> str:
    """The run as the user knows it: the workflow id they gave (or the one it was started
    under, for a run handle or an invocation id), then the run's invocation id."""
    if run.label != run.run_id:
        return f"workflow {run.label!r} (run {run.run_id})"
    alias = app.state_backend.get_workflow_data(_index_identity(), RUN_ID_KEY.format(run.run_id))
    if alias is not None and str(alias) != run.run_id:
        return f"workflow {str(alias)!r} (run {run.run_id})"
    return f"workflow run {run.run_id}"


def _require_finished(app: Pynenc, run: _Run, operation: str) -> None:
    status = app.orchestrator.get_invocation_status(run.run_id)
    if not status.is_final():
        raise WorkflowNotFinished(
            f"{operation}: {_named(app, run)} is still running (status "
            f"{status.value}); only a finished or failed run can be re-run or have results "
            "invalidated. Wait for it to finish, or cancel_workflow() it first."
        )


def _refuse_sub_workflow(app: Pynenc, run: _Run, operation: str, fix: str) -> None:
    """A sub-workflow's result belongs to its parent, which recorded it and would never see
    a new run of the child (DBOS's fork likewise starts a workflow of its own, unlinked):
    the parent is what gets re-run, from the step that called the child. ``fix``: the call
    to suggest, formatted with the parent's workflow id and that step."""
    parent_id = run.identity.parent_workflow_id
    if not parent_id:
        return
    parent = _resolve(app, str(parent_id), operation)
    alias = app.state_backend.get_workflow_data(
        _index_identity(), RUN_ID_KEY.format(parent.run_id)
    )
    parent_label = str(alias) if alias is not None else parent.run_id
    step = next((name for name, child in _steps(app, parent) if child == run.run_id), None)
    where = f" (its step {step!r})" if step else ""
    raise InvalidWorkflowArgument(
        f"{operation}: run {run.run_id} is a sub-workflow of workflow {parent_label!r}"
        f"{where}: the parent recorded its result, and a run of the sub-workflow alone would "
        f"reach no one. {fix.format(parent=parent_label, step=step or '<its step>')}"
    )


def _find_step(
    app: Pynenc, steps: list[tuple[str, str]], step: str, run: _Run, operation: str
) -> int:
    """Index of ``step`` (``name#n``; a bare ``name`` is ``name#1``) in ``steps``."""
    if not isinstance(step, str) or not step:
        raise InvalidWorkflowArgument(
            f"{operation}: a step is a step name like 'charge_payment#1', got {step!r}."
        )
    wanted = step if "#" in step else f"{step}#1"
    for index, (name, _) in enumerate(steps):
        if name == wanted:
            return index
    listing = ", ".join(name for name, _ in steps) or "none (it made no child call)"
    named = _named(app, run)
    func = wanted.rsplit("#", 1)[0]
    calls = [name for name, _ in steps if name.rsplit("#", 1)[0] == func]
    number = wanted.rsplit("#", 1)[1]
    if calls and not (number.isdigit() and int(number) >= 1):
        # 'add#0', 'add#-1', 'add#x': not "after the end", a malformed call number
        raise UnknownStep(
            f"{operation}: step {step!r} has no call number: calls are numbered from 1 "
            f"('{func}#1' ... {calls[-1]!r}). Its steps are: {listing}."
        )
    if calls:
        raise UnknownStep(
            f"{operation}: step {step!r} is after the end of {named}: it called {func} {len(calls)} time(s), last {calls[-1]!r}. Its "
            f"steps are: {listing}."
        )
    raise UnknownStep(
        f"{operation}: {named} has no step {step!r}. Its "
        f"steps are: {listing}."
    )


def _retry_records(app: Pynenc, run: _Run) -> dict[str, list[str]]:
    """The engine's records of retried-call attempts, by the attempt's invocation id."""
    records: dict[str, list[str]] = {}
    n = 1
    while _ops.get_data(app, run.identity, schema.retry_route(n, 1)) is not None:
        attempt = 1
        while (child := _ops.get_data(app, run.identity, schema.retry(n, attempt))) is not None:
            records[str(child)] = [schema.retry_route(n, attempt), schema.retry(n, attempt)]
            attempt += 1
        n += 1
    return records


def rerun_workflow(
    app: Pynenc, workflow: Any, from_step: str | None = None
) -> DistributedInvocation[Any, Any]:
    """Start a new run of a finished (or failed) workflow that reuses the recorded results
    of the child calls before ``from_step`` and executes ``from_step`` and everything after
    it again. ``from_step=None`` reuses every recorded result except the invalidated ones
    (``invalidate_result``). The new run takes the old run's workflow id and records which
    run it re-runs (``describe_workflow(...).rerun_of``). Returns its invocation.

    Raises ``WorkflowNotFinished`` for a run that has not finished, ``UnknownStep`` (listing
    the run's steps) for a step it does not have, ``InvalidWorkflowArgument`` for a
    sub-workflow (naming the parent and the step to re-run it from instead)."""
    from pynenc.call import Call
    from pynenc.invocation.dist_invocation import DistributedInvocation as _Invocation

    _ops.require_enabled(app, "rerun_workflow()")
    run = _resolve(app, workflow, "rerun_workflow()")
    _refuse_sub_workflow(
        app, run, "rerun_workflow()",
        "Re-run the parent from that step instead (it runs the sub-workflow again): "
        "rerun_workflow(app, {parent!r}, from_step={step!r}).",
    )
    _require_finished(app, run, "rerun_workflow()")
    steps = _steps(app, run)
    end = len(steps) if from_step is None else _find_step(app, steps, from_step, run, "rerun_workflow()")
    invalid = set(_ops.get_data(app, run.identity, schema.INVALIDATED) or [])
    retried = _retry_records(app, run)
    old = run.invocation
    task: Task[Any, Any] = old.call.task
    records: dict[str, Any] = {}
    reused: list[list[str]] = []
    for name, child in steps[:end]:
        if child in invalid:
            continue
        keys = retried.get(child, [])
        call_key = f"task_invocation:{app.state_backend.get_invocation(child).call.call_id}"
        if str(_ops.get_data(app, run.identity, call_key)) == child:
            keys = [*keys, call_key]
        if not keys:
            continue  # not recorded (a plain task() call in the body): executed again
        for key in keys:
            records[key] = _ops.get_data(app, run.identity, key)
        reused.append([name, child])
    # Built, seeded, then routed: a worker must not start the run before its records exist.
    invocation: DistributedInvocation[Any, Any] = _Invocation.from_parent(
        Call(task=task, arguments=old.call.arguments), parent_invocation=None
    )
    assert invocation.workflow is not None
    new_id = str(invocation.invocation_id)
    for key, value in records.items():
        _ops.set_data(app, invocation.workflow, key, value)
    link: schema.RerunRecord = {
        "run": run.run_id,
        "from_step": None if from_step is None else steps[end][0],
        "reused": reused,
    }
    _ops.set_data(app, invocation.workflow, schema.RERUN_OF, link)
    with _ops.STORE_LOCK:
        alias = app.state_backend.get_workflow_data(
            _index_identity(), RUN_ID_KEY.format(run.run_id)
        )
        workflow_id = str(alias) if alias is not None else run.run_id
        earlier = list(_ops.get_data(app, run.identity, schema.RERUN_BY) or [])
        _ops.set_data(app, run.identity, schema.RERUN_BY, [*earlier, new_id])
        hooks = active_hooks()
        if hooks is not None:
            hooks.rerun_started(app, new_id, [name for name, _ in reused])
        app.orchestrator.register_new_invocations([invocation])
        app.state_backend.set_workflow_data(
            _alias_identity(task), schema.alias(workflow_id), new_id
        )
        _index_start(app, task, workflow_id, new_id)
        if hooks is None and alias is not None:
            # production starts claim their workflow id atomically (client._start_claimed):
            # the claim names the current run too, so a later start under the id finds it
            from pynenc_wf_testing.engine.atomic import atomic_store

            claim = schema.id_claim(task.task_id.key, workflow_id)
            store = atomic_store(app)
            if store.get(claim) is not None:
                store.set(claim, new_id)
    return invocation


def invalidate_result(app: Pynenc, workflow: Any, step: str | Task[Any, Any]) -> list[str]:
    """Invalidate recorded child results of a finished (or failed) run, so that its next
    re-run (``rerun_workflow``) computes them again: one step (``"charge_payment#2"``) or
    every call of a task (the task itself). Returns the step names invalidated.

    Raises ``WorkflowNotFinished`` for a run that has not finished (a running workflow
    replays from its records at any moment), ``UnknownStep`` (listing the run's steps) for
    a step or task it does not have, ``InvalidWorkflowArgument`` for a sub-workflow (naming
    the parent's step to invalidate instead)."""
    from pynenc.task import Task as _Task

    _ops.require_enabled(app, "invalidate_result()")
    run = _resolve(app, workflow, "invalidate_result()")
    _refuse_sub_workflow(
        app, run, "invalidate_result()",
        "Invalidate the parent's step instead (its next re-run runs the sub-workflow "
        "again): invalidate_result(app, {parent!r}, {step!r}).",
    )
    _require_finished(app, run, "invalidate_result()")
    steps = _steps(app, run)
    if isinstance(step, _Task):
        key = step.task_id.key
        chosen = [
            (name, child) for name, child in steps
            if app.state_backend.get_invocation(child).task.task_id.key == key
        ]
        if not chosen:
            listing = ", ".join(name for name, _ in steps) or "none (it made no child call)"
            raise UnknownStep(
                f"invalidate_result(): {_named(app, run)} never called "
                f"{step.task_id.func_name}. Its steps are: {listing}."
            )
    else:
        chosen = [steps[_find_step(app, steps, step, run, "invalidate_result()")]]
    with _ops.STORE_LOCK:
        invalid = set(_ops.get_data(app, run.identity, schema.INVALIDATED) or [])
        invalid.update(child for _, child in chosen)
        _ops.set_data(
            app, run.identity, schema.INVALIDATED, [c for _, c in steps if c in invalid]
        )
    return [name for name, _ in chosen]
