"""A cron firing costs the same on day 30 as on day 1 (figures: ``benchmarks/cron_month.py``).

pynenc's memory trigger ends every trigger-loop iteration with a retention purge that scanned
every monitoring record and rebuilt the trigger-run indexes from all of them: a per-minute cron
slowed down with every firing. These tests count work, not time: the operations (Python and
builtin calls) of an hour of firings late in a run against an early hour, the records the
simulator's purge looks at, and that the purge leaves exactly what pynenc's leaves.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from croniter import croniter
from freezegun import freeze_time
from pynenc import Pynenc
from pynenc.trigger.mem_trigger import MemTrigger
from pynenc.trigger.monitoring import EventRecord, TriggerRunRecord
from pynenc.trigger.trigger_builder import TriggerBuilder

from benchmarks import cron_app
from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.runtime.fast_memory import SimMemTrigger
from pynenc_wf_testing.runtime.monkeypatches.croniter_cache import install_croniter_cache
from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _operations_during(action: Any) -> int:
    """Python and builtin calls made by ``action()`` (a count of work, not a timing)."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return count


def test_work_per_cron_firing_does_not_grow_with_the_records() -> None:
    cron_app.FIRED.clear()
    with WorkflowEnv(seed=0, log_level="error") as env:
        env.use(cron_app.app)
        env.advance(minutes=30)
        early = _operations_during(lambda: env.advance(minutes=30))
        records_early = len(cron_app.app.trigger._trigger_runs)
        env.advance(hours=3)
        late = _operations_during(lambda: env.advance(minutes=30))
        records_late = len(cron_app.app.trigger._trigger_runs)
    assert len(cron_app.FIRED) == 4.5 * 60 + 1  # (the first evaluation fires at once)
    assert records_late >= 4 * records_early  # the records did pile up ...
    assert late <= early * 1.05, (early, late)  # ... and a firing did not get dearer


# --------------------------------------------------------------------------- retention


@pytest.fixture()
def pair() -> Iterator[tuple[MemTrigger, SimMemTrigger]]:
    yield MemTrigger(cron_app.app), SimMemTrigger(cron_app.app)


def _run(i: int, when: dt.datetime | None, **kw: Any) -> TriggerRunRecord:
    return TriggerRunRecord(
        trigger_run_id=f"run-{i}",
        trigger_id="t",
        task_id_key="k",
        logic_value="and",
        valid_condition_ids=[f"vc-{i % 3}"],
        triggered_invocation_id=kw.pop("inv", f"inv-{i}"),
        claimed_at=when,
        **kw,
    )


def _state(trigger: MemTrigger) -> tuple[Any, ...]:
    def index(d: dict[str, set[str]]) -> dict[str, set[str]]:
        return {k: set(v) for k, v in d.items() if v}

    return (
        list(trigger._trigger_runs.items()),
        list(trigger._events.items()),
        index(trigger._run_ids_by_event_id),
        index(trigger._run_ids_by_invocation_id),
        index(trigger._run_ids_by_source_invocation_id),
        index(trigger._run_ids_by_valid_condition_id),
        index(trigger._event_ids_by_code),
        index(trigger._event_ids_by_emitter),
        dict(trigger._invocations_by_event_id),
    )


def test_retention_purge_leaves_what_pynencs_leaves(pair: tuple[MemTrigger, SimMemTrigger]) -> None:
    for trigger in pair:
        for i in range(40):
            when = T0 + dt.timedelta(hours=6 * i)
            trigger.store_event(
                EventRecord(event_id=f"ev-{i}", event_code=f"code-{i % 4}", timestamp=when,
                            emitted_by_invocation_id=f"inv-{i % 5}")
            )
            events = [f"ev-{i}"] if i % 2 else []
            trigger.store_trigger_run(_run(i, when, event_ids=events,
                                           source_invocation_ids=[f"src-{i % 7}"]))
        trigger.store_trigger_run(_run(40, None))  # no time yet
        # a stored-again run (new invocation, later time) and one changed in place
        trigger.store_trigger_run(_run(3, T0 + dt.timedelta(days=9), inv="inv-again"))
        trigger._trigger_runs["run-5"].executed_at = T0 + dt.timedelta(days=9, hours=1)
    for day in (8, 9, 10, 12, 20):
        with freeze_time(T0 + dt.timedelta(days=day)):
            deleted = [trigger._auto_purge_events() for trigger in pair]
        assert deleted[0] == deleted[1]
        assert _state(pair[0]) == _state(pair[1]), day
    assert len(pair[1]._trigger_runs) == 1  # only the run without a time is left


