"""The engine's durable operations, on top of pynenc's workflow data and replay.

Every operation records what it decided in the workflow's durable data (under a key of
``schema``) the first time it runs, and returns the recorded value when the workflow replays (pynenc
re-runs a workflow's function from the top after a crash, retry or resume). Positions are
counted per execution of the workflow body, like pynenc's own ``random:N`` keys.

Waiting is the one place that differs between a simulator and production: in a simulated
invocation a wait hands control to the simulator (``hooks.SimulatorHooks.wait``) until
notified or until a deadline on its clock; on a stock pynenc runner the workflow suspends
(``_suspend``: PAUSED, worker released) until a waker routes it again (docs/engine.md).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pynenc import context
from pynenc.exceptions import InvocationStatusOwnershipError

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine._checks import (
    check_round_trip,
    deadline_after,
    seconds_or_timedelta,
)
from pynenc_wf_testing.engine._halt import recheck_halt
from pynenc_wf_testing.engine._suspend import can_suspend, suspend, wake
from pynenc_wf_testing.engine._timers import ensure_timer_service
from pynenc_wf_testing.engine.exceptions import (
    InvalidWorkflowArgument,
    InvalidWorkflowOperation,
    SignalTimeout,
    WorkflowCancelled,
    WorkflowsNotEnabled,
    WorkflowTimeout,
)
from pynenc_wf_testing.engine.hooks import active_hooks, suspension_mode

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.workflow.workflow_identity import WorkflowIdentity

T = TypeVar("T")

ENABLE_KEY = "enable_workflows"
DEFAULTS_KEY = "workflow_engine_defaults"
#: A wait outside any runner (workflow code called directly, no runner context: nothing
#: could route a suspended workflow again) polls the store: first after POLL_SECONDS, then
#: less and less often (x1.5 per idle poll) up to MAX_POLL_SECONDS, so a long wait costs a
#: few reads a second. Apps can set both with config values ``engine_poll_interval_sec`` and
#: ``engine_max_poll_interval_sec`` (e.g. ``PynencBuilder().custom_config(...)``).
POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0
POLL_BACKOFF = 1.5
_MISSING = object()
#: Serializes read-then-write sequences on the store (signal slots, snapshot slots, aliases)
#: within one process. pynenc's state backend has no compare-and-set: senders in different
#: processes can still race (docs/engine.md, limitations).
STORE_LOCK = threading.RLock()


def workflows_enabled(app: Pynenc) -> bool:
    return bool((app.config_values or {}).get(ENABLE_KEY))


def engine_defaults(app: Pynenc) -> dict[str, Any]:
    return dict((app.config_values or {}).get(DEFAULTS_KEY) or {})


def poll_intervals(app: Pynenc) -> tuple[float, float]:
    """(first, longest) pause between two polls of a production wait, in seconds."""
    values = app.config_values or {}
    first = float(values.get("engine_poll_interval_sec", POLL_SECONDS))
    longest = float(values.get("engine_max_poll_interval_sec", MAX_POLL_SECONDS))
    return first, max(first, longest)


def require_enabled(app: Pynenc, feature: str) -> None:
    from pynenc.app import Pynenc as _Pynenc

    if not isinstance(app, _Pynenc):  # e.g. signal_workflow("acct-1", ...): the app forgotten
        call = feature[:-2] if feature.endswith("()") else "describe_workflow"
        raise InvalidWorkflowArgument(
            f"{feature} takes the pynenc app first, got {type(app).__name__}: {app!r}. "
            f"Pass your module-level app, e.g. {call}(app, workflow_id, ...)."
        )
    adopt = getattr(active_hooks(), "adopt", None)
    if adopt is not None:  # a simulator takes the app before its production stores are read
        adopt(app)
    if not workflows_enabled(app):
        raise WorkflowsNotEnabled(
            f"{feature} needs the durable-workflow engine, which app {app.app_id!r} did not "
            "enable. Build the app with PynencBuilder().enable_workflows() or call "
            "pynenc_wf_testing.engine.enable_workflows(app) once, where the app is defined."
        )


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# ---------------------------------------------------------------------- store helpers


def get_data(app: Pynenc, identity: WorkflowIdentity, key: str, default: Any = None) -> Any:
    return app.state_backend.get_workflow_data(identity, key, default)


def set_data(app: Pynenc, identity: WorkflowIdentity, key: str, value: Any) -> None:
    app.state_backend.set_workflow_data(identity, key, value)


def identity_of(app: Pynenc, workflow_id: str) -> WorkflowIdentity:
    invocation = app.state_backend.get_invocation(workflow_id)
    if invocation.workflow is None:
        raise InvalidWorkflowArgument(f"invocation {workflow_id} is not part of a workflow.")
    workflow: WorkflowIdentity = invocation.workflow
    return workflow


def notify(app: Pynenc, workflow_id: str) -> None:
    """Wake a simulated workflow parked on its events (signals, cancel, resume)."""
    hooks = active_hooks()
    if hooks is not None:
        hooks.notify(app, schema.wake(workflow_id))


def note_child(app: Pynenc, invocation: Any) -> None:
    """Tell the simulator a workflow obtained a child without routing it (replayed from the
    engine's own records), so its child-call positions stay aligned with the first run."""
    hooks = active_hooks()
    if hooks is not None and hooks.in_simulated_invocation(app):
        hooks.child_obtained(app, invocation)


class OwnershipLost(InvocationStatusOwnershipError):  # type: ignore[misc]
    """This execution no longer owns its workflow invocation (its runner stopped and
    rerouted it, or a recovery gave it to another runner): it stops, and the invocation's
    new owner resumes the workflow. pynenc's ``DistributedInvocation.run`` treats this
    error as a lost race and ends the execution quietly."""


def _ownership_lost(invocation_id: str, record: Any, runner_id: str | None) -> OwnershipLost:
    from pynenc.invocation.status import InvocationStatus

    return OwnershipLost(
        record.status,
        InvocationStatus.RUNNING,
        record.runner_id,
        runner_id,
        f"workflow invocation {invocation_id} is now {record.status.value} (owner "
        f"{record.runner_id}): this execution stops waiting and lets its new owner resume it",
    )


# ---------------------------------------------------------------------- per-execution state


class WorkflowExecution:
    """The engine's view of the running workflow-defining invocation."""

    def __init__(self, app: Pynenc, invocation: DistributedInvocation[Any, Any]) -> None:
        self.app = app
        self.invocation = invocation
        assert invocation.workflow is not None
        self.identity: WorkflowIdentity = invocation.workflow
        self.workflow_id = str(self.identity.workflow_id)
        executor = invocation._get_deterministic_runtime()
        counters: dict[str, int] | None = getattr(executor, "_wfx_counters", None)
        if counters is None:
            counters = {}
            executor._wfx_counters = counters
        self.counters = counters

    def next(self, operation: str) -> int:
        self.counters[operation] = self.counters.get(operation, 0) + 1
        return self.counters[operation]

    def get(self, key: str, default: Any = None) -> Any:
        return get_data(self.app, self.identity, key, default)

    def set(self, key: str, value: Any) -> None:
        set_data(self.app, self.identity, key, value)

    # -- cancellation and run timeout
    #
    # Checked by every operation whose outcome is not decided yet (a live operation), never
    # by one that replays a recorded outcome: a replay after a crash goes through the
    # operations the first run completed and observes a cancellation at the same point.

    def check_interrupts(self) -> dt.datetime | None:
        """Raise ``WorkflowCancelled`` / ``WorkflowTimeout`` if due; return the run deadline."""
        cancel = self.get(schema.CANCEL)
        if cancel is not None:
            message = f"workflow {self.workflow_id} was cancelled: {cancel}"
            self.first_sight(f"was cancelled: {cancel}", None, message)
            raise WorkflowCancelled(message)
        recorded = self.get(schema.DEADLINE)
        deadline = None if recorded is None else _parse(recorded)
        if deadline is not None and utc_now() >= deadline:
            message = f"workflow {self.workflow_id} passed its run timeout ({recorded})"
            self.first_sight(f"passed its run timeout ({recorded})", recorded, message)
            raise WorkflowTimeout(message)
        return deadline

    def first_sight(self, why: str, deadline: str | None, message: str) -> None:
        """The first time a run sees its cancellation or timeout: the parent-close policy
        cancels its open children (``cancel_workflow`` already cancelled those running when
        it was called; this catches the ones routed since). Recorded once per run, after
        the children: the children it routes from then on (compensations, cleanup) are
        left alone, in this execution and in every replay."""
        if self.get(schema.INTERRUPTED) is not None:
            return
        from pynenc_wf_testing.engine._close import cancel_children

        cancel_children(self.app, self.workflow_id, why, deadline=deadline, message=message)
        self.set(schema.INTERRUPTED, schema.InterruptRecord(why=why, deadline=deadline))

    def blocked_result_deadline(self, awaited: list[str]) -> dt.datetime | bool | None:
        """A plain ``.result`` of this workflow on ``awaited`` is about to block (in the
        simulator): the run deadline to wake it at, or True when it must not block.

        Once cancelled or timed out (open children cancelled: :meth:`first_sight`), it is
        not interrupted: it ends when what it waits on does, whose error (a cancelled
        child's ``WorkflowCancelled`` / ``WorkflowTimeout``) is what the workflow raises
        there, and raises again in every replay, where that child is found final. True: an
        awaited invocation became final meanwhile."""
        try:
            return self.check_interrupts()
        except (WorkflowCancelled, WorkflowTimeout):
            orchestrator = self.app.orchestrator
            if any(orchestrator.get_invocation_status(i).is_final() for i in awaited):
                return True
            return None

    def check_owned(self) -> None:
        """Outside the simulator: stop if this execution lost its invocation.

        A stock runner that stops gracefully (ThreadRunner's ``on_stop``) marks its running
        invocations KILLED, reroutes them and joins their threads: a workflow parked in a
        durable wait must leave at once (a new runner resumes it with what remains) instead
        of waiting out its timer and running on as a second copy.
        """
        from pynenc.invocation.status import InvocationStatus

        runner_ctx = context.get_runner_context(self.app.app_id)
        runner_id = None if runner_ctx is None else runner_ctx.runner_id
        record = self.app.orchestrator.get_invocation_status_record(
            self.invocation.invocation_id
        )
        if record.status != InvocationStatus.RUNNING or (
            runner_id is not None and record.runner_id not in (None, runner_id)
        ):
            raise _ownership_lost(str(self.invocation.invocation_id), record, runner_id)

    # -- the waiting primitive

    def wait(
        self,
        ready: Callable[[], T | None],
        *,
        until: dt.datetime | None,
        what: str,
        keys: tuple[str, ...] = (),
        interruptible: bool = True,
        wake_on: tuple[str, ...] = (),
    ) -> T | None:
        """Block until ``ready()`` returns a value (returned) or ``until`` passes (None).

        A condition that already holds returns at once. Otherwise cancellation and the run
        timeout interrupt the wait with their exceptions (unless ``interruptible`` is False:
        compensations wait for their children even in a cancelled workflow).

        How it blocks: a simulated invocation parks in the simulator (``hooks.wait`` on
        ``keys``); in production the workflow suspends (``_suspend``: it records its
        condition, ``wake_on`` plus the invocations of ``keys``, goes PAUSED and leaves its
        worker with ``WorkflowSuspended``; a later execution re-runs the body up to here).
        A wait that is not interruptible (a compensation's) suspends too: a cancel or resume
        that routes it again finds its condition still false and it suspends again.
        Outside a runner (no runner context: nothing could route it again) it polls.
        """
        hooks = active_hooks()
        simulated = hooks is not None and hooks.in_simulated_invocation(self.app)
        suspend_keys = (*wake_on, *keys)
        # Decided when the wait first blocks (a simulator chooses per wait: eviction). The
        # simulator is asked first: a cached simulated wait pays for nothing else.
        suspends: bool | None = None
        wake_keys = (schema.wake(self.workflow_id), *keys)
        pause, longest = poll_intervals(self.app) if not simulated else (0.0, 0.0)
        marked = simulated
        while True:
            value = ready()
            if value is not None:
                return value
            run_deadline = self.check_interrupts() if interruptible else None
            now = utc_now()
            if until is not None and now >= until:
                return None
            limit = until
            if run_deadline is not None and (limit is None or run_deadline < limit):
                limit = run_deadline
            if suspends is None:
                suspends = (
                    suspension_mode(self.app, hooks, simulated)
                    and can_suspend(suspend_keys)
                    # suspending needs a runner to route the workflow again
                    and context.get_runner_context(self.app.app_id) is not None
                )
            if suspends:
                ensure_timer_service(self.app)
                suspend(
                    self, ready, limit=limit, until=until, what=what, keys=suspend_keys,
                    interruptible=interruptible,
                )
            elif simulated:
                assert hooks is not None
                hooks.wait(self.app, wake_keys, limit, what)
            else:
                self.check_owned()
                if not marked:
                    self._release_slot()
                    marked = True
                sleep_for = pause
                if limit is not None:
                    sleep_for = max(0.0, min(pause, (limit - now).total_seconds()))
                time.sleep(sleep_for)
                pause = min(longest, pause * POLL_BACKOFF)

    def _release_slot(self) -> None:
        """Tell a ThreadRunner this invocation waits, as pynenc's own ``.result`` does: its
        thread stays, but stops counting against ``max_threads``, so waiting workflows do
        not starve the runner of slots for the tasks they wait for."""
        from pynenc.runner.thread_runner import ThreadRunner

        runner = self.app.runner
        if isinstance(runner, ThreadRunner):
            runner.waiting_for_results(
                self.invocation.invocation_id, [], context.get_runner_args()
            )

    def await_result(self, invocation: Any, *, interruptible: bool = True) -> Any:
        """``invocation.result``, waiting as a durable wait (cancellable, and leaving at once
        when a stopping runner takes the invocation away) rather than in pynenc's loop."""
        self.wait_final(invocation, interruptible=interruptible)
        return invocation.result

    def wait_final(self, invocation: Any, *, interruptible: bool = True) -> None:
        """Wait until ``invocation`` reaches a final status (see ``await_result``)."""
        inv_id = str(invocation.invocation_id)
        app = invocation.app
        self.wait(
            lambda: True if app.orchestrator.get_invocation_status(inv_id).is_final() else None,
            until=None,
            what=f"the result of invocation {inv_id[:8]} ({invocation.task.task_id.func_name})",
            keys=(f"inv:{inv_id}",),
            interruptible=interruptible,
        )


def require_invocation(task: Any, operation: str) -> None:
    """Refuse a workflow operation made where no invocation runs (pynenc's own answer is a
    bare ``RuntimeError("Task has not been invoked yet")``)."""
    from pynenc import context

    app_id = task.app.app_id
    if context.get_dist_invocation_context(app_id) is None and (
        context._get_sync_inv_context_storage().get(app_id) is None
    ):
        name = task.task_id.func_name
        raise InvalidWorkflowOperation(
            f"{name}.{operation} was called outside any invocation: workflow operations "
            f"run inside the body of the workflow {name} (or, for wf.save_state, a task it "
            "calls). From outside, use the client: start_workflow, signal_workflow, "
            "query_workflow, cancel_workflow (pynenc_wf_testing.engine)."
        )


def current_execution(task: Any, operation: str) -> WorkflowExecution:
    """The engine state of the workflow-defining invocation running ``task``'s code."""
    require_enabled(task.app, f"wf.root.{operation}()")
    require_invocation(task, f"wf.root.{operation}()")
    invocation = task.wf.root._ensure_root_workflow_operation_allowed(operation)
    return WorkflowExecution(task.app, invocation)


# ---------------------------------------------------------------------- timers and time


def _timer_instant(execution: WorkflowExecution, n: int, compute: Callable[[], dt.datetime]) -> str:
    key = schema.timer(n)
    recorded: str | None = execution.get(key)
    if recorded is None:
        execution.check_interrupts()
        instant = compute()
        if instant.tzinfo is None:
            raise InvalidWorkflowArgument(
                f"sleep_until: {instant.isoformat()} is a naive datetime; pass an aware one "
                "(e.g. datetime(..., tzinfo=UTC))."
            )
        recorded = _iso(instant)
        execution.set(key, recorded)
    return recorded


def _run_timer(execution: WorkflowExecution, n: int, recorded: str) -> None:
    fired_key = schema.timer_fired(n)
    if execution.get(fired_key) is not None:
        return  # completed in an earlier execution: a replay goes straight past it
    deadline = _parse(recorded)
    execution.wait(lambda: None, until=deadline, what=f"timer #{n} (until {recorded})")
    execution.set(fired_key, True)


def sleep_until(execution: WorkflowExecution, instant: dt.datetime, *, operation: str = "sleep") -> None:
    if not isinstance(instant, dt.datetime):
        raise InvalidWorkflowArgument(
            f"{operation}() expects an aware datetime.datetime, got {type(instant).__name__}: "
            f"{instant!r}; e.g. sleep_until(datetime(2030, 1, 1, tzinfo=UTC)), or "
            "sleep(timedelta(...)) for a duration."
        )
    n = execution.next("timer")
    _run_timer(execution, n, _timer_instant(execution, n, lambda: instant))


def sleep_for(execution: WorkflowExecution, duration: dt.timedelta | float) -> None:
    delta = seconds_or_timedelta("sleep()", duration)
    # The deadline is computed only on first execution and recorded: a replay after a crash
    # waits only for what remains.
    n = execution.next("timer")
    _run_timer(
        execution, n,
        _timer_instant(execution, n, lambda: deadline_after("sleep()", utc_now(), delta)),
    )


def durable_now(execution: WorkflowExecution) -> dt.datetime:
    n = execution.next("now")
    key = schema.now(n)
    recorded = execution.get(key)
    if recorded is None:
        execution.check_interrupts()
        recorded = _iso(utc_now())
        execution.set(key, recorded)
    return _parse(recorded)


def side_effect(execution: WorkflowExecution, fn: Callable[[], T]) -> T:
    n = execution.next("side_effect")
    key = schema.side_effect(n)
    recorded = execution.get(key, _MISSING)
    if recorded is not _MISSING:
        value: T = recorded["value"]
        return value
    execution.check_interrupts()
    value = fn()
    # what a re-execution will read back: the same value, or an error now
    check_round_trip(execution.app, "side_effect()", "the function's result", value)
    execution.set(key, schema.SideEffectRecord(value=value))
    return value


def check_cancelled(execution: WorkflowExecution) -> None:
    n = execution.next("check")
    key = schema.check(n)
    if execution.get(key) is not None:
        return  # passed by an earlier execution
    execution.check_interrupts()
    execution.set(key, True)


# ---------------------------------------------------------------------- signals


def send_signal(app: Pynenc, workflow_id: str, name: str, payload: Any = None) -> int:
    """Store a signal durably on arrival; returns its slot number (1, 2, ... per name).

    In production the slot comes from an atomic counter (two senders in two processes never
    share one) and a suspended workflow waiting for ``name`` is woken after the signal is
    stored (by the timer service if the sender dies in between). Under a simulator, which runs one thing at a time, the next free slot is probed."""
    require_enabled(app, "signals")
    identity = identity_of(app, workflow_id)
    record = schema.SignalRecord(payload=payload, at=_iso(utc_now()))
    if active_hooks() is None:
        from pynenc_wf_testing.engine.atomic import atomic_store

        store = atomic_store(app)
        slot = store.incr(schema.signal_slots(workflow_id, name))
        # slots written before the counter existed (or by a simulator on this store)
        while get_data(app, identity, schema.signal(name, slot)) is not None:
            slot = store.incr(schema.signal_slots(workflow_id, name))
        # Noted before the signal is stored: a sender killed between storing it and its
        # wake's own note leaves this one, and the timer service wakes the workflow once
        # the grace has passed (``_suspend.finish_stranded``). Dropped once ``wake`` has
        # noted or done its part, so a sender that lives costs two store writes.
        note = schema.signal_note(workflow_id, name, slot)
        store.schedule(schema.WAKES_CLAIMED, note, time.time())
        set_data(app, identity, schema.signal(name, slot), record)
        wake(app, workflow_id, cause=schema.wake_signal(name))
        store.unschedule(schema.WAKES_CLAIMED, note)
        return slot
    hint_key = schema.signal_count(name)
    with STORE_LOCK:
        slot = int(get_data(app, identity, hint_key) or 0) + 1
        # Another sender may have taken the next slot since the hint was written: probe on.
        while get_data(app, identity, schema.signal(name, slot)) is not None:
            slot += 1
        set_data(app, identity, schema.signal(name, slot), record)
        set_data(app, identity, hint_key, slot)
    notify(app, workflow_id)
    # A simulated workflow evicted at this wait is woken as in production (no-op otherwise).
    wake(app, workflow_id, cause=schema.wake_signal(name))
    return slot


def wait_for_signal(
    execution: WorkflowExecution, name: str, timeout: dt.timedelta | None, default: Any
) -> Any:
    j = execution.next(f"signal:{name}")
    consumed = execution.counters.get(f"consumed:{name}", 0)
    wait_key = schema.signal_wait(name, j)
    outcome = execution.get(wait_key)
    if outcome is None:
        deadline: dt.datetime | None = None
        if timeout is not None:
            deadline_key = schema.signal_deadline(name, j)
            recorded = execution.get(deadline_key)
            if recorded is None:
                execution.check_interrupts()
                recorded = _iso(deadline_after("wait_for_signal(timeout=)", utc_now(), timeout))
                execution.set(deadline_key, recorded)
            deadline = _parse(recorded)
        slot = consumed + 1
        arrived = execution.wait(
            lambda: execution.get(schema.signal(name, slot)),
            until=deadline,
            what=f"signal {name!r}",
            wake_on=(schema.wake_signal(name),),
        )
        outcome = (
            schema.SignalWaitRecord(slot=slot)
            if arrived is not None
            else schema.SignalWaitRecord(timeout=True)
        )
        execution.set(wait_key, outcome)
    if "slot" in outcome:
        execution.counters[f"consumed:{name}"] = consumed + 1
        return execution.get(schema.signal(name, outcome["slot"]))["payload"]
    if default is not _MISSING:
        return default
    raise SignalTimeout(
        f"no signal {name!r} reached workflow {execution.workflow_id} within {timeout}"
    )


# ---------------------------------------------------------------------- state and queries


def save_state(app: Pynenc, identity: WorkflowIdentity, payload: Any, position: int | None) -> None:
    """Append a snapshot. ``position`` (the n-th ``save_state`` of a workflow body) makes a
    replay of the workflow skip the snapshots it already published; snapshots of other
    member tasks are appended each time they run."""
    with STORE_LOCK:
        slot: int | None = None
        marker = schema.state_pos(position) if position is not None else None
        if marker is not None:
            slot = get_data(app, identity, marker)
            if slot is not None and get_data(app, identity, schema.state(slot)) is not None:
                # Published by an earlier execution of the workflow body (which may have
                # crashed before moving the latest-snapshot pointer).
                if int(get_data(app, identity, schema.STATE_LATEST) or 0) < slot:
                    set_data(app, identity, schema.STATE_LATEST, slot)
                return
        if slot is None:
            slot = int(get_data(app, identity, schema.STATE_LATEST) or 0) + 1
            while get_data(app, identity, schema.state(slot)) is not None:
                slot += 1
            if marker is not None:
                set_data(app, identity, marker, slot)  # reserve it before writing
        set_data(
            app, identity, schema.state(slot),
            schema.StateRecord(state=payload, at=_iso(utc_now())),
        )
        if int(get_data(app, identity, schema.STATE_LATEST) or 0) < slot:
            set_data(app, identity, schema.STATE_LATEST, slot)


# ---------------------------------------------------------------------- halt


def halt(execution: WorkflowExecution, reason: str) -> None:
    from pynenc_wf_testing.engine.exceptions import WorkflowHaltException

    n = execution.next("halt")
    key = schema.halt(n)
    recorded = execution.get(key)
    if recorded is not None and recorded.get("resumed"):
        return  # resumed: a replay goes past this halt
    execution.check_interrupts()  # a cancelled halted workflow ends here, not further on
    if recorded is None:
        execution.set(key, schema.HaltRecord(reason=reason, resumed=False))
    halted = WorkflowHaltException(reason)  # records the halt and parks the invocation
    if recheck_halt(execution.app, execution.invocation, key):
        # resumed or cancelled while parking (the resumer found nothing parked yet)
        execution.check_interrupts()
        return
    raise halted


# ---------------------------------------------------------------------- versioning


def recorded_beyond(execution: WorkflowExecution) -> bool:
    """Whether the store holds a positioned record past what this execution has reached:
    the run already went further, so this execution is replaying its history.

    Covers the engine's records, pynenc's ``random/uuid/utc_now`` values and, in the
    simulator, child calls. Outside the simulator, child calls made with pynenc's
    ``execute_task`` are keyed by call, not position, and cannot be seen this way."""
    counters = execution.counters
    for name, key_at in schema.POSITIONED:
        if execution.get(key_at(counters.get(name, 0) + 1)) is not None:
            return True
    for name, value in counters.items():
        if name.startswith("signal:"):
            signal = name.removeprefix("signal:")
            if execution.get(schema.signal_wait(signal, value + 1)) is not None:
                return True
    executor = execution.invocation._get_deterministic_runtime()
    pynenc_counters: dict[str, int] = getattr(executor, "_operation_counters", {})
    for operation in ("random", "time", "uuid"):
        if execution.get(f"{operation}:{pynenc_counters.get(operation, 0) + 1}") is not None:
            return True
    hooks = active_hooks()
    if hooks is not None and hooks.in_simulated_invocation(execution.app):
        if hooks.replaying_finished_history(execution.app, execution.workflow_id):
            return True  # a Replayer on a finished history: that run went past every point
        positions = hooks.child_positions(execution.app, execution.workflow_id)
        if positions is not None:
            reached, recorded = positions
            return recorded > reached
    return False


def patched(execution: WorkflowExecution, change_id: str) -> bool:
    """True for runs that reach this point with the new code; False when replaying a
    history recorded before the patch existed (it had already gone past this point)."""
    key = schema.patch(change_id)
    recorded = execution.get(key)
    if recorded is not None:
        return bool(recorded)
    replaying_old = recorded_beyond(execution)
    execution.set(key, not replaying_old)
    return not replaying_old


def current_invocation(app: Pynenc) -> DistributedInvocation[Any, Any] | None:
    invocation: DistributedInvocation[Any, Any] | None = context.get_dist_invocation_context(
        app.app_id
    )
    return invocation
