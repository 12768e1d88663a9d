"""The ``pynenc-wf`` command as README.md and docs/faults.md, docs/reports.md describe it:
outputs and exit statuses (0 success, 1 a failure, 2 a malformed command line or an unreadable
report source), one ``pynenc-wf <command>: error: ...`` line naming the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.tools.cli import main
from tests import probe_apps as pa

APP = "tests.probe_apps:app"


@pytest.fixture(autouse=True)
def outside_world() -> None:
    pa.reset()
    pa.PRICE["amount"] = 10


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A pynenc SQLite store holding a finished order (workflow id ``order-1``) and a review
    still waiting for its signal (``doc-1``), written by a simulation on the sqlite backend."""
    path = tmp_path / "run.db"
    with WorkflowEnv(seed=1, backend="sqlite", backend_options={"path": str(path)}) as env:
        env.start_workflow(pa.fulfill, "o-1", workflow_id="order-1").result
        env.start_workflow(pa.review, "d", workflow_id="doc-1")
        env.run_until_idle()
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_by_type_then_replay(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "h.json"
    code, out, _ = _run(
        capsys, "export", "--app", APP, "--sqlite", str(store),
        "--workflow-type", "tests.probe_apps.fulfill", "-o", str(out_file),
    )
    assert (code, out) == (0, f"wrote 1 workflow histories to {out_file}\n")
    code, out, _ = _run(capsys, "replay", str(out_file))
    assert code == 0 and out.startswith(f"ok   {out_file} fulfill [")


def test_export_takes_the_workflow_id_given_to_start_workflow(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The id a workflow was started under is its handle everywhere (README): export used to
    fail with pynenc's raw ``InvocationNotFoundError`` for it."""
    by_alias, by_run = tmp_path / "alias.json", tmp_path / "run.json"
    assert _run(capsys, "export", "--app", APP, "--sqlite", str(store),
                "--workflow-id", "order-1", "-o", str(by_alias))[0] == 0
    run_id = json.loads(by_alias.read_text())["workflows"][0]["workflow_id"]
    assert _run(capsys, "export", "--app", APP, "--sqlite", str(store),
                "--workflow-id", run_id, "-o", str(by_run))[0] == 0
    assert by_alias.read_bytes() == by_run.read_bytes()
    assert _run(capsys, "replay", str(by_alias))[0] == 0


def test_export_of_an_unknown_workflow_id_exits_2_with_one_line(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys, "export", "--app", APP, "--sqlite", str(store), "--workflow-id", "nope"
    )
    assert code == 2 and out == ""
    assert err == (
        "pynenc-wf export: error: no workflow run 'nope' in the store of app 'docs-probe'; "
        "nothing exported. Check the id or type (package.module.function) and the database.\n"
    )


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--workflow-type", "tests.probe_apps.fulfill", "--sqlite", "{missing}"], 2,
         "no such file"),
        (["--workflow-type", "tests.probe_apps.fulfill", "--app", "tests.probe_apps:nope"], 2,
         "has no attribute 'nope'"),
        (["--workflow-type", "tests.probe_apps.fulfill", "--app", "tests.probe_apps:plain"], 2,
         "is a Task, not a pynenc app"),
        (["--workflow-type", "tests.probe_apps.fulfill", "--app", "tests.probe_apps"], 2,
         "expected 'package.module:name'"),
        ([], 2, "one of the arguments --workflow-id --workflow-type is required"),
    ],
)
def test_export_bad_command_lines(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], code: int, message: str,
) -> None:
    argv = [a.replace("{missing}", str(tmp_path / "none.db")) for a in argv]
    full = ["export", "--app", APP, "--sqlite", str(store), *argv]
    got, _, err = _run_exit(capsys, full)
    assert got == code
    assert err.startswith("pynenc-wf export: error: ") and message in err
    assert err.count("\n") == 1


