"""A task called directly inside an open environment joins the simulation (issue 13, point 6).

``my_task(1).result`` with no ``use(app)`` or ``start`` before used to route to the app's own
components and poll them in real time forever. Now the call hands the app to the environment
(as ``start`` does) before pynenc routes it, and ``.result`` drives the simulation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pynenc.task import Task

from pynenc_wf_testing import WorkflowEnv
from tests import direct_apps as apps
from tests.apps.guard import guard_app

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def snapshot(app: Any) -> dict[str, Any]:
    return {
        "config_values": app.config_values,
        "copy": dict(app.config_values or {}),
        "runner": app._runner_instance,
        "orchestrator": app._orchestrator,
        "conf": app._conf,
    }


def assert_restored(app: Any, before: dict[str, Any]) -> None:
    assert app.config_values is before["config_values"]
    assert app.config_values == before["copy"]
    assert app._runner_instance is before["runner"]
    assert app._orchestrator is before["orchestrator"]
    assert app._conf is before["conf"]
    assert not hasattr(app, "_pynenc_wf_sim")


def test_a_direct_call_joins_the_simulation() -> None:
    before = snapshot(apps.app)
    with guard_app(apps.app), WorkflowEnv(seed=1) as env:
        invocation = apps.slow_add(1, 2)
        assert apps.app in env.world.apps  # adopted at the call, as start() does
        assert invocation.result == 3  # drives the simulation: virtual time, no real wait
        assert env.now == START + dt.timedelta(minutes=1)
        assert env.executions(apps.slow_add) == 1
        assert env.steps == ["route:slow_add#1", "slow_add#1"]
        assert type(apps.app.orchestrator).__name__ == "SimMemOrchestrator"
    assert_restored(apps.app, before)


def test_a_direct_call_of_a_workflow_is_the_same_run_as_start() -> None:
    histories = []
    with guard_app(apps.app):
        for direct in (True, False):
            with WorkflowEnv(seed=5) as env:
                run = apps.total(3) if direct else env.start(apps.total, 3)
                assert run.result == 3
                histories.append(env.history_json())
    assert histories[0] == histories[1]


def test_parallelize_joins_the_simulation() -> None:
    with guard_app(apps.app), WorkflowEnv(seed=2) as env:
        group = apps.slow_add.parallelize([(1, 2), (3, 4)])
        assert sorted(group.results) == [3, 7]
        assert env.executions(apps.slow_add) == 2


def test_a_child_of_an_app_no_env_uses_joins_too() -> None:
    """execute_task routes a child without Task._call: the engine hook adopts its app."""
    with guard_app(apps.app), guard_app(apps.second), WorkflowEnv(seed=3) as env:
        assert env.start(apps.calls_second, 4).result == 5
        assert apps.second in env.world.apps
        assert env.executions(apps.echo) == 1


def test_an_app_first_called_inside_a_crash_check_is_in_every_world() -> None:
    """The crash check's runs happen in fresh worlds; an app adopted inside one of them gets a
    store in the user's world too when that world comes back. (Whether a workflow calling
    another app's task is crash safe is not the point: the determinism guard does not follow
    children across apps, with or without use().)"""
    with guard_app(apps.app), guard_app(apps.second), WorkflowEnv(seed=3) as env:
        env.use(apps.app)
        assert apps.second not in env.world.apps
        env.check_crash_safety(apps.calls_second_directly, 4)
        assert apps.second in env.world.apps
        assert apps.echo(7).result == 7  # the user's world runs it as well
        assert env.start(apps.calls_second_directly, 1).result == 2


def test_the_hook_is_gone_once_the_env_closes() -> None:
    original = Task.__dict__["_call"]
    with guard_app(apps.app), WorkflowEnv() as env:
        assert Task.__dict__["_call"] is not original
        apps.slow_add(1, 1).result
        assert env.closed is False
    assert Task.__dict__["_call"] is original
    assert Task.__dict__["parallelize"].__module__ == "pynenc.task"


def test_two_apps_with_one_app_id_are_a_clear_error_at_the_call() -> None:
    from pynenc import Pynenc

    from pynenc_wf_testing import AppConfigurationError

    saved = dict(Pynenc._instances)
    twin = Pynenc.__new__(Pynenc)
    twin.__init__(config_values={"app_id": "wf-direct-tests"})  # type: ignore[misc]
    twin_task = twin.task(apps.slow_add.func)
    try:
        with guard_app(apps.app), guard_app(twin), WorkflowEnv() as env:
            env.use(apps.app)
            with pytest.raises(AppConfigurationError, match="two different apps share app_id"):
                twin_task(1, 2)
    finally:
        Pynenc._instances.clear()
        Pynenc._instances.update(saved)


# ---------------------------------------------------------------------- with the pytest plugin

DIRECT_APP = """
import time

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "APP_ID"})


@app.task
def add(x: int, y: int) -> int:
    time.sleep(60)
    return x + y


@app.workflow
def flow(n: int) -> int:
    total = 0
    for i in range(n):
        total = flow.wf.root.execute_task(add, total, i).result
    return total
"""


def test_a_direct_call_in_a_wf_env_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(directapp=DIRECT_APP.replace("APP_ID", f"direct-{pytester.path.name}"))
    pytester.makepyfile(
        test_direct="""
        import directapp

        def test_task(wf_env):
            assert directapp.add(1, 2).result == 3
            assert wf_env.now.isoformat() == "2030-01-01T00:01:00+00:00"
            assert wf_env.executions(directapp.add) == 1

        def test_workflow(wf_env):
            assert directapp.flow(3).result == 3
            assert wf_env.steps[-1] == "flow#1"

        def test_outside_wf_env_it_is_pynenc_s_own_app():
            assert directapp.app.conf.runner_cls == "DummyRunner"
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)
