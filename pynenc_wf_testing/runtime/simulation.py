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
from pynenc_wf_testing.runtime.components import not_in_simulated_store
from pynenc_wf_testing.runtime.crashes import CrashHandler
from pynenc_wf_testing.runtime.determinism import DeterminismGuard
from pynenc_wf_testing.runtime.diagnostics import Diagnostics
from pynenc_wf_testing.runtime.engine_hooks import result_wait_interrupts
from pynenc_wf_testing.runtime.fault_hooks import NO_FAULTS, FaultHooks
from pynenc_wf_testing.runtime.ledger import Execution, ExecutionLedger
from pynenc_wf_testing.runtime.pool import PoolSpec, WorkerDown
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
        pool: PoolSpec | None = None,
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

        workers = self._workers = Workers(worker_tag=worker_tag, pool=pool)
        scheduler = self._scheduler = Scheduler(
            seed=seed, clock=clock, max_steps=max_steps, runners=workers.runners, events=self,
            slice_timeout=slice_timeout,
        )
        #: The worker pool (None: one process, unlimited parallelism: runtime/pool.py).
        self.pool = pool
        #: Worker-down faults not carried out yet, and restarts due: (micros, seq, down, up).
        self._pool_events: list[tuple[int, int, WorkerDown, bool]] = []
        self._pool_seq = 0
        #: Every worker-down fault armed on this world, in arming order.
        self.worker_downs: list[WorkerDown] = []
        #: The next pool worker to offer free slots first (round robin over fetches).
        self._next_worker = 1
        #: A slot freed or a worker came back: what waits in the broker may fit now. (Not
        #: ``broker_dirty``, which says that something was routed: a replay's goal reads it.)
        self._refetch = False
        if pool is not None:
            scheduler.use_pool(pool.workers, pool.slots, pool.slowdown)
            scheduler.on_slot_freed = self._slot_freed
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
            crashes=crashes, triggers=triggers, interrupt_after=self._interrupt_after,
        )
        #: External events whose step committed, delivered by the drive loop in this order.
        self._interrupts: list[tuple[Any, Step]] = []

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

    def continue_names(self, owner: str, names: list[str]) -> None:
        """Name ``owner``'s next children after the steps ``names`` (a re-run's reused ones)."""
        self._recorder.continue_names(owner, names)

    def child_steps(self, workflow_id: str) -> list[tuple[str, str]]:
        """(step name, invocation id) of the children ``workflow_id`` routed, in the order the
        recorder first saw them (its dict's order: deterministic)."""
        return [
            (info.name, inv_id)
            for inv_id, info in self.invocations.items()
            if info.parent_invocation_id == workflow_id
        ]

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

    # ------------------------------------------------------------------ external events

    def _interrupt_after(self, step: Step) -> None:
        """``step`` just committed: queue the external events armed there. Inside an
        invocation, it stops at this boundary so that the events land before its next step
        (the drive loop delivers them, then resumes it first); from the test's own context
        they are delivered when the world is next driven, before anything else runs."""
        points = self.faults.interrupts_for(step)
        if not points:
            return
        self._interrupts.extend((point, step) for point in points)
        if self._scheduler.in_simulated_invocation():
            self._scheduler.preempt()

    def _deliver_interrupts(self) -> None:
        pending = self._interrupts
        while pending:
            point, step = pending.pop(0)
            point.deliver(step)

    def jump_clock(self, micros: int) -> None:
        """Move the clock forward without running anything (an external event: time passes
        at a step boundary); what became due runs when the world is next driven."""
        self._move_clock(micros)
        self._scheduler.wake_sleepers()

    # ------------------------------------------------------------------ driving

    def wait_for_results(self, invocation_ids: list[Any]) -> None:
        """Block the caller until one of ``invocation_ids`` is final."""
        ids = [str(i) for i in invocation_ids]
        scheduler = self._scheduler
        if scheduler.in_simulated_invocation():
            thread = scheduler.current
            assert thread is not None
            interrupts = result_wait_interrupts(thread.app, thread.invocation, ids)
            if interrupts is None:
                scheduler.park_for_results(ids)
            elif interrupts is not True:
                assert interrupts is not False
                scheduler.park_for_results(ids, *interrupts)
            return
        self.drive(goal=lambda: self._any_final(ids), goal_ids=ids, on_final=True)

    def _any_final(self, ids: list[str]) -> bool:
        for inv_id in ids:
            app = self._app_of(inv_id)
            try:
                status = app.orchestrator.get_invocation_status(inv_id)
            except KeyError:
                raise not_in_simulated_store(inv_id) from None
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
            if self._interrupts:
                self._deliver_interrupts()
            if scheduler.preempted is not None:
                preempted, scheduler.preempted = scheduler.preempted, None
                self._run_slice(preempted)
                continue
            if goal is not None and (checked != hooks.finals or not on_final):
                checked = hooks.finals
                if goal():
                    return
            if suspensions.active:
                suspensions.run_due(hooks.finals)  # the engine's timer-service tick
            if self.broker_dirty or (self._refetch and self.pool is not None):
                self._fetch()
            # (with a pool, ready invocations may all wait for slots: cron still fires)
            if triggers.pending and (not ready or self.pool is not None):
                triggers.run()
                if self.broker_dirty:
                    continue
            if self._pool_events and clock.micros >= self._pool_events[0][0]:
                self._pool_event()
                continue
            if ready:
                thread = take_ready()
                if thread is not None:
                    self._run_slice(thread)
                    continue
                # (a worker pool: every ready invocation waits for a slot of its worker)
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
            if self._pool_events:
                at = self._pool_events[0][0]
                if next_deadline is None or at < next_deadline:
                    next_deadline = at
            if crashes.recovery_at is not None:
                if not crashes.owned_by_dead() or not self._any_worker_up():
                    crashes.recovery_at = None
                elif next_deadline is None or crashes.recovery_at < next_deadline:
                    next_deadline = crashes.recovery_at
            if next_deadline is not None and (horizon is None or next_deadline <= horizon):
                self._move_clock(max(next_deadline, clock.micros))
                scheduler.wake_sleepers()
                continue
            if scheduler.max_steps < 0:
                # the step limit stopped the run (``_steps_exceeded``): driving it again
                # reports that limit, not a deadlock of the invocation it aborted
                raise self.step_limit_error()
            if goal is None:
                return
            raise self._diagnostics.deadlock(goal_ids or [], self._pool_report())

    def drop_invocation(self, invocation_id: str) -> None:
        """The engine terminates ``invocation_id``: its execution, if parked or ready,
        stops for good and its ledger entry ends ``cancelled``."""
        if self._scheduler.drop(invocation_id):
            self._ledger.finish(invocation_id, "cancelled")

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
        if self.pool is not None:
            self._refetch = False
            self._fetch_pool(self.pool)
            return
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

    # ------------------------------------------------------------------ worker pool

    def _slot_freed(self) -> None:
        self._refetch = True

    def _fetch_pool(self, pool: PoolSpec) -> None:
        """Each live worker takes at most its free slots from the broker, as pynenc's
        ThreadRunner does, from the queues it consumes; the worker offered first rotates.
        Slots that woken invocations of a worker wait for are not offered (new work does
        not starve a workflow that was already running)."""
        scheduler = self._scheduler
        workers = self._workers
        describe = self._recorder.describe_new
        add = scheduler.add
        count = pool.workers
        waiting = [0] * (count + 1)
        for thread in scheduler.ready:
            if thread.worker and not thread.holds_slot:
                waiting[thread.worker] += 1
        first = self._next_worker
        self._next_worker = first % count + 1
        for offset in range(count):
            worker = (first - 1 + offset) % count + 1
            if workers.down[worker]:
                continue
            queues = pool.queues_of(worker)
            for app in self.apps:
                free = scheduler.free_slots(worker) - waiting[worker]
                if free <= 0:
                    break
                runner = self.runners[app.app_id]
                ctx = workers.context(app.app_id, worker)
                provider = runner.queue_names_for_retrieval
                if queues is not None:
                    provider = _fixed_queues(queues)
                for inv in app.orchestrator.get_invocations_to_run(
                    free, ctx, queue_provider=provider,
                    on_queue_retrieved=runner.note_queue_retrieved,
                ):
                    add(app, inv, str(inv.invocation_id), describe(inv).name, worker, ctx)

    def schedule_worker_down(
        self, worker: int, at: int, down_for: int | None, reason: str
    ) -> WorkerDown:
        """Arm a worker-down fault: pool worker ``worker`` dies at virtual ``at`` (micros)."""
        if self.pool is None:
            raise InvalidArgument(
                f"{reason}: this WorkflowEnv has no worker pool. Create it with "
                "WorkflowEnv(workers=N, slots=M) (in pytest: @pytest.mark.wf(workers=N) or "
                "--wf-workers=N) to take one worker down while the others keep going; "
                "crash_after()/crash_before() kill the whole worker process."
            )
        if not 1 <= worker <= self.pool.workers:
            raise InvalidArgument(
                f"{reason}: there is no worker {worker}; the pool's workers are numbered "
                f"1 to {self.pool.workers}."
            )
        down = WorkerDown(worker=worker, at=at, down_for=down_for, reason=reason)
        self.worker_downs.append(down)
        self._push_pool_event(at, down, up=False)
        return down

    def _push_pool_event(self, at: int, down: WorkerDown, *, up: bool) -> None:
        self._pool_seq += 1
        self._pool_events.append((at, self._pool_seq, down, up))
        self._pool_events.sort(key=lambda event: (event[0], event[1]))

    def _pool_event(self) -> None:
        """Carry out the first due worker-down fault or restart."""
        _, _, down, up = self._pool_events.pop(0)
        workers = self._workers
        worker = down.worker
        if up:
            workers.worker_up(worker)
            self._recorder.event(
                "restart", "restart",
                {"reason": down.reason, "pool_worker": worker,
                 "generation": workers.worker_generations[worker]},
            )
            self._refetch = True
            return
        down.fired = True
        if workers.down[worker]:
            return  # already down: nothing more dies
        lost = self._scheduler.abandon_worker(worker)
        for inv_id in lost:
            self._ledger.finish(inv_id, "crashed")
        self._crashes.crashes += 1
        self._recorder.event(
            "crash", "crash",
            {"reason": down.reason, "pool_worker": worker, "lost": [self.label(i) for i in lost]},
        )
        workers.worker_down(worker)
        if down.down_for is not None:
            self._push_pool_event(self.clock.micros + down.down_for, down, up=True)
        # pynenc's recovery core tasks (run by the live workers at their cron ticks) find
        # what the dead worker owned once its heartbeat is old enough.
        self._crashes.schedule_recovery()

    def _any_worker_up(self) -> bool:
        """Some worker can run pynenc's recovery tasks (always, without a pool)."""
        return self.pool is None or not all(self._workers.down[1:]) or bool(self._pool_events)

    def _consumed(self, app: Any, worker: int) -> tuple[str, ...]:
        assert self.pool is not None
        own = self.pool.queues_of(worker)
        if own is not None:
            return own
        runner = self.runners[app.app_id]
        return tuple(runner.conf.queues or app.broker.conf.queues)

    def _pool_report(self) -> list[str] | None:
        """Why work in the broker does not run: down workers, unconsumed queues."""
        pool = self.pool
        if pool is None:
            return None
        down = self.workers_down
        lines = [
            f"Worker pool: {pool.workers} worker(s) x {pool.slots} slot(s); down now: "
            + (", ".join(map(str, down)) if down else "none")
            + ("" if self._pool_events else " (no restart is due)" if down else "")
            + "."
        ]
        live = [w for w in range(1, pool.workers + 1) if w not in down]
        if not live and not self._pool_events:
            lines.append(
                "Every worker is down for good: what they ran stays RUNNING (or PENDING) and "
                "nothing runs pynenc's recovery. Give crash_worker() a down_for=, or leave "
                "one worker up."
            )
        for app in self.apps:
            for queue in app.broker.conf.queues:
                waiting = app.broker.count_invocations([queue])
                if not waiting:
                    continue
                consumers = [w for w in live if queue in self._consumed(app, w)]
                if consumers:
                    continue
                who = (
                    "every worker is down" if not live
                    else "no live worker consumes it (see worker_queues)"
                )
                lines.append(
                    f"{waiting} invocation(s) wait in queue {queue!r} of app {app.app_id!r}: "
                    f"{who}."
                )
        return lines

    @property
    def workers_down(self) -> list[int]:
        """The pool workers that are down now."""
        return [w for w in range(1, len(self._workers.down)) if self._workers.down[w]]

    def close(self) -> None:
        """End every greenlet of this world deliberately (call after detaching the apps)."""
        self._scheduler.close()


def _fixed_queues(queues: tuple[str, ...]) -> Callable[[], tuple[str, ...]]:
    """A worker's own queue list, in the order given."""
    return lambda: queues


if TYPE_CHECKING:

    def _attachable(sim: Simulation) -> AttachedSimulation:
        """mypy: a Simulation is what components.sim_of promises (sim_view's Protocol)."""
        return sim
