"""The routing, fetch and clock path a cron firing takes (second pass; figures in
docs/benchmarks.md's cron section).

Each shortcut is counted here (how often the work it skips still happens per firing, by
counting calls, never by timing; the total per firing is
``tests/test_cron_scaling.py::test_a_cron_firing_costs_under_660_calls_and_no_croniter``) and compared with what it replaces. That the shortcuts
change nothing observable overall is ``tests/test_equivalence.py`` (the fast backend's whole
store against ``memory-stock``'s) and ``benchmarks/history_hashes.py`` (byte-identical
histories).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import freezegun.api as fz
import pytest
from pynenc.runner.base_runner import ExternalRunner

from benchmarks import cron_app
from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.runtime.fast_memory import SimMemBroker
from pynenc_wf_testing.runtime.monkeypatches import PatchSet, ProcessPatches
from pynenc_wf_testing.runtime.monkeypatches import pynenc_speedups as speedups


class _Counted:
    """Wraps ``owner.name`` (a function or classmethod) and counts its calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.calls = 0
        raw = owner.__dict__[name]
        real = raw.__func__ if isinstance(raw, classmethod) else raw

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, classmethod(counted) if isinstance(raw, classmethod) else counted)


@pytest.fixture()
def hour_of_cron() -> Iterator[Any]:
    """An environment with the per-minute cron app, one hour in (first-use work done)."""
    cron_app.FIRED.clear()
    with WorkflowEnv(seed=0, log_level="error") as env:
        env.use(cron_app.app)
        env.advance(hours=1)
        yield env


def test_work_the_firing_path_no_longer_repeats(
    hour_of_cron: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per firing, after the first: no external runner context is built (one per thread),
    no ``inspect.iscoroutinefunction`` of the task function (asked once), no pass through
    freezegun's ``move_to`` (the clock move does its arithmetic) and no broker queue-name
    validation (a validated route and queue are not validated again)."""
    contexts = _Counted(monkeypatch, ExternalRunner, "get_default_external_runner_context")
    coroutine_checks = _Counted(monkeypatch, inspect, "iscoroutinefunction")
    freezegun_moves = _Counted(monkeypatch, fz.FrozenDateTimeFactory, "move_to")
    queue_checks = _Counted(monkeypatch, SimMemBroker, "_validate_queue_names")
    fired = len(cron_app.FIRED)
    hour_of_cron.advance(hours=1)
    assert len(cron_app.FIRED) - fired == 60  # (the task still runs every minute)
    assert contexts.calls == 0
    assert coroutine_checks.calls == 0
    assert freezegun_moves.calls == 0
    assert queue_checks.calls == 0  # (the route and the queue were validated in hour 1)


def test_the_external_runner_context_is_pynencs(hour_of_cron: Any) -> None:
    """The context a trigger-routed invocation is registered with: equal to the one pynenc
    builds, and the very same object on every firing."""
    orchestrator: Any = cron_app.app.orchestrator
    first = orchestrator._runner_context()
    assert first == ExternalRunner.get_default_external_runner_context()
    assert orchestrator._runner_context() is first


# --------------------------------------------------------------------------- run_task_sync


def plain(x: int) -> int:
    return x + 1


async def coroutine(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


def test_run_task_sync_answers_like_pynencs_and_forgets_on_undo() -> None:
    patches = PatchSet()
    speedups.install_pynenc_speedups(patches)
    try:
        import pynenc.invocation.dist_invocation as dist_inv

        run = dist_inv.run_task_sync
        assert run is speedups._run_task_sync
        assert run(plain, 1) == 2 and run(plain, x=2) == 3
        assert run(coroutine, 4) == 8  # pynenc's own path: asyncio.run
        assert {plain: False, coroutine: True} == speedups._COROUTINE
    finally:
        patches.undo()
    assert speedups._COROUTINE == {}
    assert dist_inv.run_task_sync is speedups._ORIG_RUN_TASK_SYNC


# --------------------------------------------------------------------------- clock moves


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2030, 1, 1, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2030, 3, 31, 1, 30, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime(2031, 2, 3, 4, 5, 6),  # naive
        dt.datetime(2030, 1, 1, tzinfo=dt.UTC),  # no move
    ],
)
def test_a_clock_move_leaves_what_freezeguns_move_to_leaves(when: dt.datetime) -> None:
    start = dt.datetime(2030, 1, 1)
    theirs = fz.FrozenDateTimeFactory(start)
    ours = fz.FrozenDateTimeFactory(start)
    theirs.move_to(when)
    ProcessPatches.move_to(SimpleNamespace(factory=ours), when)  # type: ignore[arg-type]
    assert ours.time_to_freeze == theirs.time_to_freeze
    assert type(ours.time_to_freeze) is type(theirs.time_to_freeze)
    assert ours.time_to_freeze is not start  # a new frozen instant, as freezegun's


def test_a_clock_move_of_another_kind_takes_freezeguns_path() -> None:
    theirs = fz.FrozenDateTimeFactory(dt.datetime(2030, 1, 1))
    ours = fz.FrozenDateTimeFactory(dt.datetime(2030, 1, 1))
    theirs.move_to("2030-01-02 03:04:05")
    ProcessPatches.move_to(SimpleNamespace(factory=ours), "2030-01-02 03:04:05")  # type: ignore[arg-type]
    assert ours.time_to_freeze == theirs.time_to_freeze == dt.datetime(2030, 1, 2, 3, 4, 5)
