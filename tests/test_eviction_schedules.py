"""Evictions in the Hypothesis fault schedules: drawn alongside crashes, shrunk, printed.

``tests/eviction_apps.py`` plants ``second_nap_swallower``: a broad ``except`` around its
second wait only, which an eviction at wait 2 (and no crash, no other eviction) reveals.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis.errors import NoSuchExample

from pynenc_wf_testing import FaultSchedule, InvalidArgument, WorkflowEnv
from pynenc_wf_testing.checks.crash_check import check_fault_schedules
from pynenc_wf_testing.checks.faults import ScheduledEviction
from pynenc_wf_testing.checks.strategies import fault_schedules, scheduled_evictions
from tests import eviction_apps as apps


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    apps.reset()


def test_the_strategy_finds_and_shrinks_to_one_eviction() -> None:
    schedule = find(
        fault_schedules(10, max_crashes=2, min_crashes=0, waits=4, max_evictions=2),
        lambda s: any(e.wait >= 3 for e in s.evictions),
        settings=settings(database=None, derandomize=True),
    )
    assert schedule == FaultSchedule(evictions=(ScheduledEviction(3),))
    assert str(schedule) == "env.evict_at_wait(3)"


@settings(max_examples=50, database=None, derandomize=True)
@given(fault_schedules(20, max_crashes=2, min_crashes=0, waits=3, max_evictions=2))
def test_drawn_evictions_are_distinct_waits_in_range_and_in_order(schedule: FaultSchedule) -> None:
    waits = [e.wait for e in schedule.evictions]
    assert waits == sorted(set(waits))
    assert all(1 <= w <= 3 for w in waits) and len(waits) <= 2
    assert FaultSchedule.from_json(schedule.to_json()) == schedule


def test_without_waits_no_eviction_is_drawn() -> None:
    with pytest.raises(NoSuchExample):
        find(
            fault_schedules(10, max_crashes=2), lambda s: bool(s.evictions),
            settings=settings(database=None, derandomize=True, max_examples=50),
        )
    assert find(scheduled_evictions(0), lambda _: True) == ()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: scheduled_evictions(-1), r"waits must be an int >= 0 .*golden_waits"),
        (lambda: scheduled_evictions(True), "waits must be an int >= 0"),
        (lambda: scheduled_evictions(3, max_evictions=-1), "max_evictions must be an int >= 0"),
        (lambda: fault_schedules(5, max_crashes=0, min_crashes=0),
         r"max_crashes must be >= 1 when no failures or evictions are given .*waits=N"),
        (lambda: fault_schedules(5, max_crashes=0, min_crashes=0, waits=2, max_evictions=0),
         "max_crashes must be >= 1"),
    ],
)
def test_bad_eviction_strategy_arguments_are_refused(call: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call()


def test_evictions_alone_are_a_valid_schedule_strategy() -> None:
    schedule = find(
        fault_schedules(5, max_crashes=0, min_crashes=0, waits=2),
        lambda s: bool(s.evictions),
        settings=settings(database=None, derandomize=True),
    )
    assert schedule == FaultSchedule(evictions=(ScheduledEviction(1),))


def test_an_eviction_only_bug_is_found_and_shrunk_to_that_eviction() -> None:
    with WorkflowEnv(seed=3) as env:
        report = check_fault_schedules(
            env, apps.second_nap_swallower, (), {}, max_examples=40,
            schedules=lambda steps: fault_schedules(
                len([s for s in steps if s.is_step]), max_crashes=2, min_crashes=0,
                steps=steps, waits=3, max_evictions=2,
            ),
        )
    assert report.golden_outcome == "returned 'RESTED'"
    minimal = report.minimal_failure
    assert minimal is not None
    assert minimal.schedule == FaultSchedule(evictions=(ScheduledEviction(2),))
    assert minimal.schedule.snippet_lines() == ["wf_env.evict_at_wait(2)"]
    assert [v.kind for v in minimal.violations] == ["nondeterminism"]
    assert "evict_at_wait(2)" in minimal.fired
    # every failing schedule evicted at wait 2; none that evicted elsewhere only failed
    assert all(ScheduledEviction(2) in o.schedule.evictions for o in report.failing)
    assert any(o.ok and o.schedule.evictions for o in report.explored)


def test_the_crash_check_draws_evictions_with_crashes_and_reports_them() -> None:
    with WorkflowEnv(seed=3) as env:
        env.use(apps.app)
        report = env.check_crash_safety(
            apps.second_nap_swallower, before_each=apps.reset, max_crashes=2, max_examples=40,
        )
        assert report.golden_waits == 3
        assert str(report.minimal_failure.schedule) == "env.evict_at_wait(2)"  # type: ignore[union-attr]
        # the multi-fault exploration (after the single faults) failed too, on a schedule of
        # two faults with that eviction, shrunk and printed as runnable lines
        explored = report.explored[-1]
        assert not explored.ok and len(explored.schedule) == 2
        assert ScheduledEviction(2) in explored.schedule.evictions
        assert "wf_env.evict_at_wait(2)" in explored.schedule.snippet_lines()
        with pytest.raises(AssertionError, match=r"(?s)Smallest failing schedule:\n"
                           r"    wf_env\.evict_at_wait\(2\)\n    run = wf_env\.start"):
            report.assert_ok()
        # crashes alone never find it
        assert env.check_crash_safety(
            apps.second_nap_swallower, before_each=apps.reset, max_crashes=2,
            max_examples=40, evictions=False,
        ).ok


def test_a_correct_workflow_passes_crashes_and_evictions_together() -> None:
    with WorkflowEnv(seed=4) as env:
        env.use(apps.app)
        report = env.check_crash_safety(
            apps.mixed_flow, "o4", before_each=apps.reset, max_crashes=2, max_examples=25,
            after_start=lambda e, run: e.signal(run, "approve", "yes"),
        )
        assert report.ok, report.summary()
        both = [o for o in report.explored if o.schedule.crashes and o.schedule.evictions]
        assert both, "no schedule combined a crash and an eviction"
        assert all(
            f"evict_at_wait({e.wait})" in o.fired for o in both for e in o.schedule.evictions
        )


def test_an_evicting_world_draws_no_evictions() -> None:
    with WorkflowEnv(seed=4, evict="every_wait") as env:
        env.use(apps.app)
        report = env.check_crash_safety(
            apps.hourly, 2, before_each=apps.reset, max_crashes=2, max_examples=10,
        )
        assert report.ok
        assert not any(o.schedule.evictions for o in report.explored)


def test_evictions_and_worker_crashes_are_drawn_together() -> None:
    from pynenc_wf_testing.checks.faults import ScheduledWorkerCrash

    schedule = find(
        fault_schedules(
            10, max_crashes=1, min_crashes=0, waits=3, max_evictions=2,
            workers=2, within=60, max_worker_crashes=1, down_for=5.0,
        ),
        lambda s: bool(s.evictions) and bool(s.worker_crashes),
        settings=settings(database=None, derandomize=True),
    )
    assert schedule == FaultSchedule(
        evictions=(ScheduledEviction(1),),
        worker_crashes=(ScheduledWorkerCrash(1, 0.0, 5.0),),
    )
    assert FaultSchedule.from_json(schedule.to_json()) == schedule
    with pytest.raises(InvalidArgument, match="max_crashes must be >= 1"):
        fault_schedules(5, max_crashes=0, min_crashes=0, waits=0, workers=0)
    # workers alone or evictions alone allow schedules without crashes
    fault_schedules(5, max_crashes=0, min_crashes=0, workers=2, within=10)
