"""The pytest plugin (``pytest_pynenc_wf``), driven through inner pytest runs (``pytester``).

Inner runs are in-process (fast) unless a fresh interpreter is the point of the test: a
different ``PYTHONHASHSEED``, pytest-xdist, or what a run imports.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import hypothesis  # noqa: F401 - see below
import pytest

import pynenc_wf_testing.runtime.simulation  # noqa: F401 - see below
from pynenc_wf_testing.runtime.seeding import seed_from_text

# pytester restores sys.modules after each in-process run, keeping only what was imported
# before it. Import the heavy modules once here (Hypothesis' plugin imports hypothesis at the
# end of every session; the harness imports pynenc) or every inner run re-imports them (~1 s).

# A module-level pynenc app for inner runs (pynenc tasks must live in an importable module).
# ``app_id`` is made unique per test: the outer process imports many of these modules.
APP_SOURCE = """
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


not_an_app = add
"""

SEED_RE = re.compile(r"wf_env seed: (\d+) \u2014 rerun with: pytest '([^']+)' --wf-seed=(\d+)")


@pytest.fixture
def wfapp(pytester: pytest.Pytester) -> str:
    """Write ``wfapp.py`` (module name returned) into the inner run's directory."""
    app_id = f"wfapp-{pytester.path.name}"
    pytester.makepyfile(wfapp=APP_SOURCE.replace("APP_ID", app_id))
    return "wfapp"


def rerun_line(seed: int, nodeid: str) -> str:
    return (
        f"wf_env seed: {seed} \u2014 rerun with: pytest '{nodeid}' --wf-seed={seed}"
        f"  (or add @pytest.mark.wf(seed={seed}))"
    )


# ---------------------------------------------------------------------- fixture and options


