"""The timer service sleeps until the earliest deadline it knows of, not a whole tick."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pynenc_wf_testing.engine import _service, schema
from pynenc_wf_testing.engine._timers import start_timer_service
from pynenc_wf_testing.engine.atomic import (
    MemAtomicStore,
    RedisAtomicStore,
    SQLiteAtomicStore,
    atomic_store,
)
from tests.production import prod_app as pa
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
]


@pytest.mark.parametrize("kind", ["mem", "sqlite", "redis"])
def test_due_and_next_reads_the_due_members_and_the_next_deadline(
    kind: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    store: Any
    if kind == "mem":
        store = MemAtomicStore()
    elif kind == "sqlite":
        store = SQLiteAtomicStore(str(tmp_path / "ops.db"), "ops")
        assert store.due_and_next("due", 10.0) == ([], None)  # no table yet: nothing due
    else:
        url = request.getfixturevalue("redis_url")
        import redis

        client = redis.Redis.from_url(url)
        prefix = f"due-next-{tmp_path.name}:"
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)
        store = RedisAtomicStore(client, prefix)
    assert store.due_and_next("due", 10.0) == ([], None)
    store.schedule("due", "a", 5.0)
    store.schedule("due", "b", 12.5)
    store.schedule("due", "c", 30.0)
    store.schedule("other", "x", 11.0)  # another index does not count
    assert store.due_and_next("due", 10.0) == ([("a", 5.0)], 12.5)
    assert store.due_and_next("due", 12.5) == ([("a", 5.0), ("b", 12.5)], 30.0)
    assert store.due_and_next("due", 40.0, limit=1) == ([("a", 5.0)], None)
    assert store.due_and_next("due", 1.0) == ([], 5.0)
    assert store.due("due", 12.5) == [("a", 5.0), ("b", 12.5)]


def test_the_service_sleeps_until_the_next_deadline_within_a_tick() -> None:
    now = time.time()
    assert _service._sleep_for(0.25, None) == 0.25  # nothing indexed: a whole tick
    assert _service._sleep_for(0.25, now + 60) == 0.25  # due after the tick
    assert 0.0 < _service._sleep_for(0.25, now + 0.1) <= 0.1  # due within it: until then
    assert _service._sleep_for(0.25, now - 1) == 0.0  # due already
    assert _service._sleep_for(-0.01, None) == 0.0  # the tick is late


def test_a_deadline_is_rerouted_at_its_instant_not_at_the_next_tick(prod: Production) -> None:
    """With a tick of 5 minutes the service still wakes a 2 s sleep: a tick read the
    deadline, and the service slept until then rather than for the rest of the tick."""
    from pynenc.invocation.status import InvocationStatus

    prod.rebuild(config={"engine_timer_tick_sec": 300.0})
    prod.start_runner()
    store = atomic_store(prod.app)
    run = pa.sleeper(2.0)
    prod.wait_until(lambda: prod.status(run) == InvocationStatus.PAUSED, timeout=60)
    # A generation whose first tick comes after the suspension (the one the suspension
    # started may have ticked just before the deadline was indexed: then it sees it at its
    # next tick, 5 minutes later, as before)
    start_timer_service(prod.app, store)
    try:
        # bounded well under the tick: fails if the service waits for its next tick
        prod.result(run, timeout=90)
    finally:
        store.incr(schema.SERVICE_GEN)  # the services stop at their next tick
