"""The same simulations on every backend: memory, sqlite, redis (fakeredis) and, when
``PYNENC_WF_REDIS_URL`` names one, a real Redis server.

Results, step names and the whole step history (seeded invocation ids, virtual times) must not
depend on where the durable store lives.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.errors import InvalidArgument
from tests import backend_apps as apps

REDIS_URL = os.environ.get("PYNENC_WF_REDIS_URL")
NO_SERVER = (
    "no real Redis server configured: set PYNENC_WF_REDIS_URL=redis://127.0.0.1:6379/0 "
    "(a server reserved for tests) to run these; .ci/run starts one"
)

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis"),
    pytest.param(
        "redis-server", id="redis-server", marks=pytest.mark.skipif(not REDIS_URL, reason=NO_SERVER)
    ),
]
PERSISTENT = [p for p in BACKENDS if p.values[0] != "memory"]


def make_env(backend: str, seed: int = 3, **kwargs: Any) -> WorkflowEnv:
    if backend == "redis-server":
        return WorkflowEnv(seed, backend="redis", backend_options={"url": REDIS_URL}, **kwargs)
    return WorkflowEnv(seed, backend=backend, **kwargs)


def run_order(backend: str, **faults: Any) -> dict[str, Any]:
    apps.reset()
    with make_env(backend) as env:
        if "after" in faults:
            env.crash_after(faults["after"], restart_after=faults.get("restart_after"))
        if "before" in faults:
            env.crash_before(faults["before"], restart_after=faults.get("restart_after"))
        run = env.start(apps.order, 4)
        return {
            "result": run.result,
            "steps": env.steps,
            "history": env.history_json(),
            "crashes": env.crashes,
            "runs": {t: env.executions(t) for t in ("double", "flaky", "slow_double", "chain")},
            "now": env.now,
        }


_baseline: dict[str, dict[str, Any]] = {}


def memory_baseline(key: str, **faults: Any) -> dict[str, Any]:
    if key not in _baseline:
        _baseline[key] = run_order("memory", **faults)
    return _baseline[key]


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_results_and_history_on_every_backend(backend: str) -> None:
    """Children, a sub-workflow, retries, workflow data, a uuid and durable sleeps."""
    got = run_order(backend)
    assert got["result"] == {
        "token_len": 36, "first": 8, "retried": 104, "shipped": 2, "stage": "shipping",
    }
    assert got["runs"] == {"double": 1, "flaky": 3, "slow_double": 2, "chain": 1}
    assert got["now"] == dt.datetime(2030, 1, 1, 0, 1, tzinfo=dt.UTC)  # two 30 s sleeps
    expected = memory_baseline("plain")
    assert got["steps"] == expected["steps"]
    assert got["history"] == expected["history"]  # seeded ids and virtual times included


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "faults",
    [
        {"after": "slow_double#1"},
        {"before": "slow_double#2"},
        {"after": "retry:flaky#1"},
        {"after": "data:stage#2", "restart_after": dt.timedelta(minutes=15)},
    ],
    ids=["after-child", "before-child", "after-retry", "restart-after-15min"],
)
def test_crashes_recover_the_same_way_on_every_backend(
    backend: str, faults: dict[str, Any]
) -> None:
    got = run_order(backend, **faults)
    expected = memory_baseline(repr(sorted(faults.items())), **faults)
    assert got["crashes"] == 1
    assert got["result"] == memory_baseline("plain")["result"]
    assert got["steps"] == expected["steps"]
    assert got["runs"] == expected["runs"]
    assert got["now"] == expected["now"]
    assert got["history"] == expected["history"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_crash_safety_passes_on_every_backend(backend: str) -> None:
    with make_env(backend) as env:
        report = env.check_crash_safety(apps.chain, 2)
        report.assert_ok()
        assert len(report.explored) >= 8
        # The user's own world is untouched by the fault runs (each ran on a fresh store).
        assert env.start(apps.chain, 3).result == 6


@pytest.mark.parametrize("backend", PERSISTENT)
def test_a_crash_is_a_process_death(backend: str) -> None:
    """After a crash every in-process object of the app is new: recovery read the store."""
    from pynenc.app import Pynenc

    saved = dict(Pynenc._instances)
    try:
        with make_env(backend) as env:
            app = env.use(apps.app)
            before = {
                name: getattr(app, name)
                for name in (
                    "orchestrator", "state_backend", "broker", "trigger", "client_data_store"
                )
            }
            # As unpickling an invocation would: pynenc's registry now knows the app.
            Pynenc._instances[app.app_id] = app
            env.crash_after("slow_double#1")
            assert env.start(apps.chain, 2).result == 2
            assert env.crashes == 1
            for name, component in before.items():
                assert getattr(app, name) is not component, name
            assert app.app_id not in Pynenc._instances
            assert env.executions(apps.slow_double) == 2
    finally:
        Pynenc._instances.clear()
        Pynenc._instances.update(saved)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lock_in_workflow_data_survives_every_backend(backend: str) -> None:
    # jsonpickle rebuilds a new lock: that one is storable everywhere.
    with make_env(backend) as env:
        assert env.start(apps.stores_lock).result == "guard"


def test_memory_accepts_a_callback_in_workflow_data_when_the_check_is_off() -> None:
    """pynenc's memory backend keeps workflow data by reference: unchecked, a lambda works."""
    with WorkflowEnv(3, backend_options={"check_serialization": False}) as env:
        assert env.start(apps.stores_callback).result == "on_paid"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_callback_in_workflow_data_fails_loudly_on_every_backend(backend: str) -> None:
    """A backend that serializes would store the lambda as None (memory would hide it by
    keeping the object): a clear error on every backend."""
    from pynenc_wf_testing.errors import WorkflowDataSerializationError

    with make_env(backend) as env:
        run = env.start(apps.stores_callback)
        with pytest.raises(WorkflowDataSerializationError) as info:
            _ = run.result
    message = str(info.value)
    assert "workflow tests.backend_apps.stores_callback" in message
    assert f"(id {run.workflow_id})" in message
    assert "key 'on_paid'" in message
    assert "type builtins.function" in message
    assert "comes back as NoneType" in message
    backend_name = "redis" if backend.startswith("redis") else backend
    assert f"the {backend_name} backend" in message


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(InvalidArgument, match="unknown backend 'mongo'") as info:
        WorkflowEnv(backend="mongo")
    assert {"memory", "redis", "sqlite"} <= set(str(info.value).split(": ")[-1][:-1].split(", "))


def test_importing_the_package_imports_no_persistent_backend() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pynenc_wf_testing\n"
        "from pynenc_wf_testing import WorkflowEnv\n"
        "WorkflowEnv(backend='memory')\n"
        "bad = [m for m in ('pynenc_wf_testing.runtime.sqlite_backend', 'pynenc_wf_testing.runtime.redis_backend',"
        " 'fakeredis', 'pynenc_redis') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
