"""The timer service: one engine invocation that wakes every suspended workflow whose deadline
passed or whose awaited invocation finished.

Why an invocation: it runs on any stock runner (ThreadRunner, ProcessRunner, ...) with no
process of its own to deploy, and it is durable like any invocation: a runner that stops
gracefully reroutes it to another, and pynenc's recovery re-runs it if its runner dies.
pynenc's own periodic slots (the atomic service, cron triggers) run at most every few
minutes; the service ticks every ``engine_timer_tick_sec`` (default 0.25 s) instead.

One tick reads the due-time index once (all workflows), the watch set once, one status per
watched invocation, and writes a heartbeat: what an idle engine reads does not depend on how
many workflows wait on timers or signals. It occupies one runner thread (not counted against
a ThreadRunner's ``max_threads``, like a waiting ``.result``).

Exactly one service ticks: each start takes the next generation from an atomic counter and
a service whose generation is no longer the latest stops. ``ensure_timer_service`` (called
when a workflow suspends and by the client functions) starts one when the heartbeat is
missing or older than ``engine_timer_stale_sec`` (default 5 s): the first suspension, a
service lost with a runner killed without pynenc's recovery having run yet.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import TYPE_CHECKING, Any

from pynenc import context
from pynenc.core_tasks import core_tasks_registry

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine.atomic import AtomicStore, atomic_store
from pynenc_wf_testing.engine.hooks import active_hooks

if TYPE_CHECKING:
    from pynenc.app import Pynenc

TICK_SECONDS = 0.25
STALE_SECONDS = 5.0

_LAST_CHECK: dict[str, float] = {}
_CHECK_LOCK = threading.Lock()


def tick_seconds(app: Pynenc) -> float:
    return float((app.config_values or {}).get("engine_timer_tick_sec", TICK_SECONDS))


def stale_seconds(app: Pynenc) -> float:
    values = app.config_values or {}
    return max(float(values.get("engine_timer_stale_sec", STALE_SECONDS)), 4 * tick_seconds(app))


def tick(app: Pynenc, store: AtomicStore, now: float | None = None) -> int:
    """Wake what is due; returns how many workflows this tick woke."""
    from pynenc_wf_testing.engine._suspend import wake

    now = time.time() if now is None else now
    woken = 0
    for workflow_id, _when in store.due(schema.DUE_INDEX, now):
        if wake(app, workflow_id):
            woken += 1
        else:  # woken by something else, or no longer suspended: drop the stale entry
            store.unschedule(schema.DUE_INDEX, workflow_id)
    for member in store.members(schema.WATCHED):
        invocation_id, _, workflow_id = member.partition(" ")
        if app.orchestrator.get_invocation_status(invocation_id).is_final():
            if wake(app, workflow_id, cause=f"inv:{invocation_id}"):
                woken += 1
            store.remove_member(schema.WATCHED, member)
    return woken


@core_tasks_registry.task()  # type: ignore[untyped-decorator]
def engine_timer_service(generation: int) -> int:
    """The engine's timer service (see the module): ticks until a newer generation starts or
    its runner takes the invocation away; returns the number of workflows it woke."""
    from pynenc_wf_testing.engine._ops import OwnershipLost, WorkflowExecution

    app = context.get_current_app()
    assert app is not None
    invocation = context.get_dist_invocation_context(app.app_id)
    assert invocation is not None
    store = atomic_store(app)
    pause = tick_seconds(app)
    _release_slot(app, invocation)
    woken = 0
    checker = WorkflowExecution.__new__(WorkflowExecution)  # only check_owned() is used
    checker.app, checker.invocation = app, invocation
    while True:
        if store.get(schema.SERVICE_GEN) != str(generation):
            return woken  # superseded
        try:
            checker.check_owned()
        except OwnershipLost:
            raise  # a stopping runner rerouted it: pynenc ends this execution quietly
        store.set(schema.SERVICE_BEAT, str(time.time()))
        woken += tick(app, store)
        time.sleep(pause)


def _release_slot(app: Pynenc, invocation: Any) -> None:
    from pynenc.runner.thread_runner import ThreadRunner

    runner = app.runner
    if isinstance(runner, ThreadRunner):
        runner.waiting_for_results(invocation.invocation_id, [], context.get_runner_args())


def ensure_timer_service(app: Pynenc) -> None:
    """Start the timer service if none is alive (no fresh heartbeat). Reads the heartbeat at
    most once per tick per process; a no-op under a simulator."""
    if active_hooks() is not None:
        return
    now = time.monotonic()
    with _CHECK_LOCK:
        if now - _LAST_CHECK.get(app.app_id, -1e9) < tick_seconds(app):
            return
        _LAST_CHECK[app.app_id] = now
    store = atomic_store(app)
    beat = store.get(schema.SERVICE_BEAT)
    if beat is not None and time.time() - float(beat) < stale_seconds(app):
        return
    start_timer_service(app, store)


def start_timer_service(app: Pynenc, store: AtomicStore | None = None) -> Any:
    """Route a new generation of the timer service (the previous one stops at its next
    tick); returns its invocation."""
    from pynenc.identifiers.task_id import TaskId

    store = store or atomic_store(app)
    generation = store.incr(schema.SERVICE_GEN)
    store.set(schema.SERVICE_BEAT, str(time.time()))  # others wait for this one to start
    task = app.get_task(TaskId(__name__, "engine_timer_service"))
    return task(generation)


def service_status(app: Pynenc) -> dt.datetime | None:
    """When the timer service last ticked (None: never)."""
    beat = atomic_store(app).get(schema.SERVICE_BEAT)
    return None if beat is None else dt.datetime.fromtimestamp(float(beat), dt.UTC)
