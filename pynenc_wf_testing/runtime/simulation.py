"""The simulated world: a thin coordinator of the simulator's collaborators.

:class:`Simulation` wires together, for one environment:

- :class:`~pynenc_wf_testing.runtime.workers.Workers`: the apps and the worker's runners;
- :class:`~pynenc_wf_testing.runtime.scheduler.Scheduler`: one greenlet per invocation, parked
  and woken on results, virtual deadlines and condition keys;
- :class:`~pynenc_wf_testing.runtime.recorder.StepRecorder`: the numbered, named history;
- :class:`~pynenc_wf_testing.runtime.store_hooks.StoreHooks`: what the simulated components
  report, turned into steps, wake-ups and ledger entries;
- :class:`~pynenc_wf_testing.runtime.determinism.DeterminismGuard`: child-call positions and
  divergence on replay;
- :class:`~pynenc_wf_testing.runtime.crashes.CrashHandler`: crash points, the crash, recovery;
- :class:`~pynenc_wf_testing.runtime.triggers.Triggers`: pynenc's cron/event trigger loop;
- :class:`~pynenc_wf_testing.runtime.diagnostics.Diagnostics`: deadlock and step-limit errors;
- :class:`~pynenc_wf_testing.runtime.ledger.ExecutionLedger`: every task execution.

It owns the drive loop, the one place that consults them all. Faults come in through the
:class:`~pynenc_wf_testing.runtime.fault_hooks.FaultHooks` protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import greenlet
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.clock import VirtualClock
from pynenc_wf_testing.runtime.crashes import CrashHandler
from pynenc_wf_testing.runtime.determinism import DeterminismGuard
from pynenc_wf_testing.runtime.diagnostics import Diagnostics
from pynenc_wf_testing.runtime.fault_hooks import NO_FAULTS, FaultHooks
from pynenc_wf_testing.runtime.ledger import Execution, ExecutionLedger
from pynenc_wf_testing.runtime.recorder import InvocationInfo as InvocationInfo
from pynenc_wf_testing.runtime.recorder import StepRecorder
from pynenc_wf_testing.runtime.scheduler import Scheduler, SimThread
from pynenc_wf_testing.runtime.store_hooks import StoreHooks
from pynenc_wf_testing.runtime.suspensions import EvictionPolicy, Suspensions
from pynenc_wf_testing.runtime.triggers import Triggers
from pynenc_wf_testing.runtime.watchdog import user_location
from pynenc_wf_testing.runtime.workers import Workers

__all__ = ["Simulation"]

if TYPE_CHECKING:
    from pynenc.app import Pynenc

    from pynenc_wf_testing.runtime.history import Step
    from pynenc_wf_testing.runtime.sim_view import AttachedSimulation


class Simulation:
    """One simulated world: apps on simulated components, a scheduler, a recorder, faults.

    The attributes other layers read (``history``, ``invocations``, ``ledger``, ``threads``,
    ``ready``, ``sleepers``, ``stalled``, ``runners``, ``_positions``, ``replay_*``) are the
    collaborators' own containers, shared, never rebound; the hooks the components and the
    engine call on every step are the collaborators' bound methods, so going through the
    coordinator costs no extra call.
    """

    def __init__(
        self,
        *,
        seed: int,
        clock: VirtualClock,
        max_steps: int,
        faults: FaultHooks | None = None,
        worker_tag: str = "",
        slice_timeout: float | None = None,
        evict: str = "never",
    ) -> None:
        self.seed = seed
        #: Which waits evict the workflow (the production suspension) instead of parking it.
        self.eviction = EvictionPolicy(evict)
        self.clock = clock
        self.max_steps = max_steps
        self.faults: FaultHooks = faults if faults is not None else NO_FAULTS
        #: Something was routed since the last fetch (set by the components).
        self.broker_dirty = False
        #: Assertions raised inside invocations, raised in the driving call.
        self.errors_to_raise: list[BaseException] = []
        #: Invocations whose code returned but that stay RUNNING/PAUSED -> why.
        self.stalled: dict[str, str] = {}
        #: Check that call arguments and workflow data survive the app's serializer
        #: (runtime/serialization.py); the backend's ``check_serialization`` option.
        self.check_serialization = True

        workers = self._workers = Workers(worker_tag=worker_tag)
        scheduler = self._scheduler = Scheduler(
            seed=seed, clock=clock, max_steps=max_steps, runners=workers.runners, events=self,
            slice_timeout=slice_timeout,
        )
        recorder = self._recorder = StepRecorder(clock, max_steps)
        recorder.over_limit = self._steps_exceeded
        self._busy_mark: tuple[int, int] | None = None
        self._limit_kind = "slices"
        ledger = self._ledger = ExecutionLedger(recorder.now_iso)
        guard = self._guard = DeterminismGuard(seed=seed, recorder=recorder, scheduler=scheduler)
        crashes = self._crashes = CrashHandler(
            faults=self.faults, clock=clock, scheduler=scheduler, recorder=recorder,
            ledger=ledger, workers=workers, app_of=self._app_of, stalled=self.stalled,
        )
        self._suspensions = Suspensions(clock)
        triggers = self._triggers = Triggers(clock=clock, runners=workers.runners)
        self._diagnostics = Diagnostics(
            seed=seed, max_steps=max_steps, clock=clock, scheduler=scheduler,
            recorder=recorder, app_of=self._app_of, stalled=self.stalled,
        )
        self._diagnostics.suspended = self._suspensions.blocked
        hooks = self._hooks = StoreHooks(
            recorder=recorder, scheduler=scheduler, ledger=ledger, guard=guard,
            crashes=crashes, triggers=triggers,
        )

        # The collaborators' containers under the names other layers read.
        self.apps = workers.apps
        self.runners = workers.runners
        self.history = recorder.history
        self.invocations = recorder.invocations
        self.workflow_parent = recorder.workflow_parent
        self.ledger = ledger.entries
        self.threads = scheduler.threads
        self.ready = scheduler.ready
        self.sleepers = scheduler.sleepers
        self.positions = self._positions = guard.positions
        self.replay_limits = guard.replay_limits
        self.replay_obtained = guard.replay_obtained
        self.replay_calls = guard.replay_calls

        # Called on every store write, child call or wait: bound once (no delegating frame).
        self.before_register = hooks.before_register
        self.after_register = hooks.after_register
        self.before_status = hooks.before_status
        self.after_status = hooks.after_status
        self.after_retry = hooks.after_retry
        self.before_data = hooks.before_data
        self.after_data = hooks.after_data
        self.execute_task_hook = guard.execute_task_hook
        self.child_obtained = self._child_obtained = guard.child_obtained
        # Stop the current invocation for good, failing the driving call with the error.
        self.abort = self._abort = scheduler.abort
        self.in_simulated_invocation = scheduler.in_simulated_invocation
        self.notify = scheduler.notify
        self.wait_condition = scheduler.wait_condition
        self.sleep_hook = scheduler.sleep
        # An attribute, not a method: a test may wrap it on the instance to observe slices.
        self._run_slice = scheduler.run_slice

    # ------------------------------------------------------------------ state other layers read

    @property
    def current(self) -> SimThread | None:
        """The invocation running now (None between slices)."""
        return self._scheduler.current

    @property
    def crashes(self) -> int:
        return self._crashes.crashes

    @property
    def after_crash(self) -> Callable[[Any], None] | None:
        """Called with each app when its worker dies (the backend drops in-process state)."""
        return self._workers.after_crash

    @after_crash.setter
    def after_crash(self, callback: Callable[[Any], None] | None) -> None:
        self._workers.after_crash = callback

    def label(self, invocation_id: str) -> str:
        """``charge_payment#1 [1a2b3c4d]``: the invocation's step name and short id."""
        return self._recorder.label(invocation_id)

    def blocked_report(self) -> dict[str, str]:
        """Who is blocked on what (readable invocation label -> reason)."""
        return self._diagnostics.blocked_report()

    def duplicate_side_effects(self, keys: set[str]) -> list[list[Execution]]:
        """Executions of non-idempotent tasks (``keys``) that ran more than once for the same
        logical call (see :meth:`ExecutionLedger.duplicate_side_effects`)."""
        return self._ledger.duplicate_side_effects(keys)

    @staticmethod
    def is_stored(app: Any, inv_id: str) -> bool:
        return Workers.is_stored(app, inv_id)

    def record_into(self, history: list[Step]) -> None:
        """Commit steps into ``history`` from now on (a replay watches each step as it
        commits through a list subclass)."""
        history[:0] = self._recorder.history
        self._recorder.history = self.history = history

    def app_of(self, inv_id: str) -> Any:
        return self._app_of(inv_id)

    def _app_of(self, inv_id: str) -> Any:
        """The app whose store holds ``inv_id`` (the first app when none does)."""
        thread = self._scheduler.threads.get(inv_id)
        if thread is not None:
            return thread.app
        return self._workers.app_of(inv_id)

    # ------------------------------------------------------------------ apps

    def attach(self, app: Pynenc) -> None:
        self._workers.attach(app)

    def refresh_triggers(self) -> None:
        """Note which apps have trigger conditions (cron, events): only those pay for the
        trigger loop."""
        self._triggers.refresh(self.apps)

    # ------------------------------------------------------------------ what the scheduler reports

    def thread_done(self, thread: SimThread, error: AssertionError | None) -> None:
        self.threads.pop(thread.invocation_id, None)
        status = thread.app.orchestrator.get_invocation_status(thread.invocation_id)
        if status == InvocationStatus.PAUSED and self._suspensions.suspended(
            thread.app, thread.invocation_id
        ):
            self._ledger.finish(thread.invocation_id, "suspended")
        elif status in (InvocationStatus.RUNNING, InvocationStatus.PAUSED):
            self.stalled[thread.invocation_id] = self._diagnostics.stall_reason(thread)
            self._ledger.finish(thread.invocation_id, "stalled")
        if isinstance(error, AssertionError):
            self.assertion_failed(thread.invocation, error)

    def evicts_wait(self, app: Any) -> bool:
        """The engine asks, once per wait that blocks: evict (suspend as in production)
        rather than park the greenlet?"""
        if self.eviction.decide():
            self._suspensions.expect(app)
            return True
        return False

    def suspension_of(self, app: Any, workflow_id: str) -> str | None:
        """What an evicted workflow waits for, or None if it is not suspended."""
        return self._suspensions.describe(app, workflow_id)

    def worker_crashed(self, reason: str, restart_after: float | None) -> None:
        self._crashes.kill_worker(reason, restart_after)

    def invocation_aborted(self, invocation_id: str) -> None:
        self._ledger.finish(invocation_id, "aborted")

    def step_limit_error(self) -> BaseException:
        return self._diagnostics.step_limit(self._limit_kind)

    def slice_timeout_error(self, thread: SimThread, where: str) -> BaseException:
        return self._diagnostics.slice_timeout(thread, where, self._scheduler.slice_timeout or 0)

    def _steps_exceeded(self) -> None:
        """More steps committed than ``max_steps``: stop the invocation that committed the
        last one (from inside its slice) and fail the driving call."""
        self._limit_kind = "steps"
        self._scheduler.max_steps = -1  # driving again raises again, as for slices
        self._scheduler.abort(self._diagnostics.step_limit("steps"))

    def clock_reads_check(self, frame: Any) -> None:
        """Many reads of the virtual clock since the last check (see
        :data:`~pynenc_wf_testing.runtime.watchdog.CLOCK_READS`): nothing happened since the
        previous check in the same slice (no other slice, no committed step) is a busy wait."""
        scheduler = self._scheduler
        thread = scheduler.current
        if thread is None or greenlet.getcurrent() is not thread.glet:
            self._busy_mark = None
            return
        mark = (scheduler.slices, self._recorder.step_count)
        if mark != self._busy_mark:
            self._busy_mark = mark
            return
        self._busy_mark = None
        scheduler.abort(self._diagnostics.busy_wait(thread, user_location(frame)))

    def assertion_failed(self, invocation: Any, error: AssertionError) -> None:
        if error not in self.errors_to_raise:
            error.add_note(
                f"raised by {self.label(str(invocation.invocation_id))} inside the simulation; "
                "an AssertionError in workflow code fails the test at once and is never retried"
            )
            self.errors_to_raise.append(error)

    # ------------------------------------------------------------------ driving

    def wait_for_results(self, invocation_ids: list[Any]) -> None:
        """Block the caller until one of ``invocation_ids`` is final."""
        ids = [str(i) for i in invocation_ids]
        if self._scheduler.in_simulated_invocation():
            self._scheduler.park_for_results(ids)
            return
        self.drive(goal=lambda: self._any_final(ids), goal_ids=ids, on_final=True)

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
        scheduler = self._scheduler
        if greenlet.getcurrent() is not scheduler.main_glet:
            raise InvalidArgument(
                "the simulation can only be driven from the test (the code that created the "
                "WorkflowEnv), not from inside a simulated task: a task that needs another's "
                "result should call .result on its invocation."
            )
        crashes = self._crashes
        hooks = self._hooks
        triggers = self._triggers
        suspensions = self._suspensions
        clock = self.clock
        ready = scheduler.ready
        take_ready = scheduler.take_ready
        checked = -1
        while True:
            if crashes.pending is not None:
                pending, crashes.pending = crashes.pending, None
                crashes.kill_worker(*pending)
            if crashes.recovery_at is not None and clock.micros >= crashes.recovery_at:
                crashes.route_recovery_tasks()
            if self.errors_to_raise:
                self._raise_deferred()
            if goal is not None and (checked != hooks.finals or not on_final):
                checked = hooks.finals
                if goal():
                    return
            if suspensions.active:
                suspensions.run_due(hooks.finals)  # the engine's timer-service tick
            if self.broker_dirty:
                self._fetch()
            if not ready and triggers.pending:
                triggers.run()
                if self.broker_dirty:
                    continue
            if ready:
                self._run_slice(take_ready())
                continue
            if goal is not None and on_final and goal():
                return  # (a final status written without our hooks would still be seen here)
            next_deadline = scheduler.next_deadline()
            if suspensions.active:
                due = suspensions.next_deadline()
                if due is not None and (next_deadline is None or due < next_deadline):
                    next_deadline = due
            next_cron = triggers.next_cron()
            if next_cron is not None and (next_deadline is None or next_cron < next_deadline):
                next_deadline = next_cron
            if crashes.recovery_at is not None:
                if not crashes.owned_by_dead():
                    crashes.recovery_at = None
                elif next_deadline is None or crashes.recovery_at < next_deadline:
                    next_deadline = crashes.recovery_at
            if next_deadline is not None and (horizon is None or next_deadline <= horizon):
                self._move_clock(max(next_deadline, clock.micros))
                scheduler.wake_sleepers()
                continue
            if goal is None:
                return
            raise self._diagnostics.deadlock(goal_ids or [])

    def _raise_deferred(self) -> None:
        if self.errors_to_raise:
            error = self.errors_to_raise.pop(0)
            raise error

    def _move_clock(self, micros: int) -> None:
        if micros > self.clock.micros:
            self.clock.move_to_micros(micros)
            self._workers.heartbeat()
            if self._triggers.apps:
                self._triggers.pending = True

    def _fetch(self) -> None:
        """Take everything routed to the apps' brokers into the scheduler."""
        self.broker_dirty = False
        describe = self._recorder.describe_new
        add = self._scheduler.add
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
                add(app, inv, inv_id, describe(inv).name)

    def close(self) -> None:
        """End every greenlet of this world deliberately (call after detaching the apps)."""
        self._scheduler.close()


if TYPE_CHECKING:

    def _attachable(sim: Simulation) -> AttachedSimulation:
        """mypy: a Simulation is what components.sim_of promises (sim_view's Protocol)."""
        return sim
