"""Durable suspension of waiting workflows in production, and the one function that wakes them.

A production wait whose condition does not hold records its wake-up condition in the
workflow's data (``schema.SUSPENDED``), indexes its deadline and awaited invocations in the
atomic store, moves the invocation RUNNING -> PAUSED and leaves the worker
(``WorkflowSuspended``, a pynenc ``WorkflowPauseError``). Then it re-checks the condition: a
signal stored between the first check and PAUSED would otherwise be lost (its sender found
no suspension to wake); if it holds, the workflow wakes itself (PAUSED -> RUNNING, it never
left its thread).

:func:`wake` routes a suspended workflow again (PAUSED -> KILLED -> REROUTED, pynenc's own
path back to the queue, as ``resume_workflow`` does for halts); its body re-executes and gets
its recorded results back up to the wait, which now finds its condition true. Several wakers
(a signal, the timer service, a cancel, in several processes) race through one atomic claim
per suspension (``schema.wake_claim(workflow, gen)``): exactly one reroutes it.

Deadlines, awaited invocations and waits for a new run of a task are watched by one timer
service for all workflows (see ``_service``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pynenc import context

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine.atomic import AtomicStore, atomic_store
from pynenc_wf_testing.engine.exceptions import WorkflowSuspended
from pynenc_wf_testing.engine.hooks import active_hooks

if TYPE_CHECKING:
    from pynenc.app import Pynenc

T = TypeVar("T")


class Suspendable(Protocol):
    """What :func:`suspend` needs of the running workflow (``_ops.WorkflowExecution``)."""

    app: Pynenc
    invocation: Any
    workflow_id: str

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def check_interrupts(self) -> dt.datetime | None: ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()

#: How long a waker waits for a suspending workflow to reach PAUSED (it records its
#: condition a few store writes before): past this, the workflow's runner died in between
#: and pynenc's recovery of RUNNING invocations will re-run it (it then suspends again).
PAUSE_GRACE_SECONDS = 30.0
#: How many due workflows the timer service reroutes at once.
WAKE_THREADS = 8


def _inv_key(invocation_id: str) -> str:
    return f"inv:{invocation_id}"


def _watched(record: schema.SuspensionRecord, workflow_id: str) -> list[str]:
    return [
        f"{key.removeprefix('inv:')} {workflow_id}"
        for key in record["keys"] if key.startswith("inv:")
    ]


#: Wake key prefix of a wait for any new run of a task (``wait_for_task(task)``).
TASK_PREFIX = "task:"


def _watched_tasks(record: schema.SuspensionRecord, workflow_id: str) -> list[str]:
    return [
        f"{count} {workflow_id} {task_key}"
        for task_key, count in sorted(record.get("finals", {}).items())
    ]


def final_runs(app: Pynenc, task_key: str) -> int:
    """How many runs of the task ``task_key`` have reached a final status (one count query)."""
    from pynenc.identifiers.task_id import TaskId
    from pynenc.invocation.status import InvocationStatus

    statuses = sorted(InvocationStatus.get_final_statuses(), key=lambda status: status.value)
    return int(app.orchestrator.count_invocations(TaskId.from_key(task_key), statuses))


def can_suspend(keys: tuple[str, ...]) -> bool:
    """Whether something wakes a wait on ``keys``: signals (the sender), invocations and new
    runs of a task (the timer service's watch sets)."""
    return all(
        key.startswith(("inv:", TASK_PREFIX, schema.wake_signal(""))) for key in keys
    )


def wake_task_watchers(app: Pynenc, store: AtomicStore) -> int:
    """The timer service's part for ``wait_for_task(task)``: one count of final runs per
    watched task (whatever the number of workflows waiting on it); a workflow whose task
    count changed since it suspended is woken (its body re-checks which run finished: a run
    that was already going when the wait began wakes it for nothing and it suspends again,
    with the new count). Returns how many it woke.

    Why a count and not pynenc's status triggers: a trigger's task is routed by pynenc's
    trigger loop, which runs in the atomic-service slot, minutes apart; and not a time
    ("final after the suspension"): runners' clocks differ, a count does not."""
    woken = 0
    counts: dict[str, int] = {}
    for member in store.members(schema.WATCHED_TASKS):
        recorded, workflow_id, task_key = member.split(" ", 2)
        if task_key not in counts:
            counts[task_key] = final_runs(app, task_key)
        if counts[task_key] != int(recorded):
            if wake(app, workflow_id, cause=TASK_PREFIX + task_key):
                woken += 1
            store.remove_member(schema.WATCHED_TASKS, member)
    return woken


def suspend(
    execution: Suspendable,
    ready: Callable[[], T | None],
    *,
    limit: dt.datetime | None,
    until: dt.datetime | None,
    what: str,
    keys: tuple[str, ...],
    interruptible: bool,
) -> None:
    """Suspend the running workflow on ``keys`` / ``limit``; returns only if the condition
    came true while suspending (the workflow woke itself and goes on in this thread),
    otherwise raises ``WorkflowSuspended``. ``until`` is the wait's own deadline, ``limit``
    the earlier of it and the run deadline. The caller starts the timer service."""
    from pynenc.invocation.status import InvocationStatus

    app = execution.app
    workflow_id = execution.workflow_id
    store = atomic_store(app)
    previous: schema.SuspensionRecord | None = execution.get(schema.SUSPENDED)
    record = schema.SuspensionRecord(
        gen=(previous["gen"] if previous else 0) + 1,
        keys=list(keys),
        deadline=None if limit is None else _iso(limit),
        what=what,
        at=_iso(_now()),
    )
    # Counted before the recheck below: a run that finishes after the count changes it (the
    # timer service wakes the workflow), one that finished before is seen by the recheck.
    finals = {
        key.removeprefix(TASK_PREFIX): final_runs(app, key.removeprefix(TASK_PREFIX))
        for key in keys if key.startswith(TASK_PREFIX)
    }
    if finals:
        record["finals"] = finals
    execution.set(schema.SUSPENDED, record)
    if limit is not None:
        store.schedule(schema.DUE_INDEX, workflow_id, limit.timestamp())
    for member in _watched(record, workflow_id):
        store.add_member(schema.WATCHED, member)
    for member in _watched_tasks(record, workflow_id):
        store.add_member(schema.WATCHED_TASKS, member)
    runner_ctx = context.get_runner_context(app.app_id)
    invocation_id = execution.invocation.invocation_id
    app.orchestrator.set_invocation_status(invocation_id, InvocationStatus.PAUSED, runner_ctx)
    # The lost wake-up: a waker that came between the first check and PAUSED found the
    # record but waits for PAUSED, or came before the record and found nothing to wake.
    # If another waker claimed it, that one reroutes the invocation: this execution leaves.
    claim = schema.wake_claim(workflow_id, record["gen"])
    if _holds(execution, ready, until, interruptible) and store.put_if_absent(claim, "self") is None:
        clear_indexes(store, workflow_id, record)
        app.orchestrator.set_invocation_status(invocation_id, InvocationStatus.RUNNING, runner_ctx)
        return
    raise WorkflowSuspended(f"workflow {workflow_id} suspended: waits for {what}")


def _holds(
    execution: Suspendable,
    ready: Callable[[], Any],
    until: dt.datetime | None,
    interruptible: bool,
) -> bool:
    if ready() is not None:
        return True
    if until is not None and _now() >= until:
        return True
    if interruptible:
        try:
            execution.check_interrupts()
        except Exception:  # cancelled or timed out: the wait raises it when it goes on
            return True
    return False


def clear_indexes(store: AtomicStore, workflow_id: str, record: schema.SuspensionRecord) -> None:
    """Take a woken suspension out of the due-time index and the watch set."""
    store.unschedule(schema.DUE_INDEX, workflow_id)
    for member in _watched(record, workflow_id):
        store.remove_member(schema.WATCHED, member)
    for member in _watched_tasks(record, workflow_id):
        store.remove_member(schema.WATCHED_TASKS, member)


def wake(app: Pynenc, workflow_id: str, *, cause: str | None = None) -> bool:
    """Route a suspended workflow again, once: True if this call did it.

    ``cause``: the wake key that happened (``schema.wake_signal(name)``, ``"inv:<id>"``);
    a suspension that does not wait on it stays suspended. None (a deadline, a cancel, a
    resume) wakes whatever it waits for. A workflow that is not suspended is left alone."""
    identity = app.state_backend.get_invocation(workflow_id).workflow
    record: schema.SuspensionRecord | None = app.state_backend.get_workflow_data(
        identity, schema.SUSPENDED, None
    )
    if record is None:
        return False
    if cause is not None and cause not in record["keys"]:
        return False
    store = atomic_store(app)
    noted = _note_wakes(store, [(workflow_id, record)])
    found = store.put_if_absent(schema.wake_claim(workflow_id, record["gen"]), "woken")
    if found is not None:
        if found == "self" and noted:  # it woke itself in place: no reroute to check on
            store.unschedule_many(schema.WAKES_CLAIMED, noted)
        return False  # woken already (by another waker, or by itself)
    clear_indexes(store, workflow_id, record)
    reroute_paused(app, workflow_id)
    return True


def _note_wakes(
    store: AtomicStore, records: list[tuple[str, schema.SuspensionRecord]]
) -> list[str]:
    """Note wakes about to be claimed in ``schema.WAKES_CLAIMED`` for :func:`finish_stranded`.
    Before the claim, so that a waker killed right after it still leaves its note; kept
    after the reroute, which does not end the window: the broker message can still be lost
    (taken by a runner killed before it marks the invocation PENDING). Not under a
    simulator: it kills no waker mid-wake, and the note's wall-clock instant stays out of
    its histories."""
    if active_hooks() is not None or not records:
        return []
    members = [f"{workflow_id} {record['gen']}" for workflow_id, record in records]
    store.schedule_many(schema.WAKES_CLAIMED, members, time.time())
    return members


#: How old a wake's note must be before the timer service checks on it
#: (``engine_wake_grace_sec``): longer than a live waker takes, which waits up to
#: PAUSE_GRACE_SECONDS for PAUSED before it reroutes.
WAKE_GRACE_SECONDS = PAUSE_GRACE_SECONDS + 15.0


def wake_grace_seconds(app: Pynenc) -> float:
    return float((app.config_values or {}).get("engine_wake_grace_sec", WAKE_GRACE_SECONDS))


def finish_stranded(app: Pynenc, store: AtomicStore, now: float) -> int:
    """The timer service's check on wakes: each wake noted in ``schema.WAKES_CLAIMED`` more
    than the grace ago (one range read per tick; one status read per note, more only for a
    stranded one) whose workflow is still in that suspension and was claimed ("woken") but
    is still PAUSED, KILLED or REROUTED (its waker died mid-reroute, or its broker message
    was lost: pynenc's recovery re-runs only RUNNING and PENDING invocations) is routed
    again; one never claimed (the waker died just before its claim) is woken now. A signal
    sender's note (``schema.signal_note``, left only if the sender died before its wake
    was noted) wakes a workflow still suspended on that signal, unclaimed. Every checked
    note is dropped. Returns how many it routed again.

    A REROUTED invocation gets a second broker message: harmless, since pynenc's runner
    moves an invocation to PENDING only from a status available for run (REROUTED), so
    whichever message comes second is dropped."""
    finished = 0
    due = [member for member, _noted_at in store.due(schema.WAKES_CLAIMED, now - wake_grace_seconds(app))]
    for member in due:
        workflow_id, _, rest = member.partition(" ")
        if rest.startswith("* "):  # schema.signal_note: "<workflow> * <slot> <name>"
            slot, _, name = rest[2:].partition(" ")
            done = _finish_signal(app, store, workflow_id, name, int(slot), due)
        else:
            done = _finish_wake(app, store, workflow_id, int(rest))
        if done:
            finished += 1
        store.unschedule(schema.WAKES_CLAIMED, member)
    return finished


def _finish_signal(
    app: Pynenc, store: AtomicStore, workflow_id: str, name: str, slot: int, due: list[str]
) -> bool:
    """A signal sender's note that outlived the grace: the sender died between the note
    and the end of its wake. Wakes the workflow if it is PAUSED in an unclaimed suspension
    waiting for ``name`` and the signal was stored. Left alone: a suspension whose wake the
    sender had noted (that note, in ``due`` or checked later, covers it) or claimed, and a
    signal never stored (the sender died before: nothing to deliver)."""
    from pynenc.invocation.status import InvocationStatus

    status = app.orchestrator.get_invocation_status_record(workflow_id)
    if status.status != InvocationStatus.PAUSED:
        return False  # the usual case: it was woken and has run on
    identity = app.state_backend.get_invocation(workflow_id).workflow
    record: schema.SuspensionRecord | None = app.state_backend.get_workflow_data(
        identity, schema.SUSPENDED, None
    )
    cause = schema.wake_signal(name)
    if record is None or cause not in record["keys"] or f"{workflow_id} {record['gen']}" in due:
        return False
    if app.state_backend.get_workflow_data(identity, schema.signal(name, slot), None) is None:
        return False
    if store.get(schema.wake_claim(workflow_id, record["gen"])) is not None:
        return False
    why = f"the sender of its signal {name!r} died before waking it"
    return _finished(app, workflow_id, why, wake(app, workflow_id, cause=cause))


def _finish_wake(app: Pynenc, store: AtomicStore, workflow_id: str, gen: int) -> bool:
    from pynenc.exceptions import InvocationStatusError
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext

    status = app.orchestrator.get_invocation_status_record(workflow_id)
    stuck = (InvocationStatus.PAUSED, InvocationStatus.KILLED, InvocationStatus.REROUTED)
    if status.status not in stuck:
        return False  # the usual case: picked up (PENDING, RUNNING, ...) or finished
    identity = app.state_backend.get_invocation(workflow_id).workflow
    record: schema.SuspensionRecord | None = app.state_backend.get_workflow_data(
        identity, schema.SUSPENDED, None
    )
    if record is None or record["gen"] != gen:
        return False  # it ran again and moved on (suspended again, say)
    claim = store.get(schema.wake_claim(workflow_id, gen))
    if claim is None:
        # The waker died between its note and its claim (a signal's sender: nothing else
        # would wake it). Woken for whatever it waits for: the body re-checks its condition
        # and suspends again if it does not hold. Not a halt (no keys): only a resume or a
        # cancel ends one, and those come again through their own call. Only PAUSED: wake
        # would wait for a RUNNING one (its runner died while suspending: pynenc's recovery).
        if not record["keys"] or status.status != InvocationStatus.PAUSED:
            return False
        return _finished(app, workflow_id, "its waker died before its claim", wake(app, workflow_id))
    if claim != "woken":
        return False  # "self": it went on in its own thread (RUNNING: pynenc's recovery)
    owner = RunnerContext(runner_cls="Owner", runner_id=status.runner_id or "unknown")
    try:
        if status.status == InvocationStatus.PAUSED:
            app.orchestrator.set_invocation_status(workflow_id, InvocationStatus.KILLED, owner)
            app.orchestrator.reroute_invocations([workflow_id], owner)
        elif status.status == InvocationStatus.KILLED:
            app.orchestrator.reroute_invocations([workflow_id], owner)
        else:  # REROUTED
            # the kill landed between pynenc's REROUTED and its broker message, a runner
            # killed took the message, or it still waits in a long queue (one is dropped)
            app.orchestrator.route_invocation(app.state_backend.get_invocation(workflow_id))
    except InvocationStatusError:
        return False  # moved meanwhile by someone else: it is not stranded
    why = f"{status.status.value} since its wake (waker or message lost)"
    return _finished(app, workflow_id, why, True)


def _finished(app: Pynenc, workflow_id: str, why: str, done: bool) -> bool:
    if done:
        atomic_store(app).incr(schema.WAKES_FINISHED)
        app.logger.warning(f"timer service finished the wake of workflow {workflow_id}: {why}")
    return done


def wake_due(app: Pynenc, workflow_ids: list[str]) -> int:
    """:func:`wake` for many workflows whose deadline passed (the timer service's tick):
    the claims and the index removals in one store transaction each. Returns how
    many this call woke; every entry of ``workflow_ids`` leaves the due-time index."""

    store = atomic_store(app)
    invocations: dict[str, Any] = {}

    def read(workflow_id: str) -> schema.SuspensionRecord | None:
        invocation = app.state_backend.get_invocation(workflow_id)
        invocations[workflow_id] = invocation  # routed below without reading it again
        found: schema.SuspensionRecord | None = app.state_backend.get_workflow_data(
            invocation.workflow, schema.SUSPENDED, None
        )
        return found

    found = _parallel(read, workflow_ids)
    records = [
        (workflow_id, record)
        for workflow_id, record in zip(workflow_ids, found, strict=True) if record is not None
    ]
    _note_wakes(store, records)
    won = store.put_many_if_absent(
        [(schema.wake_claim(wf, record["gen"]), "woken") for wf, record in records]
    )
    store.unschedule_many(schema.DUE_INDEX, list(workflow_ids))
    woken = [(wf, record) for (wf, record), claimed in zip(records, won, strict=True) if claimed]
    for workflow_id, record in woken:
        for member in _watched(record, workflow_id):
            store.remove_member(schema.WATCHED, member)
        for member in _watched_tasks(record, workflow_id):
            store.remove_member(schema.WATCHED_TASKS, member)
    ids = [workflow_id for workflow_id, _ in woken]
    if active_hooks() is not None:
        # under a simulator: one at a time, in order (its histories record each step)
        late = [wf for wf in ids if not _reroute_if_paused(app, wf)]
    else:
        late = _reroute_burst(app, ids, invocations)
    for workflow_id in late:
        reroute_paused(app, workflow_id)
    return len(woken)


def _reroute_burst(app: Pynenc, ids: list[str], invocations: dict[str, Any]) -> list[str]:
    """PAUSED -> KILLED -> REROUTED for many woken workflows, batched where pynenc allows:
    per workflow a status read (the transition needs its owner) and the two transitions,
    on up to WAKE_THREADS threads (pynenc has no batch transition; on SQLite each costs
    tens of ms, mostly waiting on the database); the invocations read once by the caller;
    one broker call per WAKE_THREADS workflows, sent as each group is rerouted so that
    runners start on the first while the last are routed. Returns the workflows not PAUSED
    yet (still suspending: the caller waits for them)."""
    late: list[str] = []
    for start in range(0, len(ids), WAKE_THREADS):
        group = ids[start : start + WAKE_THREADS]
        marked = _parallel(lambda wf: _mark_rerouted(app, wf), group)
        late.extend(wf for wf, ok in zip(group, marked, strict=True) if not ok)
        routed = [invocations[wf] for wf, ok in zip(group, marked, strict=True) if ok]
        if routed:
            app.orchestrator.route_invocations(routed)
    return late


def _mark_rerouted(app: Pynenc, workflow_id: str) -> bool:
    """PAUSED -> KILLED -> REROUTED without the broker message (sent by the caller); False
    if the workflow was not PAUSED after all."""
    from pynenc.exceptions import InvocationStatusError
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext

    status = app.orchestrator.get_invocation_status_record(workflow_id)
    if status.status != InvocationStatus.PAUSED:
        return False
    owner = RunnerContext(runner_cls="Owner", runner_id=status.runner_id or "unknown")
    try:
        app.orchestrator.set_invocation_status(workflow_id, InvocationStatus.KILLED, owner)
    except InvocationStatusError:
        return False  # moved meanwhile (its own re-check woke it, say)
    app.orchestrator.set_invocation_status(workflow_id, InvocationStatus.REROUTED, owner)
    return True


def _parallel(fn: Callable[[str], T], items: list[str]) -> list[T]:
    """``fn`` over ``items`` on up to WAKE_THREADS threads (store round trips mostly wait)."""
    if len(items) <= 1 or active_hooks() is not None:
        # under a simulator: one thing at a time, in the order given (deterministic)
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WAKE_THREADS, len(items))) as pool:
        return list(pool.map(fn, items))


