"""Waiting on other invocations and retrying child calls, durably."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pynenc_wf_testing.engine import _ops, schema
from pynenc_wf_testing.engine._checks import deadline_after
from pynenc_wf_testing.engine.exceptions import InvalidWorkflowArgument, WaitTimeout
from pynenc_wf_testing.engine.retry import RetryPolicy

if TYPE_CHECKING:
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.task import Task

T = TypeVar("T")

#: Retry policies registered per task key (``set_retry_policy``).
_TASK_POLICIES: dict[str, RetryPolicy] = {}
#: App default policies by reference (``enable_workflows(retry_policy=...)``). The app's
#: config holds the reference, not the policy: pynenc writes its config values as JSON (app
#: info in the store), and a policy names exception classes. The reference is derived from
#: the policy's content, so a worker process that builds the same app gets the same one.
_POLICY_REFS: dict[str, RetryPolicy] = {}


def policy_ref(policy: RetryPolicy) -> str:
    """Register ``policy`` and return the JSON-safe reference an app's config holds."""
    import hashlib

    ref = "retry-policy:" + hashlib.sha256(repr(policy).encode()).hexdigest()[:16]
    _POLICY_REFS[ref] = policy
    return ref


def app_default_policy(app: Any) -> RetryPolicy | None:
    """The default retry policy ``enable_workflows`` gave ``app``, if any."""
    ref = _ops.engine_defaults(app).get("retry_policy")
    return None if ref is None else _POLICY_REFS.get(ref)


def _is_final(app: Any, invocation_id: str) -> bool:
    return bool(app.orchestrator.get_invocation_status(invocation_id).is_final())


def _is_invocation(target: object) -> bool:
    from pynenc.invocation.dist_invocation import DistributedInvocation

    return isinstance(target, DistributedInvocation)


def wait_for_task(execution: _ops.WorkflowExecution, target: Any, timeout: dt.timedelta | None) -> Any:
    """Resume when ``target`` (an invocation, or any new run of a task) completes.

    The outcome (which invocation, or the timeout) is recorded: a replay returns the same
    result or raises the same ``WaitTimeout``, whatever finished in between.
    """
    app = execution.app
    n = execution.next("task_wait")
    key = schema.task_wait(n)
    record: schema.TaskWaitRecord | None = execution.get(key)
    if record is None:
        execution.check_interrupts()
        record = schema.TaskWaitRecord()
        if timeout is not None:
            record["deadline"] = _ops._iso(
                deadline_after("wait_for_task(timeout=)", _ops.utc_now(), timeout)
            )
        if not _is_invocation(target):
            record["known"] = sorted(
                str(i) for i in app.orchestrator.get_task_invocation_ids(target.task_id)
            )
        execution.set(key, record)
    if _is_invocation(target):
        what = f"the result of invocation {str(target.invocation_id)[:8]}"
    else:
        what = f"a run of task {target.task_id.func_name}"
    if "done" not in record and "timeout" not in record:
        deadline = _ops._parse(record["deadline"]) if "deadline" in record else None
        if _is_invocation(target):
            inv_id = str(target.invocation_id)

            def ready() -> str | None:
                return inv_id if _is_final(app, inv_id) else None

            keys: tuple[str, ...] = (f"inv:{inv_id}",)
        else:
            known = set(record.get("known", ()))
            task_id = target.task_id

            def ready() -> str | None:
                ids = sorted(str(i) for i in app.orchestrator.get_task_invocation_ids(task_id))
                for inv_id in ids:
                    if inv_id not in known and _is_final(app, inv_id):
                        return inv_id
                return None

            keys = (f"task:{task_id.key}",)
        found = execution.wait(ready, until=deadline, what=what, keys=keys)
        if found is not None:
            record = schema.TaskWaitRecord(**record, done=found)
        else:
            record = schema.TaskWaitRecord(**record, timeout=True)
        execution.set(key, record)
    if "timeout" in record:
        raise WaitTimeout(
            f"workflow {execution.workflow_id} waited {timeout} for {what} in vain"
        )
    if _is_invocation(target):
        return target.result
    return app.state_backend.get_invocation(record["done"]).result


