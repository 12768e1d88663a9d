"""``pynenc-wf replay``: one line, never a traceback, for a divergence (exit 1) or a file that
is no readable history (exit 2, a usage error as in ``pynenc-wf report --history``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pynenc_wf_testing.tools.cli import main
from tests import replay_apps
from tests.replay_inputs import bad_files
from tests.test_replay import BAD_CASES, DIVERGENCES, record_ship, record_v1

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _version() -> Iterator[None]:
    yield
    replay_apps.VERSION = 1


def _replay(capsys: pytest.CaptureFixture[str], *files: Path) -> tuple[int, list[str]]:
    code = main(["replay", *map(str, files)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out.splitlines()


@pytest.mark.parametrize("change", replay_apps.CHANGES)
def test_a_changed_workflow_fails_the_replay_command(
    change: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{change}.json"
    path.write_text(record_ship(change))
    assert _replay(capsys, path) == (0, [f"ok   {path} ship [{_workflow_id(path)[:8]}]"])
    replay_apps.VERSION = 2
    code, lines = _replay(capsys, path)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"FAIL {path} ship [{_workflow_id(path)[:8]}]: workflow ship#1 [")
    for fragment in DIVERGENCES[change]:
        assert fragment in lines[0]


def _workflow_id(path: Path) -> str:
    workflow_id: str = json.loads(path.read_text())["workflows"][0]["workflow_id"]
    return workflow_id


@pytest.mark.parametrize("case", BAD_CASES)
def test_a_bad_file_is_one_line_and_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, fragment = bad_files(tmp_path, record_v1())[case]
    code, lines = _replay(capsys, path)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"FAIL {path}: ") and fragment in lines[0]


def test_one_bad_file_among_good_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_text(record_v1())
    empty = tmp_path / "empty.json"
    empty.write_text("")
    code, lines = _replay(capsys, good, empty)
    assert code == 2
    assert lines[0].startswith(f"ok   {good} checkout")
    assert lines[1].startswith(f"FAIL {empty}: ") and "the file is empty" in lines[1]


def test_a_renamed_workflow_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(record_v1())
    path = tmp_path / "renamed.json"
    doc["workflows"][0]["task"] = "tests.replay_apps.checkout_v0"
    path.write_text(json.dumps(doc))
    code, lines = _replay(capsys, path)
    assert code == 1 and len(lines) == 1
    assert "tests.replay_apps.checkout_v0 is not a pynenc task of tests.replay_apps" in lines[0]
    doc["workflows"][0]["task"] = "nowhere_module.checkout"
    path.write_text(json.dumps(doc))
    code, lines = _replay(capsys, path)
    assert code == 1 and len(lines) == 1
    assert "cannot import 'nowhere_module' (ModuleNotFoundError" in lines[0]


def test_a_history_without_workflows_is_skipped_but_nothing_replayed_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --wf-record writes such files (a test whose own world ran no workflow).
    doc = json.loads(record_v1())
    doc["workflows"] = []
    none = tmp_path / "none.json"
    none.write_text(json.dumps(doc))
    good = tmp_path / "good.json"
    good.write_text(record_v1())
    code, lines = _replay(capsys, none, good)
    assert code == 0
    assert lines[0] == f"skip {none}: the history holds no workflow record"
    assert lines[1].startswith(f"ok   {good} checkout")
    code, lines = _replay(capsys, none)
    assert code == 1 and lines == [
        f"skip {none}: the history holds no workflow record",
        "FAIL nothing replayed: none of the histories holds a workflow record.",
    ]


def test_a_run_in_flight_says_how_far_it_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pynenc_wf_testing import WorkflowEnv

    with WorkflowEnv(seed=3) as env:
        env.start(replay_apps.waits_for_go, "o-4")
        env.run_until_idle()
        path = tmp_path / "in_flight.json"
        path.write_text(env.history_json())
    code, lines = _replay(capsys, path)
    assert code == 0
    assert lines[0].endswith("(in flight when recorded: replayed up to where it stopped, 1 child "
                             "calls)")


def test_the_command_itself_prints_no_traceback(tmp_path: Path) -> None:
    """The real entry point, in a process: a divergence and a non-UTF-8 file."""
    path = tmp_path / "sleep.json"
    path.write_text(record_ship("durable_sleep"))
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"\xff\xfe{")
    script = (
        "import sys; from tests import replay_apps; replay_apps.VERSION = 2; "
        "from pynenc_wf_testing.tools.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, "replay", str(path), str(broken)],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=str(ROOT),
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    assert "now takes the step sleep#1 (a durable timer)" in lines[0]
    assert "not a UTF-8 text file" in lines[1]
    assert "Traceback" not in done.stderr