def test_fixture_gives_an_open_env(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(
        test_basic="""
        from pynenc_wf_testing import WorkflowEnv
        import wfapp

        def test_runs_a_workflow(wf_env):
            assert isinstance(wf_env, WorkflowEnv)
            run = wf_env.start(wfapp.flow, 3)
            assert run.result == 3
            assert wf_env.executions(wfapp.add) == 3
            assert wf_env.now.isoformat() == "2030-01-01T00:03:00+00:00"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pynenc-wf-testing: seed=per-test (derived from test id)"])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.wf(seed=None, max_steps=None, app=None, start=*"])
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wf(seed=1)
        def test_strict(wf_env):
            assert wf_env.seed == 1
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_options_are_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "pynenc-wf-testing (deterministic workflow simulation):",
            "  --wf-seed=N *",
            "*--wf-app=MODULE:APP*",
            "*--wf-max-steps=N*",
            "*--wf-log-level=*",
            "*--wf-summary*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["  wf_seed (string):*", "  wf_app (string):*", "  wf_max_steps (string):*"]
    )


SEED_PROBE = """
import pytest

def test_default(wf_env):
    print(f"SEED={wf_env.seed}")

@pytest.mark.wf(seed=1234)
def test_marked(wf_env):
    assert wf_env.seed == 1234
"""


def test_marker_start_sets_the_virtual_start(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import datetime as dt
        import pytest

        @pytest.mark.wf(start=dt.datetime(2024, 2, 29, 12, tzinfo=dt.timezone.utc))
        def test_leap_day(wf_env):
            assert wf_env.now == dt.datetime(2024, 2, 29, 12, tzinfo=dt.timezone.utc)
            assert dt.datetime.now(dt.timezone.utc) == wf_env.now
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_marker_seed_wins_over_everything(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nwf_seed = 11\n")
    pytester.makepyfile(test_seeds=SEED_PROBE)
    result = pytester.runpytest("-s", "--wf-seed=99")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*SEED=99*"])


def test_cli_seed_overrides_ini_seed(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nwf_seed = 11\n")
    pytester.makepyfile(test_seeds=SEED_PROBE)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["pynenc-wf-testing: seed=11", "*SEED=11*"])
    result = pytester.runpytest("-s", "--wf-seed=12")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["pynenc-wf-testing: seed=12", "*SEED=12*"])


def test_default_seed_is_derived_from_the_node_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seeds=SEED_PROBE)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*SEED={seed_from_text('test_seeds.py::test_default')}*"])


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--wf-seed=-1"], "", "ERROR: --wf-seed=-1: expected an integer >= 0."),
        ([], "wf_seed = abc", "ERROR: ini option wf_seed = 'abc': expected an integer >= 0*"),
        (["--wf-max-steps=0"], "", "ERROR: --wf-max-steps=0: expected an integer >= 1."),
        ([], "wf_max_steps = -3", "ERROR: ini option wf_max_steps = '-3': expected an int*"),
        ([], "wf_log_level = loud", "ERROR: ini option wf_log_level = 'loud': expected one of*"),
        (["--wf-log-level=loud"], "", "*argument --wf-log-level: invalid choice: 'loud'*"),
        (["--wf-slice-timeout=-1"], "", "ERROR: --wf-slice-timeout=-1.0: expected seconds >= 0*"),
        ([], "wf_slice_timeout = soon", "ERROR: ini option wf_slice_timeout = 'soon': expected*"),
    ],
)
def test_bad_option_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_max_steps_from_marker_cli_and_ini(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(
        test_limits="""
        import pytest
        from pynenc_wf_testing import StepLimitExceeded
        import wfapp

        def test_cli_or_ini(wf_env):
            with pytest.raises(StepLimitExceeded, match="limit max_steps=3"):
                wf_env.start(wfapp.flow, 5).result

        @pytest.mark.wf(max_steps=2)
        def test_marker(wf_env):
            with pytest.raises(StepLimitExceeded, match="limit max_steps=2"):
                wf_env.start(wfapp.flow, 5).result
        """
    )
    pytester.runpytest("--wf-max-steps=3").assert_outcomes(passed=2)
    pytester.makeini("[pytest]\nwf_max_steps = 3\n")
    pytester.runpytest().assert_outcomes(passed=2)


SPIN_SOURCE = """
import datetime as dt
import pytest
from pynenc import Pynenc
from pynenc_wf_testing import SliceTimeoutError

app = Pynenc(config_values={"app_id": "spin-APP_ID"})


@app.task
def spin() -> None:
    while True:
        pass


def test_cli_or_ini(wf_env):
    assert wf_env.world.slice_timeout == 0.25


@pytest.mark.wf(slice_timeout=dt.timedelta(seconds=0.1))
def test_marker(wf_env):
    wf_env.use(app)
    with pytest.raises(SliceTimeoutError, match=r"spin#1 .* ran for more than 0.1 s"):
        wf_env.start(spin).result


@pytest.mark.wf(slice_timeout=0)
def test_marker_disables(wf_env):
    assert wf_env.world.slice_timeout is None
"""


def test_slice_timeout_from_marker_cli_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=SPIN_SOURCE.replace("APP_ID", pytester.path.name))
    pytester.runpytest("--wf-slice-timeout=0.25").assert_outcomes(passed=3)
    pytester.makeini("[pytest]\nwf_slice_timeout = 0.25\n")
    pytester.runpytest().assert_outcomes(passed=3)


def test_log_level_reaches_the_app(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makeini("[pytest]\nwf_app = wfapp:app\nwf_log_level = warning\n")
    pytester.makepyfile(
        test_level="""
        import wfapp

        def test_level(wf_env, pytestconfig):
            expected = pytestconfig.getoption("--wf-log-level") or "warning"
            assert wfapp.app.conf.logging_level == expected
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest("--wf-log-level=debug").assert_outcomes(passed=1)


def test_bad_marker_arguments_error_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wf(7)
        def test_positional(wf_env):
            pass

        @pytest.mark.wf(sead=7)
        def test_typo(wf_env):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            (
                "*@pytest.mark.wf takes only keyword arguments seed, max_steps, app, start, backend, backend_options, slice_timeout, replay, workers, slots, worker_queues, slow_workers, evict; got 7. "
                "Write e.g. @pytest.mark.wf(seed=7)."
            ),
            (
                "*@pytest.mark.wf takes only keyword arguments seed, max_steps, app, start, backend, backend_options, slice_timeout, replay, workers, slots, worker_queues, slow_workers, evict; "
                "got sead. *"
            ),
        ]
    )


