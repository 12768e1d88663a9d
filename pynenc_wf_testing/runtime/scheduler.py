"""The scheduler: one greenlet per invocation, run one slice at a time, and what they wait on.

Only the driving greenlet switches into an invocation, and an invocation only switches back to
it (a star), so all context juggling happens here. pynenc keeps its current
invocation/runner/app in a ``threading.local`` that greenlets share: each switch swaps that
object's attributes. A parked invocation waits on results (``waiters``), on a virtual deadline
(``sleepers``, a heap) or on condition keys (``cond_waiters``, engine waits); the scheduler
wakes it into ``ready``. Which ready invocation runs next is chosen by the coordinator's drive
loop with the scheduler's seeded ``rng``: among the ready ones of the highest pynenc priority
(the task's ``priority`` option and the broker's ``priority_rules``), and, with a worker pool
(:mod:`~pynenc_wf_testing.runtime.pool`), among those that hold a slot of their worker or can
take a free one.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import greenlet
from pynenc import context as pynenc_context

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.clock import VirtualClock
from pynenc_wf_testing.runtime.seeding import derive_rng
from pynenc_wf_testing.runtime.watchdog import WATCHDOG, SliceInterrupt

__all__ = ["Scheduler", "SchedulerEvents", "SimThread"]

if TYPE_CHECKING:
    from pynenc_wf_testing.runtime.runner import SimRunner

_TL = pynenc_context.thread_local
_get_running_loop = asyncio.events._get_running_loop
_set_running_loop = asyncio.events._set_running_loop

# Finished worker greenlets kept for the next invocations (see Scheduler._worker_main).
_IDLE_WORKERS = 64
#: GreenletExit throws into one greenlet at close before it is left alive (a task may catch it).
_CLOSE_THROWS = 3


@dataclass(eq=False, slots=True)
class SimThread:
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
    # What this execution drew from uuid4/random (monkeypatches.ids owns it).
    draws: Any = None
    #: pynenc's broker priority of the task (higher runs first among the ready).
    priority: float = 0.0
    #: The simulated worker (1-based) that fetched it; 0 without a worker pool.
    worker: int = 0
    #: The runner context of that worker (None: the app's runner's).
    ctx: Any = None
    #: It occupies one of its worker's slots now (worker pools only).
    holds_slot: bool = False


class SchedulerEvents(Protocol):
    """What the scheduler reports back when a slice ends in something it does not handle."""

    def thread_done(self, thread: SimThread, error: AssertionError | None) -> None:
        """The invocation's code returned (``error``: an assertion it raised)."""
        ...

    def worker_crashed(self, reason: str, restart_after: float | None) -> None:
        """A crash point fired inside the slice: the worker process dies now."""
        ...

    def invocation_aborted(self, invocation_id: str) -> None:
        """The invocation was stopped for good (the driving call then raises)."""
        ...

    def step_limit_error(self) -> BaseException:
        """The error raised when the slice budget (``max_steps``) is used up."""
        ...

    def slice_timeout_error(self, thread: SimThread, where: str) -> BaseException:
        """The error raised when one slice ran longer than ``slice_timeout`` (real time)."""
        ...


