"""Diagnostics of a simulation that cannot go on: who is blocked on what, and the errors that
say so (a deadlock, a used-up step budget, an invocation left RUNNING)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.errors import (
    BusyWaitError,
    DeadlockError,
    SliceTimeoutError,
    StepLimitExceeded,
)
from pynenc_wf_testing.runtime.clock import VirtualClock, from_micros
from pynenc_wf_testing.runtime.recorder import StepRecorder
from pynenc_wf_testing.runtime.scheduler import Scheduler, SimThread

__all__ = ["Diagnostics", "step_time"]


def step_time(micros: int) -> str:
    """A virtual instant (micros) as ISO 8601."""
    return from_micros(micros).isoformat()


class Diagnostics:
    """Reads the scheduler, the recorder and the stores to explain a stuck simulation."""

    __slots__ = (
        "_app_of", "_clock", "_recorder", "_scheduler", "max_steps", "seed", "stalled", "suspended",
    )

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
        #: Evicted (suspended) workflows -> what they wait for (``Suspensions.blocked``).
        self.suspended: Callable[[], dict[str, str]] = dict

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
                what = str(thread.waiting_what)
                # the engine's timer waits name their deadline already ("timer #1 (until ...)")
                blocked[label(inv_id)] = f"waits for {what}" + (
                    "" if "(until " in what
                    else f" (until {step_time(thread.sleeping_until)})"
                    if thread.sleeping_until is not None else " (no timeout)"
                )
            if thread.waiting_on:
                targets = ", ".join(
                    f"{label(t)} (status: {self.status_text(t)})" for t in thread.waiting_on
                )
                blocked[label(inv_id)] = f"waits for the result of {targets}"
        for inv_id, reason in self.stalled.items():
            blocked[label(inv_id)] = reason
        for inv_id, reason in self.suspended().items():
            blocked[label(inv_id)] = reason
        return blocked

    def deadlock(self, goal_ids: list[str], extra: list[str] | None = None) -> DeadlockError:
        """``extra``: more lines of explanation (the worker pool's, see Simulation)."""
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
        elif not extra:
            lines.append(
                "Nothing is blocked inside the simulation: the awaited invocation was never "
                "routed to the simulated broker (was it created before env.use(app)?)."
            )
        lines.extend(extra or ())
        lines.append(f"Virtual time: {self._clock.now.isoformat()}; seed: {self.seed}.")
        return DeadlockError("\n".join(lines), blocked)

    def _busiest(self) -> str:
        """The invocations with the most committed steps among the last ones, and the last
        steps' names."""
        recorder = self._recorder
        recent = [s for s in recorder.history[-200:] if s.number is not None]
        workflows = {
            info.workflow_id: info.invocation_id
            for info in recorder.invocations.values()
            if info.is_workflow and info.workflow_id is not None
        }
        counts: dict[str, int] = {}
        for step in recent:
            inv_id = step.invocation_id or workflows.get(step.workflow_id or "")
            who = recorder.label(inv_id) if inv_id else "(no invocation)"
            counts[who] = counts.get(who, 0) + 1
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
        busiest = ", ".join(f"{who} ({n})" for who, n in top) or "none"
        last = ", ".join(s.name for s in recent[-8:]) or "none"
        return (
            f"Busiest invocations over the last {len(recent)} steps: {busiest}. "
            f"Last steps: {last}."
        )

    def step_limit(self, what: str = "slices") -> StepLimitExceeded:
        """``what``: "slices" (scheduler slices) or "steps" (committed history steps)."""
        counted = (
            f"ran {self.max_steps} scheduler steps"
            if what == "slices"
            else f"committed {self.max_steps} history steps"
        )
        return StepLimitExceeded(
            f"the simulation {counted} without finishing "
            f"(limit max_steps={self.max_steps}, which bounds both scheduler slices and "
            "committed steps). If the run is meant to be this long, raise "
            "the limit: WorkflowEnv(max_steps=...) or @pytest.mark.wf(max_steps=...) "
            "(or --wf-max-steps / the wf_max_steps ini value). "
            "Otherwise look for a workflow that never ends (an endless loop of children, "
            f"sleeps, retries or wf.root.uuid()/random() calls). {self._busiest()} "
            f"Virtual time: {self._clock.now.isoformat()}; seed: {self.seed}."
        )

    def busy_wait(self, thread: SimThread, where: str) -> BusyWaitError:
        return BusyWaitError(
            f"{self._recorder.label(thread.invocation_id)} reads the virtual clock over and over without doing anything "
            f"else (a busy wait) at {where}. Inside the simulation the clock is virtual: it "
            "stands still while a task runs and only moves when every invocation is parked, "
            "so a loop like `while datetime.now() < deadline: pass` never ends. Wait instead: "
            "time.sleep(seconds) or wf.root.sleep(...) in a task or workflow (they park it and "
            "the clock jumps), or env.advance(...) from the test. "
            f"Virtual time: {self._clock.now.isoformat()}; seed: {self.seed}."
        )

    def slice_timeout(self, thread: SimThread, where: str, timeout: float) -> SliceTimeoutError:
        return SliceTimeoutError(
            f"{self._recorder.label(thread.invocation_id)} ran for more than {timeout:g} s of real time without parking "
            f"(no child result awaited, no sleep, no wait): it spins at {where}. "
            "An invocation runs until it parks; code that loops without ever waiting hangs "
            "the simulation. If the work is really this slow, raise or disable the limit: "
            "WorkflowEnv(slice_timeout=timedelta(seconds=...)) or slice_timeout=None, "
            "@pytest.mark.wf(slice_timeout=...) or --wf-slice-timeout=SECONDS "
            "(0 disables it). "
            f"Virtual time: {self._clock.now.isoformat()}; seed: {self.seed}."
        )
