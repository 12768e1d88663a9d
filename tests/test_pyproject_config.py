"""Apps configured through ``[tool.pynenc]`` of pyproject.toml run under the harness (issue 13,
point 6).

pynenc reads ``./pyproject.toml`` above an app's ``config_values`` (where the harness puts the
simulated components): a project that chooses its components there, as pynenc's own samples
do, used to be refused. Now the harness's keys win while an environment uses the app, every
other setting of the file applies, and the file's configuration is back after.
"""

from __future__ import annotations

import sys

import pytest
from pynenc.conf.config_sqlite import ConfigSQLite  # noqa: F401 - see below

# pytester restores sys.modules after each in-process run, keeping only what was imported
# before it: import what the inner runs use once here (as tests/test_plugin.py does), or an
# inner run's copy of WorkflowEnv outlives it in the package's lazy names.
from pynenc_wf_testing import WorkflowEnv

APP = """
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

PYPROJECT = """
[project]
name = "shop"
version = "0.1"

[tool.pynenc]
orchestrator_cls = "SQLiteOrchestrator"
broker_cls = "SQLiteBroker"
state_backend_cls = "SQLiteStateBackend"
trigger_cls = "SQLiteTrigger"
client_data_store_cls = "SQLiteClientDataStore"
runner_cls = "ThreadRunner"
sqlite_db_path = "production.db"
logging_level = "debug"
truncate_arguments_length = 7

[tool.pynenc.orchestrator]
auto_final_invocation_purge_hours = 5.0
"""

TESTS = """
import os

import pytest

import pyprojectshop


def test_memory(wf_env):
    wf_env.use(pyprojectshop.app)
    assert pyprojectshop.flow(3).result == 3
    conf = pyprojectshop.app.conf
    # the harness's components win ...
    assert conf.orchestrator_cls == "SimMemOrchestrator"
    assert conf.runner_cls == "SimRunner"
    assert conf.logging_level == "error"
    assert conf.field_info("orchestrator_cls").source == "pynenc-wf-testing"
    assert type(pyprojectshop.app.runner).__name__ == "SimRunner"
    # ... every other setting of the file applies
    assert conf.truncate_arguments_length == 7
    assert conf.field_info("truncate_arguments_length").source == "pyproject.toml"
    assert pyprojectshop.app.orchestrator.conf.auto_final_invocation_purge_hours == 5.0
    assert not os.path.exists("production.db")


def test_direct_call_without_use(wf_env):
    assert pyprojectshop.add(1, 2).result == 3
    assert type(pyprojectshop.app.orchestrator).__name__ == "SimMemOrchestrator"
    assert not os.path.exists("production.db")


@pytest.mark.wf(backend="sqlite")
def test_sqlite(wf_env):
    assert wf_env.start(pyprojectshop.flow, 2).result == 1
    backend = pyprojectshop.app.state_backend
    assert type(backend).__name__ == "SimSQLiteStateBackend"
    assert backend.sqlite_db_path == wf_env.backend.path != "production.db"
    assert pyprojectshop.app.orchestrator.conf.auto_final_invocation_purge_hours == 5.0
    assert not os.path.exists("production.db")


def test_the_file_applies_again_after_the_env():
    conf = pyprojectshop.app.conf
    assert conf.orchestrator_cls == "SQLiteOrchestrator"
    assert conf.runner_cls == "ThreadRunner"
    from pynenc.conf.config_sqlite import ConfigSQLite

    assert ConfigSQLite(config_values=pyprojectshop.app.config_values).sqlite_db_path == "production.db"
    assert conf.logging_level == "debug"
    assert not os.path.exists("production.db")  # nothing opened the production store
"""


def test_a_project_configured_in_pyproject_runs_under_the_harness(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml(PYPROJECT)
    pytester.makepyfile(pyprojectshop=APP.replace("APP_ID", f"shop-{pytester.path.name}"))
    pytester.makepyfile(test_pyproject_shop=TESTS)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=4)
    assert not (pytester.path / "production.db").exists()


def test_the_harness_keys_win_in_a_plain_workflow_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same without pytest's fixture: WorkflowEnv in a script's working directory."""
    pytester.makepyprojecttoml(PYPROJECT)
    pytester.makepyfile(pyprojectshop=APP.replace("APP_ID", f"shop-plain-{pytester.path.name}"))
    monkeypatch.chdir(pytester.path)
    monkeypatch.syspath_prepend(str(pytester.path))
    import importlib

    from pynenc import Pynenc

    saved = dict(Pynenc._instances)
    try:
        pyprojectshop = importlib.import_module("pyprojectshop")
        assert pyprojectshop.app.conf.orchestrator_cls == "SQLiteOrchestrator"
        with WorkflowEnv(seed=1) as env:
            assert env.start(pyprojectshop.flow, 3).result == 3
            assert pyprojectshop.app.conf.orchestrator_cls == "SimMemOrchestrator"
            assert pyprojectshop.app.conf.truncate_arguments_length == 7
        assert pyprojectshop.app.conf.orchestrator_cls == "SQLiteOrchestrator"
        assert not (pytester.path / "production.db").exists()
    finally:
        sys.modules.pop("pyprojectshop", None)
        Pynenc._instances.clear()
        Pynenc._instances.update(saved)
