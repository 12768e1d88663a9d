"""The pynenc-wf command: export, replay, simulate."""

from __future__ import annotations

import gc
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
    assert main(["replay", str(path)]) == 2  # the command line names no history
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
    assert any(p.startswith("[duplicate] non-idempotent charge_card ran") for p in first["problems"])
    # One plan format: FaultSchedule.to_json(); the shrunk schedule is no bigger.
    plan, shrunk = first["plan"], first["shrunk"]
    assert set(plan) == set(shrunk) == {"crashes", "failures"}
    assert all(set(c) >= {"step", "phase", "name"} for c in shrunk["crashes"])
    size = len(shrunk["crashes"]) + len(shrunk["failures"])
    assert 1 <= size <= len(plan["crashes"]) + len(plan["failures"])
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


# ---------------------------------------------------------------------- bad inputs

NOT_A_HISTORY = "not a pynenc-wf history"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Bad files of every kind, and another app's real pynenc SQLite store."""
    import sqlite3

    root = tmp_path_factory.mktemp("bad-inputs")
    paths = {"dir": str(root / "a-dir"), "missing": str(root / "missing.json")}
    os.mkdir(paths["dir"])
    contents: dict[str, bytes] = {
        "garbage": b"this is not a database, nor JSON\n",
        "binary": b"\xff\xfe\x00\x81 not utf-8",
        "truncated": b'{"format": "pynenc-wf-history", "version": ',
        "list": b"[1, 2, 3]",
        "other_format": b'{"format": "other"}',
        "empty": b"",
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
        paths[name] = str(root / name)
    doc = {"format": "pynenc-wf-history", "version": 1, "seed": 0, "steps": [],
           "workflows": [{"workflow_id": "w-1", "task": "no_such_module_xyz.flow",
                          "arguments": {}, "status": "success", "children": [], "data": {}}]}
    (root / "unknown_task.json").write_text(json.dumps(doc))
    paths["unknown_task"] = str(root / "unknown_task.json")
    doc["workflows"][0]["task"] = "tests.fault_apps.nope"
    (root / "missing_attr.json").write_text(json.dumps(doc))
    paths["missing_attr"] = str(root / "missing_attr.json")
    del doc["workflows"][0]["children"]
    (root / "bad_record.json").write_text(json.dumps(doc))
    paths["bad_record"] = str(root / "bad_record.json")
    plain = root / "plain.db"
    with sqlite3.connect(plain) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    db.close()
    paths["plain_db"] = str(plain)
    other = root / "other-app.db"
    with WorkflowEnv(seed=4, backend="sqlite", backend_options={"path": str(other)}) as env:
        env.start(apps_of_another.sequential, 1).result
    # Settle the file now: a connection collected later would checkpoint its WAL into the
    # database in the middle of a test that checks export leaves the bytes alone.
    gc.collect()
    settle = sqlite3.connect(other)
    settle.execute("PRAGMA journal_mode=DELETE")
    settle.close()
    paths["other_app_db"] = str(other)
    (root / "boom_mod_cli.py").write_text("raise RuntimeError('boom at import')\n")
    paths["boom_dir"] = str(root)
    return paths


from tests import fault_apps as apps_of_another  # noqa: E402 - read by the fixture above

APP = "tests.replay_apps:app"
WF = "tests.fault_apps:sequential"
EXPORT = ["export", "--app", APP, "--workflow-type", "tests.replay_apps.checkout"]

# (argv, exit code, words the one stderr line must contain); @name is a path of `files`.
BAD_INPUTS: list[tuple[list[str], int, str]] = [
    ([], 2, "required: command"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    (["simulate"], 2, "required: workflow"),
    (["simulate", "nope"], 2, "expected 'package.module:name'"),
    (["simulate", "tests.fault_apps:"], 2, "expected 'package.module:name'"),
    (["simulate", ":sequential"], 2, "expected 'package.module:name'"),
    (["simulate", "tests.fault_apps:a..b"], 2, "expected 'package.module:name'"),
    (["simulate", "tests fault:x"], 2, "expected 'package.module:name'"),
    (["simulate", WF, "--args", "{not json"], 2, "is not valid JSON"),
    (["simulate", WF, "--args", '{"n": 3}'], 2, "must be a JSON list"),
    (["simulate", WF, "--args", '"x"'], 2, "must be a JSON list"),
    (["simulate", WF, "--runs", "0"], 2, "--runs must be >= 1, got 0"),
    (["simulate", WF, "--runs", "-3"], 2, "--runs must be >= 1, got -3"),
    (["simulate", WF, "--runs", "ten"], 2, "--runs must be an integer >= 1, got 'ten'"),
    (["simulate", WF, "--concurrency", "0"], 2, "--concurrency must be >= 1"),
    (["simulate", WF, "--max-crashes", "0"], 2, "--max-crashes must be >= 1"),
    (["simulate", WF, "--processes", "0"], 2, "--processes must be >= 1"),
    (["simulate", WF, "--max-steps", "0"], 2, "--max-steps must be >= 1"),
    (["simulate", WF, "--examples", "0"], 2, "--examples must be >= 1"),
    (["simulate", WF, "--seed", "-1"], 2, "--seed must be >= 0"),
    (["simulate", WF, "--faults", "flood"], 2, "unknown --faults ['flood']"),
    (["simulate", WF, "--faults", ","], 2, "unknown --faults"),
    (["simulate", WF, "--log-level", "loud"], 2, "invalid choice: 'loud'"),
    (["simulate", "no_such_module_xyz:wf"], 2, "no module named 'no_such_module_xyz'"),
    (["simulate", "tests.fault_apps:nope"], 2, "has no attribute 'nope'"),
    (["simulate", "tests.fault_apps:reset"], 2, "is a function, not a pynenc task"),
    (["simulate", "tests.fault_apps:app"], 2, "is a Pynenc, not a pynenc task"),
    (["simulate", "boom_mod_cli:wf"], 1, "raised RuntimeError: boom at import"),
    (["simulate", WF, "--args", '["x"]', "--runs", "2"], 1,
     "2 of 2 runs failed to run; first (seed 0): the fault-free run raised TypeError"),
    (["simulate", WF, "--args", "[1, 2, 3]", "--runs", "1"], 1,
     "1 of 1 runs failed to run; first (seed 0): InvalidArgument: start(): sequential(n) cannot "
     "be called with these arguments (too many positional arguments)"),
    (["simulate", "tests.replay_apps:checkout", "--faults", "fail"], 2,
     "no task of this app retries"),
    (["export"], 2, "required: --app"),
    (["export", "--app", APP], 2, "one of the arguments --workflow-id --workflow-type"),
    (["export", "--app", APP, "--workflow-id", "a", "--workflow-type", "b.c"], 2,
     "not allowed with argument"),
    (["export", "--app", "nope", "--workflow-id", "a"], 2, "expected 'package.module:name'"),
    (["export", "--app", "tests.replay_apps:checkout", "--workflow-id", "a"], 2,
     "is a WorkflowTask, not a pynenc app"),
    (["export", "--app", APP, "--workflow-id", ""], 2,
     "--workflow-id '': give the run's invocation id or the workflow id"),
    (["export", "--app", APP, "--workflow-type", ""], 2, "expected 'package.module.function'"),
    (["simulate", WF, "--runs", "99999999999999999999"], 2,
     "--runs must be <= 1000000 (run several commands with --seed for more)"),
    (["simulate", WF, "--processes", "100000"], 2, "--processes must be <= "),
    (["export", "--app", APP, "--workflow-type", "checkout"], 2,
     "expected 'package.module.function'"),
    ([*EXPORT, "--sqlite", "@missing"], 2, "no such file"),
    ([*EXPORT, "--sqlite", "@dir"], 2, "is a directory"),
    ([*EXPORT, "--sqlite", "@garbage"], 2, "not a readable SQLite database"),
    ([*EXPORT, "--sqlite", "@empty"], 2, "(it holds no pynenc tables); nothing exported"),
    ([*EXPORT, "--sqlite", "@plain_db"], 2, "(it holds no pynenc tables); nothing exported"),
    ([*EXPORT, "--sqlite", "@other_app_db"], 2,
     "no pynenc store of app 'replay-apps' (it holds pynenc tables of other apps (fault_apps"),
    ([*EXPORT, "--sqlite", "@other_app_db", "-o", "@dir"], 2, "is a directory"),
    (["replay"], 2, "required: files"),
    (["replay", "@missing"], 2, "No such file"),
    (["replay", "@dir"], 2, "is a directory"),
    (["replay", "@garbage"], 2, "not valid JSON"),
    (["replay", "@binary"], 2, "not"),
    (["replay", "@truncated"], 2, "not valid JSON"),
    (["replay", "@empty"], 2, "the file is empty"),
    (["replay", "@list"], 2, NOT_A_HISTORY),
    (["replay", "@other_format"], 2, NOT_A_HISTORY),
    (["replay", "@unknown_task"], 1, "No module named 'no_such_module_xyz'"),
    (["replay", "@missing_attr"], 1, "tests.fault_apps.nope is not a pynenc task"),
    (["replay", "@bad_record"], 2, "children"),
]


@pytest.mark.parametrize(
    ("argv", "code", "message"), BAD_INPUTS, ids=[" ".join(a) or "<none>" for a, _, _ in BAD_INPUTS]
)
def test_bad_input_gives_one_clear_line_and_the_right_exit_code(
    argv: list[str], code: int, message: str, files: dict[str, str],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(files["boom_dir"])
    argv = [files[a[1:]] if a.startswith("@") else a for a in argv]
    databases = {p: Path(p).read_bytes() for p in argv if p.endswith(".db")}
    siblings = {p: sorted(os.listdir(os.path.dirname(p))) for p in databases}
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith("pynenc-wf"), err
    assert message in errors[0], err
    for path, before in databases.items():  # export never writes to what it reads
        assert Path(path).read_bytes() == before
        assert sorted(os.listdir(os.path.dirname(path))) == siblings[path]


def test_export_of_an_unknown_workflow_exports_nothing(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    replay_apps.VERSION = 1
    db = tmp_path / "prod.db"
    with WorkflowEnv(seed=4, backend="sqlite", backend_options={"path": str(db)}) as env:
        env.start(replay_apps.checkout, "o-12").result
    before = db.read_bytes()
    out = tmp_path / "never.json"
    assert main(["export", "--app", APP, "--sqlite", str(db), "--workflow-type",
                 "tests.replay_apps.other", "-o", str(out)]) == 2
    assert "no workflow run 'tests.replay_apps.other'" in capsys.readouterr().err
    assert not out.exists() and db.read_bytes() == before


def test_export_in_process_gives_the_app_back_its_own_store(tmp_path: Path) -> None:
    replay_apps.VERSION = 1
    db = tmp_path / "prod.db"
    with WorkflowEnv(seed=4, backend="sqlite", backend_options={"path": str(db)}) as env:
        env.start(replay_apps.checkout, "o-13").result
    before = replay_apps.app.config_values
    out = tmp_path / "h.json"
    assert main([*EXPORT, "--sqlite", str(db), "-o", str(out)]) == 0
    assert replay_apps.app.config_values is before
    assert len(json.loads(out.read_text())["workflows"]) == 1


def test_simulate_over_processes_reports_errors_as_errors() -> None:
    done = _simulate("tests.fault_apps:sequential", "--args", '["x"]', "--runs", "2",
                     "--processes", "2", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["errors"] == 2 and report["summary"]["violations"] == 0
    assert [e["seed"] for e in report["errors"]] == [0, 1]
    assert all("the fault-free run raised TypeError" in e["error"] for e in report["errors"])
    assert done.stderr.strip().startswith("pynenc-wf simulate: error: 2 of 2 runs failed")


@pytest.mark.parametrize("where", ["dir", "unwritable"])
@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--app", "tests.replay_apps:app", "--sqlite", "{db}", "--workflow-type",
         "tests.replay_apps.checkout"],
        ["report", "--history", "{history}"],
    ],
    ids=["export", "report"],
)
def test_the_same_bad_output_path_is_a_usage_error_in_every_command(
    argv: list[str], where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o`` naming a directory or a place no file can be written: exit 2, one line, in every
    command that writes one (export used to exit 1 where report exited 2)."""
    replay_apps.VERSION = 1
    db = tmp_path / "prod.db"
    with WorkflowEnv(seed=4, backend="sqlite", backend_options={"path": str(db)}) as env:
        env.start(replay_apps.checkout, "o-13").result
        (tmp_path / "h.json").write_text(env.history_json())
    target = tmp_path if where == "dir" else tmp_path / "no" / "such" / "dir" / "out.json"
    argv = [a.replace("{history}", str(tmp_path / "h.json")).replace("{db}", str(db))
            for a in argv]
    assert main([*argv, "-o", str(target)]) == 2
    err = capsys.readouterr().err
    expected = "is a directory; give a file name." if where == "dir" else ": cannot write: "
    assert err.count("\n") == 1 and expected in err, err
