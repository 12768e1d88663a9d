"""Interleaving checks: external events delivered at every step boundary of a golden run.

A golden run without events records the workflow's steps. Then every event alone at every
boundary (right after each golden step commits, up to the workflow's own result), then
Hypothesis-chosen combinations of several events at several boundaries, each in a fresh
world of the same seed. A run is a violation only when it shows a bug, never because the
events legitimately changed what the workflow did (a signal takes another branch, a
cancellation ends it):

- ``incomplete``: it never finishes (``DeadlockError``, the step limit) and is not merely
  halted waiting for a ``Resume``;
- ``nondeterminism``: a replay asked for other steps than it recorded;
- ``error``: it raised something other than the engine's documented outcomes of events
  (``WorkflowCancelled``, ``WorkflowTimeout``, ``WaitTimeout``/``SignalTimeout``) and other
  than what the golden run raised (an ``AssertionError`` in workflow code included);
- ``result``: ``compare(result)`` returned False or raised (called on runs that returned);
- ``duplicate``: a non-idempotent task ran twice for one logical call;
- ``invariant``: ``invariant(env)`` returned False or raised.

The smallest failing schedule is printed as runnable ``wf_env.deliver_after(...)`` lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pynenc_wf_testing.checks._hooks import check_hook
from pynenc_wf_testing.checks.events import (
    Event,
    EventSchedule,
    EventTarget,
    Resume,
    ScheduledEvent,
    Signal,
    check_event,
)
from pynenc_wf_testing.checks.idempotency import marked_keys
from pynenc_wf_testing.checks.report import CheckReport, call_repr
from pynenc_wf_testing.errors import (
    DeadlockError,
    InterleavingError,
    InvalidArgument,
    NondeterminismError,
    StepLimitExceeded,
)
from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    import datetime as dt

    from pynenc.app import Pynenc
    from pynenc.task import Task

__all__ = [
    "InterleavingCheckEnv",
    "InterleavingOutcome",
    "InterleavingReport",
    "check_interleavings",
]

#: Hypothesis examples by default: each is one simulated run.
DEFAULT_MAX_EXAMPLES = 50


class InterleavingCheckEnv(EventTarget, Protocol):
    """What the interleaving check needs of its environment (a ``WorkflowEnv`` is one)."""

    rerun_hint: str

    @property
    def seed(self) -> int: ...

    @property
    def now(self) -> dt.datetime: ...

    def use(self, app: Pynenc) -> Pynenc: ...

    def start(self, task: Task[Any, Any], /, *args: Any, **kwargs: Any) -> Any: ...

    def describe(self, run: Any) -> Any: ...


@dataclass
class InterleavingOutcome:
    """What happened under one event schedule. ``violations``: ``(kind, message)`` pairs
    (module docstring); ``delivered``: what each delivery did, in order."""

    schedule: EventSchedule
    violations: list[tuple[str, str]]
    outcome: str
    steps: int
    delivered: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class InterleavingReport(CheckReport[InterleavingOutcome]):
    """The result of :meth:`WorkflowEnv.check_interleavings`: ``summary()``,
    ``smallest_failure()``, ``reproduction()`` and ``assert_ok()`` as every check report
    (``CheckReport``)."""

    #: The golden steps events were delivered after (every step before the workflow's result).
    boundaries: list[Step] = field(default_factory=list)

    _schedule_kind = "event"
    _headline = (
        "interleaving check failed: {failing} of {explored} event schedules fail for "
        "{workflow} (seed {seed})."
    )
    _problems_heading = "What went wrong:"
    _golden_without = "events"

    @property
    def violations(self) -> list[tuple[str, str]]:
        """Every ``(kind, message)`` found, in exploration order."""
        return [v for o in self.explored for v in o.violations]

    def _explored_over(self) -> str:
        return f"{len(self.boundaries)} step boundaries"

    def _size(self, outcome: InterleavingOutcome) -> tuple[Any, ...]:
        return (len(outcome.schedule), [e.step for e in outcome.schedule.events])

    def _problems(self, outcome: InterleavingOutcome) -> list[tuple[str, str]]:
        return list(outcome.violations)

    def _setup_lines(self, outcome: InterleavingOutcome) -> list[str]:
        types = outcome.schedule.event_types()
        lines = [f"from pynenc_wf_testing import {', '.join(types)}"]
        if "Advance" in types:
            lines.insert(0, "from datetime import timedelta")
        return lines

    def _outcome_lines(self, outcome: InterleavingOutcome) -> list[str]:
        lines = [f"Run outcome: {outcome.outcome}"]
        if outcome.delivered:
            lines.append("Delivered: " + "; ".join(outcome.delivered))
        return lines

    def _error(self, message: str) -> AssertionError:
        return InterleavingError(message)


def _text(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _allowed_errors() -> tuple[type[BaseException], ...]:
    from pynenc_wf_testing.engine import WaitTimeout, WorkflowCancelled, WorkflowTimeout

    return (WorkflowCancelled, WorkflowTimeout, WaitTimeout)


class _Runner:
    """Runs one schedule in a fresh world of the environment and judges it."""

    def __init__(
        self,
        env: InterleavingCheckEnv,
        task: Task[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        compare: Callable[[Any], Any] | None,
        invariant: Callable[[Any], Any] | None,
        before_each: Callable[[], Any] | None,
        after_start: Callable[[Any, Any], Any] | None,
        non_idempotent: set[str],
    ) -> None:
        self.env = env
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.compare = compare
        self.invariant = invariant
        self.before_each = before_each
        self.after_start = after_start
        self.non_idempotent = non_idempotent
        #: The golden run's exception (type and message), which later runs may raise too.
        self.golden_error: tuple[type[BaseException], str] | None = None
        #: Signal names the workflow waited for, and whether it halted, in any run so far.
        self.waited: set[str] = set()
        self.halted = False
        #: The last run started (the golden run's handle, right after it).
        self.last_run: Any = None

    def run(self, schedule: EventSchedule, *, golden: bool = False) -> InterleavingOutcome:
        """One run under ``schedule``, judged (the golden run may raise anything)."""
        env = self.env
        sim = env.world.renew()
        log: list[str] = []
        schedule.apply(env, optional=True, log=log)
        if self.before_each is not None:
            self.before_each()
        violations: list[tuple[str, str]] = []
        run: Any = env.start(self.task, *self.args, **self.kwargs)
        self.last_run = run
        if self.after_start is not None:
            self.after_start(env, run)
        outcome = ""
        returned = False
        value: Any = None
        try:
            sim.drive(goal=lambda: run.done, goal_ids=[run.invocation_id], on_final=True)
        except InvalidArgument:
            raise  # a bad event (e.g. a payload the serializer loses): the caller's mistake
        except DeadlockError as exc:
            halted = self._halted(run)
            if halted is not None:
                outcome = f"halted ({halted}), waiting for a resume"
                lost = self._lost_resume(schedule, sim.history, run.invocation_id)
                if lost:
                    violations.append(("incomplete", lost))
            else:
                outcome = f"never finished: {exc}"
                violations.append(("incomplete", f"DeadlockError: {exc}"))
        except StepLimitExceeded as exc:
            outcome = f"never finished: {exc}"
            violations.append(("incomplete", f"StepLimitExceeded: {exc}"))
        except NondeterminismError as exc:
            outcome = f"raised NondeterminismError: {exc}"
            violations.append(("nondeterminism", f"NondeterminismError: {exc}"))
        except Exception as exc:  # an AssertionError in workflow code, raised by the drive
            outcome = f"raised {type(exc).__name__}: {exc}"
            violations.append(("error", f"the run raised {type(exc).__name__}: {exc}"))
        else:
            try:
                value = run.invocation.get_final_result()
                returned = True
                outcome = f"returned {_text(value)}"
            except Exception as exc:
                outcome = f"raised {type(exc).__name__}: {exc}"
                if not golden and not self._expected(exc):
                    violations.append((
                        "error",
                        f"the workflow raised {type(exc).__name__}: {exc} (not an engine "
                        "outcome of an event: WorkflowCancelled, WorkflowTimeout, WaitTimeout"
                        + (", nor what the golden run raised" if self.golden_error else "")
                        + ")",
                    ))
        if returned and self.compare is not None:
            message = _judge(lambda: self.compare(value), "compare(result)")  # type: ignore[misc]
            if message:
                violations.append(("result", f"{message}; the result was {_text(value)}"))
        for runs in sim.duplicate_side_effects(self.non_idempotent):
            first = runs[0]
            detail = ", ".join(
                f"attempt {r.attempt} of {r.name} [{r.invocation_id[:8]}] {r.outcome}" for r in runs
            )
            violations.append((
                "duplicate",
                f"non-idempotent {first.task.rsplit('.', 1)[-1]} ran {len(runs)} times for one "
                f"logical call: {detail}",
            ))
        if self.invariant is not None:
            invariant = self.invariant
            message = _judge(lambda: invariant(env), "invariant(env)")
            if message:
                violations.append(("invariant", message))
        self._note_waits(sim.history, run.invocation_id)
        return InterleavingOutcome(
            schedule=self._as_fired(schedule),
            violations=violations,
            outcome=outcome,
            steps=len([s for s in sim.history if s.is_step]),
            delivered=log,
        )

    def _expected(self, exc: BaseException) -> bool:
        if isinstance(exc, _allowed_errors()):
            return True
        golden = self.golden_error
        return golden is not None and type(exc) is golden[0] and str(exc) == golden[1]

    def _halted(self, run: Any) -> str | None:
        from pynenc_wf_testing.engine import WorkflowEngineError

        try:
            halted: str | None = self.env.describe(run).halted
        except WorkflowEngineError:
            return None
        return halted

    def _lost_resume(
        self, schedule: EventSchedule, history: Sequence[Step], workflow_id: str
    ) -> str | None:
        """A run halted at the end although a ``Resume()`` arrived after its last halt was
        recorded: the resume was accepted and lost."""
        # The first write of each halt#n records the halt (a resume rewrites it later).
        halts: dict[str, Step] = {}
        for step in history:
            if step.workflow_id == workflow_id and step.name.startswith("halt#") and step.number:
                halts.setdefault(step.name, step)
        if not halts:
            return None
        last = max(halts.values(), key=lambda step: step.number or 0)
        assert last.number is not None
        points = self.env.world.faults.interrupts[: len(schedule.events)]
        for scheduled, point in zip(schedule.events, points, strict=True):
            at = point.fired_at
            if (
                isinstance(scheduled.event, Resume)
                and at is not None
                and at.number is not None
                and at.number >= last.number
            ):
                return (
                    f"still halted although Resume() was delivered after {at.name} "
                    f"(step {at.number}), once {last.name} was recorded: the resume was "
                    "accepted and lost"
                )
        return None

    def _note_waits(self, history: Sequence[Step], workflow_id: str) -> None:
        for step in history:
            if step.workflow_id != workflow_id:
                continue
            if step.name.startswith("wait_signal:"):
                self.waited.add(step.name.removeprefix("wait_signal:").rsplit("#", 1)[0])
            elif step.name.startswith("halt#"):
                self.halted = True

    def _as_fired(self, schedule: EventSchedule) -> EventSchedule:
        """The events that were delivered, named after the steps they really followed in
        this run (a name where it is that step's first occurrence, else its number), so the
        reproduction arms exactly this run."""
        first: dict[str, int] = {}
        for step in self.env.world.sim.history:
            if step.number is not None:
                first.setdefault(step.name, step.number)
        fired: list[ScheduledEvent] = []
        # armed first, in schedule order, on the fresh world of this run
        points = self.env.world.faults.interrupts[: len(schedule.events)]
        for scheduled, point in zip(schedule.events, points, strict=True):
            at = point.fired_at
            if at is None or at.number is None:
                continue
            name = at.name if first.get(at.name) == at.number else None
            fired.append(ScheduledEvent(at.number, scheduled.event, name))
        return EventSchedule(tuple(fired))


def _judge(check: Callable[[], Any], what: str) -> str | None:
    try:
        verdict = check()
    except AssertionError as exc:
        return f"{what} failed: {exc}"
    except Exception as exc:
        return f"{what} raised {type(exc).__name__}: {exc}"
    if verdict is False:
        return f"{what} returned False"
    return None


def _check_events(events: object) -> list[Event]:
    if isinstance(events, (Signal, Resume)) or not isinstance(events, (list, tuple)):
        raise InvalidArgument(
            f"events must be a list of events, got {events!r}. Pass e.g. "
            "events=[Signal('approved', {'by': 'ann'}), Cancel(), Advance(timedelta(hours=1))]."
        )
    if not events:
        raise InvalidArgument(
            "events is empty: there is nothing to deliver. Pass the events the workflow can "
            "receive, e.g. events=[Signal('approved'), Cancel()]."
        )
    return [check_event(e, f"events[{i}]") for i, e in enumerate(events)]


def _count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def check_interleavings(
    env: InterleavingCheckEnv,
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    events: Sequence[Event],
    compare: Callable[[Any], Any] | None = None,
    invariant: Callable[[Any], Any] | None = None,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    max_events: int = 3,
    before_each: Callable[[], Any] | None = None,
    after_start: Callable[[Any, Any], Any] | None = None,
    non_idempotent: set[str] | None = None,
) -> InterleavingReport:
    """The check behind :meth:`WorkflowEnv.check_interleavings` (module docstring)."""
    pool = _check_events(events)
    _count(max_examples, "max_examples", 0)
    _count(max_events, "max_events", 1)
    # compare takes the result only (check_crash_safety's takes golden and got).
    check_hook(compare, "compare", "(result) -> bool", "lambda result: result == 'archived'")
    check_hook(invariant, "invariant", "(env) -> bool", "lambda env: ledger_ok()")
    check_hook(before_each, "before_each", "() -> None", "lambda: world.reset()")
    check_hook(after_start, "after_start", "(env, run) -> None",
               "lambda env, run: env.signal(run, 'go')")
    if not getattr(task, "is_workflow_root_task", False):
        raise InvalidArgument(
            f"check_interleavings() delivers events to a workflow, and "
            f"{task.task_id.func_name} is a plain task. Pass a task decorated with "
            "@app.workflow."
        )
    env.use(task.app)
    runner = _Runner(
        env, task, args, kwargs, compare=compare, invariant=invariant,
        before_each=before_each, after_start=after_start,
        non_idempotent=marked_keys() | (non_idempotent or set()),
    )
    report = InterleavingReport(
        workflow=task.task_id.func_name,
        seed=env.seed,
        golden_outcome="",
        golden_steps=[],
        call_repr=call_repr(task, args, kwargs),
        rerun_hint=env.rerun_hint,
    )
    with env.world.isolated():
        golden = runner.run(EventSchedule(), golden=True)
        report.golden_outcome = golden.outcome
        report.golden_steps = list(env.world.sim.history)
        if not golden.ok:
            raise InterleavingError(
                f"the golden run of {report.call_repr} (no events) did not behave, so events "
                f"cannot be judged against it: {golden.outcome}"
                + "".join(f"; {m}" for k, m in golden.violations if k != "incomplete")
                + ". A workflow that needs a signal to finish gets it from "
                "after_start=lambda env, run: env.signal(run, ...)."
            )
        golden_run = runner.last_run
        if golden.outcome.startswith("raised "):
            try:
                golden_run.invocation.get_final_result()
            except Exception as exc:
                runner.golden_error = (type(exc), str(exc))
        _require_engine(env, pool, golden_run)
        report.boundaries = _boundaries(report.golden_steps, golden_run.invocation_id)
        if not report.boundaries:
            raise InterleavingError(  # pragma: no cover - a started workflow has its route step
                f"the golden run of {report.call_repr} has no step before its result."
            )
        seen: dict[str, int] = {}
        singles: list[EventSchedule] = []
        for step in report.boundaries:
            assert step.number is not None
            seen[step.name] = seen.get(step.name, 0) + 1
            for event in pool:
                singles.append(EventSchedule((
                    ScheduledEvent(step.number, event, step.name, seen[step.name]),
                )))
        for schedule in singles:
            report.explored.append(runner.run(schedule))
        _check_reachable(runner, pool)
        if max_examples and max_events > 1:
            _explore(runner, report, pool, max_examples, max_events)
    report.minimal_failure = report.smallest_failure()
    return report


def _boundaries(history: Sequence[Step], root: str) -> list[Step]:
    """Every golden step up to (not including) the workflow's own result: after that, an
    event only finds a finished workflow."""
    boundaries: list[Step] = []
    for step in history:
        if step.number is None:
            continue
        if step.kind == "result" and step.invocation_id == root:
            break
        boundaries.append(step)
    return boundaries


def _require_engine(env: InterleavingCheckEnv, pool: list[Event], run: Any) -> None:
    """Signals, cancellation and resume need the durable-workflow engine on the app."""
    from pynenc_wf_testing.checks.events import Advance
    from pynenc_wf_testing.engine import WorkflowsNotEnabled

    needs = [e for e in pool if not isinstance(e, Advance)]
    if not needs:
        return
    try:
        env.describe(run)
    except WorkflowsNotEnabled as error:
        raise InvalidArgument(
            f"{needs[0].snippet()} needs the durable-workflow engine: {error}"
        ) from None


def _check_reachable(runner: _Runner, pool: list[Event]) -> None:
    """A signal nobody ever waits for (or a resume of a workflow that never halts) can
    change nothing: most likely a misspelt name. Judged over the golden run and every
    single-event run, so a wait reached only after another event counts."""
    names = sorted({e.name for e in pool if isinstance(e, Signal)} - runner.waited)
    if names:
        waited = ", ".join(repr(n) for n in sorted(runner.waited)) or "no signal at all"
        raise InvalidArgument(
            f"the workflow never waited for a signal named {', '.join(map(repr, names))} "
            f"(in the golden run and every single-event run it waited for {waited}): "
            "delivering it could change nothing. Check the name given to Signal(...)."
        )
    if any(isinstance(e, Resume) for e in pool) and not runner.halted:
        raise InvalidArgument(
            "Resume() can change nothing: the workflow never halted (no halt#n step in the "
            "golden run or any single-event run). Remove it from events."
        )


def _explore(
    runner: _Runner,
    report: InterleavingReport,
    pool: list[Event],
    max_examples: int,
    max_events: int,
) -> None:
    """Combinations of 2..max_events events, generated and shrunk by Hypothesis
    (derandomized: the same seed explores the same schedules in any process)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import HypothesisException

    from pynenc_wf_testing.checks.strategies import event_schedules

    failures: list[InterleavingOutcome] = []

    class _Failed(Exception):
        pass

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
    )
    @given(event_schedules(report.boundaries, pool, min_events=2, max_events=max_events))
    def explore(schedule: EventSchedule) -> None:
        outcome = runner.run(schedule)
        report.explored.append(outcome)
        if not outcome.ok:
            failures.append(outcome)
            raise _Failed(str(outcome.schedule))

    try:
        explore()
    except _Failed:
        pass
    except HypothesisException:  # pragma: no cover - flaky or unsatisfiable search
        pass
    if failures:
        # Hypothesis replays the shrunk example last: that is the minimal failing schedule.
        minimal = failures[-1]
        report.explored.remove(minimal)
        report.explored.append(minimal)
