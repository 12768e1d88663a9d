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
__all__ = [
    "ArmedCrash",
    "ArmedFailure",
    "ArmedFaults",
    "ArmedInterrupt",
    "ArmedMock",
    "make_matcher",
    "mocked_run_task_sync",
    "normalize_step_name",
]

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
    if "#" not in name:
        return f"{name}#1"
    base, _, number = name.rpartition("#")
    # Every step name ends in '#<n>' (n >= 1): anything else can never match a step.
    if not base or not number.isdigit() or int(number) < 1:
        raise InvalidArgument(
            f"step name {name!r}: expected '<name>#<n>' with n >= 1 (the n-th such step), "
            "e.g. 'charge_payment#2', 'route:charge_payment#1' or 'uuid#1'; or the name "
            "alone for its first occurrence."
        )
    return name


def _require_one_argument(predicate: Callable[..., Any]) -> None:
    """A predicate crash point is called with each Step: refuse, at the call that arms it,
    one that cannot take it (it would fail at the first step, far from the mistake)."""
    import inspect

    try:
        signature = inspect.signature(predicate)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    try:
        signature.bind(None)
    except TypeError as error:
        label = getattr(predicate, "__name__", type(predicate).__name__)
        raise InvalidArgument(
            f"the crash point {label}{signature} cannot be called with a Step ({error}): a "
            "predicate crash point takes one argument, the step just committed, e.g. "
            "lambda step: step.name.startswith('charge')."
        ) from None


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
        _require_one_argument(ref)
        predicate: Callable[[Step], bool] = ref
        label = getattr(ref, "__name__", repr(ref))

        def matches(step: Step) -> bool:
            try:
                return bool(predicate(step))
            except Exception as error:  # the user's own error, told where it came from
                error.add_note(f"raised by the crash point predicate {label} at step {step}")
                raise

        return matches, label
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
class ArmedInterrupt:
    """Something from outside the worker (a signal, a cancellation, time passing) happens
    right after the matching step commits: ``deliver(step)`` runs in the test's context
    (never inside an invocation) before the invocation that committed the step goes on.

    ``optional``: never firing is not an error (generated schedules may point past the end).
    """

    matcher: Callable[[Step], bool]
    description: str
    deliver: Callable[[Step], None]
    what: str = "deliver"
    optional: bool = False
    fired: bool = False
    fired_at: Step | None = None
    #: An interrupt never crashes the worker (it shows in ``unfired()`` beside crash points).
    restart_after: float | None = None

    def snippet(self) -> str:
        return f"deliver_after({self.description}, {self.what})"


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


#: An attempt key of ``per_attempt``: ``(first, last)``, ``last`` None for "and every later one".
AttemptRange = tuple[int, "int | None"]

_UNSET: Any = object()


@dataclass(eq=False)
class ArmedMock:
    """A task replaced for one environment (``wf_env.mock``), shared by every world of it.

    ``attempt`` (0-based) is the index of a *try* of the mocked task in one world, in the
    order tries first start: a try is one pynenc execution attempt, i.e. an invocation with a
    given ``num_retries`` (its first run is one try; each pynenc retry of it is the next; each
    fresh child that ``wf.root.execute_task_with_retry`` routes for another engine attempt is
    the next). A re-execution of the same try after a worker crash (pynenc's recovery, which
    does not count as a retry) gets the same attempt number, hence the same outcome.
    ``calls`` counts tries over every world (crash-check runs included).
    """

    task_key: str
    task_name: str
    returns: Any = _UNSET
    raises: BaseException | type[BaseException] | None = None
    side_effect: Callable[..., Any] | None = None
    per_attempt: tuple[tuple[AttemptRange, Any], ...] = ()
    delay: float = 0.0
    calls: int = 0

    def outcome_for(self, attempt: int) -> tuple[bool, Any]:
        """``(True, value)`` to return or ``(False, exception)`` to raise at ``attempt``;
        ``(True, _UNSET)`` means "call ``side_effect``"."""
        for (first, last), outcome in self.per_attempt:
            if first <= attempt and (last is None or attempt <= last):
                return self._classify(outcome)
        if self.raises is not None:
            return self._classify(self.raises)
        if self.side_effect is not None:
            return True, _UNSET
        if self.returns is not _UNSET:
            return True, self.returns
        if self.per_attempt:
            listed = ", ".join(
                f"{a}" if b == a else (f"{a}+" if b is None else f"{a}-{b}")
                for (a, b), _ in self.per_attempt
            )
            return False, InvalidArgument(
                f"wf_env.mock({self.task_name}): attempt {attempt} is not in per_attempt "
                f"(attempts listed: {listed}) and no returns=/raises=/side_effect= gives a "
                "default. Add the attempt (e.g. '3+' for every later one) or a default."
            )
        return True, None

    def _classify(self, outcome: Any) -> tuple[bool, Any]:
        if isinstance(outcome, BaseException):
            return False, outcome
        if isinstance(outcome, type) and issubclass(outcome, BaseException):
            return False, outcome(f"mocked failure of {self.task_name} by wf_env.mock()")
        return True, outcome

    def run(self, attempt: int, kwargs: dict[str, Any]) -> Any:
        """The mocked execution: wait ``delay`` on the virtual clock, then the outcome."""
        if self.delay > 0:
            import time

            time.sleep(self.delay)  # the simulator's patched sleep: parks on the virtual clock
        ok, value = self.outcome_for(attempt)
        if not ok:
            raise value
        if value is _UNSET:
            assert self.side_effect is not None
            return self.side_effect(**kwargs)
        return value


