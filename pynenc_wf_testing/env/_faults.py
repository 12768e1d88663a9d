"""The faults of an environment: crash points, injected failures, crash-safety checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.env._lifecycle import EnvCore
from pynenc_wf_testing.errors import InvalidArgument, UnknownStepError
from pynenc_wf_testing.runtime.faults import ArmedFailure, StepRef
from pynenc_wf_testing.runtime.ledger import Execution

if TYPE_CHECKING:
    from pynenc.task import Task

    from pynenc_wf_testing.runtime.simulation import Simulation

def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def restart_seconds(restart_after: object) -> float | None:
    if restart_after is None:
        return None
    if not isinstance(restart_after, dt.timedelta) or restart_after < dt.timedelta(0):
        raise InvalidArgument(
            f"restart_after must be a non-negative datetime.timedelta, got {restart_after!r}. "
            "Pass e.g. restart_after=timedelta(minutes=15)."
        )
    return restart_after.total_seconds()


def check_task(task: object, what: str) -> Task[Any, Any]:
    from pynenc.task import Task

    if not isinstance(task, Task):
        raise InvalidArgument(
            f"{what} expects a pynenc task (a function decorated with @app.task or "
            f"@app.workflow), got {type(task).__name__}: {task!r}."
        )
    return task


def check_exc(exc: object, task_name: str) -> None:
    """Refuse at the call an ``exc=`` that could not be raised later (it would surface as
    an unrelated ``TypeError`` inside the task, or, for ``None``, inject nothing)."""
    if isinstance(exc, Exception):
        return
    kind = exc if isinstance(exc, type) else type(exc)
    if issubclass(kind, BaseException) and not issubclass(kind, Exception):
        # pynenc records only an Exception as the task's failure; a BaseException leaves
        # the invocation RUNNING and escapes the run (a KeyboardInterrupt would stop pytest).
        raise InvalidArgument(
            f"fail(exc={exc!r}): {kind.__name__} is not an Exception, so it is no failure "
            "pynenc records: it would escape the run and stop the caller. Pass an Exception "
            "(e.g. exc=TimeoutError); to kill the worker while the task runs, use "
            "crash_during(task)."
        )
    if not (isinstance(exc, type) and issubclass(exc, BaseException)):
        raise InvalidArgument(
            f"fail(exc={exc!r}): expected an exception class or instance, e.g. "
            "exc=TimeoutError or exc=TimeoutError('gateway down')."
        )
    try:
        ArmedFailure("", task_name, 1, exc).make_exception()
    except Exception as error:
        raise InvalidArgument(
            f"fail(exc={exc.__name__}): the harness raises {exc.__name__}(<message>), and "
            f"that raised {type(error).__name__}: {error}. Pass an instance instead, e.g. "
            f"exc={exc.__name__}(...)."
        ) from None


def raise_unfired(sim: Simulation, unfired: Sequence[Any]) -> None:
    names = sorted({s.name for s in sim.history if s.is_step})
    wanted = ", ".join(p.snippet() for p in unfired)
    raise UnknownStepError(
        f"{wanted}: that step was never reached. Steps seen: "
        f"{', '.join(names) or 'none'}. Check the name (a task's name is its function "
        "name; '#2' is its second call)."
    )


def raise_missed_evictions(sim: Simulation) -> None:
    """An ``evict_at_wait(n)`` whose wait the run never reached is an error."""
    eviction = sim.eviction
    missed = sorted(eviction.at_waits - set(eviction.evicted))
    if missed:
        waits = "1 wait that blocks" if eviction.waits == 1 else f"{eviction.waits} waits that block"
        raise UnknownStepError(
            f"evict_at_wait({missed[0]}): the run reached only {waits}, so that "
            "eviction never happened. Number waits from 1 in the order workflows block (a "
            "wait whose condition already holds does not count)."
        )


def check_unfired_at_end(sim: Simulation) -> None:
    """Once nothing can run any more, an armed crash point or eviction that never fired is
    an error (both are faults the test asked for)."""
    if sim.threads or sim.ready or sim.sleepers:
        return
    unfired = sim.faults.unfired()
    if unfired:
        raise_unfired(sim, unfired)
    raise_missed_evictions(sim)


class EnvFaults(EnvCore):
    """The fault part of :class:`WorkflowEnv`."""

    def crash_after(self, step: StepRef, *, restart_after: dt.timedelta | None = None) -> None:
        """Kill the worker right after ``step`` commits.

        ``step``: a name (``"charge_payment"`` = ``"charge_payment#1"``, ``"uuid#1"``,
        ``"route:charge_payment#2"``), a task object (its first result), a global step number,
        or a predicate over :class:`Step`. Several crash points may be armed. The worker
        restarts at once, or after ``restart_after`` of virtual time, when pynenc's own
        recovery tasks find the dead worker's invocations.
        """
        self._require_open("crash_after()")
        self._faults.add_crash("after", step, restart_after=restart_seconds(restart_after))

    def crash_before(self, step: StepRef, *, restart_after: dt.timedelta | None = None) -> None:
        """Kill the worker right before ``step`` commits (its side effect may have happened,
        its result is not recorded: at-least-once)."""
        self._require_open("crash_before()")
        self._faults.add_crash("before", step, restart_after=restart_seconds(restart_after))

    def crash_during(
        self, task: Task[Any, Any], *, restart_after: dt.timedelta | None = None
    ) -> None:
        """Kill the worker while the next execution of ``task`` runs: its side effect
        happened, its result is lost (the same point as ``crash_before`` of its result)."""
        self._require_open("crash_during()")
        checked = check_task(task, "crash_during()")
        name = checked.task_id.func_name
        self._faults.add_crash(
            "before",
            lambda step: step.kind == "result" and step.task == checked.task_id.key,
            restart_after=restart_seconds(restart_after),
            description=f"<during {name}>",
        )

    def fail(
        self,
        task: Task[Any, Any],
        *,
        times: int = 1,
        exc: BaseException | type[BaseException] = RuntimeError,
    ) -> None:
        """The next ``times`` executions of ``task`` raise ``exc`` instead of running."""
        self._require_open("fail()")
        checked = check_task(task, "fail()")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise InvalidArgument(f"fail(times={times!r}): expected a positive int.")
        check_exc(exc, checked.task_id.func_name)
        self._faults.failures.append(
            ArmedFailure(checked.task_id.key, checked.task_id.func_name, times, exc)
        )

    def evict_at_wait(self, wait: int) -> None:
        """Evict the workflow that reaches wait number ``wait`` (1, 2, ... in this world,
        counting the waits that block and could suspend): it suspends there as in
        production and its body re-executes from the store when it is woken, instead of
        staying cached. A wait never reached makes :meth:`check_faults_fired` (and the
        ``wf_env`` fixture's teardown) fail."""
        self._require_open("evict_at_wait()")
        if isinstance(wait, bool) or not isinstance(wait, int) or wait < 1:
            raise InvalidArgument(
                f"evict_at_wait({wait!r}): expected the number of a wait, an int >= 1 "
                "(1 is the first wait of the run that blocks)."
            )
        self._require_sim().eviction.at_waits.add(wait)

    def mark_non_idempotent(self, task: Task[Any, Any]) -> None:
        """Treat ``task`` as non-idempotent in this environment's crash checks (see
        :func:`pynenc_wf_testing.non_idempotent` for the decorator form)."""
        self._require_open("mark_non_idempotent()")
        self._non_idempotent.add(check_task(task, "mark_non_idempotent()").task_id.key)

    def duplicate_side_effects(self) -> list[list[Execution]]:
        """Executions of non-idempotent tasks that ran more than once for one logical call."""
        from pynenc_wf_testing.checks.idempotency import marked_keys

        return self._require_sim().duplicate_side_effects(marked_keys() | self._non_idempotent)

    def crash_worker(
        self,
        worker: int,
        *,
        after: dt.timedelta = dt.timedelta(0),
        down_for: dt.timedelta | None = None,
    ) -> None:
        """Take pool worker ``worker`` (1-based) down ``after`` this much virtual time from
        now, while the other workers keep going (needs ``WorkflowEnv(workers=N)``).

        What it ran, had fetched or had parked is lost (their executions end ``crashed``);
        its runner stops beating. pynenc's recovery core tasks, run by the live workers at
        their cron ticks, reroute what it owned once its heartbeat is older than pynenc's
        ``runner_considered_dead_after_minutes``. It comes back with a new runner id after
        ``down_for``, or never (None).
        """
        self._require_open("crash_worker()")
        snippet = f"crash_worker({worker!r}, after={after!r}, down_for={down_for!r})"
        if isinstance(worker, bool) or not isinstance(worker, int):
            raise InvalidArgument(f"{snippet}: worker must be a worker number (an int from 1).")
        if not isinstance(after, dt.timedelta) or after < dt.timedelta(0):
            raise InvalidArgument(
                f"{snippet}: after must be a non-negative datetime.timedelta of virtual time "
                "from now, e.g. after=timedelta(seconds=30)."
            )
        if down_for is not None and (
            not isinstance(down_for, dt.timedelta) or down_for < dt.timedelta(0)
        ):
            raise InvalidArgument(
                f"{snippet}: down_for must be a non-negative datetime.timedelta, or None to "
                "keep the worker down for good."
            )
        sim = self._require_sim()
        at = sim.clock.micros + _micros(after)
        sim.schedule_worker_down(
            worker, at, None if down_for is None else _micros(down_for),
            f"crash_worker({worker})",
        )

    @property
    def workers_down(self) -> list[int]:
        """The pool workers that are down now (``crash_worker``), in order."""
        return self._require_sim().workers_down

    @property
    def crashes(self) -> int:
        """How many times the worker crashed so far."""
        return self._require_sim().crashes

    def check_faults_fired(self) -> None:
        """Raise :class:`UnknownStepError` for any armed crash point, or ``crash_worker``,
        that never fired."""
        unfired = self._faults.unfired()
        if unfired:
            raise_unfired(self._require_sim(), unfired)
        sim = self._require_sim()
        late = [down for down in sim.worker_downs if not down.fired]
        if late:
            from pynenc_wf_testing.runtime.clock import from_micros

            when = ", ".join(
                f"{down.reason} due at {from_micros(down.at).isoformat()}" for down in late
            )
            raise UnknownStepError(
                f"{when}: never fired, the simulation stopped at {sim.clock.now.isoformat()} "
                "before that instant. Arm it with a smaller after=, or drive the simulation "
                "past it (env.advance(...))."
            )
        raise_missed_evictions(sim)
