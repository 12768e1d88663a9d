"""pynenc's trigger loop (cron and event conditions) run by the simulation, on virtual time.

In production the trigger loop runs inside a runner's atomic-service slot. Here it runs when
something may have changed (a final status, a clock move), and only for apps that have trigger
conditions. pynenc's cron matches only within a window after the scheduled time and has no
catch-up, so the drive loop asks :meth:`Triggers.next_cron` where the clock must land.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from croniter import croniter
from pynenc.orchestrator.atomic_service import AtomicServiceRun
from pynenc.trigger.conditions.cron import CronCondition

from pynenc_wf_testing.runtime.clock import VirtualClock, to_micros
from pynenc_wf_testing.runtime.cron_steps import daily_cron

__all__ = ["Triggers"]

if TYPE_CHECKING:
    from pynenc_wf_testing.runtime.runner import SimRunner


class Triggers:
    """The apps with trigger conditions, and whether their loop has work to look at."""

    __slots__ = (
        "_next_fire", "_ran_at", "_runners", "_runs", "_status_sensitive", "apps", "clock",
        "pending",
    )

    def __init__(self, *, clock: VirtualClock, runners: dict[str, SimRunner]) -> None:
        self.clock = clock
        self._runners = runners
        #: Apps that have trigger conditions (updated in place: holders keep this list).
        self.apps: list[Any] = []
        #: Something happened that a condition may match: run the loop before idling.
        self.pending = False
        self._runs = 0
        #: cron expression -> (from, next, its croniter standing at next): croniter's next
        #: fire after ``from``, which is also the next fire after any instant in [from, next)
        #: (the clock only moves forward, and a step back simply misses the cache).
        self._next_fire: dict[str, tuple[int, int, Any]] = {}
        #: Some condition is not a cron condition (event, status, result, exception): a final
        #: status may make it valid. Without one only the clock matters.
        self._status_sensitive = False
        #: The clock when the loop last ran (None: never).
        self._ran_at: int | None = None

    def refresh(self, apps: list[Any]) -> None:
        """Note which apps have trigger conditions (cron, events): only those pay for the
        trigger loop."""
        self.apps[:] = [app for app in apps if app.trigger._get_all_conditions()]
        self.pending = bool(self.apps)
        self._status_sensitive = any(
            not isinstance(condition, CronCondition)
            for app in self.apps
            for condition in app.trigger._get_all_conditions()
        )

    def note_final(self) -> None:
        """A status became final: the loop has work only if a condition can match it, or if
        the clock moved since the loop last ran (a crash's restart moves it directly). A
        cron-only app evaluated again at the same instant finds what it found before (the
        condition was claimed, or is not due): skipping that second pass halves the loop's
        cost per firing."""
        if self._status_sensitive or self.clock.micros != self._ran_at:
            self.pending = True

    def next_cron(self) -> int | None:
        """The next instant (virtual micros) at which any cron condition is due."""
        if not self.apps:
            return None
        # (croniter and pynenc are imported at module level: an import statement in here
        # costs calls on every firing)
        best: int | None = None
        for app in self.apps:
            for condition in app.trigger._get_all_conditions():
                if isinstance(condition, CronCondition):
                    expression = condition.cron_expression
                    at = self.clock.micros
                    stepper = daily_cron(expression)
                    if stepper is not None and not at % 1_000_000:
                        # (a daily expression on a whole-second UTC instant: arithmetic)
                        micros = stepper.next_after(at)
                        if best is None or micros < best:
                            best = micros
                        continue
                    cached = self._next_fire.get(expression)
                    if cached is not None and cached[0] <= at < cached[1]:
                        micros = cached[1]
                    else:
                        if cached is not None and at == cached[1]:
                            # The clock landed on the fire time the iterator stands at: step
                            # it (the same answer as a new croniter from now, built once).
                            it = cached[2]
                        else:
                            it = croniter(expression, self.clock.now)
                        micros = to_micros(it.get_next(type(self.clock.now)))
                        self._next_fire[expression] = (at, micros, it)
                    if best is None or micros < best:
                        best = micros
        return best

    def run(self) -> None:
        """One pynenc trigger-loop iteration per app with triggers, as a runner's atomic
        service slot would run it."""
        self.pending = False
        self._ran_at = self.clock.micros
        for app in self.apps:
            self._runs += 1
            runner = self._runners[app.app_id]
            run = AtomicServiceRun(
                runner_id=runner.runner_id,
                atomic_service_run_id=f"sim-trigger-{self._runs}",
                started_at=self.clock.now,
            )
            app.trigger.trigger_loop_iteration(run)