def _reroute_if_paused(app: Pynenc, workflow_id: str) -> bool:
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext

    status = app.orchestrator.get_invocation_status_record(workflow_id)
    if status.status != InvocationStatus.PAUSED:
        return False  # still suspending (or gone): the one-by-one path waits for PAUSED
    owner = RunnerContext(runner_cls="Owner", runner_id=status.runner_id or "unknown")
    app.orchestrator.set_invocation_status(workflow_id, InvocationStatus.KILLED, owner)
    app.orchestrator.reroute_invocations([workflow_id], owner)
    return True


def reroute_paused(app: Pynenc, workflow_id: str) -> bool:
    """PAUSED -> KILLED -> REROUTED: pynenc's own path back to the queue (the transition
    needs the owner's id, which a waker outside the runner does not have a context for)."""
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext

    deadline = time.monotonic() + PAUSE_GRACE_SECONDS
    while True:
        record = app.orchestrator.get_invocation_status_record(workflow_id)
        if record.status == InvocationStatus.PAUSED:
            break
        if record.status != InvocationStatus.RUNNING or time.monotonic() > deadline:
            return False  # finished, rerouted already, or its runner died while suspending
        if active_hooks() is not None:
            # A simulator runs one thing at a time: a suspending workflow still RUNNING
            # crashed between its record and PAUSED; recovery re-runs it.
            return False
        time.sleep(0.005)  # the suspending execution is a few writes away from PAUSED
    owner = RunnerContext(runner_cls="Owner", runner_id=record.runner_id or "unknown")
    app.orchestrator.set_invocation_status(workflow_id, InvocationStatus.KILLED, owner)
    app.orchestrator.reroute_invocations([workflow_id], owner)
    return True


def suspension_of(app: Pynenc, identity: Any) -> schema.SuspensionRecord | None:
    """The wake-up condition a workflow is suspended on now, or None."""
    record: schema.SuspensionRecord | None = app.state_backend.get_workflow_data(
        identity, schema.SUSPENDED, None
    )
    if record is None:
        return None
    workflow_id = str(identity.workflow_id)
    if atomic_store(app).get(schema.wake_claim(workflow_id, record["gen"])) is not None:
        return None  # woken: running again
    return record
