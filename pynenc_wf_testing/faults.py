"""The fault model: what can go wrong in a simulation, in one place.

A fault is armed on a :class:`FaultPlan` and consulted by the simulation at two kinds of hook:
around each step commit (``before``/``after``) and at the start of each task execution.
Adding a fault kind means adding one small class with ``on_step`` and/or ``on_execute``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import InvalidArgument
from .history import Step

if TYPE_CHECKING:
    from pynenc.task import Task

__all__ = ["CrashPoint", "FaultPlan", "StepRef", "describe_step_ref"]

#: How a step is referred to: a name (``"charge_payment"``, ``"charge_payment#2"``,
#: ``"uuid#1"``), a task object (its first result commit), a global step number, or a predicate.
StepRef = "str | int | Task[Any, Any] | Callable[[Step], bool]"

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


def describe_step_ref(ref: object) -> str:
    if isinstance(ref, bool):
        return repr(ref)
    if isinstance(ref, int):
        return f"step {ref}"
    if isinstance(ref, str):
        return repr(normalize_step_name(ref))
    if _is_task(ref):
        return repr(f"{ref.task_id.func_name}#1")  # type: ignore[attr-defined]
    return getattr(ref, "__name__", repr(ref))


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
        predicate: Callable[[Step], bool] = ref  # type: ignore[assignment]
        return (lambda step: bool(predicate(step))), getattr(ref, "__name__", repr(ref))
    raise InvalidArgument(
        f"cannot use a {type(ref).__name__} ({ref!r}) as a step. Pass a step name "
        "('charge_payment#1'), a task object, a step number or a predicate taking a Step."
    )


@dataclass
class CrashPoint:
    """The worker dies right ``before`` or right ``after`` the matching step commits."""

    phase: Phase
    matcher: Callable[[Step], bool]
    description: str
    fired: bool = False

    def snippet(self) -> str:
        return f"crash_{self.phase}({self.description})"


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

    def add_crash(self, phase: Phase, ref: object) -> CrashPoint:
        matcher, description = make_matcher(ref)
        point = CrashPoint(phase, matcher, description)
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
        return [p for p in self.crash_points if not p.fired]

    def copy_armed(self) -> FaultPlan:
        """A fresh plan with the same faults, none fired (for a re-run)."""
        return FaultPlan(
            [CrashPoint(p.phase, p.matcher, p.description) for p in self.crash_points],
            [FailFault(f.task_key, f.task_name, f.times, f.exc) for f in self.failures],
        )
