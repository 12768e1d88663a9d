"""runtime/world.py: the world an environment owns, and the swaps crash checks and replays do."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from pynenc_wf_testing import InvalidArgument, WorkflowEnv
from pynenc_wf_testing.checks.crash_check import CrashCheckEnv
from pynenc_wf_testing.runtime.backends import MemoryBackend
from pynenc_wf_testing.runtime.components import SIM_ATTR
from pynenc_wf_testing.runtime.world import (
    COMPONENT_ATTRS,
    WorldHost,
    active_world,
    private_world,
)
from tests import leak_apps

START = dt.datetime(2031, 5, 1, tzinfo=dt.UTC)


def test_the_slot_holds_the_open_world() -> None:
    env = WorkflowEnv(seed=1)
    assert active_world() is None
    with env:
        assert active_world() is env.world
        assert env.world.is_open
    assert active_world() is None
    assert env.world.closed and env.closed


def test_renew_gives_a_fresh_world_and_isolated_puts_the_old_one_back() -> None:
    with WorkflowEnv(seed=3) as env:
        world = env.world
        env.use(leak_apps.app)
        env.start(leak_apps.calls_noop).result
        env.advance(hours=1)
        outer_sim, outer_now = world.sim, env.now
        outer_components = {name: getattr(leak_apps.app, name) for name in COMPONENT_ATTRS}
        with world.isolated():
            sim = world.renew()
            assert sim is world.sim is not outer_sim
            assert env.now == world.start  # the clock is back at the start
            assert env.history == []  # a new durable store
            assert getattr(leak_apps.app, SIM_ATTR) is sim
            assert leak_apps.app.orchestrator is not outer_components["_orchestrator"]
            assert env.start(leak_apps.calls_noop).result == 1
            second = world.renew(start=START)
            assert second is not sim and env.now == START
        assert world.sim is outer_sim
        assert env.now == outer_now
        assert dt.datetime.now(dt.UTC) == outer_now  # freezegun follows the clock back
        assert {name: getattr(leak_apps.app, name) for name in COMPONENT_ATTRS} == outer_components
        assert getattr(leak_apps.app, SIM_ATTR) is outer_sim
        assert [s.name for s in env.history if s.is_step][-1] == "calls_noop#1"


def test_isolated_continues_the_id_streams_as_if_nothing_happened() -> None:
    def draws(isolate: bool) -> list[uuid.UUID]:
        with WorkflowEnv(seed=4) as env:
            env.use(leak_apps.app)
            first = uuid.uuid4()
            if isolate:
                with env.world.isolated():
                    env.world.renew()
                    env.world.reseed_ids(99)
                    uuid.uuid4()
            return [first, uuid.uuid4()]

    assert draws(True) == draws(False)


def test_isolated_puts_the_world_back_when_the_body_raises() -> None:
    with WorkflowEnv(seed=1) as env:
        env.use(leak_apps.app)
        outer = env.world.sim
        with pytest.raises(KeyboardInterrupt), env.world.isolated():
            env.world.renew()
            raise KeyboardInterrupt
        assert env.world.sim is outer


def test_capture_and_install_by_hand() -> None:
    with WorkflowEnv(seed=1) as env:
        env.use(leak_apps.app)
        world = env.world
        captured = world.capture()
        assert captured.sim is world.sim and captured.clock is world.clock
        world.drop()
        world.fresh(start=START)
        assert world.sim is not captured.sim
        world.drop()
        world.install(captured)
        assert world.sim is captured.sim
        assert env.start(leak_apps.noop).result == 1


def test_private_world_opens_and_closes() -> None:
    with private_world(5) as world:
        assert active_world() is world and world.is_open
        assert world.seed == 5 and dt.datetime.now().year == 2030
    assert active_world() is None and world.closed
    assert time.time() > 1e9 and dt.datetime.now().year < 2030


def test_a_host_refuses_use_when_closed_or_not_open() -> None:
    host = WorldHost(
        seed=0, start=START, max_steps=10, log_level="error", backend=MemoryBackend()
    )
    with pytest.raises(InvalidArgument, match="not open yet"):
        host.sim
    with pytest.raises(InvalidArgument, match="not open yet"):
        host.faults
    host.open()
    host.close()
    host.close()  # idempotent
    with pytest.raises(InvalidArgument, match=r"^this WorkflowEnv is closed; create a new one\.$"):
        host.sim
    with pytest.raises(InvalidArgument, match="was closed"):
        host.open()


def test_close_runs_every_step_and_reraises_the_first_error() -> None:
    class Broken(MemoryBackend):
        def close(self) -> None:
            raise OSError("disk gone")

    host = WorldHost(seed=0, start=START, max_steps=10, log_level="error", backend=Broken())
    host.open()
    host.bind(leak_apps.app)
    with pytest.raises(OSError, match="disk gone"):
        host.close()
    assert active_world() is None
    assert not hasattr(leak_apps.app, SIM_ATTR)
    assert dt.datetime.now().year < 2030


def test_a_workflow_env_is_a_crash_check_env() -> None:
    env: CrashCheckEnv = WorkflowEnv(seed=1)  # the protocol the checks layer asks for
    assert env.seed == 1 and isinstance(env.world, WorldHost)
