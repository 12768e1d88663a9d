"""WorkflowEnv: the object behind the ``wf_env`` fixture, usable without pytest.

The facade is assembled from one part per concern: lifetime and app binding
(``_lifecycle``), client operations (``_client``), faults (``_faults``), mocks
(``_mocks``) and observation
(``_observe``); the simulated process it owns is a :class:`~pynenc_wf_testing.runtime.world.WorldHost`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pynenc_wf_testing.env._client import EnvClient
from pynenc_wf_testing.env._faults import check_task, restart_seconds
from pynenc_wf_testing.env._mocks import EnvMocks, TaskCall
from pynenc_wf_testing.env._observe import EnvObservation
from pynenc_wf_testing.env._run import WorkflowRun

# Imported from here by benchmarks and older code; its home is the runtime's world.
from pynenc_wf_testing.runtime.world import SIM_CONFIG as SIM_CONFIG

if TYPE_CHECKING:
    from pynenc.task import Task

    from pynenc_wf_testing.checks.crash_report import CrashReport
    from pynenc_wf_testing.checks.events import Event
    from pynenc_wf_testing.checks.interleavings import InterleavingReport
    from pynenc_wf_testing.runtime.faults import StepRef

__all__ = ["TaskCall", "WorkflowEnv", "WorkflowRun"]

P = ParamSpec("P")
R = TypeVar("R")


class WorkflowEnv(EnvClient, EnvMocks, EnvObservation):
    """A deterministic simulation of pynenc workflows on a virtual clock.

    ``with WorkflowEnv(seed=7) as env:`` starts the virtual clock (freezegun), seeds ids and
    randomness, and runs every app passed to :meth:`use` (or every app of a task passed to
    :meth:`start`) on pynenc's in-memory components driven by a seeded scheduler. The same
    seed gives the same history, byte for byte, in any process.

    Leave it with ``with`` or :meth:`close`: every way out (an exception of any kind
    included) puts the real clock, ids and sleep back and frees the process for the next
    environment. One that is never closed is closed when it becomes garbage, with a
    ``ResourceWarning``; under pytest the test that forgot it fails.
    """

    def check_crash_safety(
        self,
        workflow: Task[P, R],
        *args: Any,
        compare: Callable[[Any, Any], bool] | None = None,
        invariant: Callable[[WorkflowEnv], Any] | None = None,
        max_crashes: int = 1,
        fine: bool = False,
        max_examples: int = 100,
        restart_after: dt.timedelta | None = None,
        before_each: Callable[[], Any] | None = None,
        after_start: Callable[[WorkflowEnv, WorkflowRun[Any]], Any] | None = None,
        starter: Callable[[WorkflowEnv], WorkflowRun[Any]] | None = None,
        on_blocked: Callable[[WorkflowEnv, WorkflowRun[Any]], Any] | None = None,
        evictions: bool = True,
        worker_crashes: bool = True,
        **kwargs: Any,
    ) -> CrashReport:
        """Run ``workflow(*args, **kwargs)`` once without faults (golden), then once per
        fault schedule: before and after every golden step (exhaustive single crashes), and,
        for ``max_crashes > 1``, ``max_examples`` multi-crash schedules generated and shrunk
        by Hypothesis. Each run must complete with the golden result (``compare(golden,
        got)`` when given), run no non-idempotent step twice, and satisfy ``invariant(env)``.
        ``fine=True`` also crashes between ``execute_task`` routing a child and recording
        its id. ``before_each()`` runs before every run (reset your external fakes there);
        ``after_start(env, run)`` right after each start (send signals there);
        ``starter(env)`` replaces ``env.start(workflow, ...)`` (e.g. ``env.start_workflow``
        with an alias or a run timeout); ``on_blocked(env, run)`` is called when the run can
        no longer progress (e.g. halted) and may unblock it (``env.resume(run)``): a truthy
        return value drives on.
        ``restart_after`` keeps the worker down that long after each crash, so pynenc's own
        recovery tasks bring it back. ``evictions`` (default True) also runs the workflow
        evicted at each wait of the golden run in turn (one run per wait that blocked:
        ``wf_env.evict_at_wait(n)``), which finds state kept outside the engine's records
        across a wait; skipped when the environment already evicts at every wait. With
        ``max_crashes > 1`` the generated schedules then combine crashes and evictions.
        ``worker_crashes`` (default True), on a worker pool (``WorkflowEnv(workers=N)``,
        with N > 1 or a ``restart_after``): one run per pool worker taken down
        (``crash_worker``) at each instant the golden run started work on it, back after
        ``restart_after`` (else never: the other workers recover its work); with
        ``max_crashes > 1`` Hypothesis also draws worker crashes into its schedules.
        Your own state in this environment is left as it was.
        """
        from pynenc_wf_testing.checks.crash_check import check_crash_safety

        checked = check_task(workflow, "check_crash_safety()")
        self.use(checked.app)
        return check_crash_safety(
            self,
            checked,
            args,
            kwargs,
            compare=compare,
            invariant=invariant,
            max_crashes=max_crashes,
            fine=fine,
            max_examples=max_examples,
            restart_after=restart_seconds(restart_after),
            before_each=before_each,
            after_start=after_start,
            starter=starter,
            on_blocked=on_blocked,
            non_idempotent=set(self._non_idempotent),
            evictions=evictions,
            worker_crashes=worker_crashes,
        )

    def deliver_after(self, step: StepRef, event: Event) -> None:
        """Deliver an external ``event`` (``Signal``, ``Cancel``, ``Resume``, ``Advance``)
        right after ``step`` commits, before the invocation that committed it goes on:
        to the top-level workflow that step belongs to. ``step`` is referred to as in
        :meth:`crash_after` (a name such as ``"timer#1"``, a task, a step number or a
        predicate). Several may be armed, also at one step (delivered in the order armed).
        A step never reached is an :class:`UnknownStepError` at the end, as for a crash
        point; an event that finds the workflow finished is dropped. This is the line the
        reports of :meth:`check_interleavings` print."""
        from pynenc_wf_testing.checks.events import check_event, deliver

        self._require_open("deliver_after()")
        checked = check_event(event, "deliver_after()")
        self._faults.add_interrupt(
            step,
            lambda at: deliver(self, checked, at, None),
            what=checked.snippet(),
        )

    def check_interleavings(
        self,
        workflow: Task[P, R],
        *args: Any,
        events: list[Event],
        compare: Callable[[R], Any] | None = None,
        invariant: Callable[[WorkflowEnv], Any] | None = None,
        max_examples: int = 50,
        max_events: int = 3,
        before_each: Callable[[], Any] | None = None,
        after_start: Callable[[WorkflowEnv, WorkflowRun[Any]], Any] | None = None,
        **kwargs: Any,
    ) -> InterleavingReport:
        """Run ``workflow(*args, **kwargs)`` once without events (golden), then with each
        of ``events`` delivered alone right after each golden step before the workflow's
        result (``deliver_after``), then with ``max_examples`` combinations of 2 to
        ``max_events`` events at several steps, generated and shrunk by Hypothesis. Each run
        starts in a fresh world of this seed. A run fails if it never finishes (and is not
        halted), replays nondeterministically, raises anything but the engine's outcomes of
        events (``WorkflowCancelled``, ``WorkflowTimeout``, ``WaitTimeout``) or what the
        golden run raised, returns a result for which ``compare(result)`` is False, runs a
        non-idempotent task twice for one call, or breaks ``invariant(env)``. A result that
        differs from the golden run's is not a failure by itself: events change outcomes.
        ``before_each()`` runs before every run (reset your fakes); ``after_start(env,
        run)`` right after each start. Returns an :class:`InterleavingReport`
        (``assert_ok()`` raises :class:`InterleavingError` with the smallest failing
        schedule as runnable lines). Your own state in this environment is left as it was.
        """
        from pynenc_wf_testing.checks.interleavings import check_interleavings

        checked = check_task(workflow, "check_interleavings()")
        return check_interleavings(
            self,
            checked,
            args,
            kwargs,
            events=events,
            compare=compare,
            invariant=invariant,
            max_examples=max_examples,
            max_events=max_events,
            before_each=before_each,
            after_start=after_start,
            non_idempotent=set(self._non_idempotent),
        )

    def render(self) -> str:
        """The workflow tree of this simulation as text (workflow -> sub-workflows ->
        children, with status, attempts, virtual times and crash points)."""
        from pynenc_wf_testing.env.report import render_text

        return render_text(self)
