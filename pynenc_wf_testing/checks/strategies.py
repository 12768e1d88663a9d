"""Hypothesis strategies for fault schedules: the one generator and shrinker of faults (the
crash checks and ``pynenc-wf simulate`` draw their multi-fault schedules from them).

Write your own property tests with them and get shrinking, ``@seed`` and the example database
for free::

    from hypothesis import given
    from pynenc_wf_testing import WorkflowEnv
    from pynenc_wf_testing.checks.strategies import fault_schedules

    @given(fault_schedules(max_step=40, max_crashes=2))
    def test_order_survives_crashes(schedule):
        with WorkflowEnv(seed=1) as env:
            schedule.apply(env, optional=True)
            run = env.start(fulfill_order_workflow, "o-1")
            assert run.result["status"] == "fulfilled"

(Use ``WorkflowEnv`` directly inside ``@given``: a function-scoped fixture is created once
per test, not once per example.)
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from pynenc_wf_testing.checks.events import Event, EventSchedule, ScheduledEvent, check_event
from pynenc_wf_testing.checks.faults import (
    FaultSchedule,
    ScheduledCrash,
    ScheduledEviction,
    ScheduledFailure,
    ScheduledWorkerCrash,
)
from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.history import Step, in_pynenc_window

__all__ = [
    "crash_points", "event_schedules", "fault_schedules", "scheduled_evictions",
    "scheduled_failures", "worker_crashes",
]

_PHASES = ("after", "before")


def _step_names(steps: Sequence[Step]) -> dict[int, str]:
    """Step number -> name, only for names whose first occurrence is that step (so that
    ``crash_after(name)`` means exactly that step)."""
    first: dict[str, int] = {}
    for step in steps:
        if step.number is not None and step.name not in first:
            first[step.name] = step.number
    return {number: name for name, number in first.items()}


def crash_points(
    max_step: int, *, steps: Sequence[Step] | None = None, fine: bool = False
) -> st.SearchStrategy[ScheduledCrash]:
    """One crash at a step number in ``1..max_step``, before or after it commits.

    With ``steps`` (a fault-free run's history), crashes carry the step names for readable
    reports, and fine-grained steps are skipped unless ``fine=True``.
    """
    if isinstance(max_step, bool) or not isinstance(max_step, int) or max_step < 1:
        raise InvalidArgument(f"max_step must be an int >= 1, got {max_step!r}.")
    names = _step_names(steps or ())
    excluded = {
        (s.number, phase)
        for s in steps or ()
        for phase in _PHASES
        if s.number is not None and not fine and in_pynenc_window(s, phase)
    }
    crashes = st.builds(
        lambda number, phase: ScheduledCrash(number, phase, names.get(number)),
        st.integers(min_value=1, max_value=max_step),
        st.sampled_from(_PHASES),
    )
    if excluded:
        crashes = crashes.filter(lambda c: (c.step, c.phase) not in excluded)
    return crashes


def scheduled_failures(
    candidates: Sequence[ScheduledFailure], *, max_failures: int = 1
) -> st.SearchStrategy[tuple[ScheduledFailure, ...]]:
    """Up to ``max_failures`` failures of distinct candidate tasks, each failing ``1..times``
    of its candidate's ``times``. Shrinks towards no failure, then fewer times."""
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 0:
        raise InvalidArgument(f"max_failures must be an int >= 0, got {max_failures!r}.")
    pool = list(candidates)
    for candidate in pool:
        if not isinstance(candidate, ScheduledFailure):
            raise InvalidArgument(
                f"failure candidates must be ScheduledFailure objects, got {candidate!r}."
            )
    if not pool or max_failures == 0:
        return st.just(())

    def draw(choice: tuple[int, int]) -> ScheduledFailure:
        index, times = choice
        base = pool[index]
        return ScheduledFailure(base.task, min(times, base.times), base.exc)

    one = st.tuples(
        st.integers(min_value=0, max_value=len(pool) - 1),
        st.integers(min_value=1, max_value=max(c.times for c in pool)),
    ).map(draw)
    return st.lists(
        one, max_size=min(max_failures, len(pool)), unique_by=lambda f: f.task
    ).map(lambda failures: tuple(sorted(failures, key=lambda f: f.task)))


def scheduled_evictions(
    waits: int, *, max_evictions: int = 1
) -> st.SearchStrategy[tuple[ScheduledEviction, ...]]:
    """Up to ``max_evictions`` evictions at distinct wait numbers in ``1..waits`` (the
    waits that block, counted over the run: ``WorkflowEnv.evict_at_wait``), in wait order.
    Shrinks towards no eviction, then earlier waits. ``waits=0``: never an eviction."""
    if isinstance(waits, bool) or not isinstance(waits, int) or waits < 0:
        raise InvalidArgument(
            f"waits must be an int >= 0 (how many waits blocked in a fault-free run, "
            f"e.g. CrashReport.golden_waits), got {waits!r}."
        )
    if isinstance(max_evictions, bool) or not isinstance(max_evictions, int) or max_evictions < 0:
        raise InvalidArgument(f"max_evictions must be an int >= 0, got {max_evictions!r}.")
    if not waits or not max_evictions:
        return st.just(())
    return st.lists(
        st.integers(min_value=1, max_value=waits), max_size=min(max_evictions, waits),
        unique=True,
    ).map(lambda numbers: tuple(ScheduledEviction(n) for n in sorted(numbers)))


def worker_crashes(
    workers: int, *, within: float, max_worker_crashes: int = 1,
    down_for: float | None = None,
) -> st.SearchStrategy[tuple[ScheduledWorkerCrash, ...]]:
    """Up to ``max_worker_crashes`` crashes of pool workers ``1..workers``, each at a whole
    number of virtual seconds in ``0..within`` after the schedule is applied, each back
    ``down_for`` seconds later (None: never). Shrinks towards no crash, worker 1, earlier."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgument(
            f"workers must be the pool's number of workers (an int >= 1), got {workers!r}."
        )
    if isinstance(within, bool) or not isinstance(within, (int, float)) or within < 0:
        raise InvalidArgument(
            f"within must be a number of virtual seconds >= 0 (e.g. the length of a "
            f"fault-free run), got {within!r}."
        )
    if (
        isinstance(max_worker_crashes, bool) or not isinstance(max_worker_crashes, int)
        or max_worker_crashes < 0
    ):
        raise InvalidArgument(
            f"max_worker_crashes must be an int >= 0, got {max_worker_crashes!r}."
        )
    if max_worker_crashes == 0:
        return st.just(())
    one = st.builds(
        lambda worker, after: ScheduledWorkerCrash(worker, float(after), down_for),
        st.integers(min_value=1, max_value=workers),
        st.integers(min_value=0, max_value=int(within)),
    )
    return st.lists(one, max_size=max_worker_crashes).map(
        lambda downs: tuple(sorted(downs, key=ScheduledWorkerCrash.sort_key))
    )


def fault_schedules(
    max_step: int,
    *,
    max_crashes: int = 2,
    min_crashes: int = 1,
    steps: Sequence[Step] | None = None,
    fine: bool = False,
    failures: Sequence[ScheduledFailure] = (),
    max_failures: int = 1,
    waits: int = 0,
    max_evictions: int = 1,
    workers: int = 0,
    within: float = 0.0,
    max_worker_crashes: int = 1,
    down_for: float | None = None,
) -> st.SearchStrategy[FaultSchedule]:
    """Schedules of ``min_crashes..max_crashes`` crashes, in step order; given failure
    ``failures`` candidates, up to ``max_failures`` of them (see :func:`scheduled_failures`);
    given ``waits`` (the waits that blocked in a fault-free run, ``CrashReport.golden_waits``),
    up to ``max_evictions`` evictions at waits ``1..waits`` (see :func:`scheduled_evictions`).
    With ``workers`` (the pool's worker count, ``WorkflowEnv(workers=N)``), also up to
    ``max_worker_crashes`` worker crashes in the first ``within`` virtual seconds (see
    :func:`worker_crashes`).

    Step numbers count the committed steps of the faulted run. A step that a crash stopped
    from committing keeps its number when it commits after recovery, so the same number may
    appear twice: crash there, then crash there again. Shrinks towards fewer faults at
    earlier steps (and earlier waits).
    """
    if isinstance(max_crashes, bool) or not isinstance(max_crashes, int) or max_crashes < 0:
        raise InvalidArgument(f"max_crashes must be an int >= 0, got {max_crashes!r}.")
    evictions = scheduled_evictions(waits, max_evictions=max_evictions)
    evicting = bool(waits and max_evictions)
    if not failures and not workers and max_crashes < 1 and not evicting:
        raise InvalidArgument(
            "max_crashes must be >= 1 when no failures or evictions are given and no "
            "workers (pass failures=[...], waits=N or workers=N to draw schedules without "
            "crashes)."
        )
    if isinstance(min_crashes, bool) or not isinstance(min_crashes, int) or not (
        0 <= min_crashes <= max_crashes
    ):
        raise InvalidArgument(
            f"min_crashes must be between 0 and max_crashes={max_crashes}, got {min_crashes!r}."
        )
    crashes = (
        st.lists(
            crash_points(max_step, steps=steps, fine=fine),
            min_size=min_crashes,
            max_size=max_crashes,
        )
        if max_crashes
        else st.just([])
    )
    if evicting and workers:
        # Both drawn after crashes and failures, evictions before worker crashes.
        return st.builds(
            lambda crashes, failed, evicted, downs: FaultSchedule(
                tuple(sorted(crashes)), failed, evicted, downs
            ),
            crashes,
            scheduled_failures(failures, max_failures=max_failures),
            evictions,
            worker_crashes(
                workers, within=within, max_worker_crashes=max_worker_crashes,
                down_for=down_for,
            ),
        )
    if evicting:
        # Drawn after crashes and failures: a schedule shrinks to its eviction alone when
        # that is what the bug needs.
        return st.builds(
            lambda crashes, failed, evicted: FaultSchedule(
                tuple(sorted(crashes)), failed, evicted
            ),
            crashes,
            scheduled_failures(failures, max_failures=max_failures),
            evictions,
        )
    if workers:
        return st.builds(
            lambda crashes, failed, downs: FaultSchedule(
                tuple(sorted(crashes)), failed, worker_crashes=downs
            ),
            crashes,
            scheduled_failures(failures, max_failures=max_failures),
            worker_crashes(
                workers, within=within, max_worker_crashes=max_worker_crashes,
                down_for=down_for,
            ),
        )
    if not failures:
        # Kept separate so that crash-only schedules draw exactly what they always drew (the
        # examples Hypothesis explores for a given seed stay the same).
        return crashes.map(lambda crashes: FaultSchedule(tuple(sorted(crashes))))
    return st.builds(
        lambda crashes, failed: FaultSchedule(tuple(sorted(crashes)), failed),
        crashes,
        scheduled_failures(failures, max_failures=max_failures),
    )


def event_schedules(
    boundaries: Sequence[Step],
    events: Sequence[Event],
    *,
    min_events: int = 1,
    max_events: int = 3,
) -> st.SearchStrategy[EventSchedule]:
    """Schedules of ``min_events..max_events`` of ``events`` (each may be drawn several
    times), each delivered right after one of ``boundaries`` (steps of a fault-free run;
    matched in a run by name and occurrence, so events that add steps of their own do not
    shift the later ones). An event lands at the boundary of the event drawn before it about
    half the time, so several events at one step (``Advance`` then ``Signal``: a signal that
    arrives just as a timer fires) are drawn as often as events at distinct steps. Delivery
    order: by boundary, then as drawn. Shrinks towards fewer events, earlier boundaries and
    events earlier in ``events``."""
    if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
        raise InvalidArgument(f"max_events must be an int >= 1, got {max_events!r}.")
    if isinstance(min_events, bool) or not isinstance(min_events, int) or not (
        1 <= min_events <= max_events
    ):
        raise InvalidArgument(
            f"min_events must be between 1 and max_events={max_events}, got {min_events!r}."
        )
    pool = [check_event(e, "event_schedules()") for e in events]
    points = [s for s in boundaries if s.number is not None]
    if not pool or not points:
        raise InvalidArgument(
            "event_schedules() needs at least one event and one boundary step "
            f"(got {len(pool)} events and {len(points)} steps)."
        )
    seen: dict[str, int] = {}
    occurrence: list[int] = []
    for step in points:
        seen[step.name] = seen.get(step.name, 0) + 1
        occurrence.append(seen[step.name])

    def build(draws: list[tuple[bool, int, int]]) -> EventSchedule:
        placed: list[tuple[int, int, ScheduledEvent]] = []
        at = 0
        for order, (same, where, which) in enumerate(draws):
            if not (same and placed):
                at = where
            step = points[at]
            assert step.number is not None
            placed.append(
                (at, order, ScheduledEvent(step.number, pool[which], step.name, occurrence[at]))
            )
        placed.sort(key=lambda p: (p[0], p[1]))
        return EventSchedule(tuple(p[2] for p in placed))

    draw = st.tuples(
        st.booleans(),
        st.integers(min_value=0, max_value=len(points) - 1),
        st.integers(min_value=0, max_value=len(pool) - 1),
    )
    return st.lists(draw, min_size=min_events, max_size=max_events).map(build)
