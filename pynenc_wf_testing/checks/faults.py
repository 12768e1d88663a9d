"""The fault model: what can go wrong in a simulation, in one place.

A fault is armed on a :class:`FaultPlan` and consulted by the simulation at two kinds of hook:
around each step commit (``before``/``after``) and at the start of each task execution.
Adding a fault kind means adding one small class with ``on_step`` and/or ``on_execute``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    from pynenc.task import Task

__all__ = ["FaultSchedule", "ScheduledCrash", "StepRef"]

#: How a step is referred to: a name (``"charge_payment"``, ``"charge_payment#2"``,
#: ``"uuid#1"``), a task object (its first result commit), a global step number, or a predicate.
StepRef: TypeAlias = "str | int | Task[Any, Any] | Callable[[Step], bool]"

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
class CrashPoint:
    """The worker dies right ``before`` or right ``after`` the matching step commits.

    ``restart_after``: virtual seconds the worker stays down; ``None`` restarts it at once.
    """

    phase: Phase
    matcher: Callable[[Step], bool]
    description: str
    fired: bool = False
    restart_after: float | None = None
    optional: bool = False

    def snippet(self) -> str:
        extra = "" if self.restart_after is None else f", restart_after=timedelta(seconds={self.restart_after:g})"
        return f"crash_{self.phase}({self.description}{extra})"


@dataclass
class FailFault:
    """The next ``times`` executions of ``task`` raise ``exc`` instead of running."""

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
class FaultPlan:
    """Every fault armed on one simulation."""

    crash_points: list[CrashPoint] = field(default_factory=list)
    failures: list[FailFault] = field(default_factory=list)

    def add_crash(
        self,
        phase: Phase,
        ref: object,
        *,
        restart_after: float | None = None,
        description: str | None = None,
        optional: bool = False,
    ) -> CrashPoint:
        matcher, default_description = make_matcher(ref)
        point = CrashPoint(
            phase, matcher, description or default_description, False, restart_after, optional
        )
        self.crash_points.append(point)
        return point

    def crash_for(self, step: Step, phase: Phase) -> CrashPoint | None:
        """The first armed, unfired crash point matching this step in this phase (fires it)."""
        for point in self.crash_points:
            if not point.fired and point.phase == phase and point.matcher(step):
                point.fired = True
                return point
        return None

    def failure_for(self, task_key: str) -> BaseException | None:
        for fault in self.failures:
            if fault.task_key == task_key and fault.used < fault.times:
                fault.used += 1
                return fault.make_exception()
        return None

    def unfired(self) -> list[CrashPoint]:
        return [p for p in self.crash_points if not p.fired and not p.optional]


@dataclass(frozen=True, order=True)
class ScheduledCrash:
    """One crash of a :class:`FaultSchedule`: at global step number ``step``, ``before`` or
    ``after`` it commits. ``name`` is the step's name in the fault-free run, for messages."""

    step: int
    phase: Phase = "after"
    name: str | None = field(default=None, compare=False)
    restart_after: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise InvalidArgument(f"ScheduledCrash.step must be an int >= 1, got {self.step!r}.")
        if self.phase not in ("before", "after"):
            raise InvalidArgument(
                f"ScheduledCrash.phase must be 'before' or 'after', got {self.phase!r}."
            )

    def snippet(self, env_name: str = "wf_env") -> str:
        ref = repr(self.name) if self.name is not None else str(self.step)
        extra = (
            "" if self.restart_after is None
            else f", restart_after=timedelta(seconds={self.restart_after:g})"
        )
        return f"{env_name}.crash_{self.phase}({ref}{extra})"


@dataclass(frozen=True)
class FaultSchedule:
    """A set of crashes to inject into one run; built by hand or by
    :func:`pynenc_wf_testing.checks.strategies.fault_schedules` (Hypothesis shrinks it)."""

    crashes: tuple[ScheduledCrash, ...] = ()

    def apply(self, env: Any, *, optional: bool = False, fine: bool = True) -> None:
        """Arm every crash on ``env``. With ``optional=True`` a crash whose step the run
        never reaches is not an error (generated schedules may point past the end). With
        ``fine=False`` a crash does not fire inside pynenc's own non-atomic sequences (see
        :func:`pynenc_wf_testing.runtime.history.in_pynenc_window`)."""
        from pynenc_wf_testing.runtime.history import in_pynenc_window

        for crash in self.crashes:
            if fine:
                ref: Any = crash.step
            else:
                def ref(step: Step, crash: ScheduledCrash = crash) -> bool:
                    return step.number == crash.step and not in_pynenc_window(step, crash.phase)

            env._faults.add_crash(
                crash.phase,
                ref,
                description=repr(crash.name) if crash.name else f"step {crash.step}",
                optional=optional,
                restart_after=crash.restart_after,
            )

    def snippet_lines(self, env_name: str = "wf_env") -> list[str]:
        return [crash.snippet(env_name) for crash in self.crashes]

    def __len__(self) -> int:
        return len(self.crashes)

    def __str__(self) -> str:
        if not self.crashes:
            return "no faults"
        return "; ".join(c.snippet("env") for c in self.crashes)
