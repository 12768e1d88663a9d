"""Durable suspension on pynenc's ThreadRunner + SQLite: a waiting workflow holds no thread
(PAUSED, its condition recorded) and is routed again, once, by what it waits for.

Waits are on conditions with generous bounds (``prod.wait_until``), never on sleeps.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import (
    WorkflowCancelled,
    WorkflowTimeout,
    cancel_workflow,
    describe_workflow,
    query_workflow,
    resume_workflow,
    schema,
    signal_workflow,
    start_workflow,
)
from pynenc_wf_testing.engine.atomic import (
    MemAtomicStore,
    RedisAtomicStore,
    SQLiteAtomicStore,
    atomic_store,
)
from pynenc_wf_testing.engine.exceptions import UnsupportedStateBackend
from tests.production import prod_app as pa
from tests.production.conftest import REPO, Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

PAUSED = InvocationStatus.PAUSED


def suspension(prod: Production, run: Any) -> Any:
    return prod.app.state_backend.get_workflow_data(run.workflow, schema.SUSPENDED)


def busy_threads(runner: Any) -> list[str]:
    """The invocations a ThreadRunner holds a live thread for."""
    return [
        str(info.invocation.invocation_id)
        for info in list(runner.threads.values()) if info.thread.is_alive()
    ]


def test_waiting_workflows_hold_no_thread(prod: Production) -> None:
    runner = prod.start_runner()
    runs = [pa.await_signal("go") for _ in range(12)] + [pa.sleeper(600.0) for _ in range(12)]
    prod.wait_until(lambda: all(prod.status(run) == PAUSED for run in runs), timeout=60)
    # Each recorded what wakes it ...
    assert suspension(prod, runs[0])["keys"] == [schema.wake_signal("go")]
    assert suspension(prod, runs[-1])["deadline"] is not None
    # ... and none holds a thread: at most the timer service runs (one, for all of them).
    prod.wait_until(lambda: len(busy_threads(runner)) <= 1, timeout=30)
    waiting = {str(run.invocation_id) for run in runs}
    assert not waiting & set(busy_threads(runner))
    for run in runs[:12]:
        signal_workflow(prod.app, run, "go", "ok")
    for run in runs[:12]:
        assert prod.result(run, timeout=60)[0] == "ok"


def test_a_signal_wakes_a_suspended_workflow(prod: Production) -> None:
    prod.start_runner()
    run = pa.await_signal("approve")
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    assert describe_workflow(prod.app, run).suspended == "signal 'approve'"
    signal_workflow(prod.app, run, "other", 1)  # not what it waits for: stays suspended
    assert prod.status(run) == PAUSED
    assert signal_workflow(prod.app, run, "approve", {"by": "ann"}) == 1
    payload, _ = prod.result(run)
    assert payload == {"by": "ann"}


def test_a_signal_sent_before_the_wait_does_not_suspend(prod: Production) -> None:
    prod.start_runner()
    run = pa.signals(30.0)
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    signal_workflow(prod.app, run, "go", "first")
    signal_workflow(prod.app, run, "go", "second")
    assert prod.result(run) == ["first", "second"]


def test_a_deadline_wakes_it_through_the_timer_service(prod: Production) -> None:
    prod.start_runner()
    run = pa.sleeper(0.5)
    woke = prod.result(run)
    # PAUSED lasts half a second: a loaded machine may never poll it live, so the proof
    # that it suspended (gave its thread back) is pynenc's status history ...
    prod.wait_until(
        lambda: PAUSED in [h.status_record.status for h in prod.app.state_backend.get_history(
            run.invocation_id
        )]
    )
    # ... and only the timer service wakes a suspended sleeper: it woke at the deadline it
    # recorded, not before.
    timer = prod.app.state_backend.get_workflow_data(run.workflow, schema.timer(1))
    assert woke >= dt.datetime.fromisoformat(timer).timestamp()


def test_child_completion_wakes_the_parent(prod: Production) -> None:
    prod.start_runner()
    run = pa.await_child("slow child", 1.0)
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    assert suspension(prod, run)["keys"][0].startswith("inv:")
    assert prod.result(run) == "slow child"


def test_cancel_ends_a_suspended_workflow(prod: Production) -> None:
    prod.start_runner()
    run = pa.await_signal("never")
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    cancel_workflow(prod.app, run, "customer left")
    with pytest.raises(WorkflowCancelled, match="customer left"):
        prod.result(run)


def test_run_timeout_ends_a_suspended_and_a_halted_workflow(prod: Production) -> None:
    prod.start_runner()
    waiting = start_workflow(pa.await_signal, "never", run_timeout=dt.timedelta(seconds=3))
    halted = start_workflow(pa.approval, 7, run_timeout=dt.timedelta(seconds=3))
    # both are parked before their deadline: the timer service ends them at it
    prod.wait_until(lambda: prod.status(halted) == PAUSED and prod.status(waiting) == PAUSED)
    assert query_workflow(prod.app, halted).halted == "needs approval"
    with pytest.raises(WorkflowTimeout):
        prod.result(waiting)
    with pytest.raises(WorkflowTimeout):
        prod.result(halted)


def test_resume_wakes_a_halted_workflow_and_a_resumed_wait_suspends_again(
    prod: Production,
) -> None:
    prod.start_runner()
    run = pa.await_signal("go")
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    first = suspension(prod, run)["gen"]
    resume_workflow(prod.app, run)  # not halted: re-executes and suspends again
    prod.wait_until(lambda: (suspension(prod, run) or {}).get("gen") == first + 1)
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    signal_workflow(prod.app, run, "go", 5)
    assert prod.result(run)[0] == 5


def test_a_killed_worker_loses_no_suspended_workflow(prod: Production) -> None:
    worker = prod.spawn_worker()
    timer = pa.sleeper(1.0)
    waiting = pa.await_signal("go")
    prod.wait_until(
        lambda: prod.status(timer) == PAUSED and prod.status(waiting) == PAUSED, timeout=30
    )
    prod.wait_until(lambda: service_statuses(prod) == [InvocationStatus.RUNNING], timeout=30)
    worker.kill()  # SIGKILL: the timer service dies with it, without pynenc's graceful stop
    worker.wait(10)
    prod.spawn_worker()
    # The signal's sender finds the service's heartbeat stale and starts a new one, which
    # fires the timer that passed meanwhile.
    prod.wait_until(
        lambda: time.time() - float(atomic_store(prod.app).get(schema.SERVICE_BEAT) or 0)
        > 5.5,
        timeout=30,
    )
    signal_workflow(prod.app, waiting, "go", "after the crash")
    assert prod.result(waiting, timeout=60)[0] == "after the crash"
    assert prod.result(timer, timeout=60) >= timer_deadline(prod, timer)


def service_statuses(prod: Production) -> list[InvocationStatus]:
    from pynenc.identifiers.task_id import TaskId

    service = TaskId("pynenc_wf_testing.engine._service", "engine_timer_service")
    return [
        prod.app.orchestrator.get_invocation_status(i)
        for i in prod.app.orchestrator.get_task_invocation_ids(service)
    ]


def timer_deadline(prod: Production, run: Any) -> float:
    return dt.datetime.fromisoformat(
        prod.app.state_backend.get_workflow_data(run.workflow, schema.timer(1))
    ).timestamp()


def test_many_wakers_reroute_a_suspended_workflow_once(prod: Production) -> None:
    from pynenc_wf_testing.engine import _suspend

    prod.start_runner()
    run = pa.await_signal("go")
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    signal_workflow(prod.app, run, "go", 1)  # woke it (claimed) ...
    # ... so every other waker of that suspension loses the claim
    assert not _suspend.wake(prod.app, str(run.invocation_id))
    assert prod.result(run)[0] == 1
    statuses = [h.status_record.status for h in prod.app.state_backend.get_history(run.invocation_id)]
    # resumed once: rerouted by the signal's sender, or (the signal came while it was still
    # re-checking after PAUSED) going on in its own thread, PAUSED -> RUNNING
    rerouted = statuses.count(InvocationStatus.REROUTED)
    self_woken = sum(
        1 for before, after in itertools.pairwise(statuses)
        if (before, after) == (PAUSED, InvocationStatus.RUNNING)
    )
    assert statuses.count(PAUSED) == 1
    assert rerouted + self_woken == 1


# =========================================================================== two processes


def _race(prod: Production, tmp_path: Path, calls: list[str]) -> list[Any]:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", f"from tests.production import racers; racers.{call}"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for call in calls
    ]
    # each racer marks itself ready (app built, store open); the go file releases them together
    prod.wait_until(lambda: len(list(tmp_path.glob("go.ready.*"))) == len(calls), timeout=60)
    go.write_text("go")
    outputs = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err.decode()[-2000:]
        outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return outputs


@pytest.mark.parametrize("state", ["sqlite", "redis"])
def test_two_processes_signalling_one_workflow_lose_and_duplicate_nothing(
    state: str, prod: Production, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if state == "redis" else None
    if url is not None:  # workflow data and the atomic store in the real redis-server
        prod.rebuild(redis_state_url=url)
        assert type(atomic_store(prod.app)).__name__ == "RedisAtomicStore"
    prod.start_runner()
    run = pa.await_signal("never")
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    count = 25
    call = (
        f"signal_many({prod.db_path!r}, {prod.app_id!r}, {str(run.invocation_id)!r}, "
        f"'tick', {count}, {str(tmp_path / 'go')!r}, {url!r})"
    )
    first, second = _race(prod, tmp_path, [call, call])
    assert sorted(first + second) == list(range(1, 2 * count + 1))
    payloads = [
        prod.app.state_backend.get_workflow_data(run.workflow, schema.signal("tick", k))["payload"]
        for k in range(1, 2 * count + 1)
    ]
    assert len(set(payloads)) == 2 * count
    assert prod.app.state_backend.get_workflow_data(
        run.workflow, schema.signal("tick", 2 * count + 1)
    ) is None
    # still suspended on its own signal (50 others did not wake it), which wakes it
    assert prod.status(run) == PAUSED
    signal_workflow(prod.app, run, "never", "done")
    assert prod.result(run)[0] == "done"


@pytest.mark.parametrize("state", ["sqlite", "redis"])
def test_two_processes_starting_one_workflow_id_start_one_run(
    state: str, prod: Production, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if state == "redis" else None
    if url is not None:
        prod.rebuild(redis_state_url=url)
    call = (
        f"start_same({prod.db_path!r}, {prod.app_id!r}, 'order-1', {str(tmp_path / 'go')!r}, "
        f"{url!r})"
    )
    first, second = _race(prod, tmp_path, [call, call])
    assert first == second
    runs = prod.app.orchestrator.get_task_invocation_ids(pa.await_signal.task_id)
    assert [str(r) for r in runs] == [first]


# =========================================================================== atomic stores


def _fresh_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter("race-test:*"):
        client.delete(key)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_two_processes_on_one_atomic_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, prod: Production
) -> None:
    if kind == "redis":
        target = request.getfixturevalue("redis_url")
        _fresh_redis(target)
    else:
        target = str(tmp_path / "atomic.db")
    count = 150
    call = f"atomic_race({kind!r}, {target!r}, {count}, {str(tmp_path / 'go')!r})"
    first, second = _race(prod, tmp_path, [call, call])
    # the counter handed out every number once
    assert sorted(first["counted"] + second["counted"]) == list(range(1, 2 * count + 1))
    # every claim was won by exactly one of them
    assert sorted(first["won"] + second["won"]) == list(range(count))
    store: Any = (
        SQLiteAtomicStore(target, "race") if kind == "sqlite"
        else RedisAtomicStore(__import__("redis").Redis.from_url(target), "race-test:")
    )
    assert len(store.members("members")) == 2 * count
    for i in range(count):
        winner = first["pid"] if i in first["won"] else second["pid"]
        assert store.get(f"claim:{i}") == winner


@pytest.mark.parametrize("kind", ["mem", "sqlite", "redis"])
def test_atomic_store_operations(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store: Any
    if kind == "mem":
        store = MemAtomicStore()
    elif kind == "sqlite":
        store = SQLiteAtomicStore(str(tmp_path / "ops.db"), "ops")
    else:
        url = request.getfixturevalue("redis_url")
        _fresh_redis(url)
        store = RedisAtomicStore(__import__("redis").Redis.from_url(url), "race-test:")
    assert store.put_if_absent("k", "a") is None
    assert store.put_if_absent("k", "b") == "a"
    assert not store.compare_and_set("k", "b", "c")
    assert store.compare_and_set("k", "a", "c") and store.get("k") == "c"
    assert store.compare_and_set("k", "c", None) and store.get("k") is None
    assert store.compare_and_set("k", None, "d") and store.get("k") == "d"
    assert [store.incr("n"), store.incr("n")] == [1, 2]
    store.schedule("due", "w2", 20.0)
    store.schedule("due", "w1", 10.0)
    store.schedule("due", "w3", 30.0)
    store.schedule("due", "w3", 5.0)  # rescheduled
    assert store.due("due", 20.0) == [("w3", 5.0), ("w1", 10.0), ("w2", 20.0)]
    store.unschedule("due", "w1")
    assert [m for m, _ in store.due("due", 100.0)] == ["w3", "w2"]
    store.add_member("s", "b")
    store.add_member("s", "a")
    store.add_member("s", "a")
    store.remove_member("s", "b")
    assert store.members("s") == ["a"]


def test_an_unknown_state_backend_is_a_clear_error() -> None:
    from types import SimpleNamespace

    class OtherBackend:
        pass

    app: Any = SimpleNamespace(app_id="elsewhere", state_backend=OtherBackend())
    with pytest.raises(UnsupportedStateBackend, match=r"OtherBackend.*SQLite or Memory"):
        atomic_store(app)


def test_resume_of_a_halt_with_a_run_timeout_claims_its_wake_up(prod: Production) -> None:
    prod.start_runner()
    run = start_workflow(pa.approval, 7, run_timeout=dt.timedelta(seconds=60))
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    store = atomic_store(prod.app)
    far = time.time() + 3600
    # the halt is in the due-time index at its run deadline, so the timer service ends it then
    assert [m for m, _ in store.due(schema.DUE_INDEX, far)] == [str(run.invocation_id)]
    resume_workflow(prod.app, run)
    assert prod.result(run) == 8
    assert store.due(schema.DUE_INDEX, far) == []  # the resume took it out (one claim)


def test_a_signal_stored_while_suspending_is_not_lost(prod: Production) -> None:
    # The lost wake-up: a sender that looked for a suspension before the workflow recorded
    # one wakes nothing. Stored here just before the workflow goes PAUSED (and without a
    # wake-up), the signal is found by the workflow's re-check after PAUSED: it goes on in
    # its own thread (PAUSED -> RUNNING), routed by nobody.
    run = pa.await_signal("go")
    original = prod.app.orchestrator.set_invocation_status
    stored: list[bool] = []

    def store_signal_first(invocation_id: Any, status: Any, runner_ctx: Any) -> Any:
        if status == PAUSED and str(invocation_id) == str(run.invocation_id) and not stored:
            stored.append(True)
            prod.app.state_backend.set_workflow_data(
                run.workflow, schema.signal("go", 1),
                schema.SignalRecord(payload="raced", at=dt.datetime.now(dt.UTC).isoformat()),
            )
        return original(invocation_id, status, runner_ctx)

    prod.app.orchestrator.set_invocation_status = store_signal_first
    prod.start_runner()
    assert prod.result(run)[0] == "raced"
    statuses = [h.status_record.status for h in prod.app.state_backend.get_history(run.invocation_id)]
    paused = statuses.index(PAUSED)
    assert statuses[paused + 1] == InvocationStatus.RUNNING
    assert InvocationStatus.REROUTED not in statuses[paused:]


def test_the_timer_service_is_nobodys_child(prod: Production) -> None:
    # Started by the first suspension, from inside that workflow's execution: it must not
    # be recorded as that workflow's child (it would end with it).
    from pynenc.identifiers.task_id import TaskId

    prod.start_runner()
    run = pa.await_signal("go")
    prod.wait_until(lambda: prod.status(run) == PAUSED)
    service = TaskId("pynenc_wf_testing.engine._service", "engine_timer_service")
    (service_id,) = prod.app.orchestrator.get_task_invocation_ids(service)
    invocation = prod.app.state_backend.get_invocation(service_id)
    assert invocation.parent_invocation_id is None
    assert invocation.workflow is None or str(invocation.workflow.workflow_id) != str(
        run.invocation_id
    )


def test_reading_the_sqlite_atomic_store_writes_nothing(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "read-only.db"
    sqlite3.connect(db).close()
    store = SQLiteAtomicStore(str(db), "reader")
    assert store.get("k") is None
    assert store.members("s") == [] and store.due("due", 1e12) == []
    tables = sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []  # created by the first write only
    assert store.incr("n") == 1
