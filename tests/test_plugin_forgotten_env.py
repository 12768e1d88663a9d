"""The pytest plugin closes an environment a test forgot and fails that test, naming where the
environment was opened (issue 14, point 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

FORGETFUL_TESTS = """
import datetime as dt
import time

from pynenc_wf_testing import WorkflowEnv
from tests import leak_apps

REAL_TIME = time.time


def test_keeps_a_run():
    run = WorkflowEnv(seed=1).start(leak_apps.noop)
    assert run.result == 1


def test_drops_the_env():
    WorkflowEnv(seed=1).start(leak_apps.noop)


def test_fails_with_an_env_open():
    env = WorkflowEnv(seed=1)
    env.open()
    assert False, "the test's own failure"


def test_next_one_is_clean(wf_env):
    assert dt.datetime.now().year == 2030  # wf_env's own clock
    assert wf_env.start(leak_apps.noop).result == 1


def test_closed_properly():
    with WorkflowEnv(seed=1) as env:
        assert env.start(leak_apps.noop).result == 1
    assert time.time is REAL_TIME
"""


def test_the_plugin_fails_a_test_that_forgets_an_env(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_forgetful=FORGETFUL_TESTS)
    pytester.syspathinsert(str(Path(__file__).parent.parent))
    result = pytester.runpytest("-p", "no:randomly", "-W", "ignore::ResourceWarning")
    result.assert_outcomes(passed=2, failed=3)
    text = result.stdout.str()
    for line in (11, 16):
        assert (
            f"this test left a WorkflowEnv open (opened at {pytester.path}/test_forgetful.py:"
            f"{line}); the harness closed it. Use `with WorkflowEnv(...) as env:`, call "
            "env.close(), or use the wf_env fixture."
        ) in text
    assert "the test's own failure" in text
    assert "already open" not in text
