"""Waiting on other invocations and retrying child calls, durably."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import _ops
from .exceptions import WaitTimeout
from .retry import RetryPolicy

if TYPE_CHECKING:
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.task import Task

T = TypeVar("T")

#: Retry policies registered per task key (``set_retry_policy``).
_TASK_POLICIES: dict[str, RetryPolicy] = {}
#: Default policies per app id (``enable_workflows(app, retry_policy=...)``).
_APP_POLICIES: dict[str, RetryPolicy] = {}


def _is_final(app: Any, invocation_id: str) -> bool:
    return bool(app.orchestrator.get_invocation_status(invocation_id).is_final())


def _is_invocation(target: object) -> bool:
    from pynenc.invocation.dist_invocation import DistributedInvocation

    return isinstance(target, DistributedInvocation)


def wait_for_task(execution: _ops.Execution, target: Any, timeout: dt.timedelta | None) -> Any:
    app = execution.app
    n = execution.next("task_wait")
    key = f"wfx:task_wait:{n}"
    record = execution.get(key)
    if record is None:
        record = {}
        if timeout is not None:
            record["deadline"] = _ops._iso(_ops.utc_now() + timeout)
        if not _is_invocation(target):
            task_id = target.task_id
            record["known"] = sorted(
                str(i) for i in app.orchestrator.get_task_invocation_ids(task_id)
            )
        execution.set(key, record)
    deadline = _ops._parse(record["deadline"]) if "deadline" in record else None
    if _is_invocation(target):
        inv_id = str(target.invocation_id)
        ready = lambda: True if _is_final(app, inv_id) else None  # noqa: E731
        keys: tuple[str, ...] = (f"inv:{inv_id}",)
        what = f"the result of invocation {inv_id[:8]}"
        invocation = target
    else:
        done = record.get("done")
        if done is not None:
            return app.state_backend.get_invocation(done).result
        known = set(record.get("known", ()))
        task_id = target.task_id

        def ready() -> str | None:  # type: ignore[misc]
            for inv_id in sorted(str(i) for i in app.orchestrator.get_task_invocation_ids(task_id)):
                if inv_id not in known and _is_final(app, inv_id):
                    return inv_id
            return None

        keys = (f"task:{task_id.key}",)
        what = f"a run of task {task_id.func_name}"
        invocation = None
    found = execution.wait(ready, until=deadline, what=what, keys=keys)
    if found is None:
        raise WaitTimeout(
            f"workflow {execution.workflow_id} waited {timeout} for {what} in vain"
        )
    if invocation is None:
        record["done"] = found
        execution.set(key, record)
        invocation = app.state_backend.get_invocation(found)
    return invocation.result


def wait_all(execution: _ops.Execution, invocations: Sequence[DistributedInvocation[Any, T]]) -> list[T]:
    execution.check_interrupts()
    return [invocation.result for invocation in invocations]


def wait_any(
    execution: _ops.Execution, invocations: Sequence[DistributedInvocation[Any, T]]
) -> tuple[int, T]:
    if not invocations:
        from ..errors import InvalidArgument

        raise InvalidArgument("wait_any() needs at least one invocation.")
    app = execution.app
    n = execution.next("any")
    key = f"wfx:any:{n}"
    index = execution.get(key)
    if index is None:
        ids = [str(i.invocation_id) for i in invocations]

        def first_final() -> int | None:
            for position, inv_id in enumerate(ids):
                if _is_final(app, inv_id):
                    return position
            return None

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
    return _TASK_POLICIES.get(task.task_id.key) or _APP_POLICIES.get(app.app_id) or RetryPolicy()


def execute_with_retry(
    execution: _ops.Execution,
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    explicit: RetryPolicy | None,
) -> Any:
    app = execution.app
    policy = policy_for(app, task, explicit)
    n = execution.next("retry_call")
    attempt = 1
    while True:
        key = f"wfx:retry:{n}:{attempt}"
        recorded = execution.get(key)
        if recorded is None:
            execution.check_interrupts()
            invocation: Any = task(*args, **kwargs)
            execution.set(key, str(invocation.invocation_id))
        else:
            invocation = app.state_backend.get_invocation(recorded)
            _ops.note_child(app, invocation)
        try:
            return invocation.result
        except Exception as error:  # the child's own failure, as pynenc stored it
            if not policy.should_retry(error, attempt):
                raise
            _ops.sleep_for(execution, policy.delay(attempt, f"{execution.workflow_id}:{n}"))
            attempt += 1
