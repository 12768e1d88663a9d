"""Priorities, queues, concurrency limits, workers with slots and a worker going down
(``WorkflowEnv(workers=N, slots=M)``, ``crash_worker``; docs/workers.md)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pynenc_wf_testing import DeadlockError, InvalidArgument, WorkflowEnv, WorkflowTestingError
from pynenc_wf_testing.runtime.ledger import Execution
from tests import pool_apps as apps

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _reset() -> None:
    apps.reset()


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _offset(iso: str | None) -> float:
    assert iso is not None
    return (dt.datetime.fromisoformat(iso) - T0).total_seconds()


def _runs(env: WorkflowEnv, prefix: str) -> list[Execution]:
    return [e for e in env.ledger if e.name.startswith(prefix)]


# ------------------------------------------------------------------------------ priorities


def test_one_slot_runs_the_high_priority_tasks_first() -> None:
    with WorkflowEnv(seed=5, workers=1, slots=1) as env:
        low = [env.start(apps.background, f"low{i}") for i in range(2)]
        plain = env.start(apps.work, "plain")
        high = [env.start(apps.urgent, f"high{i}") for i in range(2)]
        assert [r.result for r in [*low, plain, *high]] == ["low0", "low1", "plain", "high0", "high1"]
        # started one after the other, a virtual minute apart, highest priority first
        order = [(label, (start - T0).total_seconds()) for label, start, _ in apps.DONE]
        assert order == [
            ("high0", 0), ("high1", 60), ("plain", 120), ("low0", 180), ("low1", 240),
        ]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_without_a_pool_a_ready_high_priority_task_still_starts_first(seed: int) -> None:
    with WorkflowEnv(seed=seed) as env:
        for i in range(3):
            env.start(apps.background, f"low{i}", 1)
        for i in range(3):
            env.start(apps.urgent, f"high{i}", 1)
        env.run_until_idle()
        env.advance(seconds=1)
        started = [e.task.rsplit(".", 1)[-1] for e in env.ledger]
        assert started == ["urgent"] * 3 + ["background"] * 3
        # unlimited parallelism: everything ran at once
        assert {(s, e) for _, s, e in apps.DONE} == {(_at(0), _at(1))}


def test_broker_priority_rules_override_the_task_option() -> None:
    # favoured has priority=50 of its own; the broker rule gives boosted 90
    with WorkflowEnv(seed=1, workers=1, slots=1) as env:
        first = env.start(apps.favoured, "favoured")
        second = env.start(apps.boosted, "boosted")
        assert (first.result, second.result) == ("favoured", "boosted")
    assert [label for label, _, _ in apps.DONE] == ["boosted", "favoured"]


# ------------------------------------------------------------------------------ concurrency


def _overlaps(spans: list[tuple[dt.datetime, dt.datetime]]) -> bool:
    ordered = sorted(spans)
    return any(b_start < a_end for (_, a_end), (b_start, _) in itertools.pairwise(ordered))


@pytest.mark.parametrize("pool", [None, (2, 2), (3, 1)])
def test_running_concurrency_task_never_runs_two_at_once(pool: tuple[int, int] | None) -> None:
    kwargs: dict[str, Any] = {} if pool is None else {"workers": pool[0], "slots": pool[1]}
    with WorkflowEnv(seed=4, **kwargs) as env:
        runs = [env.start(apps.exclusive, f"x{i}") for i in range(3)]
        assert sorted(r.result for r in runs) == ["x0", "x1", "x2"]
        spans = [(start, end) for _, start, end in apps.DONE]
        assert len(spans) == 3
        assert not _overlaps(spans)
        assert env.now == _at(180)
        # while one ran, another task was not held back
    with WorkflowEnv(seed=4, **kwargs) as env:
        runs = [env.start(apps.exclusive, f"y{i}") for i in range(2)]
        other = env.start(apps.work, "free")
        assert other.result == "free"
        assert env.now == _at(60)


@pytest.mark.parametrize("pool", [None, (2, 2)])
def test_running_concurrency_keys_serializes_one_key_only(pool: tuple[int, int] | None) -> None:
    kwargs: dict[str, Any] = {} if pool is None else {"workers": pool[0], "slots": pool[1]}
    with WorkflowEnv(seed=8, **kwargs) as env:
        runs = [env.start(apps.per_account, account, str(i))
                for i, account in enumerate(["a", "a", "b", "a"])]
        assert [r.result for r in runs] == ["a:0", "a:1", "b:2", "a:3"]
        spans: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
        for label, start, end in apps.DONE:
            spans.setdefault(label.split(":")[0], []).append((start, end))
        assert not _overlaps(spans["a"])  # account a: one at a time, three minutes
        assert spans["b"] == [(_at(0), _at(60))]  # account b did not wait for a
        assert env.now == _at(180)


def test_running_concurrency_without_reroute_is_a_clear_error() -> None:
    with WorkflowEnv(seed=2, workers=1, slots=2) as env:
        first = env.start(apps.exclusive_or_drop, "a")
        second = env.start(apps.exclusive_or_drop, "b")
        assert first.result == "a"
        with pytest.raises(WorkflowTestingError, match="reroute_on_concurrency_control=True"):
            second.result
        assert [label for label, _, _ in apps.DONE] == ["a"]


# ------------------------------------------------------------------------------ slots


def test_saturated_slots_delay_work_in_virtual_time() -> None:
    def finish(**pool: int) -> tuple[dt.datetime, list[float]]:
        apps.reset()
        with WorkflowEnv(seed=9, **pool) as env:
            runs = [env.start(apps.work, f"w{i}") for i in range(4)]
            for run in runs:
                run.result
            starts = sorted(_offset(e.started) for e in _runs(env, "work#"))
            return env.now, starts

    assert finish() == (_at(60), [0, 0, 0, 0])  # no pool: unlimited parallelism
    assert finish(workers=1, slots=4) == (_at(60), [0, 0, 0, 0])
    assert finish(workers=2, slots=1) == (_at(120), [0, 0, 60, 60])
    assert finish(workers=1, slots=1) == (_at(240), [0, 60, 120, 180])


def test_each_worker_uses_its_own_slots_and_the_ledger_names_it() -> None:
    with WorkflowEnv(seed=3, workers=2, slots=1) as env:
        runs = [env.start(apps.work, f"w{i}") for i in range(4)]
        assert [r.result for r in runs] == ["w0", "w1", "w2", "w3"]
        executions = _runs(env, "work#")
        assert sorted(e.worker for e in executions) == [1, 1, 2, 2]
        for worker in (1, 2):
            spans = [
                (dt.datetime.fromisoformat(e.started), dt.datetime.fromisoformat(e.finished or ""))
                for e in executions
                if e.worker == worker
            ]
            assert not _overlaps(spans)
        assert all(e.to_dict()["worker"] in (1, 2) for e in executions)
        assert env.workers == 2 and env.slots == 1
    with WorkflowEnv(seed=3) as env:
        env.start(apps.work, "w").result
        assert env.ledger[0].worker == 0
        assert "worker" not in env.ledger[0].to_dict()  # histories without a pool keep bytes
        assert env.workers is None and env.slots is None


def test_a_slow_worker_takes_longer_and_holds_up_what_it_fetched() -> None:
    with WorkflowEnv(seed=2, workers=2, slots=1, slow_workers={2: 3.0}) as env:
        runs = [env.start(apps.work, f"w{i}") for i in range(4)]
        assert [r.result for r in runs] == ["w0", "w1", "w2", "w3"]
        executions = _runs(env, "work#")
        for execution in executions:
            took = _offset(execution.finished) - _offset(execution.started)
            assert took == (180 if execution.worker == 2 else 60), execution
        # worker 1 got through three jobs while worker 2 did one
        assert sorted(e.worker for e in executions) == [1, 1, 1, 2]
        assert env.now == _at(180)
    with WorkflowEnv(seed=2, workers=2, slots=1, slow_workers={2: 3.0}) as env:
        nap = env.start(apps.napper, "n")
        assert nap.result == "n-after-nap"
        # a durable timer is not work: the hour is an hour on any worker
        label, started, _ = apps.DONE[-1]
        assert (label, started) == ("n-after-nap", _at(3600))


def test_a_durable_sleep_holds_no_slot() -> None:
    with WorkflowEnv(seed=1, workers=1, slots=1) as env:
        nap = env.start(apps.napper, "n")
        jobs = [env.start(apps.work, f"w{i}", 600) for i in range(3)]
        assert nap.result == "n-after-nap"
        assert [j.result for j in jobs] == ["w0", "w1", "w2"]
        # the three jobs ran one after the other during the workflow's hour of sleep
        starts = [(label, (start - T0).total_seconds()) for label, start, _ in apps.DONE]
        assert starts[:3] == [("w0", 0), ("w1", 600), ("w2", 1200)]
        assert starts[3] == ("n-after-nap", 3600)


def test_a_woken_workflow_waits_for_a_slot() -> None:
    with WorkflowEnv(seed=1, workers=1, slots=1) as env:
        nap = env.start(apps.napper, "n")
        env.run_until_idle()  # the workflow is asleep now: its slot is free
        job = env.start(apps.work, "long", 2 * 3600)
        assert nap.result == "n-after-nap"
        assert job.result == "long"
        # it woke at +1h but the only slot was busy until +2h: then its child ran a minute
        assert [
            ("long", _at(0), _at(7200)),
            ("n-after-nap", _at(7200), _at(7260)),
        ] == apps.DONE


def test_waiting_for_children_holds_no_slot() -> None:
    with WorkflowEnv(seed=1, workers=1, slots=1) as env:
        run = env.start(apps.fan_out, 3)
        assert run.result == ["child-0", "child-1", "child-2"]
        assert env.now == _at(180)  # one slot: the children ran one after the other


# ------------------------------------------------------------------------------ queues


def test_a_worker_runs_only_the_queues_it_consumes() -> None:
    with WorkflowEnv(seed=6, workers=2, slots=1, worker_queues={1: ["default"], 2: ["reports"]}) as env:
        runs = [env.start(apps.report, "r0"), env.start(apps.work, "w0"),
                env.start(apps.report, "r1"), env.start(apps.work, "w1")]
        assert [r.result for r in runs] == ["r0", "w0", "r1", "w1"]
        by_worker = {(e.name.split("#")[0], e.worker) for e in env.ledger}
        assert by_worker == {("report", 2), ("work", 1)}
        assert env.now == _at(120)


def test_a_queue_no_worker_consumes_is_a_deadlock_that_says_so() -> None:
    with WorkflowEnv(seed=6, workers=2, worker_queues={1: ["default"], 2: ["default"]}) as env:
        run = env.start(apps.report, "r")
        with pytest.raises(DeadlockError) as info:
            run.result
        message = str(info.value)
        assert "queue 'reports'" in message
        assert "no live worker consumes it" in message


# ------------------------------------------------------------------------------ a worker down


def test_one_worker_down_the_other_keeps_going_and_pynenc_recovers() -> None:
    with WorkflowEnv(seed=3, workers=2, slots=1) as env:
        env.crash_worker(1, after=dt.timedelta(minutes=1))
        runs = [env.start(apps.work, f"w{i}", 600) for i in range(2)]
        assert [r.result for r in runs] == ["w0", "w1"]
        assert env.crashes == 1
        assert env.workers_down == [1]
        jobs = _runs(env, "work#")
        lost = [e for e in jobs if e.outcome == "crashed"]
        assert [(e.worker, _offset(e.started), _offset(e.finished)) for e in lost] == [(1, 0, 60)]
        # worker 2 finished its own job untouched, then ran the recovered one
        done = [(e.name, e.worker, e.attempt) for e in jobs if e.outcome == "success"]
        assert sorted(w for _, w, _ in done) == [2, 2]
        assert (lost[0].name, 2, 2) in done
        # recovered by pynenc's recovery core tasks, run by worker 2
        recovery = [e for e in env.ledger if e.task.endswith("recover_running_invocations")]
        assert recovery and {e.worker for e in recovery} == {2}
        crash = [s for s in env.history if s.kind == "crash"]
        assert len(crash) == 1 and crash[0].detail["pool_worker"] == 1
        assert crash[0].detail["lost"] == [f"{lost[0].name} [{lost[0].invocation_id[:8]}]"]
        text = env.render()
        assert "rerun: WorkflowEnv(seed=3, workers=2, slots=1) (in pytest" in text
        assert "x crash: crash_worker(1)" in text
        assert "2 runs: crashed, success on w1, w2" in text


def test_a_worker_comes_back_after_down_for() -> None:
    with WorkflowEnv(seed=3, workers=2, slots=1) as env:
        env.crash_worker(2, after=dt.timedelta(seconds=30), down_for=dt.timedelta(minutes=2))
        runs = [env.start(apps.work, f"w{i}", 60) for i in range(4)]
        assert sorted(r.result for r in runs) == ["w0", "w1", "w2", "w3"]
        assert env.workers_down == []
        restarts = [s for s in env.history if s.kind == "restart"]
        assert [(s.detail["pool_worker"], s.time) for s in restarts] == [
            (2, _at(150).isoformat())
        ]
        # after its restart worker 2 ran again (under a new runner id)
        assert any(e.worker == 2 and _offset(e.started) >= 150 for e in env.ledger)


def test_every_worker_down_for_good_is_a_deadlock_that_says_so() -> None:
    with WorkflowEnv(seed=3, workers=1) as env:
        env.crash_worker(1, after=dt.timedelta(seconds=30))
        run = env.start(apps.work, "w", 60)
        with pytest.raises(DeadlockError, match="Every worker is down for good"):
            run.result


def test_a_whole_process_crash_restarts_every_worker() -> None:
    with WorkflowEnv(seed=2, workers=2, slots=1) as env:
        env.crash_after("work#1")
        runs = [env.start(apps.work, f"w{i}") for i in range(3)]
        assert sorted(r.result for r in runs) == ["w0", "w1", "w2"]
        assert env.crashes == 1
        assert {e.worker for e in env.ledger} == {1, 2}


def test_crash_checks_run_on_the_pool() -> None:
    with WorkflowEnv(seed=1, workers=1, slots=1) as env:
        report = env.check_crash_safety(apps.fan_out, 2)
        assert report.ok, report
        assert len(report.explored) > 5
        # the golden run ran on the one-slot pool: its two children one after the other
        assert report.golden is not None
        assert report.golden.virtual_seconds == 120
    with WorkflowEnv(seed=1) as env:
        report = env.check_crash_safety(apps.fan_out, 2)
        assert report.golden is not None and report.golden.virtual_seconds == 60


# ------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"workers": 0}, "workers must be a positive int"),
        ({"workers": True}, "workers must be a positive int"),
        ({"slots": "2"}, "slots must be a positive int"),
        ({"worker_queues": {1: ["default"]}}, "worker_queues needs a worker pool"),
        ({"workers": 2, "worker_queues": {3: ["default"]}}, "numbered 1 to 2"),
        ({"workers": 2, "worker_queues": {1: "default"}}, "non-empty list of queue names"),
        ({"workers": 2, "worker_queues": {1: ["bad name"]}}, "Invalid queue name"),
        ({"workers": 2, "worker_queues": [["default"]]}, "must map a worker number"),
        ({"workers": 1, "worker_queues": {1: ["a", "a"]}}, "names a queue twice"),
        ({"slow_workers": {1: 2.0}}, "slow_workers needs a worker pool"),
        ({"workers": 2, "slow_workers": {2: 0}}, "must be a positive number"),
        ({"workers": 2, "slow_workers": {2: float("inf")}}, "must be a positive number"),
        ({"workers": 2, "slow_workers": {0: 2.0}}, "numbered 1 to 2"),
        ({"workers": 2, "slow_workers": [2.0]}, "must map a worker number"),
    ],
)
def test_bad_pool_arguments_are_refused_at_the_call(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        WorkflowEnv(**kwargs)


def test_bad_crash_worker_calls_are_refused_at_the_call() -> None:
    with WorkflowEnv(seed=1) as env, pytest.raises(InvalidArgument, match="no worker pool"):
        env.crash_worker(1)
    with WorkflowEnv(seed=1, workers=2) as env:
        with pytest.raises(InvalidArgument, match="there is no worker 3"):
            env.crash_worker(3)
        with pytest.raises(InvalidArgument, match="after must be a non-negative"):
            env.crash_worker(1, after=dt.timedelta(seconds=-1))
        with pytest.raises(InvalidArgument, match="after must be a non-negative"):
            env.crash_worker(1, after=5)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="down_for must be"):
            env.crash_worker(1, down_for=3)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="worker must be a worker number"):
            env.crash_worker("1")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ determinism


def pool_scenario(seed: int) -> dict[str, Any]:
    apps.reset()
    with WorkflowEnv(seed=seed, workers=3, slots=2, worker_queues={3: ["reports"]}) as env:
        env.crash_worker(2, after=dt.timedelta(seconds=90), down_for=dt.timedelta(minutes=20))
        runs = [env.start(apps.fan_out, 4), env.start(apps.napper, "n")]
        runs += [env.start(apps.urgent, "u", 120), env.start(apps.background, "b", 30)]
        runs += [env.start(apps.report, f"r{i}", 45) for i in range(3)]
        runs += [env.start(apps.exclusive, f"x{i}", 50) for i in range(2)]
        results = [r.result for r in runs]
        return {
            "history": env.history_json(),
            "results": results,
            "ledger": [e.to_dict() for e in env.ledger],
        }


SCRIPT = """
import json, sys
from tests.test_pool import pool_scenario
json.dump(pool_scenario(int(sys.argv[1])), sys.stdout)
"""


def test_a_pool_run_is_the_same_in_any_process_and_hash_seed() -> None:
    expected = json.loads(json.dumps(pool_scenario(11)))
    assert expected == json.loads(json.dumps(pool_scenario(11)))
    assert any(e.get("worker") == 3 for e in expected["ledger"])
    for hash_seed in ("0", "4242"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": hash_seed,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, "11"], cwd=ROOT, env=env, capture_output=True,
            text=True, check=True,
        )
        assert json.loads(out.stdout) == expected


def test_the_html_report_names_the_workers() -> None:
    from pynenc_wf_testing.env.report import render_html

    with WorkflowEnv(seed=3, workers=2, slots=1) as env:
        env.crash_worker(1, after=dt.timedelta(seconds=30))
        runs = [env.start(apps.work, f"w{i}") for i in range(2)]
        [r.result for r in runs]
        page = render_html(env, title="pool")
        assert "<th>worker</th>" in page
        assert "<td>w1</td>" in page and "<td>w2</td>" in page
        assert "run 1: crashed on worker 1" in page
        assert "work#1 [" in page and "] on w1, w2</text>" in page  # the timeline's row label
    with WorkflowEnv(seed=3) as env:
        env.start(apps.work, "w").result
        page = render_html(env, title="no pool")
        assert "<th>worker</th>" not in page and "on worker" not in page


def test_a_worker_down_that_never_fired_is_reported() -> None:
    from pynenc_wf_testing import UnknownStepError

    with WorkflowEnv(seed=1, workers=2) as env:
        env.crash_worker(2, after=dt.timedelta(hours=1))
        env.start(apps.work, "w").result
        with pytest.raises(UnknownStepError, match=r"crash_worker\(2\) due at 2030-01-01T01:00:00"):
            env.check_faults_fired()
        env.advance(hours=1)
        env.check_faults_fired()  # fired now
        assert env.workers_down == [2]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_pool_runs_the_same_on_every_backend(backend: str) -> None:
    def scenario(name: str) -> tuple[list[Any], dt.datetime, list[tuple[str, int, str]]]:
        apps.reset()
        with WorkflowEnv(seed=3, workers=2, slots=1, backend=name) as env:
            env.crash_worker(1, after=dt.timedelta(minutes=1))
            runs = [env.start(apps.work, f"w{i}", 600) for i in range(2)]
            runs += [env.start(apps.fan_out, 2), env.start(apps.urgent, "u")]
            runs += [env.start(apps.exclusive, f"x{i}") for i in range(2)]
            results = [r.result for r in runs]
            return results, env.now, [(e.name, e.worker, e.outcome) for e in env.ledger]

    expected = scenario("memory")
    assert expected[0] == ["w0", "w1", ["child-0", "child-1"], "u", "x0", "x1"]
    assert ("urgent#1", 1, "crashed") in expected[2]  # the first fetched: highest priority
    assert scenario(backend) == expected


def test_cron_fires_on_time_while_a_worker_is_saturated() -> None:
    with WorkflowEnv(seed=1, workers=2, slots=1) as env:
        env.use(apps.cron_app)
        nap = env.start(apps.napper, "n")
        env.run_until_idle()  # asleep for an hour: no slot held
        long = env.start(apps.work, "long", 2 * 3600)  # one worker busy for two hours
        env.advance(hours=2)
        # from +1h the woken workflow waits for a slot on its worker; the other worker runs
        # every per-minute tick on time all the same
        minutes = [round((t - T0).total_seconds() / 60) for t in apps.TICKS]
        assert minutes == list(range(121))
        assert long.result == "long"
        assert nap.result == "n-after-nap"


def test_the_pool_benchmark_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import pool as bench_pool

    assert bench_pool.main(["--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    configs = report["configs"]
    assert set(configs) == {"no pool", "4 x 8", "1 x 1", "mixed prio"}
    for data in configs.values():
        assert data["min_cpu_seconds"] > 0 and data["ratio"] > 0
    # 4 workflows x 3 one-second steps: virtual time is what the pool changes (no timing here)
    assert {name: data["virtual_seconds"] for name, data in configs.items()} == {
        "no pool": 3, "4 x 8": 3, "1 x 1": 12, "mixed prio": 3,
    }


def test_slots_alone_mean_one_worker_and_workers_alone_one_slot_each() -> None:
    with WorkflowEnv(seed=1, slots=3) as env:
        assert (env.workers, env.slots) == (1, 3)
        runs = [env.start(apps.work, f"w{i}") for i in range(6)]
        [r.result for r in runs]
        assert env.now == _at(120)
    with WorkflowEnv(seed=1, workers=3) as env:
        assert (env.workers, env.slots) == (3, 1)
        runs = [env.start(apps.work, f"w{i}") for i in range(6)]
        [r.result for r in runs]
        assert env.now == _at(120)
        assert sorted(e.worker for e in env.ledger) == [1, 1, 2, 2, 3, 3]


def test_work_a_dead_worker_fetched_but_never_started_is_recovered_as_pending() -> None:
    with WorkflowEnv(seed=3, workers=2, slots=1) as env:
        runs = [env.start(apps.work, f"w{i}") for i in range(2)]
        env.crash_worker(1)  # now: worker 1 has fetched its job (PENDING) but not started it
        assert [r.result for r in runs] == ["w0", "w1"]
        crash = next(s for s in env.history if s.kind == "crash")
        assert len(crash.detail["lost"]) == 1
        jobs = _runs(env, "work#")
        # the lost job never ran on worker 1: no crashed execution, one run on worker 2 later
        assert [(e.worker, e.outcome) for e in jobs] == [(2, "success"), (2, "success")]
        assert _offset(jobs[1].started) > 0
        assert any(e.task.endswith("recover_pending_invocations") for e in env.ledger)