#: Mocked executions about to run: the invocation's greenlet -> (task function, the mock's
#: call). Set when the execution starts (RUNNING), taken by :func:`mocked_run_task_sync`
#: in the same greenlet, where pynenc calls the task function.
_PENDING: dict[Any, tuple[Any, Callable[[dict[str, Any]], Any]]] = {}


def arm_pending(func: Any, call: Callable[[dict[str, Any]], Any]) -> None:
    from greenlet import getcurrent

    _PENDING[getcurrent()] = (func, call)


def clear_pending() -> None:
    _PENDING.clear()


def mocked_run_task_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    """pynenc's ``run_task_sync`` (how ``DistributedInvocation.run`` calls the task
    function), running the armed mock instead when this execution is mocked. Installed only
    once an environment arms a mock: runs without mocks call pynenc's function directly."""

    def run_task_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        if _PENDING:
            from greenlet import getcurrent

            entry = _PENDING.pop(getcurrent(), None)
            if entry is not None and entry[0] is func:
                return entry[1](kwargs)
        return original(func, *args, **kwargs)

    return run_task_sync


@dataclass
class ArmedFaults:
    """Every fault armed on one simulation."""

    crash_points: list[ArmedCrash] = field(default_factory=list)
    failures: list[ArmedFailure] = field(default_factory=list)
    #: The environment's mocks by task key (the host's dict, shared by all its worlds).
    mocks: dict[str, ArmedMock] = field(default_factory=dict)
    #: This world's tries of mocked tasks: (task key, invocation id, num_retries) -> attempt.
    mock_tries: dict[tuple[str, str, int], int] = field(default_factory=dict)
    mock_counts: dict[str, int] = field(default_factory=dict)
    #: External events delivered at step boundaries (``wf_env.deliver_after``); read on
    #: every commit, so a plain list (empty: nothing more is done).
    interrupts: list[ArmedInterrupt] = field(default_factory=list)

    def mock_attempt(self, mock: ArmedMock, invocation_id: str, retries: int) -> int:
        """The attempt number of this try of ``mock`` in this world (see :class:`ArmedMock`)."""
        key = (mock.task_key, invocation_id, retries)
        attempt = self.mock_tries.get(key)
        if attempt is None:
            attempt = self.mock_counts.get(mock.task_key, 0)
            self.mock_counts[mock.task_key] = attempt + 1
            self.mock_tries[key] = attempt
            mock.calls += 1
        return attempt

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

    def add_interrupt(
        self,
        ref: object,
        deliver: Callable[[Step], None],
        *,
        what: str,
        description: str | None = None,
        optional: bool = False,
    ) -> ArmedInterrupt:
        matcher, default_description = make_matcher(ref)
        point = ArmedInterrupt(
            matcher, description or default_description, deliver, what, optional
        )
        self.interrupts.append(point)
        return point

    def interrupts_for(self, step: Step) -> list[ArmedInterrupt]:
        """Every armed, unfired interrupt matching this step, in arming order (fires them)."""
        matched = []
        for point in self.interrupts:
            if not point.fired and point.matcher(step):
                point.fired = True
                point.fired_at = step
                matched.append(point)
        return matched

    def failure_for(self, task_key: str) -> BaseException | None:
        for fault in self.failures:
            if fault.task_key == task_key and fault.used < fault.times:
                fault.used += 1
                return fault.make_exception()
        return None

    def unfired(self) -> list[ArmedCrash | ArmedInterrupt]:
        points: list[ArmedCrash | ArmedInterrupt] = [
            p for p in self.crash_points if not p.fired and not p.optional
        ]
        points += [p for p in self.interrupts if not p.fired and not p.optional]
        return points

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
