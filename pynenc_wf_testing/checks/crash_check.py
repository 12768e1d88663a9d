"""Crash/replay checks: run a workflow under every crash point and compare with a golden run.

For each fault schedule, the run must complete, give a result equal to the fault-free
(golden) run's, execute no non-idempotent step twice for one logical call, and satisfy the
user's invariant. Single crashes are explored exhaustively (before and after every step of
the golden history); schedules of several crashes are generated and shrunk by Hypothesis.
The report they return is :mod:`pynenc_wf_testing.checks.crash_report`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from pynenc_wf_testing.checks._hooks import check_hook
from pynenc_wf_testing.checks.crash_report import CrashReport, ScheduleOutcome, Violation
from pynenc_wf_testing.checks.faults import (
    FaultSchedule,
    ScheduledCrash,
    ScheduledEviction,
    ScheduledWorkerCrash,
)
from pynenc_wf_testing.checks.idempotency import marked_keys
from pynenc_wf_testing.checks.report import call_repr
from pynenc_wf_testing.errors import (
    CrashSafetyError,
    DeadlockError,
    InvalidArgument,
    NondeterminismError,
    StepLimitExceeded,
)
from pynenc_wf_testing.runtime.history import Step, in_pynenc_window

if TYPE_CHECKING:
    import datetime as dt

    from hypothesis.strategies import SearchStrategy
    from pynenc.app import Pynenc
    from pynenc.task import Task

    from pynenc_wf_testing.runtime.world import WorldHost

__all__ = ["CrashCheckEnv", "check_fault_schedules"]


class CrashCheckEnv(Protocol):
    """What a crash check needs of the environment it runs in (a ``WorkflowEnv`` is one).

    The check renews the environment's world for every run and puts the original back at
    the end; the environment itself is what the user's hooks (``starter``, ``invariant``,
    ...) receive, and what fault schedules are armed on.
    """

    rerun_hint: str

    @property
    def seed(self) -> int: ...

    @property
    def world(self) -> WorldHost: ...

    @property
    def now(self) -> dt.datetime: ...

    def use(self, app: Pynenc) -> Pynenc: ...

    def start(self, task: Task[Any, Any], /, *args: Any, **kwargs: Any) -> Any: ...


def _outcome_text(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _final_invocation(run: Any) -> Any:
    """The invocation whose outcome is the run's: the last of its chain if it continued as
    new (``WorkflowRun.current``)."""
    return getattr(run, "current", run).invocation


def _final_text(run: Any) -> str:
    try:
        return f"returned {_outcome_text(_final_invocation(run).get_final_result())}"
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"


class _FirstError(Exception):
    """Stands for the failures of several instances: the first one's text is its message."""

    def __init__(self, outcomes: list[str]) -> None:
        first = next(t for t in outcomes if t.startswith("raised "))
        super().__init__(first.removeprefix("raised "))


class _RunResult:
    def __init__(self) -> None:
        self.kind = "ok"  # ok | error | incomplete
        self.value: Any = None
        self.error: BaseException | None = None
        #: Several instances: ``value`` is the list of their outcome texts.
        self.many = False

    def text(self) -> str:
        if self.many:
            return "; ".join(self.value)
        if self.kind == "ok":
            return f"returned {_outcome_text(self.value)}"
        assert self.error is not None
        return f"raised {type(self.error).__name__}: {self.error}"


def _is_run(run: Any) -> bool:
    """A run handle (what ``env.start`` returns), or a non-empty list of them (several
    instances); typed by shape: the env layer that defines ``WorkflowRun`` sits above."""
    runs = run if isinstance(run, list) and run else [run]
    return all(hasattr(one, "invocation_id") and hasattr(one, "done") for one in runs)


