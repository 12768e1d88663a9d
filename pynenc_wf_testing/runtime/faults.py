"""Armed faults: what the simulator consults while a run executes.

The fault vocabulary has two levels. :mod:`pynenc_wf_testing.checks.faults` describes faults
as data (a :class:`~pynenc_wf_testing.checks.faults.FaultSchedule` of scheduled crashes and
failures) that users, the Hypothesis strategies, the crash checks and ``pynenc-wf simulate``
build, print and shrink. This module holds the same faults once *armed* on one simulation:
mutable, with the bookkeeping (fired, used) that the simulator updates. It lives in the
runtime because the simulator reads it at its hooks: :meth:`ArmedFaults.crash_for` around
each step commit, :meth:`ArmedFaults.failure_for` at the start of each task execution.

Adding a fault kind means: a data class beside ``ScheduledCrash`` (what a user writes), an
armed class here with a lookup on :class:`ArmedFaults`, and the call at the simulator's hook
that consults it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    from pynenc.task import Task

# StepRef and Phase are defined here, where the simulator needs them; their public home is
# pynenc_wf_testing.checks.faults, with the rest of the vocabulary.
__all__ = ["ArmedCrash", "ArmedFailure", "ArmedFaults", "make_matcher", "normalize_step_name"]

#: How a step is referred to: a name (``"charge_payment"``, ``"charge_payment#2"``,
#: ``"uuid#1"``), a task object (its first result commit), a global step number, or a predicate.
StepRef: TypeAlias = "str | int | Task[Any, Any] | Callable[[Step], bool]"

#: A crash happens right ``before`` or right ``after`` its step commits.
Phase = Literal["before", "after"]


def _is_task(obj: object) -> bool:
    from pynenc.task import Task

    return isinstance(obj, Task)


def normalize_step_name(name: str) -> str:
    """``"charge_payment"`` means the first occurrence: ``"charge_payment#1"``."""
    name = name.strip()
    if not name:
        raise InvalidArgument(
            "a step name cannot be empty. Use a task name such as 'charge_payment', "
            "'charge_payment#2', or a kind name such as 'uuid#1'."
        )
    return name if "#" in name else f"{name}#1"


def make_matcher(ref: object) -> tuple[Callable[[Step], bool], str]:
    """Turn a step reference into a predicate over steps, with a readable description."""
    if isinstance(ref, bool) or ref is None:
        raise InvalidArgument(
            f"cannot use {ref!r} as a step. Pass a step name ('charge_payment#1'), a task "
            "object, a step number (int >= 1) or a predicate taking a Step."
        )
    if isinstance(ref, int):
        if ref < 1:
            raise InvalidArgument(
                f"step numbers start at 1, got {ref}. Use the numbers listed by run.history "
                "or wf_env.history."
            )
        return (lambda step: step.number == ref), f"step {ref}"
    if isinstance(ref, str):
        name = normalize_step_name(ref)
        return (lambda step: step.name == name), repr(name)
    if _is_task(ref):
        name = f"{ref.task_id.func_name}#1"  # type: ignore[attr-defined]
        return (lambda step: step.name == name), repr(name)
    if callable(ref):
        predicate: Callable[[Step], bool] = ref
        return (lambda step: bool(predicate(step))), getattr(ref, "__name__", repr(ref))
    raise InvalidArgument(
        f"cannot use a {type(ref).__name__} ({ref!r}) as a step. Pass a step name "
        "('charge_payment#1'), a task object, a step number or a predicate taking a Step."
    )


@dataclass
class ArmedCrash:
    """The worker dies right ``before`` or right ``after`` the matching step commits.

    ``restart_after``: virtual seconds the worker stays down; ``None`` restarts it at once.
    ``optional``: never firing is not an error (generated schedules may point past the end).
    """

    phase: Phase
    matcher: Callable[[Step], bool]
    description: str
    fired: bool = False
    restart_after: float | None = None
    optional: bool = False
    #: The step it fired at: a reported schedule names that step, not the golden run's.
    fired_at: Step | None = None

    def snippet(self) -> str:
        extra = "" if self.restart_after is None else f", restart_after=timedelta(seconds={self.restart_after:g})"
        return f"crash_{self.phase}({self.description}{extra})"


@dataclass
class ArmedFailure:
    """The next ``times`` executions of ``task_key`` raise ``exc`` instead of running."""

    task_key: str
    task_name: str
    times: int
    exc: BaseException | type[BaseException]
    used: int = 0

    def make_exception(self) -> BaseException:
        exc = self.exc
        if isinstance(exc, type):
            return exc(f"injected failure of {self.task_name} by wf_env.fail()")
        return exc


@dataclass
class ArmedFaults:
    """Every fault armed on one simulation."""

    crash_points: list[ArmedCrash] = field(default_factory=list)
    failures: list[ArmedFailure] = field(default_factory=list)

    def add_crash(
        self,
        phase: Phase,
        ref: object,
        *,
        restart_after: float | None = None,
        description: str | None = None,
        optional: bool = False,
    ) -> ArmedCrash:
        matcher, default_description = make_matcher(ref)
        point = ArmedCrash(
            phase, matcher, description or default_description, False, restart_after, optional
        )
        self.crash_points.append(point)
        return point

    def add_failure(
        self, task_key: str, times: int, exc: BaseException | type[BaseException]
    ) -> ArmedFailure:
        failure = ArmedFailure(task_key, task_key.rsplit(".", 1)[-1], times, exc)
        self.failures.append(failure)
        return failure

    def crash_for(self, step: Step, phase: Phase) -> ArmedCrash | None:
        """The first armed, unfired crash point matching this step in this phase (fires it)."""
        for point in self.crash_points:
            if not point.fired and point.phase == phase and point.matcher(step):
                point.fired = True
                point.fired_at = step
                return point
        return None

    def failure_for(self, task_key: str) -> BaseException | None:
        for fault in self.failures:
            if fault.task_key == task_key and fault.used < fault.times:
                fault.used += 1
                return fault.make_exception()
        return None

    def unfired(self) -> list[ArmedCrash]:
        return [p for p in self.crash_points if not p.fired and not p.optional]

    def fired(self) -> list[str]:
        """What fired so far: the crash points (by the name of the step each hit), then the
        injected failures."""
        done = [
            f"crash_{p.phase}({p.fired_at.name!r})" if p.fired_at is not None else p.snippet()
            for p in self.crash_points
            if p.fired
        ]
        done += [
            f"fail({f.task_name}, times={f.used})" for f in self.failures if f.used
        ]
        return done
