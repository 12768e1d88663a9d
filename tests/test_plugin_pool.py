"""The plugin's worker-pool settings: ``@pytest.mark.wf(workers=, slots=, worker_queues=)``,
``--wf-workers`` / ``--wf-slots`` and the ini values ``wf_workers`` / ``wf_slots``."""

from __future__ import annotations

import pytest

import pynenc_wf_testing.runtime.simulation  # noqa: F401 - imported once (see test_plugin.py)

APP_SOURCE = """
import time

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "APP_ID", "queues": ["default", "reports"]})


@app.task
def job(label: str) -> str:
    time.sleep(60)
    return label


@app.task(queue="reports")
def report(label: str) -> str:
    time.sleep(60)
    return label


@app.task
def slow(label: str) -> str:
    time.sleep(3600)
    return label


@app.workflow
def waits_for_slow() -> str:
    return waits_for_slow.wf.root.execute_task(slow, "s").result


@app.workflow
def flow(count: int) -> list[str]:
    children = [flow.wf.root.execute_task(job, f"c{i}") for i in range(count)]
    return [child.result for child in children]
"""

# Four one-minute jobs: how long they take tells the pool's size.
TEST_SOURCE = """
import pytest
import poolapp

def test_pool(wf_env):
    runs = [wf_env.start(poolapp.job, f"j{i}") for i in range(4)]
    assert [r.result for r in runs] == ["j0", "j1", "j2", "j3"]
    print(f"POOL={wf_env.workers}x{wf_env.slots} MINUTES={wf_env.now.minute}")
"""


@pytest.fixture
def poolapp(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(poolapp=APP_SOURCE.replace("APP_ID", f"poolapp-{pytester.path.name}"))


def _pool_line(result: pytest.RunResult) -> str:
    lines = [line for line in result.stdout.lines if "POOL=" in line]
    assert len(lines) == 1, result.stdout.str()
    return lines[0][lines[0].index("POOL="):]


def test_no_option_means_no_pool(pytester: pytest.Pytester, poolapp: None) -> None:
    pytester.makepyfile(test_it=TEST_SOURCE)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    assert _pool_line(result) == "POOL=NonexNone MINUTES=1"


def test_command_line_options(pytester: pytest.Pytester, poolapp: None) -> None:
    pytester.makepyfile(test_it=TEST_SOURCE)
    result = pytester.runpytest("-s", "--wf-workers=2", "--wf-slots=1")
    result.assert_outcomes(passed=1)
    assert _pool_line(result) == "POOL=2x1 MINUTES=2"


def test_ini_values(pytester: pytest.Pytester, poolapp: None) -> None:
    pytester.makeini("[pytest]\nwf_workers = 1\n")
    pytester.makepyfile(test_it=TEST_SOURCE)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    assert _pool_line(result) == "POOL=1x1 MINUTES=4"  # slots default to 1


def test_marker_wins_over_options(pytester: pytest.Pytester, poolapp: None) -> None:
    pytester.makepyfile(
        test_it="""
        import pytest
        import poolapp

        @pytest.mark.wf(workers=2, slots=2, worker_queues={1: ["default"], 2: ["reports"]})
        def test_marked(wf_env):
            runs = [wf_env.start(poolapp.job, f"j{i}") for i in range(2)]
            runs.append(wf_env.start(poolapp.report, "r"))
            assert [r.result for r in runs] == ["j0", "j1", "r"]
            assert (wf_env.workers, wf_env.slots) == (2, 2)
            assert {(e.name.split("#")[0], e.worker) for e in wf_env.ledger} == {
                ("job", 1), ("report", 2)
            }
        """
    )
    pytester.runpytest("--wf-workers=1", "--wf-slots=1").assert_outcomes(passed=1)


def test_workflows_on_a_pool_pass_the_replay_check(pytester: pytest.Pytester, poolapp: None) -> None:
    pytester.makepyfile(
        test_it="""
        import pytest
        import poolapp

        @pytest.mark.wf(workers=2, slots=1)
        def test_flow(wf_env):
            run = wf_env.start(poolapp.flow, 3)
            assert run.result == ["c0", "c1", "c2"]
            assert wf_env.now.minute == 2  # two one-slot workers, three one-minute children
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_an_unfinished_workflow_on_a_pool_replays_without_warning(
    pytester: pytest.Pytester, poolapp: None
) -> None:
    # The after-test replay stops where the recorded run stopped: the workflow parked on its
    # unfinished child (its slot freed) is where it ends, not a deadlock.
    pytester.makepyfile(
        test_it="""
        import pytest
        import poolapp

        @pytest.mark.wf(workers=1, slots=1)
        def test_unfinished(wf_env):
            run = wf_env.start(poolapp.waits_for_slow)
            wf_env.advance(minutes=10)
            assert not run.done
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "WfReplayWarning" not in result.stdout.str()


def test_bad_values_are_usage_errors(pytester: pytest.Pytester, poolapp: None) -> None:
    pytester.makepyfile(test_it=TEST_SOURCE)
    result = pytester.runpytest("--wf-workers=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--wf-workers=0: expected an integer >= 1*"])
    pytester.makeini("[pytest]\nwf_slots = many\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*wf_slots = 'many': expected an integer >= 1*"])


def test_options_are_listed_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--wf-workers=N*", "*--wf-slots=M*"])
    result.stdout.fnmatch_lines(["  wf_workers (string):*", "  wf_slots (string):*"])