class CrashChecker:
    """Runs the golden run and every fault schedule in fresh worlds of one environment."""

    def __init__(
        self,
        env: CrashCheckEnv,
        task: Task[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        compare: Callable[[Any, Any], bool] | None,
        invariant: Callable[[Any], Any] | None,
        non_idempotent: set[str],
        before_each: Callable[[], Any] | None = None,
        after_start: Callable[[Any, Any], Any] | None = None,
        starter: Callable[[Any], Any] | None = None,
        on_blocked: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self.before_each = before_each
        self.after_start = after_start
        self.starter = starter
        self.on_blocked = on_blocked
        self.env = env
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.compare = compare
        self.invariant = invariant
        self.non_idempotent = non_idempotent
        self.golden: _RunResult | None = None

    def run(
        self, schedule: FaultSchedule, *, optional: bool, fine: bool = True
    ) -> tuple[_RunResult, ScheduleOutcome]:
        env = self.env
        sim = env.world.renew()
        schedule.apply(env, optional=optional, fine=fine)
        if self.before_each is not None:
            self.before_each()
        result = _RunResult()
        violations: list[Violation] = []
        started_at = env.now
        try:
            run: Any = (
                self.starter(env)
                if self.starter is not None
                else env.start(self.task, *self.args, **self.kwargs)
            )
            if self.starter is not None and not _is_run(run):
                raise InvalidArgument(
                    "starter(env) must return the WorkflowRun it started, e.g. "
                    "starter=lambda env: env.start_workflow(wf, 1, workflow_id='o-1'); "
                    f"got {run!r}."
                )
            if self.after_start is not None:
                self.after_start(env, run)
            try:
                if isinstance(run, list):
                    # Several instances (pynenc-wf simulate --concurrency): every one must
                    # finish, and their outcomes, in start order, are the result.
                    for one in run:
                        self._drive(sim, one)
                    result.value = [_final_text(one) for one in run]
                    result.many = True
                    if any(text.startswith("raised ") for text in result.value):
                        result.kind = "error"
                        result.error = _FirstError(result.value)
                else:
                    self._drive(sim, run)
                    result.value = _final_invocation(run).get_final_result()
            except (DeadlockError, StepLimitExceeded, NondeterminismError) as exc:
                result.kind, result.error = "incomplete", exc
                kind = "nondeterminism" if isinstance(exc, NondeterminismError) else "incomplete"
                violations.append(Violation(kind, f"{type(exc).__name__}: {exc}", schedule))
            except Exception as exc:  # the workflow's own failure
                result.kind, result.error = "error", exc
            missed = sorted(sim.eviction.at_waits - set(sim.eviction.evicted))
            if missed and not optional:
                violations.append(
                    Violation(
                        "not_reached",
                        f"wf_env.evict_at_wait({missed[0]}) never happened: the faulted run "
                        f"blocked in only {sim.eviction.waits} waits",
                        schedule,
                    )
                )
            for point in sim.faults.unfired():
                violations.append(
                    Violation(
                        "not_reached",
                        f"{point.snippet()} never fired: the faulted run diverged from the "
                        "golden run before reaching that step",
                        schedule,
                    )
                )
            if self.golden is not None and result.kind != "incomplete":
                mismatch = self._compare(self.golden, result)
                if mismatch:
                    violations.append(Violation("result", mismatch, schedule))
            for runs in sim.duplicate_side_effects(self.non_idempotent):
                first = runs[0]
                detail = ", ".join(
                    f"attempt {r.attempt} of {r.name} [{r.invocation_id[:8]}] {r.outcome}"
                    for r in runs
                )
                violations.append(
                    Violation(
                        "duplicate",
                        f"non-idempotent {first.task.rsplit('.', 1)[-1]} ran {len(runs)} times "
                        f"for one logical call (its call #{first.logical_call[2] if first.logical_call else '?'} "
                        f"in workflow [{(first.logical_call[0] if first.logical_call else '')[:8]}]): "
                        f"{detail}. Give it an idempotency key (e.g. derived from "
                        "wf.root.uuid() or the order id) so a repeat has no effect.",
                        schedule,
                    )
                )
            if self.invariant is not None:
                message = self._check_invariant()
                if message:
                    violations.append(Violation("invariant", message, schedule))
        finally:
            outcome = ScheduleOutcome(
                schedule=schedule,
                violations=violations,
                outcome=result.text(),
                crashes=sim.crashes,
                steps=len([s for s in sim.history if s.is_step]),
                fired=env.world.faults.fired()
                + [f"evict_at_wait({wait})" for wait in sim.eviction.evicted],
                virtual_seconds=(env.now - started_at).total_seconds(),
            )
        return result, outcome

    def _drive(self, sim: Any, run: Any) -> None:
        for _ in range(100):
            if run.done:
                return
            try:
                while not run.done:  # one run of a continue-as-new chain at a time
                    stuck = getattr(run, "current", run).invocation_id
                    sim.drive(
                        goal=lambda stuck=stuck: run.done
                        or getattr(run, "current", run).invocation_id != stuck,
                        goal_ids=[stuck],
                        on_final=True,
                    )
                return
            except DeadlockError:
                if self.on_blocked is None or not self.on_blocked(self.env, run):
                    raise
        raise DeadlockError(  # pragma: no cover - a hook that unblocks nothing, forever
            "on_blocked() returned true 100 times but the run still cannot progress."
        )

    def _compare(self, golden: _RunResult, got: _RunResult) -> str | None:
        if golden.kind != got.kind:
            return f"expected the workflow to have {golden.text()}, but it {got.text()}"
        if got.kind == "ok":
            try:
                same = (
                    self.compare(golden.value, got.value)
                    if self.compare is not None
                    else golden.value == got.value
                )
            except Exception as exc:
                return f"compare(golden, got) raised {type(exc).__name__}: {exc}"
            if not same:
                return (
                    f"result differs: expected {_outcome_text(golden.value)}, "
                    f"got {_outcome_text(got.value)}"
                )
            return None
        assert golden.error is not None and got.error is not None
        if got.many:
            if golden.value != got.value:
                return f"results {got.value} differ from the fault-free {golden.value}"
            return None
        if type(golden.error) is not type(got.error) or str(golden.error) != str(got.error):
            return f"expected the workflow to have {golden.text()}, but it {got.text()}"
        return None

    def _check_invariant(self) -> str | None:
        assert self.invariant is not None
        try:
            verdict = self.invariant(self.env)
        except AssertionError as exc:
            return f"invariant failed: {exc}"
        except Exception as exc:
            return f"invariant raised {type(exc).__name__}: {exc}"
        if verdict is False:
            return "invariant returned False"
        return None


def check_crash_safety(
    env: CrashCheckEnv,
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    compare: Callable[[Any, Any], bool] | None = None,
    invariant: Callable[[Any], Any] | None = None,
    max_crashes: int = 1,
    fine: bool = False,
    max_examples: int = 100,
    restart_after: float | None = None,
    before_each: Callable[[], Any] | None = None,
    after_start: Callable[[Any, Any], Any] | None = None,
    starter: Callable[[Any], Any] | None = None,
    on_blocked: Callable[[Any, Any], Any] | None = None,
    non_idempotent: set[str] | None = None,
    evictions: bool = True,
    worker_crashes: bool = True,
) -> CrashReport:
    if isinstance(max_crashes, bool) or not isinstance(max_crashes, int) or max_crashes < 1:
        raise InvalidArgument(f"max_crashes must be an int >= 1, got {max_crashes!r}.")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise InvalidArgument(
            f"max_examples must be an int >= 1 (multi-crash schedules Hypothesis tries when "
            f"max_crashes > 1), got {max_examples!r}."
        )
    for flag_name, flag in (
        ("fine", fine), ("evictions", evictions), ("worker_crashes", worker_crashes)
    ):
        if not isinstance(flag, bool):  # "no" would count as true
            raise InvalidArgument(f"{flag_name} must be True or False, got {flag!r}.")
    check_hook(compare, "compare", "(golden, got) -> bool", "lambda golden, got: golden == got")
    check_hook(invariant, "invariant", "(env) -> bool", "lambda env: ledger_ok()")
    check_hook(before_each, "before_each", "() -> None", "lambda: world.reset()")
    check_hook(after_start, "after_start", "(env, run)",
               "lambda env, run: env.signal(run, 'go')")
    check_hook(starter, "starter", "(env) -> WorkflowRun", "lambda env: env.start(flow, 1)")
    check_hook(on_blocked, "on_blocked", "(env, run) -> bool", "lambda env, run: False")
    keys = marked_keys() | (non_idempotent or set())
    checker = CrashChecker(
        env, task, args, kwargs, compare=compare, invariant=invariant, non_idempotent=keys,
        before_each=before_each, after_start=after_start, starter=starter,
        on_blocked=on_blocked,
    )
    report = _empty_report(env, task, args, kwargs)
    # Every run gets a fresh world; the user's own world is put back however the check ends.
    with env.world.isolated():
        _golden_run(checker, report)
        steps = [s for s in report.golden_steps if s.is_step]
        first_number: dict[str, int] = {}
        for s in report.golden_steps:
            if s.number is not None:
                first_number.setdefault(s.name, s.number)
        # execute_task routes a child, then records its id: crashing in between duplicates
        # the child on replay, in correct workflows too (pynenc behaviour, docs/faults.md
        # "What we found"). Only the fine-grained mode crashes inside that window.
        for step in steps:
            assert step.number is not None
            name = step.name if first_number.get(step.name) == step.number else None
            for phase in ("before", "after"):
                if not fine and in_pynenc_window(step, phase):
                    continue
                schedule = FaultSchedule(
                    (ScheduledCrash(step.number, phase, name, restart_after),)
                )
                _, outcome = checker.run(schedule, optional=False, fine=True)
                report.explored.append(outcome)
        # Evicted at each wait of the golden run in turn (a cached world only: with
        # evict="every_wait" every run already evicts everywhere).
        evicting = evictions and env.world.evict == "never"
        if evicting:
            for wait in range(1, report.golden_waits + 1):
                schedule = FaultSchedule(evictions=(ScheduledEviction(wait),))
                _, outcome = checker.run(schedule, optional=False, fine=True)
                report.explored.append(outcome)
        # One pool worker down at each instant the golden run started work on it (the
        # others keep going). A worker that never comes back needs another to recover it.
        pool = env.world.sim.pool
        downs: list[ScheduledWorkerCrash] = []
        if worker_crashes and pool is not None and (
            pool.workers > 1 or restart_after is not None
        ):
            downs = _golden_worker_crashes(report, restart_after)
            for down in downs:
                _, outcome = checker.run(
                    FaultSchedule(worker_crashes=(down,)), optional=False, fine=True
                )
                report.explored.append(outcome)
        if max_crashes > 1:
            from pynenc_wf_testing.checks.strategies import fault_schedules

            # no pool (or no worker crashes): exactly the schedules drawn before
            workers = pool.workers if downs and pool is not None else 0
            within = report.golden.virtual_seconds if report.golden else 0.0
            if evicting and report.golden_waits:
                # Crashes and evictions drawn together; a schedule of one fault was run
                # above, so only combinations of two or more are explored (and shrunk to).
                # A crash adds waits (the re-executed workflow blocks again), hence the room.
                strategy = fault_schedules(
                    _max_step(report, max_crashes), max_crashes=max_crashes, min_crashes=0,
                    steps=report.golden_steps, fine=fine,
                    waits=report.golden_waits + max_crashes, max_evictions=max_crashes,
                    workers=workers, within=within, down_for=restart_after,
                ).filter(lambda schedule: len(schedule) >= 2)
            else:
                strategy = fault_schedules(
                    _max_step(report, max_crashes), max_crashes=max_crashes, min_crashes=2,
                    steps=report.golden_steps, fine=fine,
                    workers=workers, within=within, down_for=restart_after,
                )
            _explore(checker, report, strategy, max_examples, fine)
    report.minimal_failure = report.smallest_failure()
    return report


def check_fault_schedules(
    env: CrashCheckEnv,
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    schedules: Callable[[list[Step]], SearchStrategy[FaultSchedule]],
    max_examples: int,
    search_seed: int | None = None,
    fine: bool = False,
    concurrency: int = 1,
    non_idempotent: set[str] | None = None,
) -> CrashReport:
    """The golden run, then up to ``max_examples`` schedules drawn by Hypothesis from
    ``schedules(golden_steps)`` (see :mod:`pynenc_wf_testing.checks.strategies`), the first
    failing one shrunk to a minimal one (``report.minimal_failure``). Each run is judged as
    in :func:`check_crash_safety`. ``search_seed`` fixes Hypothesis's search (the same seed
    draws and shrinks the same schedules); without it the search is derandomized.
    ``concurrency`` starts that many instances per run; the result is then the list of their
    outcomes. An empty schedule is the golden run and is not run again. A golden run that
    raised sets ``report.golden_raised``; one that did not finish raises
    :class:`CrashSafetyError`. This is what ``pynenc-wf simulate`` runs for each seed.
    """
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise InvalidArgument(f"max_examples must be an int >= 1, got {max_examples!r}.")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgument(f"concurrency must be an int >= 1, got {concurrency!r}.")
    env.use(task.app)  # its components must be in the world captured below
    starter: Callable[[Any], Any] | None = None
    if concurrency > 1:
        def starter(env: Any) -> list[Any]:
            return [env.start(task, *args, **kwargs) for _ in range(concurrency)]

    checker = CrashChecker(
        env, task, args, kwargs, compare=None, invariant=None,
        non_idempotent=marked_keys() | (non_idempotent or set()), starter=starter,
    )
    report = _empty_report(env, task, args, kwargs)
    with env.world.isolated():
        _golden_run(checker, report)
        _explore(checker, report, schedules(report.golden_steps), max_examples, fine,
                 search_seed=search_seed)
    report.minimal_failure = report.smallest_failure()
    return report


def _empty_report(
    env: CrashCheckEnv, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> CrashReport:
    return CrashReport(
        workflow=task.task_id.func_name,
        seed=env.seed,
        golden_outcome="",
        golden_steps=[],
        call_repr=call_repr(task, args, kwargs),
        rerun_hint=env.rerun_hint,
    )


def _golden_worker_crashes(
    report: CrashReport, restart_after: float | None
) -> list[ScheduledWorkerCrash]:
    """A worker crash in the middle of each execution the golden run ran on a pool worker
    (at its start when it took no virtual time), in virtual seconds from the run's start;
    each distinct (worker, instant) once."""
    import datetime as dt

    start = dt.datetime.fromisoformat(report.golden_start)
    seen: set[tuple[int, float]] = set()
    downs: list[ScheduledWorkerCrash] = []
    for worker, started, finished in report.golden_work:
        began = (dt.datetime.fromisoformat(started) - start).total_seconds()
        ended = began if finished is None else (
            dt.datetime.fromisoformat(finished) - start
        ).total_seconds()
        after = (began + ended) / 2
        if (worker, after) not in seen:
            seen.add((worker, after))
            downs.append(ScheduledWorkerCrash(worker, after, restart_after))
    return sorted(downs, key=ScheduledWorkerCrash.sort_key)


def _golden_run(checker: CrashChecker, report: CrashReport) -> None:
    golden, golden_outcome = checker.run(FaultSchedule(), optional=False)
    checker.golden = golden
    report.golden = golden_outcome
    report.golden_raised = golden.kind == "error"
    report.golden_outcome = golden.text()
    report.golden_steps = list(checker.env.world.sim.history)
    report.golden_waits = checker.env.world.sim.eviction.waits
    report.golden_start = checker.env.world.start.isoformat()
    report.golden_work = [
        (e.worker, e.started, e.finished) for e in checker.env.world.sim.ledger if e.worker
    ]
    if golden.kind == "incomplete" or not golden_outcome.ok:
        raise CrashSafetyError(
            f"the golden run of {report.call_repr} (no faults) did not behave, so there is "
            f"nothing to compare crashes with: {golden.text()}; "
            + "; ".join(v.message for v in golden_outcome.violations)
        )


def _as_fired(env: Any, schedule: FaultSchedule) -> FaultSchedule:
    """The crashes of ``schedule`` that fired, named after the steps they fired at, its
    evictions that happened, and its worker crashes (kept as scheduled).

    A generated crash carries the golden run's name for its step number, but after an
    earlier crash or an injected failure the faulted run numbers its steps differently:
    the snippet must name the step that was really hit. A name is used only where it is
    that step's first occurrence (``crash_after('x#1')`` fires at the first match)."""
    points = env.world.faults.crash_points  # armed in schedule order on a fresh ArmedFaults
    first: dict[str, int] = {}
    for step in env.world.sim.history:
        if step.number is not None:
            first.setdefault(step.name, step.number)
    fired: list[ScheduledCrash] = []
    for crash, point in zip(schedule.crashes, points, strict=True):
        at = point.fired_at
        if at is None or at.number is None:
            continue
        name = at.name if first.get(at.name) == at.number else None
        fired.append(replace(crash, step=at.number, name=name))
    evicted = set(env.world.sim.eviction.evicted)
    return replace(
        schedule, crashes=tuple(fired),
        evictions=tuple(e for e in schedule.evictions if e.wait in evicted),
    )


def _max_step(report: CrashReport, max_crashes: int) -> int:
    """Recovery commits more steps than the golden run: leave room for later crashes."""
    golden_count = len([s for s in report.golden_steps if s.is_step])
    return max(1, golden_count * max(1, max_crashes))


def _explore(
    checker: CrashChecker,
    report: CrashReport,
    strategy: SearchStrategy[FaultSchedule],
    max_examples: int,
    fine: bool,
    *,
    search_seed: int | None = None,
) -> None:
    """Schedules generated and shrunk by Hypothesis: the one shrinker of fault schedules."""
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis.errors import HypothesisException

    failures: list[ScheduleOutcome] = []

    class _Failed(Exception):
        pass

    @settings(
        max_examples=max_examples,
        derandomize=search_seed is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
    )
    @given(strategy)
    def explore(schedule: FaultSchedule) -> None:
        if not schedule:
            return  # no faults: that is the golden run, already judged
        _, outcome = checker.run(schedule, optional=True, fine=fine)
        # Unreached generated crash points are expected (they may point past the end).
        outcome.violations = [v for v in outcome.violations if v.kind != "not_reached"]
        outcome.schedule = _as_fired(checker.env, schedule)
        for violation in outcome.violations:
            object.__setattr__(violation, "schedule", outcome.schedule)
        report.explored.append(outcome)
        if not outcome.ok:
            failures.append(outcome)
            raise _Failed(str(outcome.schedule))

    if search_seed is not None:
        explore = seed(search_seed)(explore)
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
