"""The virtual clock: start, time.sleep in tasks, advance, auto-skip, wall-clock reads."""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynenc_wf_testing import InvalidArgument, VirtualClock, WorkflowEnv
from pynenc_wf_testing.runtime.clock import DEFAULT_START
from tests.apps import flows

UTC = dt.UTC
START = dt.datetime(2030, 1, 1, tzinfo=UTC)


def at(**delta: float) -> str:
    return (START + dt.timedelta(**delta)).isoformat()


# --------------------------------------------------------------------------- start


def test_default_start() -> None:
    assert DEFAULT_START == START
    env = WorkflowEnv()
    assert env.now == START  # before opening
    with env:
        assert env.now == START
        assert env.now.tzinfo is UTC
        # freezegun reaches the test body too while the env is open.
        assert dt.datetime.now(UTC) == START
        assert time.time() == START.timestamp()


def test_start_is_honoured_and_normalised_to_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    start = dt.datetime(2031, 5, 6, 9, 8, 7, 123456, tzinfo=plus_two)
    with WorkflowEnv(start=start) as env:
        assert env.now == start
        assert env.now.tzinfo is UTC
        assert env.now.isoformat() == "2031-05-06T07:08:07.123456+00:00"
        reads = env.start(flows.clock_reads).result
        assert reads["now_utc"] == "2031-05-06T07:08:07.123456+00:00"
        assert reads["now_naive"] == "2031-05-06T07:08:07.123456"
        assert env.history[0].time == "2031-05-06T07:08:07.123456+00:00"


def test_naive_start_is_rejected() -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            "start must be timezone-aware, got naive 2030-01-01T00:00:00. "
            "Pass e.g. datetime(2030, 1, 1, tzinfo=UTC)."
        ),
    ):
        WorkflowEnv(start=dt.datetime(2030, 1, 1))


def test_start_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            "start must be a datetime, got str: '2030-01-01'. "
            "Pass e.g. datetime(2030, 1, 1, tzinfo=UTC)."
        ),
    ):
        WorkflowEnv(start="2030-01-01")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- sleep


def test_sleep_in_a_task_parks_it_and_jumps_the_virtual_clock() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.sleep_and_measure, 3600)
        measured = run.result
        assert measured["virtual"] == 3600.0
        # A real hour did not pass (the test would have timed out long before).
        assert measured["real"] < 3600
        assert env.now == START + dt.timedelta(hours=1)
        assert env.history[-1].time == at(hours=1)


def test_sleep_reports_virtual_instants() -> None:
    with WorkflowEnv() as env:
        assert env.start(flows.nap, "a", 90.5).result == ("a", at(), at(seconds=90.5))
        assert env.now == START + dt.timedelta(seconds=90.5)


def test_sleep_zero_and_negative() -> None:
    with WorkflowEnv() as env:
        assert env.start(flows.nap, "zero", 0).result == ("zero", at(), at())
        run = env.start(flows.nap, "negative", -1)
        with pytest.raises(ValueError, match=r"^sleep length must be non-negative$"):
            run.result
        assert env.now == START


def test_sleep_in_the_test_body_does_not_move_the_virtual_clock() -> None:
    with WorkflowEnv() as env:
        time.sleep(0)
        time.sleep(0.001)  # a real (tiny) sleep: outside the simulation nothing is parked
        assert env.now == START


def test_sleep_imported_inside_the_task_function_is_virtual() -> None:
    with WorkflowEnv() as env:
        assert env.start(flows.nap_with_local_import, 600).result == at(minutes=10)


def test_sleep_imported_at_module_level_is_virtual() -> None:
    with WorkflowEnv() as env:
        assert env.start(flows.nap_with_imported_sleep, 0.05).result == at(seconds=0.05)


