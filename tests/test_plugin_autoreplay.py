"""After each passing wf_env test, every workflow it ran is replayed from its recorded history
(a fresh world, strict for finished workflows): a divergence fails the test naming the step."""

from __future__ import annotations

import pytest

APP = '''
from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "ar-app"}))

#: A module global the workflow branches on: the test changes it after the run, so a
#: replay takes another path (what a wall-clock or config dependent branch does).
MODE = {"express": False}

@app.task
def price(sku: str) -> int:
    return 10

@app.task
def charge(order: str, amount: int) -> str:
    return f"{order}:{amount}"

@app.workflow
def checkout(order: str) -> str:
    amount = checkout.wf.root.execute_task(price, "book").result
    return checkout.wf.root.execute_task(charge, order, amount).result

@app.workflow
def moody(order: str) -> str:
    amount = moody.wf.root.execute_task(price, "book").result
    if MODE["express"]:
        amount += 5
    return moody.wf.root.execute_task(charge, order, amount).result

@app.workflow
def waits(order: str) -> str:
    amount = waits.wf.root.execute_task(price, "book").result
    go = waits.wf.root.wait_for_signal("go")
    return f"{amount}/{go}"
'''

DETERMINISTIC = '''
import ar_app

def test_checkout(wf_env):
    assert wf_env.start(ar_app.checkout, "o-1").result == "o-1:10"
'''

MOODY = '''
import pytest
import ar_app

MARK
def test_moody(wf_env):
    ar_app.MODE["express"] = False
    assert wf_env.start(ar_app.moody, "o-1").result == "o-1:10"
    ar_app.MODE["express"] = True  # what the workflow read is not recorded
'''

FAILING = '''
import ar_app

def test_fails(wf_env):
    ar_app.MODE["express"] = False
    wf_env.start(ar_app.moody, "o-1").result
    ar_app.MODE["express"] = True
    assert False, "the test's own failure"
'''

IN_FLIGHT = '''
import ar_app

def test_in_flight(wf_env):
    run = wf_env.start(ar_app.waits, "o-1")
    wf_env.run_until_idle()
    assert not run.done  # waits for a signal that never comes: replays up to there
'''

CANNOT_RUN = '''
import ar_app

def test_gone(monkeypatch, wf_env):
    assert wf_env.start(ar_app.checkout, "o-1").result == "o-1:10"

    def get_task(*args, **kwargs):
        raise RuntimeError("module reloaded")

    monkeypatch.setattr(ar_app.app, "get_task", get_task)  # (undone after wf_env's teardown)
'''

DIVERGENCE = (
    "*NondeterminismError: workflow moody#1 * diverged from its recorded history at child "
    "call #2: the history recorded charge(amount=10, order=\"o-1\") but the replayed code now "
    "calls charge(amount=15, order=\"o-1\")*"
)


def _files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        ar_app=APP,
        test_det=DETERMINISTIC,
        test_moody=MOODY.replace("MARK", ""),
        test_moody_off=MOODY.replace("MARK", "@pytest.mark.wf(replay=False)"),
        test_moody_on=MOODY.replace("MARK", "@pytest.mark.wf(replay=True)"),
        test_fails=FAILING,
        test_flight=IN_FLIGHT,
        test_gone=CANNOT_RUN,
    )
    pytester.syspathinsert()


def test_every_workflow_is_replayed_after_its_test(pytester: pytest.Pytester) -> None:
    _files(pytester)
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    # det, moody (then its replay errors), moody_off, moody_on (errors), flight, gone pass.
    result.assert_outcomes(passed=6, failed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "ERROR test_moody.py::test_moody - *Nondeterminism*",
            "ERROR test_moody_on.py::test_moody - *Nondeterminism*",
        ],
        consecutive=False,
    )
    out = result.stdout.str()
    # The divergence names the step, the opt-outs and the plugin's usual rerun line.
    result.stdout.fnmatch_lines(
        [DIVERGENCE + "--wf-no-replay-check*", "*pytest 'test_moody.py::test_moody' --wf-seed=*"]
    )
    # A test that failed on its own gets no replay error on top; nor the opted-out one.
    assert "ERROR test_fails.py" not in out and "ERROR test_moody_off.py" not in out
    # A replay that cannot run is a warning, not an error.
    assert "ERROR test_gone.py" not in out
    result.stdout.fnmatch_lines(["*WfReplayWarning: *module reloaded*--wf-no-replay-check*"])


@pytest.mark.parametrize("how", ["option", "ini"])
def test_opt_out_per_run(pytester: pytest.Pytester, how: str) -> None:
    _files(pytester)
    args = ["-p", "no:randomly", "test_moody.py", "test_moody_on.py"]
    if how == "option":
        args.append("--wf-no-replay-check")
    else:
        pytester.makeini("[pytest]\nwf_replay_check = false\n")
    result = pytester.runpytest(*args)
    # Off for the run; the marker's replay=True still wins for its test.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["ERROR test_moody_on.py::test_moody - *Nondeterminism*"])