# ---------------------------------------------------------------------- determinism

HISTORY_WRITER = """
import pathlib
import wfapp

def test_history(wf_env):
    wf_env.start(wfapp.flow, 3).result
    out = pathlib.Path(__file__).parent / "history.json"
    out.write_text(wf_env.history_json())
    (pathlib.Path(__file__).parent / "hash.txt").write_text(str(hash("pynenc")))
"""


def read_history(pytester: pytest.Pytester) -> str:
    return (pytester.path / "history.json").read_text()


def test_derived_seed_is_stable_across_runs_and_hash_seeds(
    pytester: pytest.Pytester, wfapp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_hist=HISTORY_WRITER)
    pytester.runpytest().assert_outcomes(passed=1)
    first = read_history(pytester)
    first_hash = (pytester.path / "hash.txt").read_text()
    assert json.loads(first)["seed"] == seed_from_text("test_hist.py::test_history")

    pytester.runpytest().assert_outcomes(passed=1)
    assert read_history(pytester) == first

    hash_seed = "12345" if os.environ.get("PYTHONHASHSEED") != "12345" else "54321"
    monkeypatch.setenv("PYTHONHASHSEED", hash_seed)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    assert (pytester.path / "hash.txt").read_text() != first_hash  # really another hash seed
    assert read_history(pytester) == first


def test_derived_seed_is_the_same_under_xdist(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(test_hist=HISTORY_WRITER)
    pytester.runpytest().assert_outcomes(passed=1)
    first = read_history(pytester)
    (pytester.path / "history.json").unlink()
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "--wf-summary")
    result.assert_outcomes(passed=1)
    assert read_history(pytester) == first
    seed = seed_from_text("test_hist.py::test_history")
    # The summary row travelled from the worker to the controller.
    result.stdout.fnmatch_lines(["test_hist.py::test_history *" + f"{seed} * passed"])


# ---------------------------------------------------------------------- failure reports

FAILING_TEST = """
import pathlib
import wfapp

def test_fails(wf_env):
    run = wf_env.start(wfapp.flow, 3)
    value = run.result
    here = pathlib.Path(__file__).parent
    (here / f"history-{pathlib.Path(__file__).stem}.json").write_text(wf_env.history_json())
    assert value == 4, "wrong total"
"""


