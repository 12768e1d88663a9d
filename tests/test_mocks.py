"""wf_env.mock / wf_env.calls: each option, child workflows with their subtree, composition
with faults, crash checks and replay, the never-called error and bad inputs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from pynenc_wf_testing import (
    InvalidArgument,
    TaskCall,
    UnknownStepError,
    UnusedMockError,
    WorkflowEnv,
)
from pynenc_wf_testing.checks.replay import Replayer
from tests import mock_apps as m


@pytest.fixture(autouse=True)
def _reset_real() -> Iterator[None]:
    m.REAL.clear()
    yield
    m.REAL.clear()


def _env(seed: int = 1) -> WorkflowEnv:
    env = WorkflowEnv(seed=seed).open()
    env.use(m.app)
    return env


def test_returns_replaces_the_task_and_is_marked_in_the_ledger() -> None:
    with _env() as env:
        env.mock(m.charge, returns="MOCK")
        result = env.start(m.fulfil, "o1").result
        assert result["charged"] == "MOCK"
        assert ("charge", "o1") not in m.REAL
        entries = {e.name: e for e in env.ledger}
        assert entries["charge#1"].mocked and entries["charge#1"].outcome == "success"
        assert entries["charge#1"].to_dict()["mocked"] is True
        assert not entries["ship#1"].mocked and "mocked" not in entries["ship#1"].to_dict()
        # the mocked call is a step of the history as any other
        assert "charge#1" in env.steps and "record:charge#1" in env.steps
        env.check_faults_fired()


def test_no_outcome_returns_none() -> None:
    with _env() as env:
        env.mock(m.ship)
        assert env.start(m.fulfil, "o1").result["shipped"] is None


def test_raises_instance_and_class() -> None:
    with _env() as env:
        env.mock(m.charge, raises=ValueError("card declined"))
        run = env.start(m.fulfil, "o1")
        with pytest.raises(ValueError, match="card declined"):
            run.result
        assert [e.outcome for e in env.ledger if e.name == "charge#1"] == ["failed"]
    with _env() as env:
        env.mock(m.charge, raises=KeyError)
        with pytest.raises(KeyError, match="mocked failure of charge"):
            env.start(m.fulfil, "o1").result


def test_side_effect_gets_the_arguments() -> None:
    seen: list[tuple[str, int]] = []

    def fake_charge(order: str, amount: int) -> str:
        seen.append((order, amount))
        return f"fake-{order}-{amount}"

    with _env() as env:
        env.mock(m.charge, side_effect=fake_charge)
        assert env.start(m.fulfil, "o7").result["charged"] == "fake-o7-25"
        assert seen == [("o7", 25)]


def test_delay_completes_at_that_virtual_instant() -> None:
    with _env() as env:
        start = env.now
        env.mock(m.charge, returns="late", delay=dt.timedelta(minutes=30))
        run = env.start(m.fulfil, "o1")
        assert run.result["took"] == 1800
        charge = next(e for e in env.ledger if e.name == "charge#1")
        assert charge.started == start.isoformat()
        assert charge.finished == (start + dt.timedelta(minutes=30)).isoformat()


def test_per_attempt_over_pynenc_retries() -> None:
    """``flaky_call`` is retried by pynenc (retry_for=Transient): one invocation, attempts
    0, 1, 2, 3 are its first run and its three retries."""
    with _env() as env:
        env.mock(
            m.flaky_call,
            per_attempt={"0": m.Transient("x"), "1-2": m.Transient, "3": "ok"},
        )
        assert env.start(m.retried, "o1").result == "ok"
        runs = [e for e in env.ledger if e.name == "flaky_call#1"]
        assert [e.outcome for e in runs] == ["retry", "retry", "retry", "success"]
        assert all(e.mocked for e in runs)
        assert len({e.invocation_id for e in runs}) == 1
        (call,) = env.calls(m.flaky_call)
        assert call.executions == 4 and call.mocked
        assert m.REAL == []


def test_per_attempt_over_engine_retries() -> None:
    """``execute_task_with_retry`` routes a fresh child per attempt: attempt n is the n-th."""
    with _env() as env:
        env.mock(m.ship, per_attempt={0: m.Transient, range(1, 3): m.Transient("again")},
                 returns="third time")
        start = env.now
        assert env.start(m.engine_retried, "o1").result == "third time"
        calls = env.calls(m.ship)
        assert len(calls) == 4 and len({c.invocation_id for c in calls}) == 4
        assert [c.kwargs for c in calls] == [{"order": "o1"}] * 4
        assert env.now - start == dt.timedelta(seconds=15)  # three 5 s backoffs


def test_per_attempt_open_range_and_missing_attempt() -> None:
    with _env() as env:
        env.mock(m.flaky_call, per_attempt={"0": m.Transient, "1+": "later"})
        assert env.start(m.retried, "o1").result == "later"
    with _env() as env:
        env.mock(m.flaky_call, per_attempt={"0": m.Transient})
        with pytest.raises(InvalidArgument, match=r"attempt 1 is not in per_attempt"):
            env.start(m.retried, "o1").result


def test_child_workflow_mocked_with_its_subtree() -> None:
    with _env() as env:
        env.mock(m.packing, returns=["boxed"])
        result = env.start(m.fulfil, "o1").result
        assert result["packed"] == ["boxed"]
        assert env.calls(m.pack) == [] and env.executions(m.pack) == 0
        assert not any(name.startswith(("pack#", "route:pack#")) for name in env.steps)
        assert [c.kwargs for c in env.calls(m.packing)] == [{"order": "o1"}]
        assert ("pack", "o1-0") not in m.REAL


def test_calls_lists_mocked_and_real_calls() -> None:
    with _env() as env:
        env.mock(m.charge, returns="x")
        env.start(m.fulfil, "o3").result
        (charge,) = env.calls(m.charge)
        assert charge == TaskCall(
            kwargs={"order": "o3", "amount": 25},
            invocation_id=charge.invocation_id,
            name="charge#1",
            executions=1,
            mocked=True,
            args=("o3", 25),
        )
        packs = env.calls(m.pack)
        assert [c.args for c in packs] == [("o3-0",), ("o3-1",)]
        assert not any(c.mocked for c in packs)


def test_crash_after_a_mocked_step() -> None:
    with _env() as env:
        env.mock(m.charge, returns="MOCK")
        env.crash_after("charge#1")
        assert env.start(m.fulfil, "o1").result["charged"] == "MOCK"
        assert env.crashes == 1
        assert [e.mocked for e in env.ledger if e.name == "charge#1"] == [True]
        env.check_faults_fired()


def test_crash_during_a_delayed_mock_repeats_its_attempt() -> None:
    """A re-execution after a crash is the same try: it gets the same outcome."""
    with _env() as env:
        env.mock(m.flaky_call, per_attempt={"0": "first", "1+": "second"},
                 delay=dt.timedelta(seconds=10))
        env.crash_during(m.flaky_call)
        assert env.start(m.retried, "o1").result == "first"
        runs = [e for e in env.ledger if e.name == "flaky_call#1"]
        assert [e.outcome for e in runs] == ["crashed", "success"]


def test_check_crash_safety_rearms_mocks_in_each_run() -> None:
    with _env() as env:
        env.mock(m.charge, side_effect=lambda order, amount: f"fake-{order}")
        env.mock(m.packing, returns=["boxed"])
        report = env.check_crash_safety(m.fulfil, "o1")
        report.assert_ok()
        assert len(report.explored) > 4
        assert m.REAL.count(("charge", "o1")) == 0
        env.check_faults_fired()  # called in the crash check's runs: not "never called"


def test_replay_of_a_mocked_history() -> None:
    with _env() as env:
        env.mock(m.charge, returns="MOCK")
        run = env.start(m.fulfil, "o1")
        run.result
        history = env.history_json()
        result = Replayer(m.app).replay(history)
        assert result.ok, result


def test_mock_never_called_is_an_error_at_the_end() -> None:
    with _env() as env:
        env.mock(m.charge, returns="x")
        env.mock(m.pack, returns="y")
        env.mock(m.packing, returns=[])  # so pack is never called
        env.start(m.fulfil, "o1").result
        with pytest.raises(UnusedMockError, match=r"wf_env\.mock\(pack\) was never called"):
            env.check_faults_fired()
        assert issubclass(UnusedMockError, UnknownStepError)


def test_mocks_are_removed_when_the_env_closes() -> None:
    import pynenc.invocation.dist_invocation as dist_inv

    original = dist_inv.run_task_sync
    with _env() as env:
        env.mock(m.charge, returns="MOCK")
        assert dist_inv.run_task_sync is not original
        env.start(m.fulfil, "o1").result
    assert dist_inv.run_task_sync is original
    with _env() as env:
        assert env.start(m.fulfil, "o1").result["charged"] == "charged-o1-25"


def test_not_a_task_of_a_used_app() -> None:
    with _env() as env:
        with pytest.raises(InvalidArgument, match="expects a pynenc task"):
            env.mock(lambda: 1)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match=r"app 'mock-tests-other' is not used"):
            env.mock(m.elsewhere, returns=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"returns": 1, "raises": ValueError}, "returns and raises conflict"),
        ({"returns": 1, "side_effect": print}, "returns and side_effect conflict"),
        ({"raises": "boom"}, "expected an exception instance or class"),
        ({"side_effect": 3}, "expected a callable"),
        ({"delay": 5}, "non-negative datetime.timedelta"),
        ({"delay": dt.timedelta(seconds=-1)}, "non-negative datetime.timedelta"),
        ({"per_attempt": {}}, "non-empty dict"),
        ({"per_attempt": {"x": 1}}, "expected an attempt number"),
        ({"per_attempt": {-1: 1}}, "attempts start at 0"),
        ({"per_attempt": {"3-1": 1}}, "ends before it starts"),
        ({"per_attempt": {"0-2": 1, "2": 3}}, "overlap"),
        ({"per_attempt": {"1+": 1, "4": 3}}, "overlap"),
    ],
)
def test_bad_arguments_fail_at_once(kwargs: dict[str, Any], match: str) -> None:
    with _env() as env:
        with pytest.raises(InvalidArgument, match=match):
            env.mock(m.charge, **kwargs)
        assert env.world.mocks == {}


def test_mock_on_a_closed_env() -> None:
    env = _env()
    env.close()
    with pytest.raises(InvalidArgument, match="closed"):
        env.mock(m.charge, returns=1)


def test_plugin_fixture_reports_an_unused_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        mockapp=f"""
from pynenc import Pynenc

app = Pynenc(config_values={{"app_id": "mockapp-{pytester.path.name}"}})


@app.task
def used(x: int) -> int:
    return x


@app.task
def unused(x: int) -> int:
    return x


@app.workflow
def flow(n: int) -> int:
    return flow.wf.root.execute_task(used, n).result
""",
        test_inner="""
import mockapp


def test_it(wf_env):
    wf_env.use(mockapp.app)
    wf_env.mock(mockapp.used, returns=5)
    wf_env.mock(mockapp.unused, returns=6)
    assert wf_env.start(mockapp.flow, 1).result == 5
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:xdist")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*wf_env.mock(unused) was never called*"])
