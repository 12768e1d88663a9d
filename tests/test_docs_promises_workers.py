"""README "Workers, slots, queues and priorities" and docs/workers.md, probed as a user: the
README's pool example, slots in virtual time, a worker going down, and the errors."""

from __future__ import annotations

import datetime as dt

import pytest

from pynenc_wf_testing import DeadlockError, InvalidArgument, UnknownStepError, WorkflowEnv
from tests import probe_apps as pa

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def test_readme_pool_example_recovers_the_lost_job() -> None:
    with WorkflowEnv(seed=3, workers=2, slots=1, slow_workers={2: 3.0}) as env:
        env.crash_worker(1, after=MINUTE)
        runs = [env.start(pa.work, f"job-{i}") for i in range(4)]
        assert [run.result for run in runs] == [f"done job-{i}" for i in range(4)]
        outcomes = [(e.name, e.worker, e.outcome) for e in env.ledger if e.name.startswith("work")]
        assert ("work#1", 1, "crashed") in outcomes  # its first run was lost with worker 1
        assert all(w == 2 for _, w, o in outcomes if o == "success")  # worker 2 did the rest
        assert env.crashes == 1 and env.workers_down == [1]
        assert (env.workers, env.slots) == (2, 1)


def test_one_slot_runs_the_jobs_one_after_another_in_virtual_time() -> None:
    with WorkflowEnv(seed=3, workers=1, slots=1) as env:
        runs = [env.start(pa.work, f"job-{i}") for i in range(3)]
        [run.result for run in runs]
        assert env.now == START + 3 * MINUTE
    with WorkflowEnv(seed=3) as env:  # no pool: unlimited parallelism
        runs = [env.start(pa.work, f"job-{i}") for i in range(3)]
        [run.result for run in runs]
        assert env.now == START + MINUTE and env.workers is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"worker_queues": {1: ["a"]}}, "worker_queues needs a worker pool"),
        ({"workers": 2, "worker_queues": {3: ["a"]}}, "3 is not a worker of this pool"),
        ({"workers": 2, "worker_queues": {1: []}}, "must be a non-empty list of queue names"),
        ({"workers": 2, "worker_queues": {1: "a"}}, "must be a non-empty list of queue names"),
        ({"workers": 2, "slow_workers": {1: 0}}, "must be a positive number"),
        ({"workers": 2, "slow_workers": {1: float("nan")}}, "must be a positive number"),
        ({"workers": 0}, "workers must be a positive int"),
    ],
)
def test_pool_arguments_are_checked_where_given(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        WorkflowEnv(**kwargs)  # type: ignore[arg-type]


def test_crash_worker_arguments() -> None:
    with WorkflowEnv(seed=3) as env, pytest.raises(InvalidArgument, match="has no worker pool"):
        env.crash_worker(1)
    with WorkflowEnv(seed=3, workers=2) as env:
        with pytest.raises(InvalidArgument, match="there is no worker 3"):
            env.crash_worker(3)
        with pytest.raises(InvalidArgument, match="after must be a non-negative"):
            env.crash_worker(1, after=dt.timedelta(seconds=-1))
        with pytest.raises(InvalidArgument, match="after must be a non-negative"):
            env.crash_worker(1, after=5)  # type: ignore[arg-type]


def test_every_worker_down_for_good_is_a_deadlock_that_says_so() -> None:
    with WorkflowEnv(seed=3, workers=1) as env:
        env.crash_worker(1)
        with pytest.raises(DeadlockError, match="Every worker is down for good"):
            env.start(pa.work, "j").result


def test_a_queue_nobody_consumes_is_a_deadlock_naming_it() -> None:
    pattern = r"wait in queue 'default' .* no live worker"
    with WorkflowEnv(seed=3, workers=1, worker_queues={1: ["reports"]}) as env, pytest.raises(
        DeadlockError, match=pattern
    ):
        env.start(pa.work, "j").result


def test_a_crash_worker_never_reached_is_reported() -> None:
    with WorkflowEnv(seed=3, workers=2) as env:
        env.crash_worker(1, after=dt.timedelta(days=5))
        assert env.start(pa.plain, 1).result == 2
        with pytest.raises(UnknownStepError, match=r"crash_worker\(1\) due at .* never fired"):
            env.check_faults_fired()