def wait_all(
    execution: _ops.WorkflowExecution, invocations: Sequence[DistributedInvocation[Any, T]]
) -> list[T]:
    """Wait until every invocation is final, then return their results in the order given
    (raising the failure of the first failed one in that order: deterministic on replay,
    whatever order they finished in)."""
    app = execution.app
    ids = [str(i.invocation_id) for i in invocations]
    if ids:
        execution.wait(
            lambda: True if all(_is_final(app, i) for i in ids) else None,
            until=None,
            what="all of " + ", ".join(i[:8] for i in ids),
            keys=tuple(f"inv:{i}" for i in ids),
        )
    return [invocation.result for invocation in invocations]


def wait_any(
    execution: _ops.WorkflowExecution, invocations: Sequence[DistributedInvocation[Any, T]]
) -> tuple[int, T]:
    """Wait until one invocation is final; return ``(index, result)`` of the first to finish
    (earliest final status time; ties: the lowest index). The index is recorded: a replay
    returns the same one whatever finished since."""
    if not invocations:
        raise InvalidWorkflowArgument("wait_any() needs at least one invocation.")
    app = execution.app
    n = execution.next("any")
    key = schema.wait_any(n)
    index = execution.get(key)
    if index is None:
        ids = [str(i.invocation_id) for i in invocations]

        def first_final() -> int | None:
            # Several may be final by the time the wait looks (they finished before it began,
            # or within one poll): the winner is the one whose final status was set first,
            # by the status records' own times (virtual in the simulator), ties to the
            # lowest index.
            finished = []
            for position, inv_id in enumerate(ids):
                record = app.orchestrator.get_invocation_status_record(inv_id)
                if record.status.is_final():
                    finished.append((record.timestamp, position))
            return min(finished)[1] if finished else None

        index = execution.wait(
            first_final,
            until=None,
            what="the first of " + ", ".join(i[:8] for i in ids),
            keys=tuple(f"inv:{i}" for i in ids),
        )
        execution.set(key, index)
    assert index is not None
    return index, invocations[index].result


def policy_for(app: Any, task: Task[Any, Any], explicit: RetryPolicy | None) -> RetryPolicy:
    if explicit is not None:
        return explicit
    return _TASK_POLICIES.get(task.task_id.key) or app_default_policy(app) or RetryPolicy()


def execute_with_retry(
    execution: _ops.WorkflowExecution,
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    explicit: RetryPolicy | None,
) -> Any:
    app = execution.app
    policy = policy_for(app, task, explicit)
    n = execution.next("retry_call")
    attempt = 1
    known: set[str] = set()
    while True:
        key = schema.retry(n, attempt)
        recorded = execution.get(key)
        if recorded is None:
            # Routing the attempt and recording its id are two writes: mark the intent first,
            # so a replay after a crash in between adopts the routed child instead of
            # routing a duplicate (pynenc's own execute_task has this window open).
            intent = schema.retry_route(n, attempt)
            orphan = None
            if execution.get(intent) is None:
                execution.check_interrupts()
                execution.set(intent, True)
            else:
                orphan = _orphan_attempt(execution, task, args, kwargs, known)
            if orphan is not None:
                invocation: Any = orphan
                _ops.note_child(app, invocation)
            else:
                invocation = task(*args, **kwargs)
            execution.set(key, str(invocation.invocation_id))
        else:
            invocation = app.state_backend.get_invocation(recorded)
            _ops.note_child(app, invocation)
        known.add(str(invocation.invocation_id))
        # Wait outside the try: a cancellation or a lost invocation is not the child's failure.
        execution.wait_final(invocation)
        try:
            return invocation.result
        except Exception as error:  # the child's own failure, as pynenc stored it
            if not policy.should_retry(error, attempt):
                raise
            _ops.sleep_for(execution, policy.delay(attempt, f"{execution.workflow_id}:{n}"))
            attempt += 1


def _orphan_attempt(
    execution: _ops.WorkflowExecution,
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    known: set[str],
) -> Any:
    """The attempt an earlier execution routed but did not record (it crashed in between):
    a child of this workflow invocation, of this call, not recorded as another attempt."""
    from pynenc.arguments import Arguments
    from pynenc.call import Call

    app = execution.app
    call_id = str(Call(task=task, arguments=Arguments.from_call(task.func, *args, **kwargs)).call_id)
    parent = str(execution.invocation.invocation_id)
    for inv_id in sorted(str(i) for i in app.orchestrator.get_task_invocation_ids(task.task_id)):
        if inv_id in known:
            continue
        candidate = app.state_backend.get_invocation(inv_id)
        if (
            str(candidate.parent_invocation_id) == parent
            and str(candidate.call.call_id) == call_id
        ):
            return candidate
    return None
