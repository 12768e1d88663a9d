"""The engine alone: a production app that enables it loads none of the testing harness.

The durable engine is production code. An app on pynenc's ThreadRunner and SQLite backend
that builds with ``PynencBuilder().enable_workflows()`` and runs workflows through timers,
signals, queries and waits must not import the simulator (``pynenc_wf_testing.runtime``), the
checks, the ``WorkflowEnv`` facade or the tools, nor their dependencies freezegun, greenlet
and hypothesis. A fresh interpreter is the only place where ``sys.modules`` tells the truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.production

_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time

    from pynenc.runner.thread_runner import ThreadRunner

    from pynenc_wf_testing.engine import query_workflow, signal_workflow
    from tests.production import prod_app as pa

    app = pa.build(sys.argv[1], "wf-engine-standalone")
    runner = ThreadRunner(app)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()

    def result(invocation, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not app.orchestrator.get_invocation_status(invocation.invocation_id).is_final():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {invocation.invocation_id}")
            time.sleep(0.01)
        return invocation.result

    try:
        slept = result(pa.timed_sleep(0.1))
        assert slept["woke"] - slept["started"] >= 0.1, slept
        waited = result(pa.waits(1))
        assert waited["any"] == [1, "fast"], waited
        run = pa.progress(0.05)
        deadline = time.monotonic() + 20
        while (query_workflow(app, run).state or {}).get("phase") != "slept":
            assert time.monotonic() < deadline, "the workflow never reached its signal wait"
            time.sleep(0.01)
        signal_workflow(app, run, "finish")
        assert result(run) == "done"
    finally:
        runner.stop_runner_loop()
        thread.join(10)

    ours = ("runtime", "checks", "env", "tools")
    loaded = sorted(
        name for name in sys.modules
        if name.split(".")[0] in ("freezegun", "greenlet", "hypothesis")
        or (name.startswith("pynenc_wf_testing.") and name.split(".")[1] in ours)
    )
    print(json.dumps({"forbidden": loaded, "engine": "pynenc_wf_testing.engine" in sys.modules}))
    """
)


def test_a_production_app_with_the_engine_loads_no_harness_module(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "pynenc.db")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["engine"], "the workflows did not run through the engine"
    assert report["forbidden"] == [], (
        "enabling the engine on a production app loaded harness modules: "
        + ", ".join(report["forbidden"])
    )


# =========================================================================== imports, statically

ENGINE = REPO / "pynenc_wf_testing" / "engine"


def _imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, wherever the import stands (module level, inside a
    function, under ``TYPE_CHECKING``), relative imports resolved."""
    import ast

    package = "pynenc_wf_testing.engine"
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.append(f"{base}.{node.module}" if node.module else base)
            else:
                names.append(node.module or "")
    return names


def test_the_engine_imports_pynenc_and_itself_only() -> None:
    files = sorted(ENGINE.glob("*.py"))
    assert files
    outside = {
        f"{path.name}: {name}"
        for path in files
        for name in _imported_modules(path)
        if name.split(".")[0] == "pynenc_wf_testing"
        and not (name + ".").startswith("pynenc_wf_testing.engine.")
    }
    assert not outside, f"the engine imports other layers: {sorted(outside)}"


def test_only_the_schema_spells_an_engine_key() -> None:
    """``wfx:`` keys are built by ``engine/schema.py`` alone: no other source file spells
    one (the simulator, replay and reports read them through the schema too)."""
    spelled = [
        str(path.relative_to(REPO))
        for folder in ("pynenc_wf_testing", "pytest_plugin")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != ENGINE / "schema.py" and "wfx:" in path.read_text()
    ]
    assert spelled == []


# =========================================================================== the task.wf swap


def test_the_task_wf_swap_is_reversible() -> None:
    from pynenc.task import Task, WorkflowTask

    from pynenc_wf_testing.engine import task_wf

    was_installed = task_wf.task_wf_installed()
    task_wf.uninstall_task_wf()
    originals = {cls: cls.__dict__["wf"] for cls in (Task, WorkflowTask)}
    try:
        task_wf.install_task_wf()
        task_wf.install_task_wf()  # idempotent
        assert task_wf.task_wf_installed()
        assert all(cls.__dict__["wf"] is not originals[cls] for cls in originals)
        task_wf.uninstall_task_wf()
        assert not task_wf.task_wf_installed()
        assert all(cls.__dict__["wf"] is originals[cls] for cls in originals)
    finally:
        if was_installed:
            task_wf.install_task_wf()


def test_the_task_wf_swap_names_an_incompatible_pynenc(monkeypatch: pytest.MonkeyPatch) -> None:
    from pynenc.task import Task

    from pynenc_wf_testing.engine import UnsupportedPynencVersion, task_wf

    was_installed = task_wf.task_wf_installed()
    task_wf.uninstall_task_wf()
    try:
        monkeypatch.setattr(Task, "wf", property(lambda self: None))
        with pytest.raises(
            UnsupportedPynencVersion,
            match=r"replaces pynenc's Task\.wf, a functools\.cached_property in pynenc 0\.4, "
            r"but the installed pynenc has property there\. This engine supports pynenc "
            r">=0\.4,<0\.5\.",
        ):
            task_wf.install_task_wf()
        assert not task_wf.task_wf_installed()
    finally:
        monkeypatch.undo()
        if was_installed:
            task_wf.install_task_wf()


# =========================================================================== the stored schema


def test_the_schema_names_the_steps_of_every_record() -> None:
    from pynenc_wf_testing.engine import schema

    names = {"child-1": "charge#1"}
    expected = {
        schema.timer(1): ("timer", "sleep#1"),
        schema.timer_fired(2): ("timer", "timer#2"),
        schema.now(1): ("value", "now#1"),
        schema.side_effect(3): ("value", "side_effect#3"),
        schema.wait_any(1): ("value", "wait_any#1"),
        schema.task_wait(1): ("value", "wait_for_task#1"),
        schema.signal("a:b", 2): ("signal", "signal:a:b#2"),
        schema.signal_wait("go", 1): ("signal", "wait_signal:go#1"),
        schema.state(4): ("state", "save_state#4"),
        schema.halt(1): ("halt", "halt#1"),
        schema.retry(1, 2): ("retry", "attempt:charge#1"),
        schema.patch("v2:x"): ("value", "patch:v2:x"),
        schema.CANCEL: ("cancel", "cancel#1"),
        schema.DEADLINE: ("timer", "run_timeout#1"),
        schema.check(5): ("value", "check_cancelled#5"),
        schema.retry_route(3, 2): ("value", "route_attempt#3:2"),
    }
    for key, step in expected.items():
        assert schema.is_engine_key(key), key
        value = "child-1" if key == schema.retry(1, 2) else True
        assert schema.classify(key, value, names.get) == step, key
        assert step[0] in schema.STEP_KINDS
    assert schema.classify(schema.retry(1, 1), "unknown", names.get) == ("retry", "attempt:1")
    assert "attempt:charge#1".startswith(schema.CHILD_STEP_PREFIXES)
    for supporting in (
        schema.signal_count("go"), schema.signal_deadline("go", 1), schema.STATE_LATEST,
        schema.state_pos(1), schema.HALTED,
    ):
        assert schema.classify(supporting, 1, names.get) is None
    assert schema.classify(schema.timer(1), None, names.get) is None  # a reset, not a step
    assert schema.records_child(schema.retry(1, 1))
    assert not schema.records_child(schema.retry_route(1, 1))
    assert not schema.is_engine_key(schema.alias("x"))
    assert isinstance(schema.SCHEMA_VERSION, int)
