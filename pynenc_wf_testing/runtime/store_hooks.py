"""Store hooks: what the simulated components report, turned into steps, wake-ups and ledger
entries.

pynenc's orchestrator and state backend (observed by :mod:`pynenc_wf_testing.runtime.components`)
call these around each durable write: an invocation routed, a status written, a retry
scheduled, workflow data set. The ``before_*`` hooks serve crash points only (the components
skip them when no crash point is armed); the ``after_*`` hooks commit steps, wake parked
invocations and keep the ledger. This is the per-step path: collaborators' methods are bound
once, here, rather than looked up on every write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.runtime.crashes import CrashHandler
from pynenc_wf_testing.runtime.determinism import DeterminismGuard
from pynenc_wf_testing.runtime.engine_hooks import close_workflow
from pynenc_wf_testing.runtime.history import Step
from pynenc_wf_testing.runtime.ledger import Execution, ExecutionLedger
from pynenc_wf_testing.runtime.recorder import InvocationInfo, StepRecorder, step_workflow
from pynenc_wf_testing.runtime.scheduler import Scheduler
from pynenc_wf_testing.runtime.triggers import Triggers

__all__ = ["StoreHooks"]

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.workflow.workflow_identity import WorkflowIdentity

_RESULT_STATUSES = frozenset({InvocationStatus.SUCCESS, InvocationStatus.FAILED})

# Step details shared between steps (read-only): one dict per distinct constant detail
# instead of one per step (~110,000 steps at 10,000 workflows).
_IN_EXECUTE_TASK: dict[str, Any] = {"in_execute_task": True}
_STATUS_DETAIL: dict[InvocationStatus, dict[str, Any]] = {
    status: {"status": status.value} for status in InvocationStatus
}


class StoreHooks:
    """The simulation's side of the component hooks (see the module docstring)."""

    __slots__ = (
        "_armed",
        "_before",
        "_child_obtained",
        "_classify",
        "_crash_after",
        "_describe_new",
        "_faults",
        "_finish_execution",
        "_interrupt_after",
        "_invocations",
        "_ledger",
        "_next_step",
        "_now_iso",
        "_record",
        "_scheduler",
        "_triggers",
        "finals",
    )

    def __init__(
        self,
        *,
        recorder: StepRecorder,
        scheduler: Scheduler,
        ledger: ExecutionLedger,
        guard: DeterminismGuard,
        crashes: CrashHandler,
        triggers: Triggers,
        interrupt_after: Callable[[Step], None],
    ) -> None:
        self._scheduler = scheduler
        self._ledger = ledger
        self._triggers = triggers
        self._faults = crashes.faults
        self._invocations = recorder.invocations
        self._describe_new = recorder.describe_new
        self._next_step = recorder.next_step
        self._now_iso = recorder.now_iso
        self._classify = recorder.classify_data
        self._record = recorder.commit
        self._child_obtained = guard.child_obtained
        self._armed = crashes.armed
        self._before = crashes.before
        self._crash_after = crashes.after
        self._finish_execution = ledger.finish
        self._interrupt_after = interrupt_after
        #: Final statuses written so far: a goal that waits for one is re-checked only then.
        self.finals = 0

    def _commit(self, step: Step) -> None:
        self._record(step)
        faults = self._faults
        if faults.crash_points:
            self._crash_after(step)
        if faults.interrupts:
            self._interrupt_after(step)

    # ------------------------------------------------------------------ routing

    def before_register(self, app: Pynenc, invocations: list[DistributedInvocation]) -> None:
        if not self._armed():
            return
        for inv in invocations:
            # Named for real only once registered: a crash before it must not use up a name.
            info = self._describe_new(inv, commit=False)
            self._before(
                self._next_step(
                    "route", f"route:{info.name}", step_workflow(info),
                    info.invocation_id, info.task,
                )
            )

    def after_register(self, app: Pynenc, invocations: list[DistributedInvocation]) -> None:
        scheduler = self._scheduler
        thread = scheduler.current if scheduler.in_simulated_invocation() else None
        for inv in invocations:
            if thread is not None:
                # Counted at routing, before execute_task records the child's id: a crash in
                # between must still name the orphan child's logical call.
                thread.routed += 1
                self._child_obtained(thread, inv)
            info = self._describe_new(inv)
            self._commit(
                self._next_step(
                    "route", f"route:{info.name}", step_workflow(info),
                    info.invocation_id, info.task,
                    # execute_task records the child's id next: crashing right after this
                    # step duplicates the child on replay (pynenc's window, fine-grained).
                    _IN_EXECUTE_TASK if thread is not None and thread.in_execute_task
                    else None,
                )
            )

    # ------------------------------------------------------------------ statuses

    def before_status(self, app: Pynenc, invocation_id: Any, status: InvocationStatus) -> None:
        if not self._armed():
            return
        info = self._invocations.get(str(invocation_id))
        if info is None:
            return
        if status in _RESULT_STATUSES:
            self._before(
                self._next_step(
                    "result", info.name, step_workflow(info), info.invocation_id,
                    info.task, _STATUS_DETAIL[status],
                )
            )
        elif status == InvocationStatus.RETRY:
            self._before(
                self._next_step(
                    "window", f"retry_status:{info.name}", step_workflow(info),
                    info.invocation_id, info.task,
                )
            )

    def after_status(self, app: Pynenc, invocation_id: Any, status: InvocationStatus) -> None:
        inv_id = str(invocation_id)
        info = self._invocations.get(inv_id)
        if status == InvocationStatus.RUNNING:
            self._start_execution(inv_id, info)
            return
        if status.is_final():
            self.finals += 1
            if self._triggers.apps:
                self._triggers.note_final()
            scheduler = self._scheduler
            if scheduler.cond_waiters:
                scheduler.notify(f"inv:{inv_id}")
                if info is not None:
                    scheduler.notify(f"task:{info.task}")
            self._finish_execution(inv_id, status.value)
            scheduler.result_ready(inv_id)
        elif status == InvocationStatus.RETRY:
            self._finish_execution(inv_id, "retry")
        if info is None:
            return
        if status in _RESULT_STATUSES:
            self._commit(
                self._next_step(
                    "result", info.name, step_workflow(info), inv_id, info.task,
                    _STATUS_DETAIL[status],
                )
            )
            if info.is_workflow and info.workflow_id == inv_id and status.is_final():
                # The parent-close policy, at the instant the run ended.
                close_workflow(app, inv_id, status.value)
        elif status == InvocationStatus.RETRY:
            # Status written, invocation not routed yet: pynenc's window (fine-grained only).
            self._commit(
                self._next_step(
                    "window", f"retry_status:{info.name}", step_workflow(info), inv_id,
                    info.task,
                )
            )
            if self._armed():
                self._before(
                    self._next_step(
                        "retry", f"retry:{info.name}", step_workflow(info), inv_id,
                        info.task,
                    )
                )

    def after_retry(self, app: Pynenc, invocation_id: Any) -> None:
        info = self._invocations.get(str(invocation_id))
        if info is not None:
            self._commit(
                self._next_step(
                    "retry", f"retry:{info.name}", step_workflow(info), info.invocation_id,
                    info.task,
                )
            )

    # ------------------------------------------------------------------ workflow data

    def before_data(self, app: Pynenc, identity: WorkflowIdentity, key: str, value: Any) -> None:
        if not self._armed():
            return
        kind_name = self._classify(identity, key, value, count=False)
        if kind_name is not None:
            kind, name = kind_name
            self._before(self._next_step(kind, name, str(identity.workflow_id), None, None))

    def after_data(self, app: Pynenc, identity: WorkflowIdentity, key: str, value: Any) -> None:
        kind_name = self._classify(identity, key, value, count=True)
        if kind_name is not None:
            kind, name = kind_name
            self._commit(
                self._next_step(kind, name, str(identity.workflow_id), None, None, {"key": key})
            )

    # ------------------------------------------------------------------ executions

    def _start_execution(self, inv_id: str, info: InvocationInfo | None) -> None:
        thread = self._scheduler.current
        if thread is None or thread.invocation_id != inv_id or info is None:
            return
        info.executions += 1
        try:
            # the call's own mapping (cached on it and held by the store): shared, read-only
            arguments = thread.invocation.call.serialized_arguments
        except Exception:  # pragma: no cover - arguments that cannot serialize fail elsewhere
            arguments = {}
        execution = Execution(
            task=info.task,
            name=info.name,
            invocation_id=inv_id,
            workflow_id=info.workflow_id,
            attempt=info.executions,
            arguments=arguments,
            started=self._now_iso(),
            logical_call=info.logical or (info.owner_workflow_id or "", info.name, 0),
            worker=thread.worker,
        )
        self._ledger.open(execution)
        failure = self._faults.failure_for(info.task)
        if failure is not None:
            execution.injected = True
            raise failure
        mocks = self._faults.mocks
        if mocks:
            mock = mocks.get(info.task)
            if mock is not None:
                self._arm_mock(mock, thread.invocation, execution)

    def _arm_mock(self, mock: Any, invocation: Any, execution: Execution) -> None:
        """This execution runs ``mock`` instead of the task function (see
        :class:`~pynenc_wf_testing.runtime.faults.ArmedMock`): pynenc still writes its
        statuses, result, exception and retries."""
        from pynenc_wf_testing.runtime.faults import arm_pending

        attempt = self._faults.mock_attempt(mock, execution.invocation_id, invocation.num_retries)
        execution.mocked = True
        arm_pending(invocation.task.func, lambda kwargs: mock.run(attempt, kwargs))