def test_the_age_purge_looks_only_at_what_it_removes() -> None:
    trigger = SimMemTrigger(cron_app.app)
    for i in range(5000):
        trigger.store_trigger_run(_run(i, T0 + dt.timedelta(minutes=i)))
    visits = []
    for minute in range(0, 5000, 500):
        before = trigger.purge_visits
        removed = trigger._age_purge_trigger_runs(T0 + dt.timedelta(minutes=minute))
        visits.append((trigger.purge_visits - before, removed))
    assert all(looked == removed for looked, removed in visits)
    assert len(trigger._trigger_runs) == 500


# --------------------------------------------------------------------------- croniter


def test_croniter_cache_gives_croniters_answers_and_is_undone() -> None:
    expressions = ["* * * * *", "*/5 1-3 * * 1,2", "0 0 1 * *", "15,45 * * * *", "0 12 * * mon",
                   "0 0 L * *", "@hourly"]
    start = dt.datetime(2030, 1, 30, 23, 59, 30, tzinfo=dt.UTC)

    def answers() -> list[Any]:
        out = []
        for expression in expressions:
            it = croniter(expression, start)
            out.append([it.get_next(dt.datetime) for _ in range(5)])
            out.append(croniter(expression, start).get_prev(dt.datetime))
            out.append(croniter.match(expression, start))
        return out

    names = ("_expand", "_calc_next", "match_range")
    originals = {name: croniter.__dict__[name] for name in names}
    expected = answers()
    patches = PatchSet()
    install_croniter_cache(patches)
    try:
        assert all(croniter.__dict__[name] is not originals[name] for name in names)
        assert answers() == expected
        assert answers() == expected  # (from the cache)
    finally:
        patches.undo()
    assert all(croniter.__dict__[name] is originals[name] for name in names)


def test_croniter_memos_answer_per_instant_and_zone() -> None:
    """The memos of next/previous fire and of ``match`` key on the instant and its zone:
    equal instants in two zones, naive instants and DST days get croniter's own answers."""
    from zoneinfo import ZoneInfo

    madrid = ZoneInfo("Europe/Madrid")
    base = dt.datetime(2030, 3, 31, 0, 58, tzinfo=dt.UTC)  # Madrid's clocks go forward at 01:00Z
    instants: list[dt.datetime] = []
    for minutes in range(0, 150, 7):
        at = base + dt.timedelta(minutes=minutes, seconds=minutes % 3 * 20)
        instants += [at, at.astimezone(madrid), at.replace(tzinfo=None)]
    expressions = ["* * * * *", "0 2 * * *", "*/15 * * * *", "30 1-3 * * 0"]

    def answers() -> list[Any]:
        out: list[Any] = []
        for expression in expressions:
            for at in instants:
                nxt = croniter(expression, at).get_next(dt.datetime)
                prev = croniter(expression, at).get_prev(dt.datetime)
                out.append((nxt, nxt.tzinfo, prev, prev.tzinfo, croniter.match(expression, at)))
                out.append(croniter.match_range(expression, at, at + dt.timedelta(minutes=3)))
        return out

    expected = answers()
    patches = PatchSet()
    install_croniter_cache(patches)
    try:
        assert answers() == expected
        assert answers() == expected  # (from the memos)
    finally:
        patches.undo()


