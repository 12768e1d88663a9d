"""The timer service: one engine invocation that wakes every suspended workflow whose deadline
passed or whose awaited invocation finished.

Why an invocation: it runs on any stock runner (ThreadRunner, ProcessRunner, ...) with no
process of its own to deploy, and it is durable like any invocation: a runner that stops
gracefully reroutes it to another, and pynenc's recovery re-runs it if its runner dies.
pynenc's own periodic slots (the atomic service, cron triggers) run at most every few
minutes; the service ticks every ``engine_timer_tick_sec`` (default 0.25 s) instead, and
between ticks sleeps only until the earliest deadline its last due-index read saw, so a
known deadline is rerouted at its instant.

One tick reads the due-time index once (all workflows, and the next deadline after now),
the watch set once, the statuses of
the watched invocations in one query (per 500), the task watch set once and one count of
final runs per watched task (``wait_for_task(task)``), and writes a heartbeat: the round
trips of an idle engine do not depend on how many workflows wait. It occupies one runner
thread (not counted against a ThreadRunner's ``max_threads``, like a waiting ``.result``).

Exactly one service ticks: each start takes the next generation from an atomic counter and
a service whose generation is no longer the latest stops. ``ensure_timer_service`` (called
when a workflow suspends and by the client functions) starts one when the heartbeat is
missing or older than ``engine_timer_stale_sec`` (default 5 s): the first suspension, a
service lost with a runner killed without pynenc's recovery having run yet.
"""

from __future__ import annotations

import time
from typing import Any

from pynenc import Pynenc, context

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine._suspend import (
    finish_stranded,
    wake,
    wake_due,
    wake_task_watchers,
)
from pynenc_wf_testing.engine._timers import tick_seconds
from pynenc_wf_testing.engine.atomic import AtomicStore, atomic_store

#: Holds the module-level task below so that any process resolves it by its id: pynenc binds
#: a copy of a module-level task to the app that runs it (``Task.from_id``). This app itself
#: never runs, routes or stores anything. (Not pynenc's core-task registry: the simulator
#: routes every task of that registry when it replays a crash recovery.)
_TEMPLATE_APP = Pynenc(config_values={"app_id": "pynenc-wf-engine-timer-service"})


def tick(app: Pynenc, store: AtomicStore, now: float | None = None) -> int:
    """Wake what is due; returns how many workflows this tick woke."""
    return _tick(app, store, time.time() if now is None else now)[0]


def _tick(app: Pynenc, store: AtomicStore, now: float) -> tuple[int, float | None]:
    """:func:`tick`, also returning when the next indexed deadline falls (None: none)."""
    # Run timeouts of workflows blocked outside engine waits, and the parent-close policy
    # of runs that ended: one read each per tick, whatever the number of workflows.
    from pynenc_wf_testing.engine._close_watch import tick as close_tick

    close_tick(app, store, now)
    woken, next_due = _wake_deadlines(app, store, now)
    watched = store.members(schema.WATCHED)
    final = _final_among(app, [member.partition(" ")[0] for member in watched])
    for member in watched:
        invocation_id, _, workflow_id = member.partition(" ")
        if invocation_id in final:
            if wake(app, workflow_id, cause=f"inv:{invocation_id}"):
                woken += 1
            store.remove_member(schema.WATCHED, member)
    woken += wake_task_watchers(app, store)
    # wakes whose waker died between its claim and the end of the reroute
    return woken + finish_stranded(app, store, now), next_due


#: Due deadlines read per query (more wait for the next pass, which comes at once).
_DUE_BATCH = 1000


def _wake_deadlines(app: Pynenc, store: AtomicStore, now: float) -> tuple[int, float | None]:
    """Wake the workflows whose deadline passed (one due-index read, which also gives the
    next deadline); returns how many it woke and when the next deadline falls."""
    entries, next_due = store.due_and_next(schema.DUE_INDEX, now, _DUE_BATCH)
    if len(entries) >= _DUE_BATCH:
        next_due = now  # more are due: come back at once
    due = [workflow_id for workflow_id, _when in entries]
    return (wake_due(app, due) if due else 0), next_due


#: Awaited invocations per status query (an SQL ``IN`` list stays well within limits).
_STATUS_BATCH = 500


def _final_among(app: Pynenc, invocation_ids: list[str]) -> frozenset[str]:
    """Which of ``invocation_ids`` are final: one status query per batch rather than one
    read per awaited invocation, so a tick's round trips do not grow with the watch set."""
    unique = list(dict.fromkeys(invocation_ids))
    found: list[str] = []
    for start in range(0, len(unique), _STATUS_BATCH):
        found.extend(app.orchestrator.filter_final(unique[start : start + _STATUS_BATCH]))
    return frozenset(found)


@_TEMPLATE_APP.task  # type: ignore[untyped-decorator]
def engine_timer_service(generation: int) -> int:
    """The engine's timer service (see the module): ticks until a newer generation starts or
    its runner takes the invocation away; returns the number of workflows it woke."""
    app = context.get_current_app()
    assert app is not None
    invocation = context.get_dist_invocation_context(app.app_id)
    assert invocation is not None
    store = atomic_store(app)
    pause = tick_seconds(app)
    _release_slot(app, invocation)
    woken = 0
    next_tick = time.monotonic()
    next_due: float | None = None
    while True:
        if time.monotonic() >= next_tick:
            if store.get(schema.SERVICE_GEN) != str(generation):
                return woken  # superseded
            _check_owned(app, invocation)
            store.set(schema.SERVICE_BEAT, str(time.time()))
            next_tick = time.monotonic() + pause
            count, next_due = _tick(app, store, time.time())
        else:
            # woken early for a deadline known from the last read: only the due-time index
            count, next_due = _wake_deadlines(app, store, time.time())
        woken += count
        time.sleep(_sleep_for(next_tick - time.monotonic(), next_due))


def _sleep_for(to_tick: float, next_due: float | None) -> float:
    """Until the next tick, or sooner until the next known deadline: a deadline is
    rerouted at its instant rather than up to a tick later. Deadlines set after the last
    read (a workflow that suspended since) are seen at the next tick, as before."""
    wait = to_tick
    if next_due is not None:
        wait = min(wait, next_due - time.time())
    return max(wait, 0.0)


def _check_owned(app: Pynenc, invocation: Any) -> None:
    """Stop when this execution no longer owns the service's invocation (a stopping runner
    rerouted it): pynenc ends an execution that raises this quietly."""
    from pynenc.exceptions import InvocationStatusOwnershipError
    from pynenc.invocation.status import InvocationStatus

    runner_ctx = context.get_runner_context(app.app_id)
    runner_id = None if runner_ctx is None else runner_ctx.runner_id
    record = app.orchestrator.get_invocation_status_record(invocation.invocation_id)
    if record.status != InvocationStatus.RUNNING or (
        runner_id is not None and record.runner_id not in (None, runner_id)
    ):
        raise InvocationStatusOwnershipError(
            record.status, InvocationStatus.RUNNING, record.runner_id, runner_id,
            f"timer service {invocation.invocation_id} is now {record.status.value}: this "
            "execution stops and its new owner ticks",
        )


def _release_slot(app: Pynenc, invocation: Any) -> None:
    from pynenc.runner.thread_runner import ThreadRunner

    runner = app.runner
    if isinstance(runner, ThreadRunner):
        runner.waiting_for_results(invocation.invocation_id, [], context.get_runner_args())