def _run_exit(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """``main`` returns the status, or argparse exits with it (a usage error)."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_of_a_changed_workflow_exits_1_naming_the_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with WorkflowEnv(seed=3) as env:
        env.start(pa.priced, "o-1").result
        path = tmp_path / "h.json"
        path.write_text(env.history_json())
    pa.PRICE["amount"] = 12  # a deploy changed the code
    code, out, err = _run(capsys, "replay", str(path))
    assert code == 1
    assert "charge(amount=10, order=\"o-1\") but the replayed code now calls " in out
    assert "charge(amount=12, order=\"o-1\")" in out
    assert err.startswith("pynenc-wf replay: error: 1 replay(s) failed")


def test_replay_of_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "replay", str(tmp_path / "none.json"))
    assert code == 2 and "No such file or directory. Check the path." in err


def test_report_text_tree_of_a_store(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "report", "--sqlite", str(store), "--text")
    assert code == 0
    assert "app docs-probe" in out.splitlines()[0]
    assert "waits for signal 'approved' (until 2030-01-02T00:00:00+00:00)" in out
    assert "fulfill#1 [" in out and "ship#1 [" in out


def test_report_html_to_a_file(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "r.html"
    code, out, _ = _run(capsys, "report", "--sqlite", str(store), "-o", str(page))
    assert (code, out) == (0, f"wrote the report of 5 invocations to {page}\n")
    assert page.read_text().lstrip().lower().startswith("<!doctype html")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sqlite", "{missing}"], "no such file"),
        (["--sqlite", "{store}", "--app-id", "nope"], "no store of app 'nope'; the file holds: docs-probe"),
        (["--sqlite", "{store}", "--workflow-id", "nope"], "no workflow 'nope'"),
        (["--history", "{missing}"], "no such file"),
        (["--redis", "redis://127.0.0.1:1/0"], "cannot reach the Redis server"),
        (["--app", APP], "there is no store to read"),
        ([], "name what to read"),
    ],
)
def test_report_unreadable_sources_exit_2_with_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], message: str,
) -> None:
    argv = [
        a.replace("{missing}", str(tmp_path / "none")).replace("{store}", str(store))
        for a in argv
    ]
    code, out, err = _run_exit(capsys, ["report", *argv])
    assert code == 2 and out == ""
    assert err.startswith("pynenc-wf report: error: ") and message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--args", "notjson"], 2, "is not valid JSON"),
        (["--args", '{"order": "x"}'], 2, "must be a JSON list"),
        (["--runs", "0"], 2, "--runs must be >= 1"),
        (["--faults", "explode"], 2, "unknown --faults"),
        (["--seed", "-1"], 2, "--seed must be >= 0"),
        (["--args", '["o-1", 2]'], 1, "too many positional arguments"),
    ],
)
def test_simulate_bad_command_lines(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    full = ["simulate", "tests.probe_apps:fulfill", "--args", '["o-1"]', "--runs", "1", *argv]
    got, out, err = _run_exit(capsys, full)
    assert got == code
    assert message in out + err


def test_simulate_a_correct_workflow_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "simulate", "tests.probe_apps:fulfill", "--args", '["o-1"]', "--runs", "2",
        "--json",
    )
    summary = json.loads(out)["summary"]
    assert code == 0
    assert (summary["runs"], summary["violations"], summary["errors"]) == (2, 0, 0)
    assert summary["crashes"] > 0


# --------------------------------------------------------------------------- reports from Python


def test_report_sources_from_python(store: Path, tmp_path: Path) -> None:
    from pynenc_wf_testing import StoreReadError
    from pynenc_wf_testing.env.report import render_html, render_text
    from pynenc_wf_testing.env.report_sources import read_sqlite_store

    data = read_sqlite_store(store)
    assert render_text(data).startswith(f"sqlite store {store}, app docs-probe; ")
    assert "<title>prod</title>" in render_html(data, title="prod")
    with pytest.raises(StoreReadError, match="no such file"):
        read_sqlite_store(tmp_path / "none.db")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(StoreReadError, match="not a SQLite database"):
        read_sqlite_store(notes)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("read_sqlite_store", "expects the path of a SQLite file, got int"),
        ("read_redis_store", "expects a redis URL .* or a redis.Redis client, got int"),
        ("render_text", "expected a WorkflowEnv or a ReportData, got int"),
        ("read_history", "expects the path of a history file, its JSON text or the parsed dict"),
    ],
)
def test_report_functions_refuse_what_they_cannot_read(call: str, message: str) -> None:
    """These used to be a bare TypeError / AttributeError from inside the reader."""
    from pynenc_wf_testing import InvalidArgument
    from pynenc_wf_testing.env import report, report_sources

    function = getattr(report_sources, call, None) or getattr(report, call)
    with pytest.raises(InvalidArgument, match=message):
        function(5)