class _LoopCounter:
    """Counts pynenc trigger-loop iterations of one app (wraps the instance's method)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0

    def __enter__(self) -> _LoopCounter:
        original = self.app.trigger.trigger_loop_iteration

        def counted(run: Any) -> None:
            self.count += 1
            original(run)

        self.app.trigger.trigger_loop_iteration = counted
        return self

    def __exit__(self, *exc: object) -> None:
        del self.app.trigger.trigger_loop_iteration


def test_a_cron_only_app_runs_the_trigger_loop_once_per_firing() -> None:
    """A final status cannot make a cron condition valid: the loop runs when the clock lands
    on a fire time, not again when the fired task finishes at the same instant."""
    cron_app.FIRED.clear()
    with WorkflowEnv(seed=0, log_level="error") as env:
        env.use(cron_app.app)
        env.advance(minutes=1)
        with _LoopCounter(cron_app.app) as loops:
            env.advance(minutes=10)
    assert len(cron_app.FIRED) == 1 + 1 + 10
    assert loops.count == 10


def test_cron_condition_memo_gives_pynencs_answers_and_is_undone() -> None:
    """The memo of ``CronCondition._is_satisfied_by`` keys on the condition's settings and
    both instants with their zones: it answers as pynenc does for on-time, late, too-early,
    first (no last execution), strict and zoned evaluations, and is undone."""
    from zoneinfo import ZoneInfo

    from pynenc.trigger.conditions.cron import CronCondition, CronContext

    madrid = ZoneInfo("Europe/Madrid")
    conditions = [
        CronCondition("* * * * *"),
        CronCondition("*/5 * * * *", check_window_seconds=30),
        CronCondition("0 * * * *", min_interval_seconds=3000, strict_timing=True,
                      precision_tolerance_seconds=5),
        CronCondition("0 0 L * *"),  # not plain: croniter's own path every time
    ]
    base = dt.datetime(2030, 3, 31, 0, 55, tzinfo=dt.UTC)
    contexts = []
    for seconds in (0, 10, 40, 61, 300, 3600, 3610):
        at = base + dt.timedelta(seconds=seconds)
        for last in (None, at - dt.timedelta(minutes=1), at - dt.timedelta(seconds=20)):
            contexts.append(CronContext(timestamp=at, last_execution=last))
            contexts.append(CronContext(timestamp=at.astimezone(madrid), last_execution=last))

    def answers() -> list[bool]:
        return [c.is_satisfied_by(ctx) for c in conditions for ctx in contexts]

    original = CronCondition.__dict__["_is_satisfied_by"]
    expected = answers()
    assert any(expected) and not all(expected)
    patches = PatchSet()
    install_croniter_cache(patches)
    try:
        assert CronCondition.__dict__["_is_satisfied_by"] is not original
        assert answers() == expected
        assert answers() == expected  # (from the memo)
    finally:
        patches.undo()
    assert CronCondition.__dict__["_is_satisfied_by"] is original


def test_croniter_computes_one_fire_time_per_firing() -> None:
    """Per firing croniter really computes only the next fire time (where the clock lands
    next); everything else pynenc and the simulator ask of it per firing (the next fire after
    the last execution, the exact match of now) comes from the memos."""
    real = croniter.__dict__["_calc_next"]
    computed = 0

    def counting(self: Any, is_prev: bool) -> Any:
        nonlocal computed
        computed += 1
        return real(self, is_prev)

    cron_app.FIRED.clear()
    croniter._calc_next = counting  # (the memo, installed over it, calls this on a miss)
    try:
        with WorkflowEnv(seed=0, log_level="error") as env:
            env.use(cron_app.app)
            env.advance(minutes=5)
            before, fired = computed, len(cron_app.FIRED)
            env.advance(minutes=30)
            per_firing = (computed - before) / (len(cron_app.FIRED) - fired)
    finally:
        croniter._calc_next = real
    assert per_firing <= 1, per_firing


def test_match_of_a_computed_fire_time_gives_croniters_answer() -> None:
    """``match`` of an instant that croniter computed as a fire time is answered from that
    knowledge; for the same instant in another zone, naive, a microsecond off, with another
    ``day_or`` or an explicit precision it is croniter's own computation: all as croniter."""
    from zoneinfo import ZoneInfo

    madrid = ZoneInfo("Europe/Madrid")
    expressions = ["* * * * *", "0 2 * * *", "*/15 * * * *", "30 1-3 * * 0", "0 0 1 * 1",
                   "*/10 * * * * *"]
    base = dt.datetime(2030, 3, 30, 23, 30, tzinfo=dt.UTC)  # Madrid's DST starts at 01:00Z

    def answers() -> list[Any]:
        out: list[Any] = []
        for expression in expressions:
            for start in (base, base.astimezone(madrid), base.replace(tzinfo=None)):
                it = croniter(expression, start)
                for _ in range(6):
                    fire = it.get_next(dt.datetime)
                    out.append(fire)
                    for at in (fire, fire.astimezone(dt.UTC), fire.astimezone(madrid),
                               fire + dt.timedelta(microseconds=1)):
                        out.append(croniter.match(expression, at))
                        out.append(croniter.match(expression, at, day_or=False))
                        out.append(croniter.match(expression, at, precision_in_seconds=0))
        return out

    expected = answers()
    assert any(x is True for x in expected) and any(x is False for x in expected)
    patches = PatchSet()
    install_croniter_cache(patches)
    try:
        assert answers() == expected
        assert answers() == expected  # (from the memos and the known fire times)
    finally:
        patches.undo()