def test_two_sleeping_workflows_interleave_in_virtual_time_order() -> None:
    with WorkflowEnv() as env:
        a = env.start(flows.napper, "a", 3, 4)
        b = env.start(flows.napper, "b", 5, 2)
        assert a.result == [at(seconds=3), at(seconds=6), at(seconds=9), at(seconds=12)]
        assert b.done  # b finished (at 10 s) before a (at 12 s)
        assert b.result == [at(seconds=5), at(seconds=10)]
        nap_results = [s for s in env.history if s.kind == "result" and s.name.startswith("nap#")]
        assert [s.time for s in nap_results] == [
            at(seconds=3),
            at(seconds=5),
            at(seconds=6),
            at(seconds=9),
            at(seconds=10),
            at(seconds=12),
        ]
        owners = [s.workflow_id for s in nap_results]
        assert owners == [
            a.workflow_id,
            b.workflow_id,
            a.workflow_id,
            a.workflow_id,
            b.workflow_id,
            a.workflow_id,
        ]
        assert env.now == START + dt.timedelta(seconds=12)


def test_many_concurrent_sleepers_wake_in_deadline_order() -> None:
    durations = [7, 1, 5, 3, 3, 9, 2]
    with WorkflowEnv(seed=11) as env:
        runs = [env.start(flows.nap, str(i), d) for i, d in enumerate(durations)]
        for run, d in zip(runs, durations, strict=True):
            assert run.result[2] == at(seconds=d)
        ends = [s.time for s in env.history if s.kind == "result"]
        assert ends == sorted(ends)
        assert env.now == START + dt.timedelta(seconds=max(durations))


# --------------------------------------------------------------------------- wall-clock reads


def test_wall_clock_reads_inside_tasks_follow_the_virtual_clock() -> None:
    with WorkflowEnv() as env:
        env.advance(hours=5, minutes=30)
        reads = env.start(flows.clock_reads).result
        expected = START + dt.timedelta(hours=5, minutes=30)
        assert reads["now_utc"] == expected.isoformat()
        assert reads["now_naive"] == expected.replace(tzinfo=None).isoformat()
        assert reads["utcnow"] == expected.replace(tzinfo=None).isoformat()
        assert reads["today"] == "2030-01-01"
        assert reads["time"] == expected.timestamp()
        assert reads["time_ns"] == int(expected.timestamp()) * 10**9


def test_perf_counter_and_monotonic_stay_real_inside_tasks() -> None:
    with WorkflowEnv() as env:
        reads = env.start(flows.clock_reads).result
        assert reads["perf_counter_delta"] > 0
        assert reads["monotonic_delta"] > 0
        assert reads["perf_counter_ns_delta"] > 0
        assert reads["monotonic_ns_delta"] > 0
        assert env.now == START


def test_perf_counter_and_monotonic_stay_real_in_the_test_body() -> None:
    with WorkflowEnv() as env:
        pc0, mono0, wall0 = time.perf_counter(), time.monotonic(), time.time()
        for _ in range(1_000_000):
            if time.perf_counter() != pc0 and time.monotonic() != mono0:
                break
        else:  # pragma: no cover
            pytest.fail("perf_counter/monotonic did not advance across real work")
        assert time.time() == wall0 == START.timestamp()
        assert env.now == START


def test_wall_clock_is_real_again_after_close() -> None:
    with WorkflowEnv():
        assert dt.datetime.now(UTC) == START
    t0 = time.time()
    for _ in range(1_000_000):
        if time.time() != t0:
            break
    else:  # pragma: no cover
        pytest.fail("time.time() stayed frozen after the env closed")


# --------------------------------------------------------------------------- advance


def test_advance_fires_a_30_day_sleep_but_not_a_31_day_one() -> None:
    day = 86_400
    with WorkflowEnv() as env:
        thirty = env.start(flows.nap, "30", 30 * day)
        thirty_one = env.start(flows.nap, "31", 31 * day)
        env.advance(days=30)
        assert env.now == START + dt.timedelta(days=30)
        assert thirty.done
        assert not thirty_one.done
        assert thirty.result == ("30", at(), at(days=30))
        assert env.now == START + dt.timedelta(days=30)  # reading a done result moves nothing
        env.advance(days=1)
        assert thirty_one.done
        assert thirty_one.result == ("31", at(), at(days=31))


