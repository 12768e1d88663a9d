"""A waker killed between its wake claim and the end of pynenc's reroute strands nothing: the
timer service finishes the wake once the grace (``engine_wake_grace_sec``) has passed.

The death is simulated in the waker's own thread: at one of the three points a SIGKILL can
land (after the claim, after PAUSED -> KILLED, inside pynenc's reroute between REROUTED and
the broker message) the waker raises a ``BaseException`` nothing catches, exactly leaving
what a killed process leaves. The later tick is called with a clock past the grace (no sleep):
waits are bounded polls of conditions.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import _service, _suspend, schema, signal_workflow
from pynenc_wf_testing.engine.atomic import atomic_store
from tests.production import prod_app as pa
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
]

PAUSED = InvocationStatus.PAUSED
#: where the waker dies, and the status it leaves the workflow in
STAGES = {
    "after the claim": PAUSED,
    "after KILLED": InvocationStatus.KILLED,
    "between REROUTED and the message": InvocationStatus.REROUTED,
}


class WakerKilled(BaseException):
    """Stands for the SIGKILL: nothing in the engine or pynenc catches it."""


def kill_waker_at(stage: str, prod: Production, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test's own thread die at ``stage`` of its next wake (runner threads of this
    process go on unaffected)."""
    waker = threading.get_ident()

    def dying(original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == waker:
                raise WakerKilled(stage)
            return original(*args, **kwargs)

        return call

    orchestrator = prod.app.orchestrator
    if stage == "after the claim":
        for name in ("reroute_paused", "_reroute_if_paused", "_mark_rerouted"):
            monkeypatch.setattr(_suspend, name, dying(getattr(_suspend, name)))
    elif stage == "after KILLED":
        set_status = orchestrator.set_invocation_status

        def dies_at_rerouted(invocation_id: Any, status: Any, *args: Any) -> Any:
            if status == InvocationStatus.REROUTED and threading.get_ident() == waker:
                raise WakerKilled(stage)
            return set_status(invocation_id, status, *args)

        monkeypatch.setattr(orchestrator, "set_invocation_status", dies_at_rerouted)
    else:  # a wake routes one invocation, a burst a group at once
        for name in ("route_invocation", "route_invocations"):
            monkeypatch.setattr(orchestrator, name, dying(getattr(orchestrator, name)))


def suspended_and_left(prod: Production, runner: Any, run: Any) -> None:
    """PAUSED and its thread gone: the suspension's own re-check is over (it did not wake
    itself), so the next waker is the one that reroutes it."""
    workflow_id = str(run.invocation_id)

    def left() -> bool:
        threads = [
            str(info.invocation.invocation_id)
            for info in list(runner.threads.values()) if info.thread.is_alive()
        ]
        return prod.status(run) == PAUSED and workflow_id not in threads

    prod.wait_until(left, timeout=60)


def notes(prod: Production) -> list[str]:
    return [m for m, _ in atomic_store(prod.app).due(schema.WAKES_CLAIMED, float("inf"))]


def use_state(state: str, prod: Production, request: pytest.FixtureRequest) -> None:
    if state == "redis":
        prod.use_redis(request.getfixturevalue("redis_url"))


@pytest.mark.parametrize("state", ["sqlite", "redis"])
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_signal_whose_waker_died_mid_wake_is_delivered_by_a_later_tick(
    stage: str, state: str, prod: Production, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_state(state, prod, request)
    runner = prod.start_runner()
    run = pa.await_signal("go")
    suspended_and_left(prod, runner, run)
    workflow_id = str(run.invocation_id)
    store = atomic_store(prod.app)

    kill_waker_at(stage, prod, monkeypatch)
    with pytest.raises(WakerKilled):
        signal_workflow(prod.app, run, "go", "delivered")
    monkeypatch.undo()
    # what the dead waker leaves: the claim spent, the workflow stuck, and its notes (the
    # sender's, written before it stored the signal, and its wake's)
    assert store.get(schema.wake_claim(workflow_id, 1)) == "woken"
    assert prod.status(run) == STAGES[stage]
    assert sorted(notes(prod)) == [f"{workflow_id} * 1 go", f"{workflow_id} 1"]
    # another waker cannot help (the claim is spent) and within the grace nothing is
    # finished (the waker may still be alive and routing it)
    assert not _suspend.wake(prod.app, workflow_id)
    assert _suspend.finish_stranded(prod.app, store, time.time()) == 0
    assert prod.status(run) == STAGES[stage]

    later = time.time() + _suspend.wake_grace_seconds(prod.app) + 1
    _service.tick(prod.app, store, now=later)
    assert prod.result(run, timeout=60)[0] == "delivered"
    assert notes(prod) == []
    assert store.get(schema.WAKES_FINISHED) == "1"

    def history() -> list[InvocationStatus]:
        return [
            h.status_record.status
            for h in prod.app.state_backend.get_history(run.invocation_id)
        ]

    # pynenc may write the last history entry just after the status
    prod.wait_until(lambda: InvocationStatus.SUCCESS in history(), timeout=30)
    assert history().count(InvocationStatus.SUCCESS) == 1
    assert history().count(PAUSED) == 1  # woken once, never suspended again


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_timer_services_burst_whose_runner_died_mid_wake_is_finished(
    stage: str, prod: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = prod.start_runner()
    run = pa.sleeper(600.0)
    suspended_and_left(prod, runner, run)
    workflow_id = str(run.invocation_id)
    store = atomic_store(prod.app)

    kill_waker_at(stage, prod, monkeypatch)
    with pytest.raises(WakerKilled):
        _suspend.wake_due(prod.app, [workflow_id])  # the tick's path for due deadlines
    monkeypatch.undo()
    assert prod.status(run) == STAGES[stage]
    assert store.due(schema.DUE_INDEX, float("inf")) == []  # left the due-time index

    _service.tick(prod.app, store, now=time.time() + _suspend.wake_grace_seconds(prod.app) + 1)
    # routed again: its body re-runs, finds its 600 s timer not due and suspends anew
    prod.wait_until(
        lambda: prod.app.state_backend.get_workflow_data(run.workflow, schema.SUSPENDED)["gen"]
        == 2 and prod.status(run) == PAUSED,
        timeout=60,
    )
    assert notes(prod) == []


def test_a_completed_wakes_note_is_dropped_by_the_check_without_routing(
    prod: Production,
) -> None:
    runner = prod.start_runner()
    run = pa.await_signal("go")
    suspended_and_left(prod, runner, run)
    workflow_id = str(run.invocation_id)
    signal_workflow(prod.app, run, "go", 1)
    assert notes(prod) == [f"{workflow_id} 1"]  # kept until checked: the message may be lost
    assert prod.result(run, timeout=60)[0] == 1
    store = atomic_store(prod.app)
    later = time.time() + _suspend.wake_grace_seconds(prod.app) + 1
    assert _suspend.finish_stranded(prod.app, store, later) == 0
    assert notes(prod) == []
    assert store.get(schema.WAKES_FINISHED) is None


@pytest.mark.parametrize("state", ["sqlite", "redis"])
def test_a_wake_whose_broker_message_was_lost_is_routed_again(
    state: str, prod: Production, request: pytest.FixtureRequest
) -> None:
    """A runner killed after taking the message and before marking the invocation PENDING
    leaves it REROUTED with no message: pynenc's recovery does not see it, the check does."""
    use_state(state, prod, request)
    runner = prod.start_runner()
    run = pa.await_signal("go")
    suspended_and_left(prod, runner, run)
    prod.stop_runner(runner, timeout=30)
    workflow_id = str(run.invocation_id)
    signal_workflow(prod.app, run, "go", "after a lost message")
    assert prod.status(run) == InvocationStatus.REROUTED
    # the dying runner's part: take the workflow's message (others go back to their queue)
    broker = prod.app.broker
    queue = run.task.broker_queue
    taken = []
    while (message := broker.retrieve_invocation(queue)) is not None:
        taken.append(message)
    assert workflow_id in [str(message) for message in taken]
    for message in taken:
        if str(message) != workflow_id:
            broker.route_invocation(message, queue, 0.0)

    store = atomic_store(prod.app)
    assert _service.tick(prod.app, store, now=time.time() + _suspend.wake_grace_seconds(prod.app) + 1) >= 1
    prod.start_runner()
    assert prod.result(run, timeout=60)[0] == "after a lost message"
    assert store.get(schema.WAKES_FINISHED) == "1"


def test_a_note_of_a_suspension_the_workflow_left_is_dropped_without_routing(
    prod: Production,
) -> None:
    runner = prod.start_runner()
    run = pa.await_signal("go")
    suspended_and_left(prod, runner, run)
    workflow_id = str(run.invocation_id)
    store = atomic_store(prod.app)
    store.schedule(schema.WAKES_CLAIMED, f"{workflow_id} 7", 0.0)  # not its suspension now
    assert _suspend.finish_stranded(prod.app, store, time.time()) == 0
    assert notes(prod) == []
    assert prod.status(run) == PAUSED
    assert store.get(schema.wake_claim(workflow_id, 1)) is None  # nobody claimed it
    assert store.get(schema.WAKES_FINISHED) is None
    signal_workflow(prod.app, run, "go", "still wakes")
    assert prod.result(run, timeout=60)[0] == "still wakes"


def test_a_signal_whose_sender_died_before_its_claim_is_delivered(
    prod: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = prod.start_runner()
    run = pa.await_signal("go")
    suspended_and_left(prod, runner, run)
    workflow_id = str(run.invocation_id)
    store = atomic_store(prod.app)
    sender = threading.get_ident()
    put_if_absent = store.put_if_absent

    def dies_at_the_claim(key: str, value: str) -> str | None:
        if threading.get_ident() == sender and key == schema.wake_claim(workflow_id, 1):
            raise WakerKilled("before the claim")
        return put_if_absent(key, value)

    monkeypatch.setattr(store, "put_if_absent", dies_at_the_claim)
    with pytest.raises(WakerKilled):
        signal_workflow(prod.app, run, "go", "stored, not woken")
    monkeypatch.undo()
    assert store.get(schema.wake_claim(workflow_id, 1)) is None
    assert sorted(notes(prod)) == [f"{workflow_id} * 1 go", f"{workflow_id} 1"]
    assert prod.status(run) == PAUSED

    _service.tick(prod.app, store, now=time.time() + _suspend.wake_grace_seconds(prod.app) + 1)
    assert prod.result(run, timeout=60)[0] == "stored, not woken"
    assert notes(prod) == []
    assert store.get(schema.WAKES_FINISHED) == "1"


def kill_sender_at(
    point: str, prod: Production, workflow_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make the test's own thread die at ``point`` of its next ``signal_workflow``: right
    after the sender's note, before the signal is stored; or after the signal is stored,
    before the wake notes anything."""
    sender = threading.get_ident()
    if point == "before storing the signal":
        state = prod.app.state_backend
        set_data = state.set_workflow_data

        def dies_storing(identity: Any, key: str, value: Any) -> Any:
            if threading.get_ident() == sender and key == schema.signal("go", 1):
                raise WakerKilled(point)
            return set_data(identity, key, value)

        monkeypatch.setattr(state, "set_workflow_data", dies_storing)
    else:
        note_wakes = _suspend._note_wakes

        def dies_noting(*args: Any) -> Any:
            if threading.get_ident() == sender:
                raise WakerKilled(point)
            return note_wakes(*args)

        monkeypatch.setattr(_suspend, "_note_wakes", dies_noting)


SENDER_POINTS = ["before storing the signal", "after storing the signal"]


@pytest.mark.parametrize("state", ["sqlite", "redis"])
@pytest.mark.parametrize("point", SENDER_POINTS)
def test_a_signals_sender_killed_before_noting_its_wake_strands_nothing(
    point: str, state: str, prod: Production, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_state(state, prod, request)
    runner = prod.start_runner()
    run = pa.await_signal("go")
    suspended_and_left(prod, runner, run)
    workflow_id = str(run.invocation_id)
    store = atomic_store(prod.app)

    kill_sender_at(point, prod, workflow_id, monkeypatch)
    with pytest.raises(WakerKilled):
        signal_workflow(prod.app, run, "go", "sent")
    monkeypatch.undo()
    stored = prod.app.state_backend.get_workflow_data(run.workflow, schema.signal("go", 1))
    assert (stored is not None) == (point == "after storing the signal")
    # the sender's note is all it left: nothing claimed, the workflow still asleep
    assert notes(prod) == [f"{workflow_id} * 1 go"]
    assert store.get(schema.wake_claim(workflow_id, 1)) is None
    assert prod.status(run) == PAUSED
    # within the grace nothing is done: the sender may be alive and about to wake it
    assert _suspend.finish_stranded(prod.app, store, time.time()) == 0
    assert notes(prod) == [f"{workflow_id} * 1 go"]

    later = time.time() + _suspend.wake_grace_seconds(prod.app) + 1
    _service.tick(prod.app, store, now=later)
    assert f"{workflow_id} * 1 go" not in notes(prod)
    if point == "before storing the signal":
        # nothing to deliver: no wake, no spurious re-execution
        assert store.get(schema.WAKES_FINISHED) is None
        assert store.get(schema.wake_claim(workflow_id, 1)) is None
        assert prod.status(run) == PAUSED
        assert notes(prod) == []
        return
    assert prod.result(run, timeout=60)[0] == "sent"
    assert store.get(schema.WAKES_FINISHED) == "1"
    statuses = [
        h.status_record.status for h in prod.app.state_backend.get_history(run.invocation_id)
    ]
    assert statuses.count(PAUSED) == 1  # woken once


def test_a_live_senders_note_is_gone_once_it_has_woken_the_workflow(prod: Production) -> None:
    runner = prod.start_runner()
    run = pa.await_signal("go")
    suspended_and_left(prod, runner, run)
    workflow_id = str(run.invocation_id)
    signal_workflow(prod.app, run, "go", 1)
    assert notes(prod) == [f"{workflow_id} 1"]  # the wake's note; the sender's is dropped
    # a signal to a running workflow that does not wait for it leaves no note at all
    run2 = pa.await_signal("go")
    suspended_and_left(prod, runner, run2)
    signal_workflow(prod.app, run2, "other", 2)
    assert f"{run2.invocation_id} * 1 other" not in notes(prod)
    assert prod.status(run2) == PAUSED


@pytest.mark.parametrize("kind", ["mem", "sqlite", "redis"])
def test_schedule_many(kind: str, tmp_path: Any, request: pytest.FixtureRequest) -> None:
    from pynenc_wf_testing.engine.atomic import MemAtomicStore, RedisAtomicStore, SQLiteAtomicStore

    store: Any
    if kind == "mem":
        store = MemAtomicStore()
    elif kind == "sqlite":
        store = SQLiteAtomicStore(str(tmp_path / "ops.db"), "ops")
    else:
        url = request.getfixturevalue("redis_url")  # skips where no Redis client is installed
        import redis

        client = redis.Redis.from_url(url)
        prefix = f"schedule-many-{tmp_path.name}:"
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)
        store = RedisAtomicStore(client, prefix)
    store.schedule("due", "w1", 50.0)
    store.schedule_many("due", ["w2", "w1"], 10.0)  # w1 rescheduled
    store.schedule_many("due", [], 5.0)
    assert store.due("due", 20.0) == [("w1", 10.0), ("w2", 10.0)]
