"""Bad values of the plugin's options, ini values and markers (issue 14, point 5).

An option or ini value is checked when pytest starts: a usage error (exit code 4) naming the
option and the fix, before any test runs. A ``@pytest.mark.wf(...)`` value is the one test's
setup error naming the marker value and the fix, never an INTERNALERROR or a traceback from
inside the harness. (The other options are covered in tests/test_plugin.py and
tests/test_plugin_replay.py.)
"""

from __future__ import annotations

import hypothesis  # noqa: F401 - imported once here, not per inner run (see test_plugin.py)
import pytest

import pynenc_wf_testing.runtime.simulation  # noqa: F401 - same

APP_SOURCE = """
from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "APP_ID"})


@app.task
def double(x: int) -> int:
    return 2 * x
"""


@pytest.fixture
def badapp(pytester: pytest.Pytester) -> str:
    pytester.makepyfile(badapp=APP_SOURCE.replace("APP_ID", f"bad-{pytester.path.name}"))
    return "badapp"


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--wf-backend=mongo"], "",
         "ERROR: --wf-backend = 'mongo': unknown backend; choose one of memory, memory-stock, "
         "redis, sqlite*"),
        ([], "wf_backend = mongo",
         "ERROR: ini option wf_backend = 'mongo': unknown backend; choose one of*"),
        (["--wf-record=afile.txt"], "",
         "ERROR: --wf-record=afile.txt: exists and is not a directory. Name a directory."),
        (["--wf-report=afile.txt/sub"], "",
         "ERROR: --wf-report=afile.txt/sub: cannot create the directory (*). Name a directory "
         "you can write to."),
        (["--wf-keep-db=afile.txt", "--wf-backend=sqlite"], "",
         "ERROR: --wf-keep-db=afile.txt: exists and is not a directory*"),
        ([], "wf_summary = maybe",
         "ERROR: ini option wf_summary: invalid truth value 'maybe'; expected a boolean "
         "(true/false, yes/no, on/off, 1/0), e.g. wf_summary = false."),
        ([], "wf_replay_check = nah",
         "ERROR: ini option wf_replay_check: invalid truth value 'nah'; expected a boolean*"),
        ([], "wf_log_level = LOUD",  # named as written, not lowercased
         "ERROR: ini option wf_log_level = 'LOUD': expected one of debug, info, warning, error, "
         "critical."),
    ],
    ids=["backend-cli", "backend-ini", "record-file", "report-under-file", "keep-db-file",
         "summary-ini-bool", "replay-check-ini-bool", "log-level-ini"],
)
def test_bad_option_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.path.joinpath("afile.txt").write_text("not a directory")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_output_directories_are_made_at_start_up(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--wf-record=out/histories", "--wf-report=out/html")
    assert result.ret == pytest.ExitCode.OK
    assert (pytester.path / "out" / "histories").is_dir()
    assert (pytester.path / "out" / "html").is_dir()


MARKER_CASES = [
    ("seed=-1", "seed must be a non-negative int, got -1. Pass e.g. WorkflowEnv(seed=7).*"),
    ("seed='x'", "seed must be a non-negative int, got 'x'.*"),
    ("seed=True", "seed must be a non-negative int, got True.*"),
    ("max_steps=0", "max_steps must be a positive int, got 0.*"),
    ("max_steps='5'", "max_steps must be a positive int, got '5'.*"),
    ("backend='mongo'", "unknown backend 'mongo'; choose one of: memory, memory-stock, redis, sqlite.*"),
    ("start='2030'", "start must be a datetime, got str: '2030'. Pass e.g. datetime(2030, 1, 1, tzinfo=UTC).*"),
    ("slice_timeout='x'", "slice_timeout must be a positive timedelta (or seconds)*"),
    ("backend='sqlite', backend_options={'nope': 1}",
     "unknown backend_options for the sqlite backend: nope; it accepts: path, resume, check_serialization.*"),
]


@pytest.mark.parametrize(("marker", "message"), MARKER_CASES, ids=[m for m, _ in MARKER_CASES])
def test_bad_marker_values_fail_that_test_at_setup(
    pytester: pytest.Pytester, badapp: str, marker: str, message: str
) -> None:
    pytester.makepyfile(
        test_marked=f"""
        import pytest
        import badapp

        @pytest.mark.wf({marker})
        def test_marked(wf_env):
            assert wf_env.start(badapp.double, 2).result == 4

        def test_unmarked(wf_env):
            assert wf_env.start(badapp.double, 3).result == 6
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        f"*the settings of this test's wf_env are invalid: {message}",
    ])
    result.stdout.fnmatch_lines([f"*(@pytest.mark.wf values: {marker}; seed *"])
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert "During handling" not in output
    assert "_lifecycle.py" not in output  # no traceback from inside the harness


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("replay='yes'",
         "*@pytest.mark.wf(replay='yes'): expected True or False (False skips replaying*"),
        ("backend_options='x'",
         "*@pytest.mark.wf(backend_options='x'): expected a dict, e.g. "
         "@pytest.mark.wf(backend='sqlite', backend_options={'path': 'wf.db'}).*"),
    ],
    ids=["replay-not-bool", "backend-options-not-dict"],
)
def test_marker_values_of_the_wrong_type_fail_at_setup(
    pytester: pytest.Pytester, badapp: str, marker: str, message: str
) -> None:
    pytester.makepyfile(
        test_marked=f"""
        import pytest
        import badapp

        @pytest.mark.wf({marker})
        def test_marked(wf_env):
            assert wf_env.start(badapp.double, 2).result == 4
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str()


def test_a_wf_marker_on_a_test_without_wf_env_fails_that_test_at_setup(
    pytester: pytest.Pytester, badapp: str
) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest
        import badapp

        @pytest.mark.wf(seed=7)
        def test_forgot_the_fixture():
            assert badapp.double.func(2) == 4

        @pytest.fixture
        def env(wf_env):
            return wf_env

        @pytest.mark.wf(seed=7)
        def test_through_a_fixture(env):
            assert env.start(badapp.double, 2).result == 4
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*@pytest.mark.wf(...) on test_forgot_the_fixture has no effect: the test does not use "
        "the wf_env fixture*"
    ])


def test_a_module_wide_wf_marker_leaves_tests_without_wf_env_alone(
    pytester: pytest.Pytester, badapp: str
) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest
        import badapp

        pytestmark = pytest.mark.wf(seed=7)

        def test_plain():
            assert badapp.double.func(2) == 4

        def test_simulated(wf_env):
            assert wf_env.start(badapp.double, 2).result == 4
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
