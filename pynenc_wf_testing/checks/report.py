"""The shape every check report shares: :class:`CheckReport`.

A check (``check_crash_safety``, ``check_interleavings``) runs a golden run, then the same
workflow under many schedules (of faults, of events), each judged in a fresh world. Its
report lists what it explored, tells which schedules failed, picks the smallest failure,
prints the lines that replay it, and raises from ``assert_ok()``. What differs between the
checks (what a schedule holds, how a violation reads, the error raised) is a handful of
hooks the subclasses fill in (``CrashReport``, ``InterleavingReport``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    from pynenc.task import Task

__all__ = ["CheckReport"]


class _Schedule(Protocol):
    def snippet_lines(self, env_name: str = ...) -> list[str]: ...

    def __len__(self) -> int: ...


class _Outcome(Protocol):
    @property
    def schedule(self) -> _Schedule: ...

    @property
    def ok(self) -> bool: ...


OutcomeT = TypeVar("OutcomeT", bound=_Outcome)


@dataclass
class CheckReport(Generic[OutcomeT]):
    """What a check explored and what failed (the base of ``CrashReport`` and
    ``InterleavingReport``).

    ``explored``: one outcome per schedule run, in order (a failing schedule Hypothesis
    shrank comes last); ``minimal_failure``: the smallest failing one, set when the check
    ends; ``call_repr``: the call under test as ``env.start`` arguments; ``rerun_hint``: how
    to rerun the test with the same seed.
    """

    workflow: str
    seed: int
    golden_outcome: str
    golden_steps: list[Step]
    explored: list[OutcomeT] = field(default_factory=list)
    minimal_failure: OutcomeT | None = None
    call_repr: str = ""
    rerun_hint: str = ""

    # -- what the subclasses fill in
    #: What a schedule is made of, in the summary ("fault", "event").
    _schedule_kind: ClassVar[str] = ""
    #: The first line of ``assert_ok``'s message, formatted with ``failing``, ``explored``,
    #: ``workflow`` and ``seed``.
    _headline: ClassVar[str] = ""
    #: The heading of the violations in ``assert_ok``'s message.
    _problems_heading: ClassVar[str] = "What went wrong:"
    #: What the golden run ran without ("faults", "events").
    _golden_without: ClassVar[str] = ""

    def _explored_over(self) -> str:
        """What the schedules were spread over, for the summary."""
        raise NotImplementedError

    def _size(self, outcome: OutcomeT) -> tuple[Any, ...]:
        """Orders failures: the smallest comes first."""
        raise NotImplementedError

    def _problems(self, outcome: OutcomeT) -> list[tuple[str, str]]:
        """``(kind, message)`` of each violation of ``outcome``."""
        raise NotImplementedError

    def _setup_lines(self, outcome: OutcomeT) -> list[str]:
        """Lines the reproduction needs before the schedule (imports)."""
        return []

    def _outcome_lines(self, outcome: OutcomeT) -> list[str]:
        """Lines on what the failing run did, after its violations."""
        return []

    def _error(self, message: str) -> AssertionError:
        raise NotImplementedError

    # -- the shared shape

    @property
    def ok(self) -> bool:
        """True when every explored schedule behaved."""
        return all(o.ok for o in self.explored)

    @property
    def failing(self) -> list[OutcomeT]:
        """The explored outcomes that failed, in exploration order."""
        return [o for o in self.explored if not o.ok]

    def smallest_failure(self) -> OutcomeT | None:
        """The failing schedule with the fewest faults or events, then the earliest steps."""
        failing = self.failing
        if not failing:
            return None
        return min(failing, key=self._size)

    def summary(self) -> str:
        """One line: how many schedules were explored over what, how many failed, the seed."""
        return (
            f"{self.workflow}: {len(self.explored)} {self._schedule_kind} schedules explored "
            f"over {self._explored_over()}, {len(self.failing)} failing (seed {self.seed})"
        )

    def reproduction(self, outcome: OutcomeT | None = None) -> list[str]:
        """The runnable lines that replay ``outcome``'s run (default: the smallest
        failure): the schedule armed on ``wf_env``, then the start and its result."""
        chosen = outcome if outcome is not None else self.smallest_failure()
        if chosen is None:
            return []
        return [
            *self._setup_lines(chosen),
            *chosen.schedule.snippet_lines(),
            f"run = wf_env.start({self.call_repr})",
            "run.result",
        ]

    def assert_ok(self) -> None:
        """Raise an ``AssertionError`` (``CrashSafetyError``, ``InterleavingError``)
        describing the smallest failing schedule, what went wrong, the seed and how to
        rerun it; nothing when every schedule behaved."""
        __tracebackhide__ = True
        worst = self.smallest_failure()
        if worst is None:
            return
        lines = [
            self._headline.format(
                failing=len(self.failing), explored=len(self.explored),
                workflow=self.workflow, seed=self.seed,
            ),
            "Smallest failing schedule:",
        ]
        lines.extend(f"    {line}" for line in self.reproduction(worst))
        lines.append(self._problems_heading)
        lines.extend(f"  - [{kind}] {message}" for kind, message in self._problems(worst))
        lines.extend(self._outcome_lines(worst))
        lines.append(f"Golden run (no {self._golden_without}): {self.golden_outcome}")
        lines.append(f"Reproduce: {self.rerun_hint}")
        raise self._error("\n".join(lines))


def call_repr(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``task, *args, **kwargs`` as the arguments of ``wf_env.start(...)`` in a report."""
    parts = [task.task_id.func_name]
    parts.extend(repr(a) for a in args)
    parts.extend(f"{k}={v!r}" for k, v in kwargs.items())
    return ", ".join(parts)
