"""Diagnostics of a simulation that cannot go on: who is blocked on what, and the errors that
say so (a deadlock, a used-up step budget, an invocation left RUNNING)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.errors import DeadlockError, StepLimitExceeded
from pynenc_wf_testing.runtime.clock import VirtualClock, from_micros
from pynenc_wf_testing.runtime.recorder import StepRecorder
from pynenc_wf_testing.runtime.scheduler import Scheduler, SimThread

__all__ = ["Diagnostics", "step_time"]


def step_time(micros: int) -> str:
    """A virtual instant (micros) as ISO 8601."""
    return from_micros(micros).isoformat()


class Diagnostics:
    """Reads the scheduler, the recorder and the stores to explain a stuck simulation."""

    __slots__ = ("_app_of", "_clock", "_recorder", "_scheduler", "max_steps", "seed", "stalled")

    def __init__(
        self,
        *,
        seed: int,
        max_steps: int,
        clock: VirtualClock,
        scheduler: Scheduler,
        recorder: StepRecorder,
        app_of: Callable[[str], Any],
        stalled: dict[str, str],
    ) -> None:
        self.seed = seed
        self.max_steps = max_steps
        self._clock = clock
        self._scheduler = scheduler
        self._recorder = recorder
        self._app_of = app_of
        self.stalled = stalled

    def status_text(self, inv_id: str) -> str:
        try:
            return str(self._app_of(inv_id).orchestrator.get_invocation_status(inv_id).value)
        except Exception:
            return "unknown"

    def stall_reason(self, thread: SimThread) -> str:
        """Why an invocation whose code returned is still RUNNING/PAUSED."""
        halted = self._halt_reason(thread)
        if halted is not None:
            return (
                f"is halted ({halted}): resume it with wf_env.resume(run) or "
                "resume_workflow(app, workflow_id)"
            )
        return (
            "its code returned but it is still RUNNING (pynenc swallows "
            "WorkflowPauseError and leaves the invocation RUNNING: nothing will resume it)"
        )

    @staticmethod
    def _halt_reason(thread: SimThread) -> str | None:
        workflow = thread.invocation.workflow
        if workflow is None:
            return None
        try:
            halted = thread.app.state_backend.get_workflow_data(workflow, engine_schema.HALTED)
        except Exception:  # pragma: no cover - a store that cannot answer
            return None
        return None if halted is None else str(halted)

    def blocked_report(self) -> dict[str, str]:
        label = self._recorder.label
        blocked: dict[str, str] = {}
        for inv_id, thread in self._scheduler.threads.items():
            if thread.waiting_for is not None:
                blocked[label(inv_id)] = f"waits for {thread.waiting_what}" + (
                    f" (until {step_time(thread.sleeping_until)})"
                    if thread.sleeping_until is not None else " (no timeout)"
                )
            if thread.waiting_on:
                targets = ", ".join(
                    f"{label(t)} (status: {self.status_text(t)})" for t in thread.waiting_on
                )
                blocked[label(inv_id)] = f"waits for the result of {targets}"
        for inv_id, reason in self.stalled.items():
            blocked[label(inv_id)] = reason
        return blocked

    def deadlock(self, goal_ids: list[str]) -> DeadlockError:
        label = self._recorder.label
        blocked = self.blocked_report()
        goal = ", ".join(f"{label(i)} (status: {self.status_text(i)})" for i in goal_ids)
        lines = [
            "the simulation cannot make progress: nothing is runnable, no timer is pending"
            + (f", and {goal} is not finished." if goal else "."),
        ]
        if blocked:
            lines.append("Blocked:")
            lines.extend(f"  - {who} {what}" for who, what in blocked.items())
        else:
            lines.append(
                "Nothing is blocked inside the simulation: the awaited invocation was never "
                "routed to the simulated broker (was it created before env.use(app)?)."
            )
        lines.append(f"Virtual time: {self._clock.now.isoformat()}; seed: {self.seed}.")
        return DeadlockError("\n".join(lines), blocked)

    def step_limit(self) -> StepLimitExceeded:
        recent = [s.name for s in self._recorder.history[-8:]]
        return StepLimitExceeded(
            f"the simulation ran {self.max_steps} scheduler steps without finishing "
            f"(limit max_steps={self.max_steps}). If the run is meant to be this long, raise "
            "the limit: WorkflowEnv(max_steps=...) or @pytest.mark.wf(max_steps=...). "
            "Otherwise look for a workflow that never ends (an endless loop of children, "
            f"sleeps or retries). Last steps: {', '.join(recent) or 'none'}. "
            f"Virtual time: {self._clock.now.isoformat()}; seed: {self.seed}."
        )