def test_advance_runs_wakeups_in_virtual_time_order_and_stops_at_the_target() -> None:
    with WorkflowEnv() as env:
        runs = [env.start(flows.nap, str(s), s) for s in (20, 10, 15)]
        env.advance(seconds=16)
        assert [r.done for r in runs] == [False, True, True]
        assert [s.time for s in env.history if s.kind == "result"] == [
            at(seconds=10),
            at(seconds=15),
        ]
        assert env.now == START + dt.timedelta(seconds=16)


def test_advance_units_add_up_exactly() -> None:
    with WorkflowEnv() as env:
        env.advance(weeks=1, days=2, hours=3, minutes=4, seconds=5.25)
        assert env.now == START + dt.timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5.25)
        env.advance()
        env.advance(seconds=0)
        assert env.now == START + dt.timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5.25)
        assert dt.datetime.now(UTC) == env.now


def test_run_until_idle_does_not_move_the_clock() -> None:
    with WorkflowEnv() as env:
        sleeper = env.start(flows.napper, "x", 60, 2)
        quick = env.start(flows.sequential, 2)
        env.run_until_idle()
        assert env.now == START
        assert quick.done
        assert not sleeper.done
        env.run_until_idle()
        assert env.now == START
        assert sleeper.result == [at(minutes=1), at(minutes=2)]
        assert env.now == START + dt.timedelta(minutes=2)


def test_result_skips_time_to_the_next_deadline() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.nap, "week", 7 * 86_400)
        assert run.result[2] == at(weeks=1)
        assert env.now == START + dt.timedelta(weeks=1)


def test_clock_never_goes_backwards() -> None:
    with WorkflowEnv(seed=2) as env:
        env.advance(seconds=1)
        samples = env.start(flows.clock_samples, 5, 0.25)
        world = env.start(flows.concurrent_world, 3)
        assert world.result
        values = samples.result
        assert values == sorted(values)
        assert values[-1] - values[0] == 1.25
        times = [s.time for s in env.history]
        assert times == sorted(times)
        now = env.now
        env.run_until_idle()
        env.advance(seconds=0)
        assert env.now == now


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"days": -1},
            (
                "advance(days=-1): time only moves forward in a simulation. To observe an earlier "
                "instant, start a new WorkflowEnv with start=..."
            ),
        ),
        (
            {"seconds": -0.5},
            (
                "advance(seconds=-0.5): time only moves forward in a simulation. To observe an "
                "earlier instant, start a new WorkflowEnv with start=..."
            ),
        ),
        (
            {"days": "x"},
            "advance(days='x'): expected a number of days. Use e.g. wf_env.advance(days=30).",
        ),
        (
            {"hours": True},
            "advance(hours=True): expected a number of hours. Use e.g. wf_env.advance(days=30).",
        ),
        (
            {"minutes": None},
            (
                "advance(minutes=None): expected a number of minutes. "
                "Use e.g. wf_env.advance(days=30)."
            ),
        ),
    ],
)
def test_advance_rejects_bad_amounts(kwargs: dict[str, object], message: str) -> None:
    with WorkflowEnv() as env:
        with pytest.raises(InvalidArgument, match=f"^{re.escape(message)}$"):
            env.advance(**kwargs)  # type: ignore[arg-type]
        assert env.now == START


# --------------------------------------------------------------------------- VirtualClock


