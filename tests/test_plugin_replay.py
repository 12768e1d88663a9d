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
