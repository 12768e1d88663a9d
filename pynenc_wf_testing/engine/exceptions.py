"""Exceptions of the durable workflow engine, raised in or around workflow code."""

from __future__ import annotations

from pynenc.workflow.workflow_exceptions import WorkflowPauseError

from pynenc_wf_testing.engine._errors import UnsupportedStateBackend, WorkflowEngineError

__all__ = [
    "AmbiguousWorkflowId",
    "ContinuedAsNew",
    "InvalidWorkflowArgument",
    "InvalidWorkflowOperation",
    "NotAWorkflow",
    "SignalTimeout",
    "UnknownStep",
    "UnknownWorkflow",
    "UnsupportedPynencVersion",
    "UnsupportedStateBackend",
    "WaitTimeout",
    "WorkflowAlreadyStarted",
    "WorkflowCancelled",
    "WorkflowEngineError",
    "WorkflowFinished",
    "WorkflowHaltException",
    "WorkflowIdConflict",
    "WorkflowNotFinished",
    "WorkflowSuspended",
    "WorkflowTimeout",
    "WorkflowsNotEnabled",
]


class InvalidWorkflowArgument(WorkflowEngineError, TypeError):
    """An engine function or ``wf.root`` operation was called with an argument it cannot
    accept (the engine's counterpart of the harness's ``InvalidArgument``)."""


class InvalidWorkflowOperation(WorkflowEngineError, RuntimeError):
    """A ``wf.root`` operation was called where it cannot work (outside any invocation, e.g.
    from a script; ``continue_as_new()`` outside its workflow's body, or in a
    sub-workflow)."""


class ContinuedAsNew(WorkflowPauseError):  # type: ignore[misc]
    """Raised by ``wf.root.continue_as_new(...)`` once the next run is started and this run
    ended: it unwinds the workflow body. Do not catch it (an ``except Exception`` around the
    call would); pynenc leaves a ``WorkflowPauseError`` alone, so the run keeps the result the
    engine gave it."""

    def __init__(self, next_run_id: str) -> None:
        super().__init__(f"continued as new run {next_run_id}")
        _quiet_pynenc_warning()
        self.next_run_id = next_run_id
        """The invocation id of the run that continues this workflow."""


class UnsupportedPynencVersion(WorkflowEngineError):
    """The installed pynenc lacks something the engine builds on."""


def _quiet_pynenc_warning() -> None:
    """pynenc logs a misleading "not implemented yet" warning for every pause it catches:
    filter it for the engine's own (``_quiet_log``)."""
    from pynenc import context

    from pynenc_wf_testing.engine._quiet_log import quiet_engine_pauses

    quiet_engine_pauses(
        context.get_current_app(), (WorkflowSuspended, WorkflowHaltException, ContinuedAsNew)
    )


class WorkflowsNotEnabled(WorkflowEngineError):
    """A durable-workflow feature was used on an app that did not enable it."""


class WorkflowHaltException(WorkflowPauseError):  # type: ignore[misc]
    """Raised from workflow code: park this workflow durably until it is resumed from outside.

    ``wf.root.halt(reason)`` raises it once per call site (a resumed workflow goes past it);
    raising it yourself halts every time the code reaches that point.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self._record_halt(reason)
        _quiet_pynenc_warning()

    @staticmethod
    def _record_halt(reason: str) -> None:
        # pynenc swallows WorkflowPauseError and leaves the invocation RUNNING: record the halt
        # in the workflow's durable data so queries, resume and the harness can see it.
        from pynenc import context

        from pynenc_wf_testing.engine._halt import record_halt

        app = context.get_current_app()
        if app is None:
            return
        invocation = context.get_dist_invocation_context(app.app_id)
        if invocation is not None and invocation.workflow is not None:
            record_halt(app, invocation, reason)


class WorkflowSuspended(WorkflowPauseError):  # type: ignore[misc]
    """Raised by a durable wait in production to leave the worker: the workflow recorded its
    wake-up condition and is PAUSED until a signal, a deadline, an awaited invocation, a
    cancel or a resume routes it again. Do not catch it in workflow code (like any
    ``WorkflowPauseError``, pynenc ends the execution quietly when it propagates)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        _quiet_pynenc_warning()


class WorkflowCancelled(WorkflowEngineError):
    """The workflow was cancelled from outside; raised at its next durable operation."""


class WorkflowTimeout(WorkflowEngineError):
    """The workflow's run timeout passed; raised at its next durable operation."""


class WaitTimeout(WorkflowEngineError, TimeoutError):
    """A durable wait reached its timeout."""


class SignalTimeout(WaitTimeout):
    """``wait_for_signal`` reached its timeout without a signal (and no default was given)."""


class WorkflowAlreadyStarted(WorkflowEngineError):
    """``start_workflow(..., workflow_id=alias, id_reuse="reject")`` found a run with that id."""


class WorkflowIdConflict(WorkflowAlreadyStarted, ValueError):
    """``start_workflow(..., workflow_id=...)`` found a run under that id started with other
    arguments (under every ``id_reuse`` policy: returning it would hand back the wrong run)."""


class UnknownWorkflow(WorkflowEngineError, LookupError):
    """A client operation named a workflow id or invocation id that the app's store does not
    hold."""


class AmbiguousWorkflowId(WorkflowEngineError, LookupError):
    """A workflow id given to ``start_workflow`` names runs of several workflow types: the
    client cannot tell which one is meant."""


class NotAWorkflow(WorkflowEngineError, TypeError):
    """A client operation was given something that is not a workflow: a plain task's
    invocation, a member task of a workflow, or an object of another kind."""


class WorkflowFinished(WorkflowEngineError):
    """The operation (signal, cancel, resume) needs a running workflow, and this run has
    already finished."""


class WorkflowNotFinished(WorkflowEngineError):
    """``workflow_result`` was asked for the result of a run that has not finished yet."""



class UnknownStep(InvalidWorkflowArgument, LookupError):
    """``rerun_workflow`` or ``invalidate_result`` named a step the run does not have (a task
    it never called, or a call number past its last call); the message lists the valid ones."""
