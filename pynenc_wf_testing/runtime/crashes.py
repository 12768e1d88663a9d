"""Crashes and recovery: the worker process dies at a crash point and pynenc recovers.

A crash point (see :mod:`pynenc_wf_testing.runtime.fault_hooks`) is consulted right before and
right after each step commits. When one fires inside a simulated invocation, that greenlet
switches out for good; fired from test code, the crash waits for the drive loop. Either way
every in-flight invocation's frames are abandoned and in-process state is dropped; only the
durable store survives. Recovery goes through pynenc's own status path: at once for an
immediate restart, or through pynenc's recovery core tasks once the worker has stayed down
past its dead-runner threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.runtime.clock import VirtualClock
from pynenc_wf_testing.runtime.fault_hooks import FaultHooks
from pynenc_wf_testing.runtime.history import Step
from pynenc_wf_testing.runtime.ledger import ExecutionLedger
from pynenc_wf_testing.runtime.recorder import StepRecorder
from pynenc_wf_testing.runtime.scheduler import Scheduler
from pynenc_wf_testing.runtime.workers import Workers

__all__ = ["CrashHandler"]

if TYPE_CHECKING:
    from pynenc.app import Pynenc

# pynenc's recovery core tasks run on a 5-minute cron.
_RECOVERY_TICK = 5 * 60 * 1_000_000


class CrashHandler:
    """Fires crash points, kills the worker, and drives pynenc's recovery until nothing is
    left owned by a dead worker."""

    __slots__ = (
        "_app_of",
        "_clock",
        "_crash_at",
        "_ledger",
        "_recorder",
        "_scheduler",
        "_workers",
        "crashes",
        "faults",
        "pending",
        "recovery_at",
        "stalled",
    )

    def __init__(
        self,
        *,
        faults: FaultHooks,
        clock: VirtualClock,
        scheduler: Scheduler,
        recorder: StepRecorder,
        ledger: ExecutionLedger,
        workers: Workers,
        app_of: Callable[[str], Any],
        stalled: dict[str, str],
    ) -> None:
        self.faults = faults
        self._clock = clock
        self._scheduler = scheduler
        self._recorder = recorder
        self._ledger = ledger
        self._workers = workers
        self._app_of = app_of
        self.stalled = stalled
        self.crashes = 0
        #: A crash fired outside any invocation: the drive loop carries it out.
        self.pending: tuple[str, float | None] | None = None
        self._crash_at: tuple[Step, str] | None = None
        #: When pynenc's recovery tasks run next (virtual micros), while a dead worker owns
        #: invocations.
        self.recovery_at: int | None = None

    # ------------------------------------------------------------------ crash points

    def armed(self) -> bool:
        """Is any crash point still armed? (Without one, before-hooks build no step.)"""
        for point in self.faults.crash_points:  # noqa: SIM110 - no generator per call
            if not point.fired:
                return True
        return False

    def before(self, step: Step) -> None:
        """``step`` is about to commit."""
        point = self.faults.crash_for(step, "before")
        if point is not None:
            self._crash_at = (step, "before")
            self._crash(f"{point.snippet()} at {step.name}", point.restart_after)

    def after(self, step: Step) -> None:
        """``step`` just committed."""
        point = self.faults.crash_for(step, "after")
        if point is not None:
            self._crash_at = (step, "after")
            self._crash(f"{point.snippet()} at {step.name}", point.restart_after)

    def _crash(self, reason: str, restart_after: float | None = None) -> None:
        """The worker process dies now (called from a commit hook)."""
        if self._scheduler.in_simulated_invocation():
            self._scheduler.crash_out(reason, restart_after)
        self.pending = (reason, restart_after)

    # ------------------------------------------------------------------ the crash

    def kill_worker(self, reason: str, restart_after: float | None = None) -> None:
        """Every in-flight invocation is gone; a new worker starts now or after
        ``restart_after`` virtual seconds."""
        self.crashes += 1
        self._scheduler.abandon_all()
        self._ledger.crash_running()
        at = self._crash_at
        self._crash_at = None
        workers = self._workers
        detail: dict[str, Any] = {"reason": reason, "worker": workers.generation}
        if at is not None:
            step, phase = at
            detail.update(phase=phase, step=step.name, step_number=step.number)
        self._recorder.event(
            "crash", "crash", detail,
            workflow_id=at[0].workflow_id if at else None,
            invocation_id=at[0].invocation_id if at else None,
        )
        workers.bury()
        if restart_after is None:
            for app in workers.apps:
                workers.new_runner(app)
                self._recover(app)
            self._recorder.event("recover", "recover", {"worker": workers.generation})
            return
        # The worker stays down: time passes with nothing running, then a new worker starts
        # and pynenc's own recovery core tasks find what the dead worker owned once its
        # heartbeat is older than runner_considered_dead_after_minutes.
        self._clock.move_to_micros(self._clock.micros + round(restart_after * 1_000_000))
        for app in workers.apps:
            workers.new_runner(app)
        workers.heartbeat()
        self._recorder.event("restart", "restart", {"worker": workers.generation})
        self.route_recovery_tasks()

    # ------------------------------------------------------------------ recovery

    def route_recovery_tasks(self) -> None:
        """Route pynenc's core recovery tasks, as their cron would, until nothing is left
        owned by a dead worker (retried at each 5-minute cron tick)."""
        from pynenc.core_tasks import core_tasks_registry

        self.recovery_at = None
        for app in self._workers.apps:
            for definition in core_tasks_registry.definitions:
                task = app.task(definition.func, **definition.options)
                task()
        self._recorder.event("recover", "recover-tasks", {"worker": self._workers.generation})
        self.recovery_at = (self._clock.micros // _RECOVERY_TICK + 1) * _RECOVERY_TICK

    def schedule_recovery(self) -> None:
        """Route pynenc's recovery tasks at their next cron tick (one worker of a pool died
        while the others run on)."""
        tick = (self._clock.micros // _RECOVERY_TICK + 1) * _RECOVERY_TICK
        if self.recovery_at is None or tick < self.recovery_at:
            self.recovery_at = tick

    def owned_by_dead(self) -> bool:
        dead = self._workers.dead_runner_ids
        app_of = self._app_of
        for inv_id in self._recorder.invocations:
            app = app_of(inv_id)
            try:
                record = app.orchestrator.get_invocation_status_record(inv_id)
            except Exception:
                continue
            if record.runner_id in dead and record.status in (
                InvocationStatus.RUNNING, InvocationStatus.PENDING
            ):
                return True
        return False

    def _recover(self, app: Pynenc) -> None:
        """pynenc's recovery transitions for everything the dead worker owned.

        The same status path as the core tasks ``recover_running_invocations`` and
        ``recover_pending_invocations`` (RUNNING -> RUNNING_RECOVERY -> REROUTED, PENDING ->
        PENDING_RECOVERY -> REROUTED), applied at once for an immediate restart.
        """
        runner_ctx = self._workers.runners[app.app_id].runner_context
        dead = self._workers.dead_runner_ids
        orchestrator = app.orchestrator
        to_reroute: list[str] = []
        for inv_id in self._recorder.invocations:
            try:
                record = orchestrator.get_invocation_status_record(inv_id)
            except Exception:
                continue
            if record.runner_id not in dead:
                continue
            if record.status == InvocationStatus.RUNNING:
                orchestrator.set_invocation_status(
                    inv_id, InvocationStatus.RUNNING_RECOVERY, runner_ctx
                )
                to_reroute.append(inv_id)
            elif record.status == InvocationStatus.PENDING:
                orchestrator.set_invocation_status(
                    inv_id, InvocationStatus.PENDING_RECOVERY, runner_ctx
                )
                to_reroute.append(inv_id)
            self.stalled.pop(inv_id, None)
        if to_reroute:
            orchestrator.reroute_invocations(to_reroute, runner_ctx)
