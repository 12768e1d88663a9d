"""The simulated world: seeded scheduler, parked invocations, step recorder and faults.

Each invocation runs in its own greenlet. Only the scheduler (the driving greenlet) switches
into an invocation, and an invocation only switches back to the scheduler (a star), so all
context juggling happens here. pynenc keeps its current invocation/runner/app in a
``threading.local`` that greenlets share: each switch swaps that object's attributes.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import greenlet
from pynenc import context as pynenc_context
from pynenc.invocation.status import InvocationStatus
from pynenc.runner.runner_context import RunnerContext

from pynenc_wf_testing.checks.faults import FaultPlan
from pynenc_wf_testing.errors import (
    DeadlockError,
    InvalidArgument,
    NondeterminismError,
    StepLimitExceeded,
)
from pynenc_wf_testing.runtime.clock import VirtualClock, from_micros, to_micros
from pynenc_wf_testing.runtime.history import Step
from pynenc_wf_testing.runtime.ledger import Execution
from pynenc_wf_testing.runtime.runner import SimRunner
from pynenc_wf_testing.runtime.seeding import derive_rng

__all__ = ["InvocationInfo", "Simulation", "step_time"]

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.workflow.workflow_identity import WorkflowIdentity

_TL = pynenc_context.thread_local
_get_running_loop = asyncio.events._get_running_loop
_set_running_loop = asyncio.events._set_running_loop

_RESULT_STATUSES = frozenset({InvocationStatus.SUCCESS, InvocationStatus.FAILED})

# Finished worker greenlets kept for the next invocations (see Simulation._worker_main).
_IDLE_WORKERS = 64

# Step details shared between steps (read-only): one dict per distinct constant detail
# instead of one per step (~110,000 steps at 10,000 workflows).
_NO_DETAIL: dict[str, Any] = {}
_IN_EXECUTE_TASK: dict[str, Any] = {"in_execute_task": True}
_STATUS_DETAIL: dict[InvocationStatus, dict[str, Any]] = {
    status: {"status": status.value} for status in InvocationStatus
}

# Workflow-data keys that pynenc writes as bookkeeping of a step already recorded.
_VALUE_KEYS = {"random": "random", "uuid": "uuid", "time": "utc_now"}
# Engine records that only support another step (counters, deadlines of waits, flags).
_ENGINE_INTERNAL = frozenset(
    {"signal_count", "signal_deadline", "state_latest", "state_pos", "halted"}
)


@dataclass(eq=False, slots=True)
class _Thread:
    """One simulated invocation execution (its greenlet and what it is blocked on)."""

    app: Any
    invocation: Any
    invocation_id: str
    label: str
    glet: greenlet.greenlet | None = None
    tl: dict[str, Any] = field(default_factory=dict)
    waiting_on: list[str] | None = None
    sleeping_until: int | None = None
    waiting_for: tuple[str, ...] | None = None  # condition keys (engine waits)
    waiting_what: str = ""
    child_counts: dict[str, int] = field(default_factory=dict)
    child_seq: int = 0
    in_execute_task: int = 0
    routed: int = 0
    started: bool = False
    # The asyncio loop running in this greenlet (an async task parked in asyncio.sleep).
    event_loop: Any = None


@dataclass(slots=True)
class InvocationInfo:
    """What the recorder knows about an invocation (god's view: survives crashes)."""

    invocation_id: str
    task: str
    name: str
    owner_workflow_id: str | None
    workflow_id: str | None
    parent_invocation_id: str | None
    is_workflow: bool
    executions: int = 0
    first_seen: str = ""
    #: (workflow id, task name, k-th call of that task in one execution of the workflow body)
    #: where a workflow first obtained this invocation as a child.
    logical: tuple[str, str, int] | None = None


class Simulation:
    """One simulated world: apps on simulated components, a scheduler, a recorder, faults."""

    def __init__(
        self,
        *,
        seed: int,
        clock: VirtualClock,
        max_steps: int,
        faults: FaultPlan | None = None,
        worker_tag: str = "",
    ) -> None:
        self.seed = seed
        #: Appended to worker ids: a backend that resumes another process's store tells its
        #: own workers apart from the dead process's ones.
        self.worker_tag = worker_tag
        self.clock = clock
        self.max_steps = max_steps
        self.faults = faults or FaultPlan()
        self._rng = derive_rng(seed, "scheduler")
        self.main_glet: greenlet.greenlet = greenlet.getcurrent()
        self.apps: list[Any] = []
        self.runners: dict[str, SimRunner] = {}
        self._worker_generation = 1
        self._dead_runner_ids: set[str] = set()

        self.ready: list[_Thread] = []
        self.waiters: dict[str, list[_Thread]] = {}
        self.cond_waiters: dict[str, list[_Thread]] = {}
        self.sleepers: list[tuple[int, int, _Thread]] = []
        self._sleep_seq = 0
        self.threads: dict[str, _Thread] = {}
        self.current: _Thread | None = None
        self.graveyard: list[greenlet.greenlet] = []
        self._idle_glets: list[greenlet.greenlet] = []
        self.broker_dirty = False
        #: Final statuses written so far: a goal that waits for one is re-checked only then.
        self.finals = 0
        self.slices = 0
        self.crashes = 0
        self._pending_crash: tuple[str, float | None] | None = None
        self._crash_at: tuple[Step, str] | None = None
        self._recovery_at: int | None = None

        self.history: list[Step] = []
        self._iso_at = -1
        self._iso = ""
        self._step_count = 0
        self.invocations: dict[str, InvocationInfo] = {}
        self._name_counters: dict[tuple[str | None, str], int] = {}
        self._data_counters: dict[tuple[str, str], int] = {}
        self.workflow_parent: dict[str, str | None] = {}
        self.ledger: list[Execution] = []
        self._running_execution: dict[str, Execution] = {}
        self.stalled: dict[str, str] = {}
        self.errors_to_raise: list[BaseException] = []
        # What each workflow body obtained, in call order (workflow id -> child invocation
        # ids), to catch a re-execution that asks for something else. (A child's logical call,
        # the k-th call of its task in one execution of the body, is on its InvocationInfo.)
        self._positions: dict[str, list[str]] = {}
        # Replays of recorded histories: workflow id -> (recorded child calls, finished?),
        # and how many child calls the replayed code made so far.
        self.replay_limits: dict[str, tuple[int, bool]] = {}
        self.replay_obtained: dict[str, int] = {}
        self.replay_calls: dict[str, list[str]] = {}
        #: Called with each app when its worker dies (the backend drops in-process state).
        self.after_crash: Callable[[Any], None] | None = None
        self._trigger_apps: list[Any] = []
        self._trigger_pending = False
        self._trigger_runs = 0

    # ------------------------------------------------------------------ apps and workers

    def attach(self, app: Pynenc) -> None:
        self.apps.append(app)
        self._new_runner(app)

    def refresh_triggers(self) -> None:
        """Note which apps have trigger conditions (cron, events): only those pay for the
        trigger loop."""
        self._trigger_apps = [app for app in self.apps if app.trigger._get_all_conditions()]
        self._trigger_pending = bool(self._trigger_apps)

    def _next_cron(self) -> int | None:
        """The next instant (virtual micros) at which any cron condition is due.

        pynenc's cron matches only within a window after the scheduled time and has no
        catch-up, so the clock must land on each fire time rather than jump over it.
        """
        if not self._trigger_apps:
            return None
        from croniter import croniter
        from pynenc.trigger.conditions.cron import CronCondition

        now = self.clock.now
        best: int | None = None
        for app in self._trigger_apps:
            for condition in app.trigger._get_all_conditions():
                if isinstance(condition, CronCondition):
                    nxt = croniter(condition.cron_expression, now).get_next(type(now))
                    micros = to_micros(nxt)
                    if best is None or micros < best:
                        best = micros
        return best

    def _run_triggers(self) -> None:
        """One pynenc trigger-loop iteration per app with triggers, as a runner's atomic
        service slot would run it."""
        from pynenc.orchestrator.atomic_service import AtomicServiceRun

        self._trigger_pending = False
        for app in self._trigger_apps:
            self._trigger_runs += 1
            runner = self.runners[app.app_id]
            run = AtomicServiceRun(
                runner_id=runner.runner_id,
                atomic_service_run_id=f"sim-trigger-{self._trigger_runs}",
                started_at=self.clock.now,
            )
            app.trigger.trigger_loop_iteration(run)

    def _new_runner(self, app: Pynenc) -> SimRunner:
        ctx = RunnerContext(
            runner_cls="SimRunner",
            runner_id=f"sim-worker-{self._worker_generation}-{app.app_id}{self.worker_tag}",
        )
        runner = SimRunner(app, runner_context=ctx)
        self.runners[app.app_id] = runner
        app.orchestrator.register_runner_heartbeats([ctx.runner_id], consumed_queues=None)
        return runner

    def _heartbeat(self) -> None:
        for app in self.apps:
            runner = self.runners[app.app_id]
            app.orchestrator.register_runner_heartbeats([runner.runner_id], consumed_queues=None)

    # ------------------------------------------------------------------ recording

    def _now_iso(self) -> str:
        micros = self.clock.micros
        if micros != self._iso_at:
            self._iso_at, self._iso = micros, self.clock.now.isoformat()
        return self._iso

    def _next_step(
        self,
        kind: str,
        name: str,
        workflow_id: str | None,
        invocation_id: str | None,
        task: str | None,
        detail: dict[str, Any] | None = None,
    ) -> Step:
        return Step(
            self._step_count + 1, kind, name, workflow_id, invocation_id, self._now_iso(), task,
            detail or _NO_DETAIL,
        )

    def _armed(self) -> bool:
        """Is any crash point still armed? (Without one, before-hooks build no step.)"""
        for point in self.faults.crash_points:  # noqa: SIM110 - no generator per call
            if not point.fired:
                return True
        return False

    def _before(self, step: Step) -> None:
        point = self.faults.crash_for(step, "before")
        if point is not None:
            self._crash_at = (step, "before")
            self._crash(f"{point.snippet()} at {step.name}", point.restart_after)

    def _commit(self, step: Step) -> None:
        self._step_count += 1
        self.history.append(step)
        if not self.faults.crash_points:
            return
        point = self.faults.crash_for(step, "after")
        if point is not None:
            self._crash_at = (step, "after")
            self._crash(f"{point.snippet()} at {step.name}", point.restart_after)

    def _event(
        self,
        kind: str,
        name: str,
        detail: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        invocation_id: str | None = None,
    ) -> None:
        self.history.append(
            Step(
                None, kind, name, workflow_id, invocation_id, self._now_iso(), None,
                detail or _NO_DETAIL,
            )
        )

    def _describe_new(self, inv: DistributedInvocation, *, commit: bool = True) -> InvocationInfo:
        inv_id = str(inv.invocation_id)
        info = self.invocations.get(inv_id)
        if info is not None:
            return info
        task = inv.call.task
        is_wf = bool(task.is_workflow_root_task)
        wf = inv.workflow
        owner: str | None
        if wf is None:
            owner = None
        elif is_wf:
            owner = str(wf.parent_workflow_id) if wf.parent_workflow_id else None
            self.workflow_parent[str(wf.workflow_id)] = owner
        else:
            owner = str(wf.workflow_id)
        base = task.task_id.func_name
        key = (owner, base)
        count = self._name_counters.get(key, 0) + 1
        info = InvocationInfo(
            invocation_id=inv_id,
            task=task.task_id.key,
            name=f"{base}#{count}",
            owner_workflow_id=owner,
            workflow_id=str(wf.workflow_id) if wf is not None else None,
            parent_invocation_id=str(inv.parent_invocation_id)
            if inv.parent_invocation_id
            else None,
            is_workflow=is_wf,
            first_seen=self._now_iso(),
        )
        if commit:
            self._name_counters[key] = count
            self.invocations[inv_id] = info
        return info

    def _step_workflow(self, info: InvocationInfo) -> str | None:
        return info.owner_workflow_id or info.workflow_id

    def label(self, invocation_id: str) -> str:
        info = self.invocations.get(invocation_id)
        short = invocation_id[:8]
        return f"{info.name} [{short}]" if info else f"[{short}]"

    # hooks called by the simulated components -------------------------------------------

    def before_register(self, app: Pynenc, invocations: list[DistributedInvocation]) -> None:
        if not self._armed():
            return
        for inv in invocations:
            # Named for real only once registered: a crash before it must not use up a name.
            info = self._describe_new(inv, commit=False)
            self._before(
                self._next_step(
                    "route", f"route:{info.name}", self._step_workflow(info),
                    info.invocation_id, info.task,
                )
            )

    def after_register(self, app: Pynenc, invocations: list[DistributedInvocation]) -> None:
        thread = self.current if self.in_simulated_invocation() else None
        for inv in invocations:
            if thread is not None:
                # Counted at routing, before execute_task records the child's id: a crash in
                # between must still name the orphan child's logical call.
                thread.routed += 1
                self._child_obtained(thread, inv)
            info = self._describe_new(inv)
            self._commit(
                self._next_step(
                    "route", f"route:{info.name}", self._step_workflow(info),
                    info.invocation_id, info.task,
                    # execute_task records the child's id next: crashing right after this
                    # step duplicates the child on replay (pynenc's window, fine-grained).
                    _IN_EXECUTE_TASK if thread is not None and thread.in_execute_task
                    else None,
                )
            )

    def before_status(self, app: Pynenc, invocation_id: Any, status: InvocationStatus) -> None:
        if not self._armed():
            return
        info = self.invocations.get(str(invocation_id))
        if info is None:
            return
        if status in _RESULT_STATUSES:
            self._before(
                self._next_step(
                    "result", info.name, self._step_workflow(info), info.invocation_id,
                    info.task, _STATUS_DETAIL[status],
                )
            )
        elif status == InvocationStatus.RETRY:
            self._before(
                self._next_step(
                    "window", f"retry_status:{info.name}", self._step_workflow(info),
                    info.invocation_id, info.task,
                )
            )

    def after_status(self, app: Pynenc, invocation_id: Any, status: InvocationStatus) -> None:
        inv_id = str(invocation_id)
        info = self.invocations.get(inv_id)
        if status == InvocationStatus.RUNNING:
            self._start_execution(inv_id, info)
            return
        if status.is_final():
            self.finals += 1
            if self._trigger_apps:
                self._trigger_pending = True
            if self.cond_waiters:
                self.notify(f"inv:{inv_id}")
                if info is not None:
                    self.notify(f"task:{info.task}")
            self._finish_execution(inv_id, status.value)
            for thread in self.waiters.pop(inv_id, ()):
                if thread.waiting_on is not None:
                    thread.waiting_on = None
                    self.ready.append(thread)
        elif status == InvocationStatus.RETRY:
            self._finish_execution(inv_id, "retry")
        if info is None:
            return
        if status in _RESULT_STATUSES:
            self._commit(
                self._next_step(
                    "result", info.name, self._step_workflow(info), inv_id, info.task,
                    _STATUS_DETAIL[status],
                )
            )
        elif status == InvocationStatus.RETRY:
            # Status written, invocation not routed yet: pynenc's window (fine-grained only).
            self._commit(
                self._next_step(
                    "window", f"retry_status:{info.name}", self._step_workflow(info), inv_id,
                    info.task,
                )
            )
            if self._armed():
                self._before(
                    self._next_step(
                        "retry", f"retry:{info.name}", self._step_workflow(info), inv_id,
                        info.task,
                    )
                )

    def after_retry(self, app: Pynenc, invocation_id: Any) -> None:
        info = self.invocations.get(str(invocation_id))
        if info is not None:
            self._commit(
                self._next_step(
                    "retry", f"retry:{info.name}", self._step_workflow(info), info.invocation_id,
                    info.task,
                )
            )

    def _classify_data(
        self, identity: WorkflowIdentity, key: str, value: Any, *, count: bool
    ) -> tuple[str, str] | None:
        head, sep, tail = key.partition(":")
        if head == "wfx":
            return self._classify_engine(tail, value)
        if sep and head in _VALUE_KEYS and tail.isdigit():
            return "value", f"{_VALUE_KEYS[head]}#{tail}"
        if head == "counter" or key == "workflow:base_time":
            return None
        if head == "task_invocation":
            child = self.invocations.get(str(value))
            return "record", f"record:{child.name if child else tail[:12]}"
        wf_key = (str(identity.workflow_id), key)
        n = self._data_counters.get(wf_key, 0) + 1
        if count:
            self._data_counters[wf_key] = n
        return "data", f"data:{key}#{n}"

    def _classify_engine(self, key: str, value: Any) -> tuple[str, str] | None:
        """Step names of the durable engine's records (see engine/_ops.py)."""
        parts = key.split(":")
        kind = parts[0]
        last = parts[-1]
        if kind in _ENGINE_INTERNAL or value is None:
            return None
        if kind == "timer":
            return "timer", f"sleep#{last}"
        if kind == "timer_fired":
            return "timer", f"timer#{last}"
        if kind in ("now", "side_effect"):
            return "value", f"{kind}#{last}"
        if kind == "any":
            return "value", f"wait_any#{last}"
        if kind == "task_wait":
            return "value", f"wait_for_task#{last}"
        if kind == "signal" and len(parts) >= 3:
            return "signal", f"signal:{':'.join(parts[1:-1])}#{last}"
        if kind == "signal_wait" and len(parts) >= 3:
            return "signal", f"wait_signal:{':'.join(parts[1:-1])}#{last}"
        if kind == "state":
            return "state", f"save_state#{last}"
        if kind == "halt":
            return "halt", f"halt#{last}"
        if kind == "retry":
            child = self.invocations.get(str(value))
            return "retry", f"attempt:{child.name if child else last}"
        if kind == "patch":
            return "value", f"patch:{':'.join(parts[1:])}"
        if kind == "cancel":
            return "cancel", "cancel#1"
        if kind == "deadline":
            return "timer", "run_timeout#1"
        if kind == "check":
            return "value", f"check_cancelled#{last}"
        if kind == "retry_route":
            # the intent recorded before routing attempt N of a retried call (#call:attempt)
            return "value", f"route_attempt#{parts[1]}:{last}" if len(parts) >= 3 else f"route_attempt#{last}"
        return "data", f"wfx:{key}"

    def before_data(self, app: Pynenc, identity: WorkflowIdentity, key: str, value: Any) -> None:
        if not self._armed():
            return
        kind_name = self._classify_data(identity, key, value, count=False)
        if kind_name is not None:
            kind, name = kind_name
            self._before(self._next_step(kind, name, str(identity.workflow_id), None, None))

    def after_data(self, app: Pynenc, identity: WorkflowIdentity, key: str, value: Any) -> None:
        kind_name = self._classify_data(identity, key, value, count=True)
        if kind_name is not None:
            kind, name = kind_name
            self._commit(
                self._next_step(kind, name, str(identity.workflow_id), None, None, {"key": key})
            )

    # child calls -------------------------------------------------------------------------

    def execute_task_hook(
        self, original: Callable[..., Any], executor: Any, task: Any, args: Any, kwargs: Any
    ) -> Any:
        thread = self.current if self.in_simulated_invocation() else None
        if thread is None:
            return original(executor, task, *args, **kwargs)
        routed_before = thread.routed
        thread.in_execute_task += 1
        try:
            invocation = original(executor, task, *args, **kwargs)
        finally:
            thread.in_execute_task -= 1
        if thread.routed == routed_before:
            # Replayed from the store: the child was counted when it was first routed.
            self._child_obtained(thread, invocation)
        return invocation

    def _child_obtained(self, thread: _Thread, child: Any) -> None:
        parent_wf = thread.invocation.workflow
        if parent_wf is None:
            return
        wf_id = str(parent_wf.workflow_id)
        child_id = str(child.invocation_id)
        info = self._describe_new(child)
        base = child.call.task.task_id.func_name
        count = thread.child_counts.get(base, 0) + 1
        thread.child_counts[base] = count
        if info.logical is None:
            info.logical = (wf_id, base, count)
        seq = thread.child_seq = thread.child_seq + 1
        obtained = self._positions.get(wf_id)
        if obtained is None:
            obtained = self._positions[wf_id] = []
        recorded = obtained[seq - 1] if seq <= len(obtained) else None
        limit = self.replay_limits.get(wf_id)
        if limit is not None:
            self.replay_obtained[wf_id] = max(self.replay_obtained.get(wf_id, 0), seq)
            if recorded is None:
                if limit[1]:
                    self._abort(
                        NondeterminismError(
                            f"workflow {self.label(thread.invocation_id)} diverged from its "
                            f"recorded history at child call #{thread.child_seq}: the history "
                            f"ends after {limit[0]} child calls, but the replayed code now "
                            f"calls {info.name.split('#')[0]}({self._args_of(child)}). "
                            f"Seed: {self.seed}."
                        )
                    )
                from pynenc_wf_testing.checks.replay import _Frontier

                self._abort(_Frontier())
        if recorded is None:
            obtained.append(child_id)
            return
        if limit is not None:
            # A replayed history: its recorded call ids are the reference (a history whose
            # children's arguments were edited still maps the data key to the same child).
            if self.replay_calls[wf_id][seq - 1] == str(child.call.call_id):
                return
        elif recorded == child_id or self._call_of(thread.app, recorded) == str(
            child.call.call_id
        ):
            # The same child, or another invocation of the same call (pynenc's
            # route-before-record window: a duplicate the ledger reports): no divergence.
            return
        try:
            recorded_child = thread.app.state_backend.get_invocation(recorded)
        except Exception:  # pragma: no cover - recorded children are stored before recording
            recorded_child = None
        self._abort(self._divergence(thread, seq, recorded_child, child, info))

    def _divergence(
        self, thread: _Thread, seq: int, recorded_child: Any, child: Any, info: InvocationInfo,
    ) -> NondeterminismError:
        old_args = self._args_of(recorded_child) if recorded_child is not None else "?"
        old_task = (
            recorded_child.call.task.task_id.func_name if recorded_child is not None else "?"
        )
        new_args = self._args_of(child)
        return NondeterminismError(
            f"workflow {self.label(thread.invocation_id)} diverged from its recorded history "
            f"at child call #{seq}: the history recorded "
            f"{old_task}({old_args}) but the replayed code now calls "
            f"{info.name.split('#')[0]}({new_args}). Workflow code must make the same calls when it "
            "replays: take ids, random numbers and times from wf.root.uuid()/random()/"
            "utc_now() (or record them in a child task), never from uuid4(), random or "
            f"datetime.now() in the workflow body. Seed: {self.seed}."
        )

    @staticmethod
    def _call_of(app: Any, invocation_id: str) -> str | None:
        try:
            return str(app.state_backend.get_invocation(invocation_id).call.call_id)
        except Exception:  # pragma: no cover - recorded children are stored before recording
            return None

    def _args_of(self, invocation: Any) -> str:
        try:
            items = sorted(invocation.call.serialized_arguments.items())
        except Exception:  # pragma: no cover - arguments already validated by pynenc
            return "?"
        return ", ".join(f"{k}={v}" for k, v in items)

    def _abort(self, error: BaseException) -> None:
        """Stop the current invocation for good and fail the driving call with ``error``."""
        if self.in_simulated_invocation():
            self.main_glet.switch(("abort", error))
            raise AssertionError("unreachable: an aborted invocation was resumed")  # pragma: no cover
        raise error

    # ledger ------------------------------------------------------------------------------

    def _start_execution(self, inv_id: str, info: InvocationInfo | None) -> None:
        thread = self.current
        if thread is None or thread.invocation_id != inv_id or info is None:
            return
        info.executions += 1
        try:
            # the call's own mapping (cached on it and held by the store): shared, read-only
            arguments = thread.invocation.call.serialized_arguments
        except Exception:  # pragma: no cover - arguments that cannot serialize fail elsewhere
            arguments = {}
        execution = Execution(
            task=info.task,
            name=info.name,
            invocation_id=inv_id,
            workflow_id=info.workflow_id,
            attempt=info.executions,
            arguments=arguments,
            started=self._now_iso(),
            logical_call=info.logical or (info.owner_workflow_id or "", info.name, 0),
        )
        self.ledger.append(execution)
        self._running_execution[inv_id] = execution
        failure = self.faults.failure_for(info.task)
        if failure is not None:
            execution.injected = True
            raise failure

    def _finish_execution(self, inv_id: str, outcome: str) -> None:
        execution = self._running_execution.pop(inv_id, None)
        if execution is not None:
            execution.outcome = outcome
            execution.finished = self._now_iso()

    # ------------------------------------------------------------------ scheduling

    def in_simulated_invocation(self) -> bool:
        thread = self.current
        return thread is not None and greenlet.getcurrent() is thread.glet

    def wait_for_results(self, invocation_ids: list[Any]) -> None:
        """Block the caller until one of ``invocation_ids`` is final."""
        if self.in_simulated_invocation():
            self.main_glet.switch(("wait", [str(i) for i in invocation_ids]))
            return
        ids = [str(i) for i in invocation_ids]
        self.drive(goal=lambda: self._any_final(ids), goal_ids=ids, on_final=True)

    def sleep_hook(self, seconds: float) -> bool:
        """``time.sleep`` inside a simulated invocation parks it until the virtual deadline."""
        if not self.in_simulated_invocation():
            return False
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = self.clock.micros + round(seconds * 1_000_000)
        self.main_glet.switch(("sleep", deadline))
        return True

    def wait_condition(self, keys: tuple[str, ...], deadline: int | None, what: str) -> None:
        """Park the current invocation until :meth:`notify` of one of ``keys`` or the virtual
        ``deadline`` (micros), whichever comes first. The caller re-checks its condition."""
        if not self.in_simulated_invocation():
            raise InvalidArgument("wait_condition() is only for simulated invocations")
        self.main_glet.switch(("cond", keys, deadline, what))

    def notify(self, key: str) -> None:
        """Wake every invocation parked on ``key``."""
        for thread in self.cond_waiters.pop(key, ()):
            if thread.waiting_for is not None and key in thread.waiting_for:
                thread.waiting_for = None
                if thread.sleeping_until is not None:
                    thread.sleeping_until = None  # its heap entry is skipped when popped
                self.ready.append(thread)

    def _any_final(self, ids: list[str]) -> bool:
        for inv_id in ids:
            app = self._app_of(inv_id)
            try:
                status = app.orchestrator.get_invocation_status(inv_id)
            except KeyError:
                raise InvalidArgument(
                    f"invocation {inv_id} is not in the simulated store: it was created "
                    "before env.use(app) put its app on simulated components (or by another "
                    "WorkflowEnv). Start it inside the environment: env.start(task, ...)."
                ) from None
            if status.is_final():
                return True
        return False

    def _app_of(self, inv_id: str) -> Any:
        thread = self.threads.get(inv_id)
        if thread is not None:
            return thread.app
        if len(self.apps) == 1:
            return self.apps[0]
        for app in self.apps:
            try:
                app.orchestrator.get_invocation_status(inv_id)
                return app
            except Exception:
                continue
        return self.apps[0]

    def is_stored(self, app: Any, inv_id: str) -> bool:
        try:
            app.orchestrator.get_invocation_status_record(inv_id)
        except Exception:
            return False
        return True

    def run_until_idle(self) -> None:
        self.drive(goal=None, horizon=self.clock.micros)

    def advance_to(self, target_micros: int) -> None:
        self.drive(goal=None, horizon=target_micros)
        self._move_clock(target_micros)

    def drive(
        self,
        goal: Callable[[], bool] | None,
        horizon: int | None = None,
        goal_ids: list[str] | None = None,
        *,
        on_final: bool = False,
    ) -> None:
        """Run the world until ``goal()`` holds, or, without a goal, until idle at ``horizon``.

        With a goal the clock skips to the next deadline whenever everything is blocked on
        time; without one it stops at ``horizon`` (virtual microseconds). ``on_final``: the
        goal can only turn true when a status becomes final, so it is re-checked after each
        final status (and before the world idles or moves its clock), not after every slice.
        """
        if greenlet.getcurrent() is not self.main_glet:
            raise InvalidArgument(
                "the simulation can only be driven from the test (the code that created the "
                "WorkflowEnv), not from inside a simulated task: a task that needs another's "
                "result should call .result on its invocation."
            )
        checked = -1
        while True:
            if self._pending_crash is not None:
                pending, self._pending_crash = self._pending_crash, None
                self._do_crash(*pending)
            if self._recovery_at is not None and self.clock.micros >= self._recovery_at:
                self._route_recovery_tasks()
            if self.errors_to_raise:
                self._raise_deferred()
            if goal is not None and (checked != self.finals or not on_final):
                checked = self.finals
                if goal():
                    return
            if self.broker_dirty:
                self._fetch()
            if not self.ready and self._trigger_pending:
                self._run_triggers()
                if self.broker_dirty:
                    continue
            if self.ready:
                index = self._rng.randrange(len(self.ready)) if len(self.ready) > 1 else 0
                thread = self.ready[index]
                self.ready[index] = self.ready[-1]
                self.ready.pop()
                self._run_slice(thread)
                continue
            if goal is not None and on_final and goal():
                return  # (a final status written without our hooks would still be seen here)
            self._prune_sleepers()
            next_deadline = self.sleepers[0][0] if self.sleepers else None
            next_cron = self._next_cron()
            if next_cron is not None and (next_deadline is None or next_cron < next_deadline):
                next_deadline = next_cron
            if self._recovery_at is not None:
                if not self._owned_by_dead():
                    self._recovery_at = None
                elif next_deadline is None or self._recovery_at < next_deadline:
                    next_deadline = self._recovery_at
            if next_deadline is not None and (horizon is None or next_deadline <= horizon):
                self._move_clock(max(next_deadline, self.clock.micros))
                self._wake_sleepers()
                continue
            if goal is None:
                return
            raise self._deadlock(goal_ids or [])

    def _raise_deferred(self) -> None:
        if self.errors_to_raise:
            error = self.errors_to_raise.pop(0)
            raise error

    def _move_clock(self, micros: int) -> None:
        if micros > self.clock.micros:
            self.clock.move_to_micros(micros)
            self._heartbeat()
            if self._trigger_apps:
                self._trigger_pending = True

    def _wake_sleepers(self) -> None:
        now = self.clock.micros
        while self.sleepers and self.sleepers[0][0] <= now:
            deadline, _, thread = heapq.heappop(self.sleepers)
            if thread.sleeping_until != deadline:
                continue  # woken earlier by notify(): a stale heap entry
            thread.sleeping_until = None
            thread.waiting_for = None
            self.ready.append(thread)

    def _prune_sleepers(self) -> None:
        while self.sleepers and self.sleepers[0][2].sleeping_until != self.sleepers[0][0]:
            heapq.heappop(self.sleepers)

    def _fetch(self) -> None:
        self.broker_dirty = False
        for app in self.apps:
            runner = self.runners[app.app_id]
            for inv in app.orchestrator.get_invocations_to_run(
                1_000_000_000,
                runner.runner_context,
                # what pynenc would take from app.runner (this runner), without the lookup
                queue_provider=runner.queue_names_for_retrieval,
                on_queue_retrieved=runner.note_queue_retrieved,
            ):
                inv_id = str(inv.invocation_id)
                info = self._describe_new(inv)
                thread = _Thread(app=app, invocation=inv, invocation_id=inv_id, label=info.name)
                self.threads[inv_id] = thread
                self.ready.append(thread)

    def _worker_main(self, thread: _Thread) -> tuple[str, Any]:
        """A worker greenlet: runs invocations one after the other.

        A greenlet that ends frees its Python frame stack (an ``munmap``) and a new one maps
        another on its first call: reusing a few finished workers (up to ``_IDLE_WORKERS``)
        saves both system calls per invocation. An idle worker holds no frame of pynenc or of
        the task, only this loop.
        """
        while True:
            outcome = self._run_invocation(thread)
            del thread  # nothing of the finished invocation stays referenced while idle
            if len(self._idle_glets) >= _IDLE_WORKERS:
                return outcome
            thread = self.main_glet.switch(outcome)

    def _run_invocation(self, thread: _Thread) -> tuple[str, Any]:
        runner = self.runners[thread.app.app_id]
        try:
            thread.invocation.run(runner.runner_context)
        except AssertionError as exc:
            return ("done", exc)
        except Exception:
            pass  # pynenc already recorded the failure in the store
        return ("done", None)

    def _run_slice(self, thread: _Thread) -> None:
        self.slices += 1
        if self.slices > self.max_steps:
            self.ready.append(thread)
            raise self._step_limit()
        tl = _TL.__dict__
        main_state = dict(tl)
        tl.clear()
        tl.update(thread.tl)
        # asyncio keeps "the running loop" per OS thread: an async task parked inside its
        # event loop must not make the next greenlet's asyncio.run() think a loop is running.
        main_loop = _get_running_loop()
        _set_running_loop(thread.event_loop)
        self.current = thread
        try:
            if thread.started:
                message = thread.glet.switch()  # type: ignore[union-attr]
            else:
                # A worker is taken when the invocation first runs (not when it is fetched:
                # then the ones freed by the invocations before it are reused). A new worker
                # gets its thread as the entry argument, an idle one as the value of the
                # switch it is parked in.
                thread.started = True
                idle = self._idle_glets
                if idle:
                    glet = idle.pop()
                    glet.gr_context = None  # a fresh contextvars context, as a new greenlet's
                else:
                    glet = greenlet.greenlet(self._worker_main, parent=self.main_glet)
                thread.glet = glet
                message = glet.switch(thread)
        finally:
            self.current = None
            thread.tl = dict(tl)
            tl.clear()
            tl.update(main_state)
            thread.event_loop = _get_running_loop()
            _set_running_loop(main_loop)
        kind = message[0]
        if kind == "wait":
            ids: list[str] = message[1]
            thread.waiting_on = ids
            for inv_id in ids:
                self.waiters.setdefault(inv_id, []).append(thread)
        elif kind == "sleep":
            deadline: int = message[1]
            if deadline <= self.clock.micros:
                self.ready.append(thread)
            else:
                thread.sleeping_until = deadline
                self._sleep_seq += 1
                heapq.heappush(self.sleepers, (deadline, self._sleep_seq, thread))
        elif kind == "cond":
            _, keys, deadline, what = message
            thread.waiting_for = keys
            thread.waiting_what = what
            for key in keys:
                waiting = self.cond_waiters.setdefault(key, [])
                # Entries of threads woken by another key or by their deadline are stale:
                # drop them here, or a workflow that waits often grows the list forever.
                waiting[:] = [t for t in waiting if t.waiting_for is not None and t is not thread]
                waiting.append(thread)
            if deadline is not None:
                thread.sleeping_until = max(deadline, self.clock.micros)
                self._sleep_seq += 1
                heapq.heappush(self.sleepers, (thread.sleeping_until, self._sleep_seq, thread))
        elif kind == "done":
            glet = thread.glet
            thread.glet = None
            if glet is not None and not glet.dead:
                self._idle_glets.append(glet)  # parked in _worker_main, ready for another
            self._thread_done(thread, message[1])
        elif kind == "crash":
            self.graveyard.append(thread.glet)
            self._do_crash(*message[1])
        elif kind == "abort":
            self.graveyard.append(thread.glet)
            self.threads.pop(thread.invocation_id, None)
            self._finish_execution(thread.invocation_id, "aborted")
            raise message[1]
        else:  # pragma: no cover - protocol error
            raise RuntimeError(f"unknown scheduler message {message!r}")

    def assertion_failed(self, invocation: Any, error: AssertionError) -> None:
        if error not in self.errors_to_raise:
            error.add_note(
                f"raised by {self.label(str(invocation.invocation_id))} inside the simulation; "
                "an AssertionError in workflow code fails the test at once and is never retried"
            )
            self.errors_to_raise.append(error)

    def _thread_done(self, thread: _Thread, error: AssertionError | None) -> None:
        self.threads.pop(thread.invocation_id, None)
        status = thread.app.orchestrator.get_invocation_status(thread.invocation_id)
        if status in (InvocationStatus.RUNNING, InvocationStatus.PAUSED):
            halted = self._halt_reason(thread)
            reason = (
                f"is halted ({halted}): resume it with wf_env.resume(run) or "
                "resume_workflow(app, workflow_id)"
                if halted is not None
                else "its code returned but it is still RUNNING (pynenc swallows "
                "WorkflowPauseError and leaves the invocation RUNNING: nothing will resume it)"
            )
            self.stalled[thread.invocation_id] = reason
            self._finish_execution(thread.invocation_id, "stalled")
        if isinstance(error, AssertionError):
            self.assertion_failed(thread.invocation, error)

    def _halt_reason(self, thread: _Thread) -> str | None:
        workflow = thread.invocation.workflow
        if workflow is None:
            return None
        try:
            halted = thread.app.state_backend.get_workflow_data(workflow, "wfx:halted")
        except Exception:  # pragma: no cover - a store that cannot answer
            return None
        return None if halted is None else str(halted)

    # ------------------------------------------------------------------ crashes

    def _crash(self, reason: str, restart_after: float | None = None) -> None:
        """The worker process dies now (called from a commit hook)."""
        if self.in_simulated_invocation():
            # Never returns: this greenlet's frames are abandoned, no finally block runs.
            self.main_glet.switch(("crash", (reason, restart_after)))
            raise AssertionError("unreachable: a crashed invocation was resumed")  # pragma: no cover
        self._pending_crash = (reason, restart_after)

    def _do_crash(self, reason: str, restart_after: float | None = None) -> None:
        self.crashes += 1
        for thread in list(self.threads.values()):
            if thread.glet is not None:
                self.graveyard.append(thread.glet)
        for execution in list(self._running_execution.values()):
            execution.outcome = "crashed"
            execution.finished = self._now_iso()
        self._running_execution.clear()
        self.threads.clear()
        self.ready.clear()
        self.waiters.clear()
        self.cond_waiters.clear()
        self.sleepers.clear()
        at = self._crash_at
        self._crash_at = None
        detail: dict[str, Any] = {"reason": reason, "worker": self._worker_generation}
        if at is not None:
            step, phase = at
            detail.update(phase=phase, step=step.name, step_number=step.number)
        self._event(
            "crash", "crash", detail,
            workflow_id=at[0].workflow_id if at else None,
            invocation_id=at[0].invocation_id if at else None,
        )
        for app in self.apps:
            self._dead_runner_ids.add(self.runners[app.app_id].runner_id)
            if self.after_crash is not None:
                self.after_crash(app)
        self._worker_generation += 1
        if restart_after is None:
            for app in self.apps:
                self._new_runner(app)
                self._recover(app)
            self._event("recover", "recover", {"worker": self._worker_generation})
            return
        # The worker stays down: time passes with nothing running, then a new worker starts
        # and pynenc's own recovery core tasks find what the dead worker owned once its
        # heartbeat is older than runner_considered_dead_after_minutes.
        self.clock.move_to_micros(self.clock.micros + round(restart_after * 1_000_000))
        for app in self.apps:
            self._new_runner(app)
        self._heartbeat()
        self._event("restart", "restart", {"worker": self._worker_generation})
        self._route_recovery_tasks()

    def _route_recovery_tasks(self) -> None:
        """Route pynenc's core recovery tasks, as their cron would, until nothing is left
        owned by a dead worker (retried at each 5-minute cron tick)."""
        from pynenc.core_tasks import core_tasks_registry

        self._recovery_at = None
        for app in self.apps:
            for definition in core_tasks_registry.definitions:
                task = app.task(definition.func, **definition.options)
                task()
        self._event("recover", "recover-tasks", {"worker": self._worker_generation})
        tick = 5 * 60 * 1_000_000
        self._recovery_at = (self.clock.micros // tick + 1) * tick

    def _owned_by_dead(self) -> bool:
        for inv_id in self.invocations:
            app = self._app_of(inv_id)
            try:
                record = app.orchestrator.get_invocation_status_record(inv_id)
            except Exception:
                continue
            if record.runner_id in self._dead_runner_ids and record.status in (
                InvocationStatus.RUNNING, InvocationStatus.PENDING
            ):
                return True
        return False

    def _recover(self, app: Pynenc) -> None:
        """pynenc's recovery transitions for everything the dead worker owned.

        The same status path as the core tasks ``recover_running_invocations`` and
        ``recover_pending_invocations`` (RUNNING -> RUNNING_RECOVERY -> REROUTED, PENDING ->
        PENDING_RECOVERY -> REROUTED), applied at once for an immediate restart.
        """
        runner_ctx = self.runners[app.app_id].runner_context
        orchestrator = app.orchestrator
        to_reroute: list[str] = []
        for inv_id in self.invocations:
            try:
                record = orchestrator.get_invocation_status_record(inv_id)
            except Exception:
                continue
            if record.runner_id not in self._dead_runner_ids:
                continue
            if record.status == InvocationStatus.RUNNING:
                orchestrator.set_invocation_status(
                    inv_id, InvocationStatus.RUNNING_RECOVERY, runner_ctx
                )
                to_reroute.append(inv_id)
            elif record.status == InvocationStatus.PENDING:
                orchestrator.set_invocation_status(
                    inv_id, InvocationStatus.PENDING_RECOVERY, runner_ctx
                )
                to_reroute.append(inv_id)
            self.stalled.pop(inv_id, None)
        if to_reroute:
            orchestrator.reroute_invocations(to_reroute, runner_ctx)

    def duplicate_side_effects(self, keys: set[str]) -> list[list[Execution]]:
        """Executions of non-idempotent tasks (``keys``) that ran more than once for the same
        logical call. Executions that raised (failed, retry) or were injected failures are
        not side effects; crashed ones may be (at-least-once)."""
        by_call: dict[tuple[str, str, int], list[Execution]] = {}
        for execution in self.ledger:
            if execution.task not in keys or execution.injected:
                continue
            if execution.outcome in ("failed", "retry", "aborted"):
                continue
            assert execution.logical_call is not None
            by_call.setdefault(execution.logical_call, []).append(execution)
        return [runs for runs in by_call.values() if len(runs) > 1]

    # ------------------------------------------------------------------ diagnostics

    def _status_text(self, inv_id: str) -> str:
        try:
            return str(self._app_of(inv_id).orchestrator.get_invocation_status(inv_id).value)
        except Exception:
            return "unknown"

    def blocked_report(self) -> dict[str, str]:
        blocked: dict[str, str] = {}
        for inv_id, thread in self.threads.items():
            if thread.waiting_for is not None:
                blocked[self.label(inv_id)] = f"waits for {thread.waiting_what}" + (
                    f" (until {step_time(thread.sleeping_until)})"
                    if thread.sleeping_until is not None else " (no timeout)"
                )
            if thread.waiting_on:
                targets = ", ".join(
                    f"{self.label(t)} (status: {self._status_text(t)})" for t in thread.waiting_on
                )
                blocked[self.label(inv_id)] = f"waits for the result of {targets}"
        for inv_id, reason in self.stalled.items():
            blocked[self.label(inv_id)] = reason
        return blocked

    def _deadlock(self, goal_ids: list[str]) -> DeadlockError:
        blocked = self.blocked_report()
        goal = ", ".join(f"{self.label(i)} (status: {self._status_text(i)})" for i in goal_ids)
        lines = [
            "the simulation cannot make progress: nothing is runnable, no timer is pending"
            + (f", and {goal} is not finished." if goal else "."),
        ]
        if blocked:
            lines.append("Blocked:")
            lines.extend(f"  - {who} {what}" for who, what in blocked.items())
        else:
            lines.append(
                "Nothing is blocked inside the simulation: the awaited invocation was never "
                "routed to the simulated broker (was it created before env.use(app)?)."
            )
        lines.append(f"Virtual time: {self.clock.now.isoformat()}; seed: {self.seed}.")
        return DeadlockError("\n".join(lines), blocked)

    def _step_limit(self) -> StepLimitExceeded:
        recent = [s.name for s in self.history[-8:]]
        return StepLimitExceeded(
            f"the simulation ran {self.max_steps} scheduler steps without finishing "
            f"(limit max_steps={self.max_steps}). If the run is meant to be this long, raise "
            "the limit: WorkflowEnv(max_steps=...) or @pytest.mark.wf(max_steps=...). "
            "Otherwise look for a workflow that never ends (an endless loop of children, "
            f"sleeps or retries). Last steps: {', '.join(recent) or 'none'}. "
            f"Virtual time: {self.clock.now.isoformat()}; seed: {self.seed}."
        )

    def close(self) -> None:
        """End every greenlet of this world deliberately (call after detaching the apps).

        A garbage-collected greenlet gets ``GreenletExit``, which runs pynenc's ``finally``
        blocks in whatever context is current: so abandoned (crashed) and still-parked
        greenlets are kept referenced until now and then ended here, on a scratch context.
        """
        glets = list(self.graveyard)
        glets.extend(t.glet for t in self.threads.values() if t.glet is not None)
        glets.extend(self._idle_glets)
        self._idle_glets.clear()
        self.ready.clear()
        self.waiters.clear()
        self.sleepers.clear()
        self.threads.clear()
        self.graveyard.clear()
        tl = _TL.__dict__
        main_state = dict(tl)
        for glet in glets:
            if glet and not glet.dead:
                tl.clear()
                with contextlib.suppress(BaseException):  # a dying greenlet may raise anything
                    glet.throw(greenlet.GreenletExit)
        tl.clear()
        tl.update(main_state)


def step_time(micros: int) -> str:
    return from_micros(micros).isoformat()
