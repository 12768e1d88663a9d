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
    and timeouts included) and re-raises. A halt is not a failure: it compensates nothing.
    """

    def __init__(self, workflow_task: Task[Any, Any], execution: WorkflowExecution) -> None:
        self._workflow_task = workflow_task
        self._execution = execution
        self._compensations: list[tuple[Task[Any, Any], tuple[Any, ...], dict[str, Any]]] = []
        self.compensated: list[str] = []
        """Names of the compensations that ran, in order."""

    def add_compensation(self, task: Task[Any, Any], *args: Any, **kwargs: Any) -> None:
        self._compensations.append((task, args, kwargs))

    def compensate(self) -> None:
        """Run every registered compensation in reverse order, each once. If some fail,
        the others still run; the first failure is raised at the end."""
        first_error: BaseException | None = None
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
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error

    def __enter__(self) -> Saga:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, Exception) and not _is_suspension(exc):
            self.compensate()


def _is_suspension(error: BaseException) -> bool:
    """A halt (the workflow parks and resumes later) or a lost invocation (a stopping runner
    handed it to another one) suspends the workflow; it did not fail: nothing to undo."""
    from pynenc.exceptions import InvocationStatusError
    from pynenc.workflow.workflow_exceptions import WorkflowPauseError

    return isinstance(error, (WorkflowPauseError, InvocationStatusError))
