"""What a crash check reports: :class:`CrashReport` of :class:`ScheduleOutcome` (one per
fault schedule run), each with its :class:`Violation` list.

The shape (summary, smallest failure, reproduction, ``assert_ok``) is the one every check
report shares (:class:`pynenc_wf_testing.checks.report.CheckReport`); the checks that fill
it are in :mod:`pynenc_wf_testing.checks.crash_check`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pynenc_wf_testing.checks.faults import FaultSchedule
from pynenc_wf_testing.checks.report import CheckReport
from pynenc_wf_testing.errors import CrashSafetyError

__all__ = ["CrashReport", "ScheduleOutcome", "Violation"]


@dataclass(frozen=True)
class Violation:
    """One way a fault schedule made the workflow misbehave.

    ``kind``: ``incomplete`` (the run did not finish: deadlock, step limit), ``nondeterminism``,
    ``result`` (differs from the golden run), ``duplicate`` (a non-idempotent step ran twice),
    ``invariant`` (the user's invariant failed) or ``not_reached`` (a crash point never fired).
    """

    kind: str
    message: str
    schedule: FaultSchedule


@dataclass
class ScheduleOutcome:
    """What happened under one fault schedule. ``fired``: the crash points that fired, the
    failures injected and the evictions (``evict_at_wait(n)``); ``virtual_seconds``: how far
    the virtual clock moved."""

    schedule: FaultSchedule
    violations: list[Violation]
    outcome: str
    crashes: int
    steps: int
    fired: list[str] = field(default_factory=list)
    virtual_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations




@dataclass
class CrashReport(CheckReport[ScheduleOutcome]):
    """The result of :meth:`WorkflowEnv.check_crash_safety` (and of ``check_fault_schedules``,
    what ``pynenc-wf simulate`` runs): ``summary()``, ``smallest_failure()``,
    ``reproduction()`` and ``assert_ok()`` as every check report (``CheckReport``)."""

    golden: ScheduleOutcome | None = None
    #: Waits of the golden run that blocked (each one an eviction point).
    golden_waits: int = 0
    #: True when the golden run raised: every comparison is then against that exception.
    golden_raised: bool = False
    #: The golden run's virtual start, and (pool worker, start, end) of each of its
    #: executions on a pool (where the check takes a worker down).
    golden_start: str = ""
    golden_work: list[tuple[int, str, str | None]] = field(default_factory=list)

    _schedule_kind = "fault"
    _headline = (
        "crash safety violated: {failing} of {explored} fault schedules fail for {workflow} "
        "(seed {seed})."
    )
    _problems_heading = "What differed:"
    _golden_without = "faults"

    @property
    def violations(self) -> list[Violation]:
        """Every violation found, in exploration order."""
        return [v for o in self.explored for v in o.violations]

    def _explored_over(self) -> str:
        return f"{len([s for s in self.golden_steps if s.is_step])} golden steps"

    def _size(self, outcome: ScheduleOutcome) -> tuple[Any, ...]:
        schedule = outcome.schedule
        return (
            len(schedule), [c.step for c in schedule.crashes], [e.wait for e in schedule.evictions],
            [w.sort_key() for w in schedule.worker_crashes],
        )

    def _problems(self, outcome: ScheduleOutcome) -> list[tuple[str, str]]:
        return [(v.kind, v.message) for v in outcome.violations]

    def _error(self, message: str) -> AssertionError:
        return CrashSafetyError(message)