def test_virtual_clock_refuses_to_go_backwards() -> None:
    moves: list[dt.datetime] = []
    clock = VirtualClock(START, on_move=moves.append)
    clock.jump(1.5)
    assert clock.now == START + dt.timedelta(seconds=1.5)
    assert clock.timestamp() == START.timestamp() + 1.5
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            "the virtual clock cannot go backwards: it is at 2030-01-01T00:00:01.500000+00:00 "
            "and was asked to move to 2030-01-01T00:00:01+00:00. "
            "Time only moves forward in a simulation."
        ),
    ):
        clock.move_to_micros(clock.micros - 500_000)
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            "cannot jump the clock by a negative amount (-1 s): time only moves forward."
        ),
    ):
        clock.jump(-1)
    clock.jump(0)
    clock.move_to_micros(clock.micros)
    assert moves == [START + dt.timedelta(seconds=1.5)]  # no-op moves do not notify


def test_virtual_clock_default_start() -> None:
    assert VirtualClock().now == START


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=10**7),
            st.floats(min_value=0, max_value=10**7, allow_nan=False, allow_infinity=False),
        ),
        max_size=30,
    )
)
def test_virtual_clock_arithmetic_is_exact(jumps: list[float]) -> None:
    seen: list[dt.datetime] = []
    clock = VirtualClock(START, on_move=seen.append)
    total = 0
    for seconds in jumps:
        before = clock.now
        clock.jump(seconds)
        total += round(seconds * 1_000_000)
        assert clock.now >= before
    assert clock.micros == int(START.timestamp()) * 1_000_000 + total
    assert clock.now == START + dt.timedelta(microseconds=total)
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "kwargs", [{"days": float("nan")}, {"days": float("inf")}, {"days": 3_000_000}]
)
def test_advance_rejects_non_finite_and_out_of_range_amounts(kwargs: dict[str, float]) -> None:
    with WorkflowEnv() as env:
        with pytest.raises(InvalidArgument, match=re.escape("advance(days=")):
            env.advance(**kwargs)
        assert env.now == START
        assert env.start(flows.child, 1).result == 10


def test_result_skips_only_as_far_as_its_own_run_needs() -> None:
    with WorkflowEnv() as env:
        far = env.start(flows.nap, "far", 7 * 86_400)
        near = env.start(flows.nap, "near", 30)
        quick = env.start(flows.child, 1)
        assert quick.result == 10
        assert env.now == START
        assert near.result[2] == at(seconds=30)
        assert env.now == START + dt.timedelta(seconds=30)
        assert not far.done


@pytest.mark.parametrize("module_name", ["queue_worker", "gi_sync", "threading_jobs"])
def test_modules_named_like_freezegun_ignores_get_the_virtual_clock(
    module_name: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # freezegun's default ignore list matches module-name prefixes ("queue", "gi",
    # "threading"...): a user's module imported before the env must not keep the real clock.
    import importlib

    (tmp_path / f"{module_name}.py").write_text(
        "from datetime import datetime\n"
        "from time import time as wall\n"
        "def stamp():\n"
        "    return datetime.now(), wall()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(module_name)
    try:
        with WorkflowEnv(start=START):
            now, wall = module.stamp()
            assert now == START.replace(tzinfo=None)
            assert wall == START.timestamp()
        assert module.stamp()[0].year < 2030  # restored once the env closes
    finally:
        sys.modules.pop(module_name, None)


def test_a_name_added_to_a_module_between_environments_is_frozen_too(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # freezegun remembers which names of a module hold datetime/time objects and rescans a
    # module only when its names change: the harness's cheaper change key must notice.
    import importlib

    (tmp_path / "late_names.py").write_text("from datetime import datetime\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("late_names")
    try:
        with WorkflowEnv(start=START):
            assert module.datetime.now() == START.replace(tzinfo=None)
        module.later_clock = time.time  # a new name, bound between two environments
        del module.datetime
        with WorkflowEnv(start=START):
            assert module.later_clock() == START.timestamp()
        assert module.later_clock() != START.timestamp()
    finally:
        sys.modules.pop("late_names", None)
