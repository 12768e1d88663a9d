"""async def tasks: asyncio.sleep is virtual too, and several run interleaved."""

from __future__ import annotations

from pynenc_wf_testing import WorkflowEnv
from tests import async_apps


def test_async_sleeps_are_virtual_and_interleave() -> None:
    with WorkflowEnv(seed=1) as env:
        run = env.start(async_apps.naps, [3, 1, 2])
        assert run.result == [
            "2030-01-01T03:00:00+00:00",
            "2030-01-01T01:00:00+00:00",
            "2030-01-01T02:00:00+00:00",
        ]
        assert env.now.isoformat() == "2030-01-01T03:00:00+00:00"  # concurrent, not 6 h


def test_a_crash_during_an_async_sleep_reruns_the_task() -> None:
    with WorkflowEnv(seed=1) as env:
        env.crash_before("nap#2")
        run = env.start(async_apps.naps, [1, 2])
        assert len(run.result) == 2
        assert env.crashes == 1
        assert [e.outcome for e in env.ledger if e.name == "nap#2"] == ["crashed", "success"]