class Scheduler:
    """Greenlet workers, the ready queue and every kind of parking of one simulation."""

    __slots__ = (
        "_first_priority",
        "_ident",
        "_idle_glets",
        "_priorities",
        "_sleep_seq",
        "busy",
        "clock",
        "cond_waiters",
        "current",
        "events",
        "graveyard",
        "main_glet",
        "max_steps",
        "on_slot_freed",
        "pool_slots",
        "preempted",
        "prioritized",
        "ready",
        "rng",
        "runners",
        "sleepers",
        "slice_timeout",
        "slices",
        "slowdown",
        "threads",
        "waiters",
    )

    def __init__(
        self,
        *,
        seed: int,
        clock: VirtualClock,
        max_steps: int,
        runners: dict[str, SimRunner],
        events: SchedulerEvents,
        slice_timeout: float | None = None,
    ) -> None:
        self.clock = clock
        #: Real seconds one slice may run before the watchdog interrupts it (None: never).
        self.slice_timeout = slice_timeout
        self.max_steps = max_steps
        self.runners = runners
        self.events = events
        self.rng = derive_rng(seed, "scheduler")
        self.main_glet: greenlet.greenlet = greenlet.getcurrent()
        # The driving thread (greenlets never change threads): the watchdog's target.
        self._ident = threading.get_ident()
        self.ready: list[SimThread] = []
        self.waiters: dict[str, list[SimThread]] = {}
        self.cond_waiters: dict[str, list[SimThread]] = {}
        self.sleepers: list[tuple[int, int, SimThread]] = []
        self._sleep_seq = 0
        self.threads: dict[str, SimThread] = {}
        self.current: SimThread | None = None
        #: The invocation stopped at a step boundary while the test delivers an external
        #: event (:meth:`preempt`); the drive loop resumes it first.
        self.preempted: SimThread | None = None
        self.graveyard: list[greenlet.greenlet] = []
        self._idle_glets: list[greenlet.greenlet] = []
        self.slices = 0
        #: Slots per worker (0: no worker pool, unlimited parallelism).
        self.pool_slots = 0
        #: Per worker (index: worker number), how much longer a task's time.sleep lasts.
        self.slowdown: list[float] = [1.0]
        #: Slots held per worker (index: the worker number; index 0 unused).
        self.busy: list[int] = [0]
        #: Called when a slot frees (the coordinator fetches again).
        self.on_slot_freed: Callable[[], None] | None = None
        #: Two different priorities were seen: choosing a ready invocation looks at them.
        #: (Until then every ready one has the same priority and the choice is the plain
        #: seeded draw: histories without priorities keep their bytes.)
        self.prioritized = False
        self._first_priority: float | None = None
        # id(task) -> (task, priority): a task's priority is fixed while the world lives.
        self._priorities: dict[int, tuple[Any, float]] = {}

    def use_pool(self, workers: int, slots: int, slowdown: tuple[float, ...] = ()) -> None:
        """Run on ``workers`` workers of ``slots`` slots each (see runtime/pool.py)."""
        self.pool_slots = slots
        self.busy = [0] * (workers + 1)
        self.slowdown = [1.0, *(slowdown or (1.0,) * workers)]

    # ------------------------------------------------------------------ inside an invocation

    def in_simulated_invocation(self) -> bool:
        thread = self.current
        return thread is not None and greenlet.getcurrent() is thread.glet

    def park_for_results(
        self,
        invocation_ids: list[str],
        keys: tuple[str, ...] = (),
        deadline: int | None = None,
    ) -> None:
        """Park the current invocation until one of ``invocation_ids`` is final, or (a
        workflow's plain ``.result``: its cancellation and run timeout) until :meth:`notify`
        of one of ``keys`` or the virtual ``deadline`` (micros)."""
        if keys or deadline is not None:
            self.main_glet.switch(("wait", invocation_ids, keys, deadline))
        else:
            self.main_glet.switch(("wait", invocation_ids))

    def sleep(self, seconds: float) -> bool:
        """``time.sleep`` inside a simulated invocation parks it until the virtual deadline."""
        if not self.in_simulated_invocation():
            return False
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        worker = self.current.worker if self.current is not None else 0
        if worker:
            seconds *= self.slowdown[worker]  # a slow worker: its tasks' work takes longer
        deadline = self.clock.micros + round(seconds * 1_000_000)
        self.main_glet.switch(("sleep", deadline))
        return True

    def wait_condition(self, keys: tuple[str, ...], deadline: int | None, what: str) -> None:
        """Park the current invocation until :meth:`notify` of one of ``keys`` or the virtual
        ``deadline`` (micros), whichever comes first. The caller re-checks its condition."""
        if not self.in_simulated_invocation():
            raise InvalidArgument("wait_condition() is only for simulated invocations")
        self.main_glet.switch(("cond", keys, deadline, what))

    def preempt(self) -> None:
        """Stop the current invocation right here (a step boundary) and let the driving
        greenlet run; the drive loop resumes it first, before any other invocation."""
        self.main_glet.switch(("preempt",))

    def crash_out(self, reason: str, restart_after: float | None) -> None:
        """The worker dies while this invocation runs. Never returns: this greenlet's frames
        are abandoned, no finally block runs."""
        self.main_glet.switch(("crash", (reason, restart_after)))
        raise AssertionError("unreachable: a crashed invocation was resumed")  # pragma: no cover

    def abort(self, error: BaseException) -> None:
        """Stop the current invocation for good and fail the driving call with ``error``."""
        if self.in_simulated_invocation():
            self.main_glet.switch(("abort", error))
            raise AssertionError("unreachable: an aborted invocation was resumed")  # pragma: no cover
        raise error

    # ------------------------------------------------------------------ waking

    def notify(self, key: str) -> None:
        """Wake every invocation parked on ``key``."""
        for thread in self.cond_waiters.pop(key, ()):
            if thread.waiting_for is not None and key in thread.waiting_for:
                thread.waiting_for = None
                thread.waiting_on = None  # an interruptible .result: its result entries go stale
                if thread.sleeping_until is not None:
                    thread.sleeping_until = None  # its heap entry is skipped when popped
                self.ready.append(thread)

    def result_ready(self, invocation_id: str) -> None:
        """Wake every invocation parked on the result of ``invocation_id`` (now final)."""
        for thread in self.waiters.pop(invocation_id, ()):
            if thread.waiting_on is not None:
                thread.waiting_on = None
                thread.waiting_for = None  # an interruptible .result: its other entries go stale
                thread.sleeping_until = None
                self.ready.append(thread)

    def next_deadline(self) -> int | None:
        """The earliest virtual deadline a parked invocation waits for."""
        sleepers = self.sleepers
        while sleepers and sleepers[0][2].sleeping_until != sleepers[0][0]:
            heapq.heappop(sleepers)
        return sleepers[0][0] if sleepers else None

    def wake_sleepers(self) -> None:
        now = self.clock.micros
        while self.sleepers and self.sleepers[0][0] <= now:
            deadline, _, thread = heapq.heappop(self.sleepers)
            if thread.sleeping_until != deadline:
                continue  # woken earlier by notify(): a stale heap entry
            thread.sleeping_until = None
            thread.waiting_for = None
            thread.waiting_on = None
            self.ready.append(thread)

    # ------------------------------------------------------------------ running

    def add(
        self, app: Any, invocation: Any, invocation_id: str, label: str,
        worker: int = 0, ctx: Any = None,
    ) -> None:
        """A fetched invocation, ready to run (``worker``: the pool worker that fetched it,
        taking one of its slots)."""
        thread = SimThread(app=app, invocation=invocation, invocation_id=invocation_id, label=label)
        task = invocation.task
        known = self._priorities.get(id(task))
        if known is None or known[0] is not task:
            known = self._priorities[id(task)] = (task, float(task.broker_priority))
        priority = thread.priority = known[1]
        if not self.prioritized:
            if self._first_priority is None:
                self._first_priority = priority
            elif priority != self._first_priority:
                self.prioritized = True
        if worker:
            thread.worker = worker
            thread.ctx = ctx
            thread.holds_slot = True
            self.busy[worker] += 1
        self.threads[invocation_id] = thread
        self.ready.append(thread)

    def take_ready(self) -> SimThread | None:
        """Remove and return the seeded choice among the ready invocations (some are ready);
        None when a worker pool leaves none of them a slot."""
        if self.pool_slots or self.prioritized:
            return self._take_constrained()
        ready = self.ready
        index = self.rng.randrange(len(ready)) if len(ready) > 1 else 0
        thread = ready[index]
        ready[index] = ready[-1]
        ready.pop()
        return thread

    def _take_constrained(self) -> SimThread | None:
        """The seeded choice among the ready invocations of the highest priority that can
        run now (hold a slot, or their worker has a free one). With one priority and no
        pool the candidates are every index in order: the same draw as the plain choice."""
        ready = self.ready
        slots = self.pool_slots
        busy = self.busy
        best = 0.0
        candidates: list[int] = []
        for index, thread in enumerate(ready):
            if slots and not thread.holds_slot and busy[thread.worker] >= slots:
                continue
            priority = thread.priority
            if not candidates or priority > best:
                best = priority
                candidates = [index]
            elif priority == best:
                candidates.append(index)
        if not candidates:
            return None
        index = candidates[self.rng.randrange(len(candidates))] if len(candidates) > 1 else (
            candidates[0]
        )
        thread = ready[index]
        ready[index] = ready[-1]
        ready.pop()
        if slots and not thread.holds_slot:
            thread.holds_slot = True
            busy[thread.worker] += 1
        return thread

    def free_slots(self, worker: int) -> int:
        """Slots of ``worker`` nobody holds (worker pools only)."""
        return self.pool_slots - self.busy[worker]

    def _release(self, thread: SimThread) -> None:
        """``thread`` no longer occupies its worker's slot (it parked, finished or died)."""
        if thread.holds_slot:
            thread.holds_slot = False
            self.busy[thread.worker] -= 1
            if self.on_slot_freed is not None:
                self.on_slot_freed()

    def _worker_main(self, thread: SimThread) -> tuple[str, Any]:
        """A worker greenlet: runs invocations one after the other.

        A greenlet that ends frees its Python frame stack (an ``munmap``) and a new one maps
        another on its first call: reusing a few finished workers (up to ``_IDLE_WORKERS``)
        saves both system calls per invocation. An idle worker holds no frame of pynenc or of
        the task, only this loop.
        """
        while True:
            outcome = self._run_invocation(thread)
            del thread  # nothing of the finished invocation stays referenced while idle
            if len(self._idle_glets) >= _IDLE_WORKERS or outcome[0] == "abort":
                # (an abort is GreenletExit: thrown by close() into a crashed worker, or raised
                # by a task. The worker ends instead of parking here: a parked greenlet that
                # nothing references keeps its frames, and the whole simulation, alive.)
                return outcome
            thread = self.main_glet.switch(outcome)

    def _run_invocation(self, thread: SimThread) -> tuple[str, Any]:
        ctx = thread.ctx
        if ctx is None:
            ctx = self.runners[thread.app.app_id].runner_context
        try:
            thread.invocation.run(ctx)
        except AssertionError as exc:
            return ("done", exc)
        except Exception:
            pass  # pynenc already recorded the failure in the store
        except greenlet.GreenletExit as exc:
            # greenlet would hand it to the driver as a return value, not raise it: raise it
            # there as any other BaseException of a task is.
            return ("abort", exc)
        return ("done", None)

    def run_slice(self, thread: SimThread) -> None:
        """Run ``thread`` until it parks, finishes, crashes the worker or aborts."""
        self.slices += 1
        if self.slices > self.max_steps:
            self.ready.append(thread)
            raise self.events.step_limit_error()
        tl = _TL.__dict__
        main_state = dict(tl)
        tl.clear()
        tl.update(thread.tl)
        # asyncio keeps "the running loop" per OS thread: an async task parked inside its
        # event loop must not make the next greenlet's asyncio.run() think a loop is running.
        main_loop = _get_running_loop()
        _set_running_loop(thread.event_loop)
        self.current = thread
        timeout = self.slice_timeout
        try:
            # Under the watchdog the interrupt may surface inside the slice (out of the
            # switch) or, at worst, on the way out before disarm: both are caught below;
            # once disarmed none can come any more.
            if timeout is not None:
                WATCHDOG.arm(timeout, self._ident)
            try:
                if thread.started:
                    message = thread.glet.switch()  # type: ignore[union-attr]
                else:
                    # A worker is taken when the invocation first runs (not when it is
                    # fetched: then the ones freed by the invocations before it are reused).
                    # A new worker gets its thread as the entry argument, an idle one as the
                    # value of the switch it is parked in.
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
                if timeout is not None and WATCHDOG.disarm():
                    raise SliceInterrupt
        except SliceInterrupt:
            if timeout is not None:
                WATCHDOG.disarm()
            message = ("timeout", None)
        finally:
            self.current = None
            thread.tl = dict(tl)
            tl.clear()
            tl.update(main_state)
            thread.event_loop = _get_running_loop()
            _set_running_loop(main_loop)
        kind = message[0]
        if thread.holds_slot and kind not in ("sleep", "crash", "preempt"):
            # time.sleep keeps the thread busy; a crash frees all; a preempted thread is
            # resumed first, still in its slot.
            self._release(thread)
        if kind == "wait":
            ids: list[str] = message[1]
            thread.waiting_on = ids
            if len(message) == 2:
                for inv_id in ids:
                    self.waiters.setdefault(inv_id, []).append(thread)
            else:
                # Interruptible: entries left by an earlier park of this thread are dropped,
                # or the thread would be woken twice by one result.
                for inv_id in ids:
                    waiting = self.waiters.setdefault(inv_id, [])
                    waiting[:] = [t for t in waiting if t is not thread]
                    waiting.append(thread)
                self._park_on(thread, message[2], message[3], "")
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
            self._park_on(thread, keys, deadline, what)
        elif kind == "preempt":
            self.preempted = thread
        elif kind == "done":
            glet = thread.glet
            thread.glet = None
            if glet is not None and not glet.dead:
                self._idle_glets.append(glet)  # parked in _worker_main, ready for another
            self.events.thread_done(thread, message[1])
        elif kind == "crash":
            self.graveyard.append(thread.glet)
            self.events.worker_crashed(*message[1])
        elif kind == "abort":
            self.graveyard.append(thread.glet)
            self.threads.pop(thread.invocation_id, None)
            self.events.invocation_aborted(thread.invocation_id)
            raise message[1]
        elif kind == "timeout":
            self.graveyard.append(thread.glet)
            self.threads.pop(thread.invocation_id, None)
            self.events.invocation_aborted(thread.invocation_id)
            raise self.events.slice_timeout_error(thread, WATCHDOG.where)
        else:  # pragma: no cover - protocol error
            raise RuntimeError(f"unknown scheduler message {message!r}")

    def _park_on(
        self, thread: SimThread, keys: tuple[str, ...], deadline: int | None, what: str
    ) -> None:
        """Park ``thread`` on condition ``keys`` and, if given, a virtual ``deadline``."""
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

    def drop(self, invocation_id: str) -> bool:
        """Stop a parked or ready invocation for good (the engine terminated it): its
        greenlet is kept in the graveyard, never resumed. False if it has no thread, or if
        it is the one running now (it finishes its slice)."""
        thread = self.threads.get(invocation_id)
        if thread is None or thread is self.current:
            return False
        del self.threads[invocation_id]
        if thread in self.ready:
            self.ready.remove(thread)
        thread.waiting_on = None  # entries in waiters, cond_waiters, sleepers go stale
        thread.waiting_for = None
        thread.sleeping_until = None
        self._release(thread)
        if thread.glet is not None:
            self.graveyard.append(thread.glet)
        return True

    # ------------------------------------------------------------------ ending

    def abandon_all(self) -> None:
        """The worker died: every invocation's frames are gone. Their greenlets are kept
        referenced until :meth:`close` (a collected greenlet runs pynenc's finally blocks)."""
        for thread in list(self.threads.values()):
            if thread.glet is not None:
                self.graveyard.append(thread.glet)
        self.threads.clear()
        self.ready.clear()
        self.waiters.clear()
        self.cond_waiters.clear()
        self.sleepers.clear()
        self.preempted = None
        self.busy = [0] * len(self.busy)

    def abandon_worker(self, worker: int) -> list[str]:
        """Worker ``worker`` died: the frames of every invocation it ran or had parked are
        gone (kept referenced until :meth:`close`, as in :meth:`abandon_all`). Returns their
        ids, in the order they were fetched."""
        gone: list[SimThread] = [t for t in self.threads.values() if t.worker == worker]
        for thread in gone:
            if thread.glet is not None:
                self.graveyard.append(thread.glet)
            # Stale entries in waiters/cond_waiters/sleepers are skipped by these markers.
            thread.waiting_on = None
            thread.waiting_for = None
            thread.sleeping_until = None
            thread.holds_slot = False
            del self.threads[thread.invocation_id]
        self.ready[:] = [t for t in self.ready if t.worker != worker]
        self.busy[worker] = 0
        return [t.invocation_id for t in gone]

    def close(self) -> None:
        """End every greenlet deliberately (call after detaching the apps).

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
        self.preempted = None
        tl = _TL.__dict__
        main_state = dict(tl)
        for glet in glets:
            # A task may catch GreenletExit and park again: a few more throws, then leave it
            # (a live greenlet keeps its simulation in memory; bounded, so close never hangs).
            for _ in range(_CLOSE_THROWS):
                if not glet or glet.dead:
                    break
                tl.clear()
                with contextlib.suppress(BaseException):  # a dying greenlet may raise anything
                    glet.throw(greenlet.GreenletExit)
        tl.clear()
        tl.update(main_state)
