"""Worker crashes as part of a ``FaultSchedule`` (``ScheduledWorkerCrash``): the same fault as
``wf_env.crash_worker``, drawn by the strategies and explored by ``check_crash_safety`` where
a worker pool is configured (tests/pool_apps.py; docs/faults.md, docs/workers.md)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings

from pynenc_wf_testing import (
    CrashSafetyError,
    FaultSchedule,
    InvalidArgument,
    ScheduledCrash,
    ScheduledWorkerCrash,
    WorkflowEnv,
)
from pynenc_wf_testing.checks.strategies import fault_schedules, worker_crashes
from tests import pool_apps as apps


@pytest.fixture(autouse=True)
def _clean() -> None:
    apps.reset()


def _history(env: WorkflowEnv) -> str:
    return json.dumps(env.history_json(), sort_keys=True, default=str)


def test_a_scheduled_worker_crash_is_crash_worker() -> None:
    with WorkflowEnv(seed=3, workers=2, slots=1) as by_hand:
        by_hand.crash_worker(1, after=dt.timedelta(minutes=1), down_for=dt.timedelta(minutes=5))
        runs = [by_hand.start(apps.work, f"w{i}", 600) for i in range(2)]
        assert [r.result for r in runs] == ["w0", "w1"]
        expected = _history(by_hand)
    with WorkflowEnv(seed=3, workers=2, slots=1) as env:
        FaultSchedule(worker_crashes=(ScheduledWorkerCrash(1, 60, 300),)).apply(env)
        runs = [env.start(apps.work, f"w{i}", 600) for i in range(2)]
        assert [r.result for r in runs] == ["w0", "w1"]
        assert env.crashes == 1
        assert _history(env) == expected


def test_snippets_and_the_plan_format() -> None:
    schedule = FaultSchedule(
        (ScheduledCrash(4, "before", "work#1"),),
        worker_crashes=(ScheduledWorkerCrash(2, 30.5), ScheduledWorkerCrash(1, 0, 120)),
    )
    assert schedule.snippet_lines() == [
        "wf_env.crash_worker(2, after=timedelta(seconds=30.5))",
        "wf_env.crash_worker(1, after=timedelta(seconds=0), down_for=timedelta(seconds=120))",
        "wf_env.crash_before('work#1')",
    ]
    assert len(schedule) == 3
    doc = schedule.to_json()
    assert doc["worker_crashes"] == [
        {"worker": 2, "after": 30.5, "down_for": None},
        {"worker": 1, "after": 0, "down_for": 120},
    ]
    assert FaultSchedule.from_json(json.loads(json.dumps(doc))) == schedule
    # a schedule without worker crashes writes the plan it always wrote
    assert "worker_crashes" not in FaultSchedule((ScheduledCrash(1),)).to_json()


def test_bad_worker_crashes_are_refused_where_they_are_made() -> None:
    with pytest.raises(InvalidArgument, match=r"worker must be a worker number \(an int >= 1\), got 0"):
        ScheduledWorkerCrash(0)
    with pytest.raises(InvalidArgument, match="after must be a number of virtual seconds >= 0, got -1"):
        ScheduledWorkerCrash(1, after=-1)
    with pytest.raises(InvalidArgument, match=r"down_for must be .* or None to keep the worker down"):
        ScheduledWorkerCrash(1, down_for="1m")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="malformed fault schedule"):
        FaultSchedule.from_json({"worker_crashes": [{"after": 3}]})
    with WorkflowEnv(seed=1) as env, pytest.raises(
        InvalidArgument, match=r"crash_worker\(1\): this WorkflowEnv has no worker pool"
    ):
        FaultSchedule(worker_crashes=(ScheduledWorkerCrash(1),)).apply(env)
    with WorkflowEnv(seed=1, workers=2) as env, pytest.raises(
        InvalidArgument, match="there is no worker 3; the pool's workers are numbered 1 to 2"
    ):
        FaultSchedule(worker_crashes=(ScheduledWorkerCrash(3),)).apply(env)
    with pytest.raises(InvalidArgument, match="workers must be the pool's number of workers"):
        worker_crashes(0, within=10)
    with pytest.raises(InvalidArgument, match="within must be a number of virtual seconds"):
        worker_crashes(2, within=-1)


@settings(max_examples=30, database=None, derandomize=True)
@given(fault_schedules(10, workers=3, within=90, max_worker_crashes=2, min_crashes=0))
def test_the_strategy_draws_worker_crashes_within_the_pool(schedule: FaultSchedule) -> None:
    assert len(schedule.worker_crashes) <= 2
    for down in schedule.worker_crashes:
        assert 1 <= down.worker <= 3 and 0 <= down.after <= 90 and down.down_for is None
    keys = [d.sort_key() for d in schedule.worker_crashes]
    assert keys == sorted(keys)


def test_the_strategy_draws_some_and_shrinks_to_none() -> None:
    from hypothesis import find

    drawn = find(
        fault_schedules(5, workers=2, within=60, min_crashes=0),
        lambda s: bool(s.worker_crashes),
        settings=settings(database=None, derandomize=True),
    )
    assert drawn.worker_crashes == (ScheduledWorkerCrash(1, 0.0),)  # shrunk: worker 1, at 0
    assert drawn.crashes == ()
    smallest = find(
        fault_schedules(5, workers=2, within=60, min_crashes=0),
        lambda s: True,
        settings=settings(database=None, derandomize=True),
    )
    assert smallest == FaultSchedule()


def test_the_crash_check_takes_each_worker_down_where_it_worked() -> None:
    with WorkflowEnv(seed=1, workers=2, slots=1) as env:
        report = env.check_crash_safety(apps.checkout, "card-1", before_each=apps.reset)
        assert report.ok, report
        downs = [o.schedule for o in report.explored if o.schedule.worker_crashes]
        # in the middle of each job of the golden run: pack (0-30 s), charge (30-90 s)
        assert {s.worker_crashes[0].after for s in downs} >= {15, 60}
        assert all(o.ok for o in report.explored)
        assert len(downs) < len(report.explored)
        without = env.check_crash_safety(
            apps.checkout, "card-1", before_each=apps.reset, worker_crashes=False
        )
        assert [o.schedule for o in without.explored] == [
            o.schedule for o in report.explored if not o.schedule.worker_crashes
        ]


def test_a_single_worker_pool_is_only_crashed_when_it_comes_back() -> None:
    with WorkflowEnv(seed=1, workers=1, slots=2) as env:
        report = env.check_crash_safety(apps.checkout, "card-1", before_each=apps.reset)
        assert not [o for o in report.explored if o.schedule.worker_crashes]
        back = env.check_crash_safety(
            apps.checkout, "card-1", before_each=apps.reset,
            restart_after=dt.timedelta(minutes=10),
        )
        downs = [o for o in back.explored if o.schedule.worker_crashes]
        assert downs and all(o.ok for o in downs)
        assert all(o.schedule.worker_crashes[0].down_for == 600 for o in downs)


def test_a_duplicate_found_by_a_worker_crash_prints_the_crash_worker_line() -> None:
    with WorkflowEnv(seed=1, workers=2, slots=1) as env:
        env.mark_non_idempotent(apps.charge_card)
        report = env.check_crash_safety(apps.checkout, "card-2", before_each=apps.reset)
        failing = [o for o in report.failing if o.schedule.worker_crashes]
        assert failing, report.summary()
        assert report.minimal_failure is not None
        assert report.minimal_failure.schedule.crashes == ()
        with pytest.raises(CrashSafetyError, match=r"wf_env\.crash_worker\(\d, after=timedelta"):
            report.assert_ok()
