"""README.md's "pytest plugin" section, probed with ``pytester`` as a user's suite would hit
it: the after-test replay and its three switches (marker, option, ini; the marker wins), a
left-open ``WorkflowEnv``, the seed line of a failing test, ``--wf-record`` then
``--wf-replay``, and bad option / ini / marker values.
"""

from __future__ import annotations

import hypothesis  # noqa: F401 - imported once, not per inner run (see test_plugin.py)
import pytest

import pynenc_wf_testing.runtime.simulation  # noqa: F401 - same

APP_SOURCE = """
import uuid

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "APP_ID"})


@app.task
def note(what: str) -> str:
    return what


@app.workflow
def drifting(n: int) -> str:
    # uuid4() in a workflow body: a replay draws another value (the README's example)
    return drifting.wf.root.execute_task(note, f"{n}-{uuid.uuid4().hex[:6]}").result


@app.workflow
def steady(n: int) -> str:
    return steady.wf.root.execute_task(note, str(n)).result
"""

TESTS = """
import pytest
import probeapp as w


def test_drift(wf_env):
    wf_env.start(w.drifting, 1).result


@pytest.mark.wf(replay=False)
def test_drift_opted_out(wf_env):
    wf_env.start(w.drifting, 1).result


@pytest.mark.wf(replay=True)
def test_drift_opted_in(wf_env):
    wf_env.start(w.drifting, 1).result


def test_steady(wf_env):
    assert wf_env.start(w.steady, 2).result == "2"
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(
        probeapp=APP_SOURCE.replace("APP_ID", f"probe-{pytester.path.name}"), test_suite=TESTS
    )
    return pytester


def test_the_after_test_replay_catches_uuid4_in_a_workflow_body(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_drift *",
        "*NondeterminismError: workflow drifting#1 * diverged from its recorded history at "
        "child call #1*",
        "*skip it with @pytest.mark.wf(replay=False), --wf-no-replay-check or ini "
        "wf_replay_check = false*",
    ])
    assert "test_drift_opted_out" not in "".join(
        line for line in result.stdout.lines if line.startswith("ERROR")
    )


@pytest.mark.parametrize(
    ("args", "ini"),
    [(["--wf-no-replay-check"], ""), ([], "[pytest]\nwf_replay_check = false\n")],
)
def test_the_replay_switches_and_the_marker_wins(
    suite: pytest.Pytester, args: list[str], ini: str
) -> None:
    if ini:
        suite.makeini(ini)
    result = suite.runpytest("-p", "no:randomly", *args)
    # off for the run, back on for the test marked replay=True
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_drift_opted_in*"])


def test_record_then_replay(suite: pytest.Pytester) -> None:
    suite.runpytest("-p", "no:randomly", "--wf-record=hist", "-k", "steady").assert_outcomes(
        passed=1
    )
    recorded = sorted(p.name for p in (suite.path / "hist").iterdir())
    assert len(recorded) == 1 and recorded[0].startswith("test_suite.py_test_steady-")
    result = suite.runpytest("-p", "no:randomly", "--wf-replay=hist", "-k", "replay")
    result.assert_outcomes(passed=1, deselected=4)
    result.stdout.no_fnmatch_line("*FAILED*")


def test_a_failing_test_prints_its_seed_and_a_pynenc_wf_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        probeapp=APP_SOURCE.replace("APP_ID", f"probe-{pytester.path.name}"),
        test_fail="""
        import pytest
        import probeapp as w

        @pytest.mark.wf(seed=16)
        def test_pays(wf_env):
            wf_env.start(w.steady, 1).result
            assert wf_env.executions(w.note) == 2
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*wf_env seed: 16 * rerun with: pytest 'test_fail.py::test_pays' --wf-seed=16*",
        "*- pynenc-wf -*",
        "*last steps of the history:*",
        "*workflow tree:*",
    ])


def test_a_test_that_leaves_an_environment_open_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_open="""
        from pynenc_wf_testing import WorkflowEnv

        def test_forgets():
            WorkflowEnv(seed=1).__enter__()

        def test_next_gets_a_free_slot():
            with WorkflowEnv(seed=2):
                pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*this test left a WorkflowEnv open (opened at *test_open.py:4); the harness closed it.*"
    ])


@pytest.mark.parametrize(
    ("args", "ini", "line"),
    [
        (["--wf-seed=-1"], "", "ERROR: --wf-seed=-1: expected an integer >= 0."),
        (["--wf-max-steps=0"], "", "ERROR: --wf-max-steps=0: expected an integer >= 1."),
        (["--wf-workers=0"], "", "ERROR: --wf-workers=0: expected an integer >= 1."),
        (["--wf-slice-timeout=-2"], "", "ERROR: --wf-slice-timeout=-2.0: expected seconds >= 0*"),
        (["--wf-replay=nowhere"], "", "ERROR: --wf-replay=nowhere: no such directory or history*"),
        ([], "wf_seed = -3", "ERROR: ini option wf_seed = '-3': expected an integer >= 0*"),
        ([], "wf_evict = sometimes", "ERROR: ini option wf_evict = 'sometimes': expected one of*"),
    ],
)
def test_bad_options_and_ini_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: str, line: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_x="def test_x(wf_env):\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])


def test_bad_marker_values_fail_that_tests_setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marks="""
        import datetime as dt
        import pytest

        @pytest.mark.wf(seed=-1)
        def test_bad_seed(wf_env): pass

        @pytest.mark.wf(sed=3)
        def test_typo(wf_env): pass

        @pytest.mark.wf(start=dt.datetime(2030, 1, 1))
        def test_naive_start(wf_env): pass

        @pytest.mark.wf(replay="yes")
        def test_bad_replay(wf_env): pass

        @pytest.mark.wf(start=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
        def test_good_start(wf_env):
            assert wf_env.now.year == 2031
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=4)
    result.stdout.fnmatch_lines_random([
        "*the settings of this test's wf_env are invalid: seed must be a non-negative int*",
        "*@pytest.mark.wf takes only keyword arguments seed, * got sed.*",
        "*the settings of this test's wf_env are invalid: start must be timezone-aware*",
        "*@pytest.mark.wf(replay='yes'): expected True or False*",
    ])
