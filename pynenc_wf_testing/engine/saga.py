"""A small saga helper: compensations registered after each step, run in reverse on failure."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynenc.task import Task

    from pynenc_wf_testing.engine._ops import WorkflowExecution

__all__ = ["Saga"]


class Saga:
    """Compensation log of one workflow execution (``wf.root.saga()``).

    ``add_compensation(task, *args)`` after each step that needs undoing; ``compensate()``
    runs them newest first, each as a recorded child call (a replay does not repeat one that
    already ran). As a context manager it compensates when the block raises (cancellation
    and timeouts included) and re-raises that exception; compensations that fail do not stop
    the others and are attached to it as notes (``__notes__``, one line each). A halt is not
    a failure: it compensates nothing.
    """

    def __init__(self, workflow_task: Task[Any, Any], execution: WorkflowExecution) -> None:
        self._workflow_task = workflow_task
        self._execution = execution
        self._compensations: list[tuple[Task[Any, Any], tuple[Any, ...], dict[str, Any]]] = []
        self.compensated: list[str] = []
        """Names of the compensations that ran, in order."""

    def add_compensation(self, task: Task[Any, Any], *args: Any, **kwargs: Any) -> None:
        """Register ``task(*args, **kwargs)`` to undo the step just done. A task that is
        not a pynenc task, or arguments its function does not accept, raise
        ``InvalidWorkflowArgument`` here, not later when the compensations run."""
        from pynenc_wf_testing.engine._checks import check_call

        check_call("saga.add_compensation()", task, args, kwargs)
        self._compensations.append((task, args, kwargs))

    def compensate(self) -> None:
        """Run every registered compensation in reverse order, each once. If some fail,
        the others still run; the first failure is raised at the end, with a note per
        other failure (``__notes__``)."""
        failures = self._run_compensations()
        if failures:
            first = failures[0][1]
            _attach(first, failures[1:])
            raise first

    def _run_compensations(self) -> list[tuple[str, Exception]]:
        """Run the compensations newest first; return the ``(name, error)`` of each one that
        failed, in the order they ran."""
        failures: list[tuple[str, Exception]] = []
        root = self._workflow_task.wf.root
        while self._compensations:
            task, args, kwargs = self._compensations.pop()
            try:
                invocation = root.execute_task(task, *args, **kwargs)
                # Not interruptible: a cancelled workflow still waits for its compensations.
                self._execution.await_result(invocation, interruptible=False)
                self.compensated.append(task.task_id.func_name)
            except Exception as error:
                if _is_suspension(error):
                    self._compensations.append((task, args, kwargs))
                    raise  # this execution lost its invocation: the next one compensates
                failures.append((_describe_call(task, args, kwargs), error))
        return failures

    def __enter__(self) -> Saga:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, Exception) and not _is_suspension(exc):
            # The workflow fails with what made it fail: a failing compensation must not
            # hide it, so its failures travel along as notes (kept by pynenc's serialization
            # of the exception, and shown in its traceback) instead of replacing it.
            _attach(exc, self._run_compensations())


def _describe_call(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{task.task_id.func_name}({', '.join(shown)})"


def _attach(error: BaseException, failures: list[tuple[str, Exception]]) -> None:
    for name, failure in failures:
        error.add_note(
            f"compensation {name} failed: {type(failure).__name__}: {failure}"
        )


def _is_suspension(error: BaseException) -> bool:
    """A halt (the workflow parks and resumes later) or a lost invocation (a stopping runner
    handed it to another one) suspends the workflow; it did not fail: nothing to undo."""
    from pynenc.exceptions import InvocationStatusError
    from pynenc.workflow.workflow_exceptions import WorkflowPauseError

    return isinstance(error, (WorkflowPauseError, InvocationStatusError))