def test_failure_prints_seed_rerun_command_and_last_steps(
    pytester: pytest.Pytester, wfapp: str
) -> None:
    pytester.makepyfile(test_fails=FAILING_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    seed = seed_from_text("test_fails.py::test_fails")
    line = rerun_line(seed, "test_fails.py::test_fails")
    # As a note on the user's own exception ...
    result.stdout.fnmatch_lines(["E       AssertionError: wrong total", "*", f"E       {line}"])
    # ... and in the report section, with the end of the history.
    result.stdout.fnmatch_lines(
        [
            "*- pynenc-wf -*",
            line,
            "virtual time: 2030-01-01T00:03:00+00:00; 11 steps, 0 crashes, 4 task executions",
            "last steps of the history:",
            "   #1 route:flow#1  2030-01-01T00:00:00+00:00",
            "   #2 route:add#1   2030-01-01T00:00:00+00:00",
            "*",
            "  #11 flow#1        2030-01-01T00:03:00+00:00",
        ]
    )
    assert "blocked:" not in result.stdout.str()


def test_seed_round_trip(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(test_fails=FAILING_TEST)
    first = pytester.runpytest()
    first.assert_outcomes(failed=1)
    match = SEED_RE.search(first.stdout.str())
    assert match is not None
    seed, nodeid = int(match.group(1)), match.group(2)
    assert nodeid == "test_fails.py::test_fails" and int(match.group(3)) == seed
    history = (pytester.path / "history-test_fails.json").read_text()

    again = pytester.runpytest(nodeid, f"--wf-seed={seed}")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(
        ["E       AssertionError: wrong total", "*", f"E       wf_env seed: {seed} *"]
    )
    assert (pytester.path / "history-test_fails.json").read_text() == history

    # The seed alone determines the run: the same test under another node id, given the seed.
    pytester.makepyfile(test_other_name=FAILING_TEST)
    pytester.runpytest("test_other_name.py", f"--wf-seed={seed}").assert_outcomes(failed=1)
    assert (pytester.path / "history-test_other_name.json").read_text() == history
    pytester.runpytest("test_other_name.py").assert_outcomes(failed=1)
    assert (pytester.path / "history-test_other_name.json").read_text() != history


def test_failure_report_lists_blocked_invocations(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(
        test_blocked="""
        import wfapp

        def test_stuck(wf_env):
            wf_env.start(wfapp.flow, 2)
            wf_env.run_until_idle()
            assert False, "still running"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["blocked:", "  flow#1 *: waits for the result of add#1 * (status: running)"]
    )


def test_passing_and_plain_tests_get_no_report(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(
        """
        def test_plain_fails():
            assert False

        def test_env_passes(wf_env):
            pass
        """
    )
    result = pytester.runpytest("-rA")
    result.assert_outcomes(failed=1, passed=1)
    assert "wf_env seed" not in result.stdout.str()


def test_rerun_command_survives_the_shell(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ids="""
        import pytest

        class TestGroup:
            @pytest.mark.parametrize("name", ["it's a [weird] id"])
            def test_param(self, wf_env, name):
                assert False
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match = re.search(r"rerun with: (.*?)  \(or add", result.stdout.str())
    assert match is not None
    argv = shlex.split(match.group(1))
    nodeid = "test_ids.py::TestGroup::test_param[it's a [weird] id]"
    assert argv == ["pytest", nodeid, f"--wf-seed={seed_from_text(nodeid)}"]
    pytester.runpytest(*argv[1:]).assert_outcomes(failed=1)


def test_the_env_is_not_kept_alive_after_its_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import gc
        import weakref

        refs = []

        def test_first(wf_env):
            refs.append(weakref.ref(wf_env))

        def test_second():
            gc.collect()
            assert refs[0]() is None
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


# ---------------------------------------------------------------------- crash points


def test_unfired_crash_point_errors_the_test(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(
        test_unfired="""
        import wfapp

        def test_never_reaches_it(wf_env):
            wf_env.crash_after("no_such_step")
            wf_env.start(wfapp.flow, 1)
            wf_env.advance(hours=1)

        def test_next_one_is_unaffected(wf_env):
            assert wf_env.start(wfapp.flow, 1).result == 0
            assert wf_env.crashes == 0
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    seed = seed_from_text("test_unfired.py::test_never_reaches_it")
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_never_reaches_it*",
            (
                "E   pynenc_wf_testing.errors.UnknownStepError: crash_after('no_such_step*'): "
                "that step was never reached. Steps seen: add#1, flow#1, "
                "record:add#1, route:add#1, route:flow#1. *"
            ),
            "    " + rerun_line(seed, "test_unfired.py::test_never_reaches_it"),
        ]
    )


def test_unfired_crash_point_is_not_reported_on_top_of_a_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_fails_first(wf_env):
            wf_env.crash_after("no_such_step")
            assert False

        def test_skips(wf_env):
            wf_env.crash_after("no_such_step")
            pytest.skip("later")

        @pytest.mark.xfail(reason="known")
        def test_xfails(wf_env):
            wf_env.crash_after("no_such_step")
            assert False
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, skipped=1, xfailed=1)
    assert "UnknownStepError" not in result.stdout.str()


# ---------------------------------------------------------------------- wf_app

USES_CONFIGURED_APP = """
import wfapp

def test_app_is_simulated(wf_env):
    # Nothing started yet: the app was put on the simulated components by the plugin.
    assert wfapp.app.conf.orchestrator_cls == "SimMemOrchestrator"
    assert wf_env.start(wfapp.flow, 2).result == 1

def test_app_is_given_back():
    assert wfapp.app.conf.orchestrator_cls != "SimMemOrchestrator"
"""


def test_wf_app_ini_option_uses_the_app(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makeini("[pytest]\nwf_app = wfapp:app\n")
    pytester.makepyfile(test_app=USES_CONFIGURED_APP)
    pytester.runpytest().assert_outcomes(passed=2)


def test_wf_app_from_cli_and_marker(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(test_app=USES_CONFIGURED_APP)
    pytester.runpytest("--wf-app=wfapp:app").assert_outcomes(passed=2)
    pytester.makeini("[pytest]\nwf_app = wfapp:missing\n")
    pytester.runpytest("--wf-app=wfapp:app").assert_outcomes(passed=2)  # CLI wins
    pytester.makepyfile(
        test_app="""
        import pytest
        import wfapp

        @pytest.mark.wf(app="wfapp:app")
        def test_marked(wf_env):
            assert wfapp.app.conf.orchestrator_cls == "SimMemOrchestrator"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)  # the marker wins over the ini value


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "nosuchmodule:app",
            (
                "ini option wf_app = 'nosuchmodule:app': cannot import module 'nosuchmodule' "
                "(ModuleNotFoundError: No module named 'nosuchmodule'). Check that it is importable "
                "in the test run (installed, or on sys.path / the ini option pythonpath)."
            ),
        ),
        ("wfapp:nope", "ini option wf_app = 'wfapp:nope': module 'wfapp' has no attribute 'nope'."),
        (
            "wfapp:not_an_app",
            (
                "ini option wf_app = 'wfapp:not_an_app': wfapp:not_an_app is a Task, not a pynenc app "
                "(a pynenc.Pynenc instance such as app = Pynenc(...))."
            ),
        ),
        (
            "wfapp",
            (
                "ini option wf_app = 'wfapp': expected 'package.module:app' (the module that defines "
                "your pynenc app and the app's variable name), e.g. wf_app = myshop.tasks:app"
            ),
        ),
    ],
)
def test_bad_wf_app_gives_a_clear_error(
    pytester: pytest.Pytester, wfapp: str, spec: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\nwf_app = {spec}\n")
    pytester.makepyfile("def test_it(wf_env): pass\n\ndef test_plain(): pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1, passed=1)
    assert message in result.stdout.str()
    assert "wf_env seed" not in result.stdout.str()  # a configuration error, not a run


# ---------------------------------------------------------------------- summary


def test_wf_summary_prints_a_table(pytester: pytest.Pytester, wfapp: str) -> None:
    pytester.makepyfile(
        test_summary="""
        import pytest
        import wfapp

        @pytest.mark.wf(seed=3)
        def test_crashy(wf_env):
            wf_env.crash_after("add#1")
            assert wf_env.start(wfapp.flow, 2).result == 1

        @pytest.mark.wf(seed=4)
        def test_month(wf_env):
            wf_env.advance(days=30, seconds=1.5)
            assert False

        def test_skipped(wf_env):
            pytest.skip("not today")

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("--wf-summary")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*= pynenc-wf summary =*",
            "test   *  seed  steps  crashes  executions  virtual time  outcome",
            "test_summary.py::test_crashy   *   3      *        1           *  2m            passed",
            "test_summary.py::test_month    *   4      0        0           0  30d 1.5s      failed",
            "test_summary.py::test_skipped  *   0        0           0  0s            skipped",
        ]
    )
    assert "test_plain" not in result.stdout.str().split("pynenc-wf summary")[1]


def test_summary_from_ini_and_without_wf_tests(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nwf_summary = true\n")
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*= pynenc-wf summary =*", "no test used wf_env"])
    result = pytester.runpytest("-o", "wf_summary=false")
    assert "pynenc-wf summary" not in result.stdout.str()


# ---------------------------------------------------------------------- isolation

LEAKY = """
import pickle

from pynenc.app import Pynenc
from pynenc.state_backend.mem_state_backend import MemStateBackend
import wfapp

def test_leaks(wf_env):
    assert wf_env.start(wfapp.flow, 1).result == 0
    # Both registries now hold this test's state: the simulated app info, and an
    # unpickled copy of the app that a later Pynenc(app_id=...) would silently return.
    assert MemStateBackend._app_info_registry[wfapp.app.app_id].config_values[
        "runner_cls"] == "SimRunner"
    pickle.loads(pickle.dumps(wfapp.app))
    assert wfapp.app.app_id in Pynenc._instances

def test_sees_nothing(wf_env):
    assert wfapp.app.app_id not in MemStateBackend._app_info_registry
    assert wfapp.app.app_id not in Pynenc._instances
    assert Pynenc(config_values={"app_id": wfapp.app.app_id}) is not wfapp.app
"""


def test_tests_do_not_leak_into_each_other_in_any_order(
    pytester: pytest.Pytester, wfapp: str
) -> None:
    forward = LEAKY
    backward = LEAKY.replace("def test_leaks", "def test_zz_leaks").replace(
        "def test_sees_nothing", "def test_aa_sees_nothing"
    )
    # Move the checking test first in the second file.
    head, leaks_and_rest = backward.split("def test_zz_leaks")
    leaks, sees = leaks_and_rest.split("def test_aa_sees_nothing")
    backward = head + "def test_aa_sees_nothing" + sees + "\ndef test_zz_leaks" + leaks
    pytester.makepyfile(test_forward=forward, test_backward=backward)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "test_backward.py::test_aa_sees_nothing PASSED*",
            "test_backward.py::test_zz_leaks PASSED*",
            "test_forward.py::test_leaks PASSED*",
            "test_forward.py::test_sees_nothing PASSED*",
        ]
    )


# ---------------------------------------------------------------------- inertness

IMPORT_PROBE = """
import json, sys

def pytest_unconfigure(config):
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pynenc", "pynenc_wf_testing"))
    with open("modules.json", "w") as f:
        json.dump({"heavy": heavy, "plugin": config.pluginmanager.has_plugin("pynenc_wf")}, f)
"""


def test_tests_without_wf_env_import_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(IMPORT_PROBE)
    pytester.makepyfile(
        """
        def test_plain():
            assert 1 + 1 == 2

        def test_fails():
            assert False
        """
    )
    result = pytester.runpytest_subprocess("--wf-summary", "--wf-seed=5")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["pynenc-wf-testing: seed=5"])
    probe = json.loads((pytester.path / "modules.json").read_text())
    assert probe == {"heavy": [], "plugin": True}


def test_importing_the_plugin_imports_only_pytest_and_stdlib(pytester: pytest.Pytester) -> None:
    code = (
        "import sys, pytest; before = set(sys.modules); import pytest_pynenc_wf; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))"
    )
    result = pytester.run(sys.executable, "-c", code)
    assert result.ret == 0
    new = set(eval(result.stdout.str().strip()))  # our own printed list
    assert "pytest_pynenc_wf" in new
    assert new - set(sys.stdlib_module_names) == {"pytest_pynenc_wf"}


def test_plugin_module_is_the_registered_entry_point() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "pynenc_wf"]
    assert ep.value == "pytest_pynenc_wf"
    assert Path(ep.load().__file__).parent.name == "pytest_plugin"
