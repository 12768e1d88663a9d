"""The engine's durable operations, on top of pynenc's workflow data and replay.

Every operation records what it decided in the workflow's durable data under a ``wfx:`` key
the first time it runs, and returns the recorded value when the workflow replays (pynenc
re-runs a workflow's function from the top after a crash, retry or resume). Positions are
counted per execution of the workflow body, like pynenc's own ``random:N`` keys.

Waiting is the one place that differs between the simulator and production: in a simulated
invocation a wait parks its greenlet until notified or until a virtual deadline; on a stock
pynenc runner it polls the store and sleeps (holding the worker slot, see docs/engine.md).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pynenc import context

from .exceptions import (
    SignalTimeout,
    WorkflowCancelled,
    WorkflowsNotEnabled,
    WorkflowTimeout,
)

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.workflow.workflow_identity import WorkflowIdentity

T = TypeVar("T")

ENABLE_KEY = "enable_workflows"
DEFAULTS_KEY = "workflow_engine_defaults"
POLL_SECONDS = 0.05
_MISSING = object()


def workflows_enabled(app: Pynenc) -> bool:
    return bool((app.config_values or {}).get(ENABLE_KEY))


def engine_defaults(app: Pynenc) -> dict[str, Any]:
    return dict((app.config_values or {}).get(DEFAULTS_KEY) or {})


def require_enabled(app: Pynenc, feature: str) -> None:
    if not workflows_enabled(app):
        raise WorkflowsNotEnabled(
            f"{feature} needs the durable-workflow engine, which app {app.app_id!r} did not "
            "enable. Build the app with PynencBuilder().enable_workflows() or call "
            "pynenc_wf_testing.enable_workflows(app) once at import time."
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
        from ..errors import InvalidArgument

        raise InvalidArgument(f"invocation {workflow_id} is not part of a workflow.")
    workflow: WorkflowIdentity = invocation.workflow
    return workflow


def notify(app: Pynenc, workflow_id: str) -> None:
    """Wake a simulated workflow parked on its events (signals, cancel, resume)."""
    from .._components import sim_of

    sim = sim_of(app)
    if sim is not None:
        sim.notify(f"wfx:{workflow_id}")


def note_child(app: Pynenc, invocation: Any) -> None:
    """Tell the simulator a workflow obtained a child without routing it (replayed from the
    engine's own records), so its child-call positions stay aligned with the first run."""
    from .._components import sim_of

    sim = sim_of(app)
    if sim is not None and sim.in_simulated_invocation():
        assert sim.current is not None
        sim._child_obtained(sim.current, invocation)


def record_halt(app: Pynenc, invocation: Any, reason: str) -> None:
    """Mark the workflow halted in its data and move its invocation to pynenc's PAUSED
    status (pynenc itself swallows WorkflowPauseError and would leave it RUNNING, where a
    crash recovery would re-run it)."""
    from pynenc.invocation.status import InvocationStatus

    set_data(app, invocation.workflow, "wfx:halted", reason or "halted")
    runner_ctx = context.get_runner_context(app.app_id)
    if runner_ctx is None or not invocation.task.is_workflow_root_task:
        return
    status = app.orchestrator.get_invocation_status(invocation.invocation_id)
    if status == InvocationStatus.RUNNING:
        app.orchestrator.set_invocation_status(
            invocation.invocation_id, InvocationStatus.PAUSED, runner_ctx
        )


# ---------------------------------------------------------------------- per-execution state


class Execution:
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

    # -- cancellation and run timeout, checked at every durable operation

    def check_interrupts(self) -> None:
        cancel = self.get("wfx:cancel")
        if cancel is not None:
            raise WorkflowCancelled(f"workflow {self.workflow_id} was cancelled: {cancel}")
        deadline = self.get("wfx:deadline")
        if deadline is not None and utc_now() >= _parse(deadline):
            raise WorkflowTimeout(
                f"workflow {self.workflow_id} passed its run timeout ({deadline})"
            )

    def run_deadline(self) -> dt.datetime | None:
        deadline = self.get("wfx:deadline")
        return None if deadline is None else _parse(deadline)

    # -- the waiting primitive

    def wait(
        self,
        ready: Callable[[], T | None],
        *,
        until: dt.datetime | None,
        what: str,
        keys: tuple[str, ...] = (),
    ) -> T | None:
        """Block until ``ready()`` returns a value (returned) or ``until`` passes (None).

        Cancellation and the run timeout interrupt the wait with their exceptions.
        """
        from .._components import sim_of

        sim = sim_of(self.app)
        simulated = sim is not None and sim.in_simulated_invocation()
        wake_keys = (f"wfx:{self.workflow_id}", *keys)
        while True:
            self.check_interrupts()
            value = ready()
            if value is not None:
                return value
            now = utc_now()
            if until is not None and now >= until:
                return None
            limit = until
            run_deadline = self.run_deadline()
            if run_deadline is not None and (limit is None or run_deadline < limit):
                limit = run_deadline
            if simulated:
                assert sim is not None
                from ..clock import to_micros

                sim.wait_condition(wake_keys, None if limit is None else to_micros(limit), what)
            else:
                pause = POLL_SECONDS
                if limit is not None:
                    pause = max(0.0, min(pause, (limit - now).total_seconds()))
                time.sleep(pause)


def current_execution(task: Any, operation: str) -> Execution:
    """The engine state of the workflow-defining invocation running ``task``'s code."""
    require_enabled(task.app, f"wf.root.{operation}()")
    invocation = task.wf.root._ensure_root_workflow_operation_allowed(operation)
    return Execution(task.app, invocation)


# ---------------------------------------------------------------------- timers and time


def sleep_until(execution: Execution, instant: dt.datetime, *, operation: str = "sleep") -> None:
    n = execution.next("timer")
    key = f"wfx:timer:{n}"
    recorded = execution.get(key)
    if recorded is None:
        if instant.tzinfo is None:
            from ..errors import InvalidArgument

            raise InvalidArgument(
                f"{operation}: {instant.isoformat()} is a naive datetime; pass an aware one "
                "(e.g. datetime(..., tzinfo=UTC))."
            )
        recorded = _iso(instant)
        execution.set(key, recorded)
    fired_key = f"wfx:timer_fired:{n}"
    if execution.get(fired_key) is not None:
        execution.check_interrupts()
        return
    deadline = _parse(recorded)
    execution.wait(lambda: None, until=deadline, what=f"timer #{n} ({recorded})")
    execution.set(fired_key, True)


def sleep_for(execution: Execution, duration: dt.timedelta | float) -> None:
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        duration = dt.timedelta(seconds=duration)
    if not isinstance(duration, dt.timedelta) or duration < dt.timedelta(0):
        from ..errors import InvalidArgument

        raise InvalidArgument(
            f"sleep() expects a non-negative timedelta or number of seconds, got {duration!r}."
        )
    # The deadline is computed only on first execution (sleep_until records it), so a replay
    # after a crash waits only for what remains.
    n = execution.counters.get("timer", 0) + 1
    recorded = execution.get(f"wfx:timer:{n}")
    instant = _parse(recorded) if recorded is not None else utc_now() + duration
    sleep_until(execution, instant)


def durable_now(execution: Execution) -> dt.datetime:
    n = execution.next("now")
    key = f"wfx:now:{n}"
    recorded = execution.get(key)
    if recorded is None:
        recorded = _iso(utc_now())
        execution.set(key, recorded)
    return _parse(recorded)


def side_effect(execution: Execution, fn: Callable[[], T]) -> T:
    n = execution.next("side_effect")
    key = f"wfx:side_effect:{n}"
    recorded = execution.get(key, _MISSING)
    if recorded is not _MISSING:
        value: T = recorded["value"]
        return value
    value = fn()
    execution.set(key, {"value": value})
    return value


# ---------------------------------------------------------------------- signals


def send_signal(app: Pynenc, workflow_id: str, name: str, payload: Any = None) -> int:
    """Store a signal durably on arrival; returns its slot number (1, 2, ... per name)."""
    require_enabled(app, "signals")
    identity = identity_of(app, workflow_id)
    hint_key = f"wfx:signal_count:{name}"
    slot = int(get_data(app, identity, hint_key) or 0) + 1
    # Another sender may have taken the next slot since the hint was written: probe forward.
    while get_data(app, identity, f"wfx:signal:{name}:{slot}") is not None:
        slot += 1
    set_data(app, identity, f"wfx:signal:{name}:{slot}", {"payload": payload, "at": _iso(utc_now())})
    set_data(app, identity, hint_key, slot)
    notify(app, workflow_id)
    return slot


def wait_for_signal(
    execution: Execution, name: str, timeout: dt.timedelta | None, default: Any
) -> Any:
    j = execution.next(f"signal:{name}")
    consumed = execution.counters.get(f"consumed:{name}", 0)
    wait_key = f"wfx:signal_wait:{name}:{j}"
    outcome = execution.get(wait_key)
    if outcome is None:
        deadline: dt.datetime | None = None
        if timeout is not None:
            deadline_key = f"wfx:signal_deadline:{name}:{j}"
            recorded = execution.get(deadline_key)
            if recorded is None:
                recorded = _iso(utc_now() + timeout)
                execution.set(deadline_key, recorded)
            deadline = _parse(recorded)
        slot = consumed + 1
        arrived = execution.wait(
            lambda: execution.get(f"wfx:signal:{name}:{slot}"),
            until=deadline,
            what=f"signal {name!r}",
        )
        outcome = {"slot": slot} if arrived is not None else {"timeout": True}
        execution.set(wait_key, outcome)
    if "slot" in outcome:
        execution.counters[f"consumed:{name}"] = consumed + 1
        return execution.get(f"wfx:signal:{name}:{outcome['slot']}")["payload"]
    if default is not _MISSING:
        return default
    raise SignalTimeout(
        f"no signal {name!r} reached workflow {execution.workflow_id} within {timeout}"
    )


# ---------------------------------------------------------------------- state and queries


def save_state(app: Pynenc, identity: WorkflowIdentity, payload: Any, n: int | None) -> None:
    if n is None:
        n = int(get_data(app, identity, "wfx:state_latest") or 0) + 1
        while get_data(app, identity, f"wfx:state:{n}") is not None:
            n += 1
    key = f"wfx:state:{n}"
    if get_data(app, identity, key) is None:  # a replay does not rewrite its snapshots
        set_data(app, identity, key, {"state": payload, "at": _iso(utc_now())})
    if int(get_data(app, identity, "wfx:state_latest") or 0) < n:
        set_data(app, identity, "wfx:state_latest", n)


# ---------------------------------------------------------------------- halt


def halt(execution: Execution, reason: str) -> None:
    from .exceptions import WorkflowHaltException

    n = execution.next("halt")
    key = f"wfx:halt:{n}"
    recorded = execution.get(key)
    if recorded is not None and recorded.get("resumed"):
        execution.check_interrupts()
        return
    if recorded is None:
        execution.set(key, {"reason": reason, "resumed": False})
    raise WorkflowHaltException(reason)


# ---------------------------------------------------------------------- versioning


def patched(execution: Execution, change_id: str) -> bool:
    """True for runs that reach this point with the new code; False when replaying a
    history recorded before the patch existed (it had already gone past this point)."""
    key = f"wfx:patch:{change_id}"
    recorded = execution.get(key)
    if recorded is not None:
        return bool(recorded)
    # A workflow that already recorded child calls beyond this point ran the old code here.
    from .._components import sim_of

    replaying_old = False
    sim = sim_of(execution.app)
    thread = sim.current if sim is not None and sim.in_simulated_invocation() else None
    if thread is not None:
        position = (execution.workflow_id, thread.child_seq + 1)
        replaying_old = position in sim._positions  # type: ignore[union-attr]
    execution.set(key, not replaying_old)
    return not replaying_old


def current_invocation(app: Pynenc) -> DistributedInvocation[Any, Any] | None:
    invocation: DistributedInvocation[Any, Any] | None = context.get_dist_invocation_context(
        app.app_id
    )
    return invocation