# --------------------------------------------------------------------------- plain path


def test_a_cron_firing_costs_under_660_calls_and_no_croniter() -> None:
    """Per firing of ``* * * * *``: the plain-cron iteration answers every trigger-loop pass
    (pynenc's own body never runs), croniter computes no fire time (arithmetic), and the
    whole firing (trigger loop, routing, running the task, clock move) stays under 660 Python
    and builtin calls (1,269 before the plain path; ~787 with it; ~631 once the routing,
    fetch and clock path was trimmed: ``tests/test_cron_firing_path.py``)."""
    real = croniter.__dict__["_calc_next"]
    computed = 0

    def counting(self: Any, is_prev: bool) -> Any:
        nonlocal computed
        computed += 1
        return real(self, is_prev)

    cron_app.FIRED.clear()
    croniter._calc_next = counting
    try:
        with WorkflowEnv(seed=0, log_level="error") as env:
            env.use(cron_app.app)
            env.advance(hours=1)
            trigger: Any = cron_app.app.trigger
            fast, stock = trigger.cron_fast_iterations, trigger.cron_stock_iterations
            before, fired = computed, len(cron_app.FIRED)
            calls = _operations_during(lambda: env.advance(hours=1))
            firings = len(cron_app.FIRED) - fired
            assert trigger.cron_fast_iterations - fast == firings == 60
            assert trigger.cron_stock_iterations == stock == 0
    finally:
        croniter._calc_next = real
    assert computed == before
    assert calls / firings < 660, calls / firings


#: A status condition next to a cron one: not a plain-cron app.
mixed = Pynenc(config_values={"app_id": "cron-mixed", "logging_level": "error"})


@mixed.task(triggers=TriggerBuilder().on_cron("*/5 * * * *"))
def mixed_source() -> int:
    return 1


@mixed.task(triggers=TriggerBuilder().on_status(mixed_source, statuses=["SUCCESS"]))
def mixed_follower() -> int:
    return 2


def test_apps_that_are_not_plain_cron_take_pynencs_loop() -> None:
    """Every pass of an app with a status condition is pynenc's own loop body, and the
    status trigger still fires after each cron run."""
    with WorkflowEnv(seed=0, log_level="error") as env:
        env.use(mixed)
        env.advance(minutes=30)
        trigger: Any = mixed.trigger
        assert trigger.cron_fast_iterations == 0 and trigger.cron_stock_iterations > 6
        orchestrator: Any = mixed.orchestrator
        tasks = [str(inv_id) for inv_id in orchestrator.invocation_status_record]
        assert len(tasks) >= 2 * 6  # (each source run triggered a follower)
