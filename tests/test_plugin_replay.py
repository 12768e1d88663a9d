"""--wf-record / --wf-replay end to end: record on "main", replay on a "branch"."""

from __future__ import annotations

import pytest

APP = '''
import os
from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "rr-app"})

@app.task
def price(sku: str) -> int:
    return 10

@app.task
def charge(order: str, amount: int) -> str:
    return f"{order}:{amount}"

@app.workflow
def checkout(order: str) -> str:
    amount = checkout.wf.root.execute_task(price, "book").result
    if os.environ.get("RR_VERSION", "1") == "2":
        amount += 2  # the "branch" changes what the workflow asks for
    return checkout.wf.root.execute_task(charge, order, amount).result
'''

TEST = '''
import rr_app

def test_checkout(wf_env):
    assert wf_env.start(rr_app.checkout, "o-1").result.startswith("o-1:")
'''


def test_record_on_main_then_replay_on_a_branch(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(rr_app=APP, test_rr=TEST)
    pytester.syspathinsert()
    monkeypatch.setenv("RR_VERSION", "1")
    recorded = pytester.runpytest("--wf-record=histories")
    recorded.assert_outcomes(passed=1)
    files = sorted((pytester.path / "histories").iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"

    # Unchanged code replays cleanly: one replay test per recorded workflow.
    same = pytester.runpytest("--wf-replay=histories", "-k", "replay")
    same.assert_outcomes(passed=1)

    # The branch changed the workflow: its replay fails with the first divergent step.
    monkeypatch.setenv("RR_VERSION", "2")
    branch = pytester.runpytest("--wf-replay=histories", "-k", "replay")
    branch.assert_outcomes(failed=1)
    branch.stdout.fnmatch_lines(
        [
            "*NondeterminismError: workflow checkout#1 * diverged from its recorded history "
            "at child call #2: the history recorded charge(amount=10, order=\"o-1\") but the "
            "replayed code now calls charge(amount=12, order=\"o-1\")*",
            "history: *histories/*.json (workflow *)",
        ]
    )


def test_replay_of_a_missing_directory_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest("--wf-replay=nowhere")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--wf-replay=nowhere: no such directory*"])


# ---------------------------------------------------------------------- never a silent pass

SHIP_APP = '''
import datetime as dt
import os
import time

from pynenc import Pynenc
from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "rr-ship"}))

@app.task
def reserve(order: str) -> str:
    return f"r-{order}"

@app.task
def notify(order: str) -> str:
    return f"n-{order}"

@app.task
def audit(order: str) -> str:
    return f"a-{order}"

@app.workflow
def ship(order: str, change: str) -> str:
    root = ship.wf.root
    new = change if os.environ.get("RR_VERSION", "1") == "2" else ""
    if new == "reordered":
        notice = root.execute_task(notify, order).result
        return root.execute_task(reserve, order).result + "/" + notice
    reservation = root.execute_task(reserve, order).result
    if new == "durable_sleep":
        root.sleep(dt.timedelta(hours=1))
    elif new == "signal_wait":
        root.wait_for_signal("approved")
    elif new == "time_sleep":
        time.sleep(30)
    elif new == "new_value":
        root.uuid()
    elif new == "extra_child":
        root.execute_task(audit, order).result
    notice = "-" if new == "missing_child" else root.execute_task(notify, order).result
    if new == "trailing_child":
        root.execute_task(audit, order).result
    if new == "fails":
        raise ValueError(f"no stock for {order}")
    return f"{reservation}/{notice}" + ("!" if new == "different_result" else "")
'''

SHIP_TEST = '''
import pytest
import rr_ship

CHANGES = {changes!r}

@pytest.mark.parametrize("change", CHANGES)
def test_ship(wf_env, change):
    assert wf_env.start(rr_ship.ship, "o-1", change).result == "r-o-1/n-o-1"
'''


def _no_internal_error(result: pytest.RunResult) -> None:
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_every_change_fails_its_replay_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests import replay_apps
    from tests.test_replay import DIVERGENCES

    changes = list(replay_apps.CHANGES)
    pytester.makepyfile(rr_ship=SHIP_APP, test_ship=SHIP_TEST.format(changes=changes))
    pytester.syspathinsert()
    monkeypatch.setenv("RR_VERSION", "1")
    pytester.runpytest("--wf-record=histories").assert_outcomes(passed=len(changes))
    pytester.runpytest("--wf-replay=histories", "-k", "replay").assert_outcomes(
        passed=len(changes)
    )

    monkeypatch.setenv("RR_VERSION", "2")
    branch = pytester.runpytest("--wf-replay=histories", "-k", "replay", "-rf")
    _no_internal_error(branch)
    branch.assert_outcomes(failed=len(changes))
    failures = _failures(branch, "NondeterminismError")
    assert len(failures) == len(changes)
    for change in changes:
        # Each history file is named after its test, hence after the change.
        (message,) = [m for path, m in failures.items() if f"_{change}" in path]
        for fragment in DIVERGENCES[change]:
            assert fragment in message, (change, fragment)


def _failures(result: pytest.RunResult, error: str) -> dict[str, str]:
    """history path -> the error message of its failing replay item."""
    import re

    found = re.findall(rf"^{error}: (.*)\nhistory: (\S+)", result.stdout.str(), re.MULTILINE)
    return {path: message for message, path in found}


def test_one_history_file_can_be_replayed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(rr_app=APP, test_rr=TEST)
    pytester.syspathinsert()
    monkeypatch.setenv("RR_VERSION", "1")
    pytester.runpytest("--wf-record=histories").assert_outcomes(passed=1)
    (file,) = sorted((pytester.path / "histories").iterdir())
    pytester.runpytest(f"--wf-replay={file}", "-k", "replay").assert_outcomes(passed=1)


# ---------------------------------------------------------------------- bad input


def test_bad_history_files_are_failing_items_with_their_message(
    pytester: pytest.Pytester,
) -> None:
    from tests.replay_inputs import bad_files

    good = _recorded(pytester)
    (pytester.path / "bad").mkdir()
    files = bad_files(pytester.path / "bad", good)
    result = pytester.runpytest("--wf-replay=bad", "-k", "replay")
    _no_internal_error(result)
    result.assert_outcomes(failed=len(files))
    failures = _failures(result, "HistoryFormatError")
    assert len(failures) == len(files)
    for path, fragment in files.values():
        assert fragment in failures[str(path.relative_to(pytester.path))], (path.name, fragment)

    # One bad file given directly: the same failing item.
    (path, fragment) = files["truncated"]
    single = pytester.runpytest(f"--wf-replay={path}", "-k", "replay")
    _no_internal_error(single)
    single.assert_outcomes(failed=1)
    single.stdout.fnmatch_lines([f"HistoryFormatError: {path}: not valid JSON*"])


def _recorded(pytester: pytest.Pytester) -> str:
    """A good history, recorded by a pytest run (the harness is not run in this process:
    pytester's runs swap pynenc's modules under it)."""
    pytester.makepyfile(rr_app=APP, test_rr=TEST)
    pytester.syspathinsert()
    pytester.runpytest("--wf-record=recorded").assert_outcomes(passed=1)
    (file,) = (pytester.path / "recorded").iterdir()
    return file.read_text()


def test_a_directory_without_histories_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "empty").mkdir()
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest("--wf-replay=empty")
    _no_internal_error(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--wf-replay=empty: the directory holds no *.json history*"])


def test_a_renamed_workflow_is_a_failing_item(pytester: pytest.Pytester) -> None:
    import json

    doc = json.loads(_recorded(pytester))
    doc["workflows"][0]["task"] = "gone_module.checkout"
    (pytester.path / "h.json").write_text(json.dumps(doc))
    result = pytester.runpytest("--wf-replay=h.json", "-k", "replay")
    _no_internal_error(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["ReplayError: cannot import 'gone_module' (ModuleNotFoundError*"])


def test_a_history_without_workflows_is_a_skipped_item(pytester: pytest.Pytester) -> None:
    """--wf-record writes one for a test whose own world ran no workflow (a crash check)."""
    import json

    doc = json.loads(_recorded(pytester))
    doc["workflows"] = []
    (pytester.path / "none.json").write_text(json.dumps(doc))
    result = pytester.runpytest("--wf-replay=none.json", "-k", "replay", "-rs")
    _no_internal_error(result)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*none.json holds no workflow record (its test ran none)*"])
