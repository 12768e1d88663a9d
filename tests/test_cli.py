"""The pynenc-wf command: export, replay, simulate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.checks.replay import export_histories
from pynenc_wf_testing.tools.cli import main
from tests import replay_apps

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = str(ROOT / "examples")


def test_export_from_a_store_then_replay_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    replay_apps.VERSION = 1
    with WorkflowEnv(seed=2) as env:
        run = env.start(replay_apps.checkout, "o-9")
        run.result
        doc = export_histories(replay_apps.app, workflow_type="tests.replay_apps.checkout")
    assert [w["workflow_id"] for w in doc["workflows"]] == [run.workflow_id]
    path = tmp_path / "exported.json"
    path.write_text(json.dumps(doc))
    assert main(["replay", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"ok   {path} checkout [{run.workflow_id[:8]}]")
    replay_apps.VERSION = 2
    try:
        assert main(["replay", str(path)]) == 1
        out = capsys.readouterr().out
        assert out.startswith(f"FAIL {path} checkout") and "child call #2" in out
    finally:
        replay_apps.VERSION = 1


def test_replay_rejects_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"format": "other"}')
    assert main(["replay", str(path)]) == 1
    assert "not a pynenc-wf history" in capsys.readouterr().out


def _simulate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": EXAMPLES + os.pathsep + str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pynenc_wf_testing.tools.cli", "simulate", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )


def test_simulate_finds_the_planted_bug_and_its_reproduction_fails_the_same_way() -> None:
    spec = "payments.tasks:settle_invoice_workflow"
    found = _simulate(spec, "--args", '["inv-1", 4200]', "--json")  # default --runs 100
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert report["summary"]["runs"] == 100 and report["summary"]["violations"] > 0
    first = report["violations"][0]
    assert any("charge_card#1 ran" in p for p in first["problems"])
    command = first["command"]
    assert command.startswith(f"pynenc-wf simulate {spec} --args '[\"inv-1\", 4200]' --runs 1 ")
    # Run the printed command as printed, through a shell.
    bin_dir = os.path.dirname(sys.executable)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": EXAMPLES + os.pathsep + str(ROOT),
    }
    again = subprocess.run(
        command + " --json", shell=True, capture_output=True, text=True, env=env, timeout=300,
        check=False,
    )
    assert again.returncode == 1, again.stderr
    replayed = json.loads(again.stdout)["violations"][0]
    assert replayed["seed"] == first["seed"] and replayed["problems"] == first["problems"]
    assert replayed["shrunk"] == first["shrunk"]


def test_simulate_of_a_correct_workflow_passes_and_prints_a_summary() -> None:
    done = _simulate("tests.fault_apps:sequential", "--args", "[3]", "--runs", "5",
                     "--concurrency", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "pynenc-wf simulate tests.fault_apps:sequential"
    assert "  violations             0" in lines
    assert "  runs                   5" in lines


def test_simulate_usage_errors() -> None:
    bad = _simulate("tests.fault_apps:sequential", "--faults", "flood")
    assert bad.returncode != 0 and "unknown --faults ['flood']" in bad.stderr
    bad = _simulate("nope", "--runs", "1")
    assert bad.returncode != 0 and "expected 'package.module:name'" in bad.stderr


def test_export_from_a_production_sqlite_file(tmp_path: Path) -> None:
    """A run stored in a real SQLite file (pynenc's SQLite schema, written by the sqlite
    backend) exported by the command line, from a fresh process, and replayed."""
    replay_apps.VERSION = 1
    db = tmp_path / "prod.db"
    with WorkflowEnv(seed=4, backend="sqlite", backend_options={"path": str(db)}) as env:
        run = env.start(replay_apps.checkout, "o-11")
        run.result
    assert db.is_file()
    out = tmp_path / "exported.json"
    env_vars = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pynenc_wf_testing.tools.cli", "export", "--app",
         "tests.replay_apps:app", "--sqlite", str(db), "--workflow-type",
         "tests.replay_apps.checkout", "-o", str(out)],
        capture_output=True, text=True, env=env_vars, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote 1 workflow histories to {out}"
    doc = json.loads(out.read_text())
    record = doc["workflows"][0]
    assert record["workflow_id"] == run.workflow_id and record["status"] == "success"
    assert [c["task"].rsplit(".", 1)[-1] for c in record["children"]] == [
        "reserve", "charge", "notify"
    ]
    assert main(["replay", str(out)]) == 0
