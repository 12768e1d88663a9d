"""``task.wf`` / ``task.wf.root`` with the engine's operations.

pynenc builds ``task.wf`` as a ``WorkflowContext`` (``WorkflowRootContext`` for workflows);
for apps that enabled the engine, ``task.wf`` is one of the subclasses below instead (see
``task_wf.install_task_wf``). Apps that did not enable it get pynenc's own objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pynenc.workflow.workflow_context import (
    WorkflowContext,
    WorkflowRootContext,
    WorkflowRootOps,
)

from pynenc_wf_testing.engine import _ops, schema
from pynenc_wf_testing.engine._checks import check_call, check_round_trip, check_task
from pynenc_wf_testing.engine._close import call_id, parse_policy
from pynenc_wf_testing.engine.exceptions import InvalidWorkflowArgument
from pynenc_wf_testing.engine.parent_close import ParentClosePolicy
from pynenc_wf_testing.engine.retry import RetryPolicy

if TYPE_CHECKING:
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.task import Task

    from pynenc_wf_testing.engine.saga import Saga

T = TypeVar("T")

_CALL_HINT = "Pass the task itself, e.g. root.execute_task(charge, order_id), not its result or invocation."


class DurableWorkflowContext(WorkflowContext):  # type: ignore[misc]
    """``task.wf`` of any task inside an engine-enabled workflow."""

    def __getattr__(self, name: str) -> Any:
        if name == "root":  # only a workflow task's context has it (DurableWorkflowRootContext)
            raise AttributeError(
                f"{self.task.task_id.func_name} is a plain task: wf.root (durable timers, "
                "signals, waits, child calls) exists only on workflows, functions decorated "
                "with @app.workflow. In a plain task use wf.get_data / wf.set_data / "
                "wf.save_state."
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def save_state(self, payload: Any) -> None:
        """Publish a progress snapshot of the workflow (timestamped), readable from outside
        with ``query_workflow`` while the workflow runs and after it ends."""
        _ops.require_enabled(self.app, "wf.save_state()")
        _ops.require_invocation(self.task, "wf.save_state()")
        check_round_trip(self.app, "wf.save_state()", "the snapshot", payload)
        invocation = self.task.invocation
        position: int | None = None
        if invocation.task.is_workflow_root_task and invocation.task.task_id == self.task.task_id:
            position = _ops.WorkflowExecution(self.app, invocation).next("state")
        _ops.save_state(self.app, self.identity, payload, position)


def _check_text(operation: str, what: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidWorkflowArgument(
            f"{operation}(): {what} must be a non-empty string, got {value!r}."
        )


def _check_timeout(operation: str, timeout: Any) -> None:
    if timeout is not None and (
        not isinstance(timeout, dt.timedelta) or timeout < dt.timedelta(0)
    ):
        raise InvalidWorkflowArgument(
            f"{operation}(timeout={timeout!r}): expected a non-negative datetime.timedelta "
            "(e.g. timeout=timedelta(days=3)) or None to wait without one."
        )


def _check_invocations(operation: str, invocations: Any) -> None:
    if not isinstance(invocations, list | tuple) or not all(
        hasattr(i, "invocation_id") and hasattr(i, "call") for i in invocations
    ):
        raise InvalidWorkflowArgument(
            f"{operation}() expects a list of invocations (what root.execute_task(...) "
            f"returns), got {invocations!r}."
        )


class DurableRootOps(WorkflowRootOps):  # type: ignore[misc]
    """``task.wf.root``: pynenc's deterministic operations plus the engine's."""

    def _execution(self, operation: str) -> _ops.WorkflowExecution:
        return _ops.current_execution(self.task, operation)

    # -- pynenc's deterministic values: its RuntimeError("Task has not been invoked yet")
    # outside an invocation becomes the engine's InvalidWorkflowOperation, as for the rest

    def random(self) -> float:
        """pynenc's ``random()``: replayed identically; seeded from the workflow id."""
        _ops.require_invocation(self.task, "wf.root.random()")
        value: float = super().random()
        return value

    def uuid(self) -> str:
        """pynenc's ``uuid()``: replayed identically; seeded from the workflow id."""
        _ops.require_invocation(self.task, "wf.root.uuid()")
        value: str = super().uuid()
        return value

    def utc_now(self) -> dt.datetime:
        """pynenc's ``utc_now()``: a logical counter (base + n seconds), not the clock; use
        ``now()`` for the time."""
        _ops.require_invocation(self.task, "wf.root.utc_now()")
        value: dt.datetime = super().utc_now()
        return value

    # -- time

    def sleep(self, duration: dt.timedelta | float) -> None:
        """Durable timer: wait ``duration`` (timedelta or seconds). The deadline is recorded
        on first execution: after a crash the workflow waits only for what remains."""
        _ops.sleep_for(self._execution("sleep"), duration)

    def sleep_until(self, instant: dt.datetime) -> None:
        """Durable timer: wait until the aware datetime ``instant``."""
        _ops.sleep_until(self._execution("sleep_until"), instant, operation="sleep_until")

    def now(self) -> dt.datetime:
        """The current time, recorded on first execution and replayed identically (unlike
        pynenc's ``utc_now()``, a logical counter, it follows the clock)."""
        return _ops.durable_now(self._execution("now"))

    def side_effect(self, fn: Callable[[], T]) -> T:
        """Run a non-deterministic ``fn`` once and record its (serializable) result; a
        replay returns the recorded value without calling ``fn``."""
        if not callable(fn):
            raise InvalidWorkflowArgument(
                f"side_effect() expects a function of no arguments, got {fn!r}; e.g. "
                "root.side_effect(lambda: secrets.token_hex(4))."
            )
        return _ops.side_effect(self._execution("side_effect"), fn)

    # -- signals and waits

    def wait_for_signal(
        self, name: str, *, timeout: dt.timedelta | None = None, default: Any = _ops._MISSING
    ) -> Any:
        """Wait for the next signal ``name`` and return its payload. Signals are stored on
        arrival (one sent before the wait is not lost) and consumed in order. On timeout,
        return ``default`` if given, else raise ``SignalTimeout``."""
        _check_text("wait_for_signal", "the signal name", name)
        _check_timeout("wait_for_signal", timeout)
        return _ops.wait_for_signal(self._execution("wait_for_signal"), name, timeout, default)

    def wait_for_task(
        self,
        target: DistributedInvocation[Any, Any] | Task[Any, Any],
        *,
        timeout: dt.timedelta | None = None,
    ) -> Any:
        """Resume when ``target`` completes: an invocation (its result, or its exception), or
        a task (the first invocation of it, routed after this wait began, that completes)."""
        from pynenc.task import Task as _Task

        from pynenc_wf_testing.engine._waits import wait_for_task

        if not isinstance(target, _Task) and not hasattr(target, "invocation_id"):
            raise InvalidWorkflowArgument(
                f"wait_for_task() expects an invocation (what root.execute_task(...) returns) "
                f"or a task, got {type(target).__name__}: {target!r}."
            )
        _check_timeout("wait_for_task", timeout)
        return wait_for_task(self._execution("wait_for_task"), target, timeout)

    def wait_all(self, invocations: Sequence[DistributedInvocation[Any, T]]) -> list[T]:
        """Results of all ``invocations``, in the order given (raises the first failure)."""
        from pynenc_wf_testing.engine._waits import wait_all

        _check_invocations("wait_all", invocations)
        return wait_all(self._execution("wait_all"), invocations)

    def wait_any(
        self, invocations: Sequence[DistributedInvocation[Any, T]]
    ) -> tuple[int, T]:
        """The index and result of the first of ``invocations`` to finish (recorded: a
        replay picks the same one)."""
        from pynenc_wf_testing.engine._waits import wait_any

        _check_invocations("wait_any", invocations)
        return wait_any(self._execution("wait_any"), invocations)

    # -- children

    def execute_task(self, task: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
        """pynenc's ``execute_task``; in production, first makes sure the end of this
        workflow type's runs reaches the timer service (the parent-close policy when a run
        completes or fails by itself, see docs/engine.md "Parent-close policy")."""
        from pynenc_wf_testing.engine._close_watch import watch_workflow_type

        check_task("execute_task()", task, hint=_CALL_HINT)
        watch_workflow_type(self.task.app, self.task)
        try:
            return super().execute_task(task, *args, **kwargs)
        except TypeError:
            # pynenc binds the arguments before it routes anything: name the signature
            check_call("execute_task()", task, args, kwargs)
            raise

    def start_child(
        self,
        task: Task[Any, T],
        *args: Any,
        parent_close: ParentClosePolicy | str = ParentClosePolicy.CANCEL,
        **kwargs: Any,
    ) -> DistributedInvocation[Any, T]:
        """``execute_task(task, *args, **kwargs)`` with a parent-close policy: what happens
        to the child if this workflow ends while it runs. ``ParentClosePolicy.CANCEL``
        (``"cancel"``, the default, as for every ``execute_task`` child) cancels it;
        ``ParentClosePolicy.ABANDON`` (``"abandon"``) lets it run on. The choice is
        recorded before the child is routed, per call (task and arguments)."""
        policy = parse_policy(parent_close)
        check_call("start_child()", task, args, kwargs)
        execution = self._execution("start_child")
        if policy is ParentClosePolicy.ABANDON:
            key = schema.abandon(call_id(task, args, kwargs))
            if execution.get(key) is None:
                execution.set(key, schema.AbandonRecord(task=task.task_id.func_name))
        invocation: DistributedInvocation[Any, T] = self.execute_task(task, *args, **kwargs)
        return invocation

    # -- retries, compensation, halts, versions

    def execute_task_with_retry(
        self, task: Task[Any, Any], *args: Any, retry: RetryPolicy | None = None, **kwargs: Any
    ) -> Any:
        """Call ``task`` as a child and retry it by ``retry`` (or the task's / app's default
        policy), waiting durable timers between attempts. Returns the result."""
        from pynenc_wf_testing.engine._waits import execute_with_retry

        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidWorkflowArgument(
                f"execute_task_with_retry(retry={retry!r}): expected a RetryPolicy or None, e.g. "
                "retry=RetryPolicy.fixed(timedelta(minutes=1), max_attempts=5)."
            )
        check_call("execute_task_with_retry()", task, args, kwargs)
        return execute_with_retry(self._execution("execute_task_with_retry"), task, args, kwargs, retry)

    def saga(self) -> Saga:
        """A compensation log: register a compensation after each step; on failure or
        cancellation, run them in reverse (``with wf.root.saga() as saga: ...``)."""
        from pynenc_wf_testing.engine.saga import Saga

        return Saga(self.task, self._execution("saga"))

    def halt(self, reason: str = "") -> None:
        """Park this workflow durably until ``resume_workflow`` (once per call site: after a
        resume the workflow goes past this point)."""
        if not isinstance(reason, str):
            raise InvalidWorkflowArgument(
                f"halt(reason={reason!r}): the reason is a string (shown by query_workflow and "
                "describe_workflow), e.g. root.halt('needs approval')."
            )
        _ops.halt(self._execution("halt"), reason)

    def check_cancelled(self) -> None:
        """Raise ``WorkflowCancelled`` / ``WorkflowTimeout`` now if the workflow was cancelled
        or its run timeout passed (every durable operation that waits checks this too).

        Each call that passes is recorded, so a replay goes past the calls the first
        execution went past and the cancellation surfaces at the same point."""
        _ops.check_cancelled(self._execution("check_cancelled"))

    def patched(self, change_id: str) -> bool:
        """Branch for a code change: True for runs that reach this point under the new
        code, False when replaying a run that went past it under the old code. Once no
        such old runs remain, keep only the new branch and call ``deprecate_patch``."""
        _check_text("patched", "change_id", change_id)
        return _ops.patched(self._execution("patched"), change_id)

    # -- execution chains

    def continue_as_new(self, *args: Any, **kwargs: Any) -> NoReturn:
        """End this run and start a new run of this workflow with ``args``/``kwargs`` and an
        empty history, under the same workflow id (client lookups, signals, results follow
        it). Never returns: raises ``ContinuedAsNew``, which must not be caught. Signals this
        run received and did not consume are delivered to the new run."""
        from pynenc_wf_testing.engine import _chain

        _chain.continue_as_new(_chain.current_execution(self.task), args, kwargs)

    def deprecate_patch(self, change_id: str) -> None:
        """Mark a retired patch: the new code runs unconditionally; histories recorded
        with the patch still replay (the marker is kept)."""
        _check_text("deprecate_patch", "change_id", change_id)
        execution = self._execution("deprecate_patch")
        if execution.get(schema.patch(change_id)) is None:
            execution.set(schema.patch(change_id), True)


class DurableWorkflowRootContext(DurableWorkflowContext, WorkflowRootContext):  # type: ignore[misc]
    """``task.wf`` of a workflow-defining task of an engine-enabled app."""

    def __init__(self, task: Task[Any, Any]) -> None:
        WorkflowRootContext.__init__(self, task)
        self.root = DurableRootOps(task)


#: Names the engine adds to ``task.wf`` / ``task.wf.root``: on an app that did not enable
#: the engine they raise ``WorkflowsNotEnabled`` (with how to enable it) instead of a bare
#: AttributeError. Everything pynenc itself offers is untouched.
_WF_NAMES = frozenset({"save_state"})
_ROOT_NAMES = frozenset(
    name for name in vars(DurableRootOps) if not name.startswith("_")
)


class _PlainWorkflowContext(WorkflowContext):  # type: ignore[misc]
    """pynenc's ``WorkflowContext`` of an app without the engine."""

    def __getattr__(self, name: str) -> Any:
        if name in _WF_NAMES:
            _ops.require_enabled(self.task.app, f"wf.{name}()")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class _PlainRootOps(WorkflowRootOps):  # type: ignore[misc]
    """pynenc's ``wf.root`` of an app without the engine."""

    def __getattr__(self, name: str) -> Any:
        if name in _ROOT_NAMES:
            _ops.require_enabled(self.task.app, f"wf.root.{name}()")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class _PlainWorkflowRootContext(_PlainWorkflowContext, WorkflowRootContext):  # type: ignore[misc]
    def __init__(self, task: Task[Any, Any]) -> None:
        WorkflowRootContext.__init__(self, task)
        self.root = _PlainRootOps(task)


def make_wf(task: Task[Any, Any]) -> WorkflowContext:
    """The ``task.wf`` object: the engine's for enabled apps; for the others, pynenc's own
    classes, whose only addition is a clear error for the engine's names."""
    if not _ops.workflows_enabled(task.app):
        if task.is_workflow_root_task:
            return _PlainWorkflowRootContext(task)
        return _PlainWorkflowContext(task)
    if task.is_workflow_root_task:
        return DurableWorkflowRootContext(task)
    return DurableWorkflowContext(task)


__all__ = ["DurableRootOps", "DurableWorkflowContext", "make_wf"]
