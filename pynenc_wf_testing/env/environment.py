"""WorkflowEnv: the object behind the ``wf_env`` fixture, usable without pytest."""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from pynenc_wf_testing.checks.faults import FailFault, FaultPlan, StepRef
from pynenc_wf_testing.errors import AppConfigurationError, InvalidArgument, UnknownStepError
from pynenc_wf_testing.runtime.backends import Backend, resolve_backend
from pynenc_wf_testing.runtime.clock import VirtualClock, normalize_start
from pynenc_wf_testing.runtime.history import Step, history_to_json
from pynenc_wf_testing.runtime.ledger import Execution

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.invocation.status import InvocationStatus
    from pynenc.task import Task

    from pynenc_wf_testing.checks.crash_check import CrashReport
    from pynenc_wf_testing.runtime.patches import ProcessPatches
    from pynenc_wf_testing.runtime.simulation import Simulation

__all__ = ["WorkflowEnv", "WorkflowRun"]

P = ParamSpec("P")
R = TypeVar("R")

#: Config keys that put an app on the simulated runner, whatever the backend (pynenc selects
#: components by class name; the backend adds the store's component classes).
SIM_CONFIG: dict[str, Any] = {
    "runner_cls": "SimRunner",
    # With a frozen clock a cached status never expires: a waiting parent would never see
    # its child finish (docs/architecture.md, "pynenc facts the layers rely on").
    "cached_status_time": 0,
    "dev_mode_force_sync_tasks": False,
    # The blocking-control index iterates sets (PYTHONHASHSEED order); the scheduler already
    # knows who waits on whom.
    "blocking_control": False,
    # pynenc's coloured log lines end up in pytest's captured output: keep them plain.
    "log_use_colors": False,
}

_active_env: WorkflowEnv | None = None
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


_COMPONENT_ATTRS = (
    "_conf", "_logger", "_orchestrator", "_trigger", "_broker", "_state_backend",
    "_serializer", "_client_data_store",
)


class _World:
    """One simulated world: its scheduler, clock, faults, app components and id streams."""

    def __init__(
        self, sim: Simulation, clock: VirtualClock, faults: FaultPlan,
        components: dict[int, dict[str, Any]], streams: Any,
    ) -> None:
        self.sim, self.clock, self.faults = sim, clock, faults
        self.components, self.streams = components, streams


class _SavedApp:
    """Everything of a user's app that ``use()`` changes, to put back on close."""

    def __init__(self, app: Pynenc) -> None:
        self.config_values = app.config_values
        self.runner_instance = app._runner_instance
        self.components = {name: getattr(app, name) for name in _COMPONENT_ATTRS}
        self.deferred_triggers = {k: list(v) for k, v in app._deferred_trigger_tasks.items()}
        # A memory state backend registers the app's info (with the simulated config) in a
        # class-level registry: put back what was there.
        from pynenc.state_backend.mem_state_backend import MemStateBackend

        self.app_id = app.app_id
        self.app_info = MemStateBackend._app_info_registry.get(self.app_id)

    def restore(self, app: Pynenc) -> None:
        app.config_values = self.config_values
        app._runner_instance = self.runner_instance
        for name, value in self.components.items():
            setattr(app, name, value)
        app._deferred_trigger_tasks.clear()
        app._deferred_trigger_tasks.update(self.deferred_triggers)
        from pynenc.state_backend.mem_state_backend import MemStateBackend

        with MemStateBackend._registry_lock:
            if self.app_info is None:
                MemStateBackend._app_info_registry.pop(self.app_id, None)
            else:
                MemStateBackend._app_info_registry[self.app_id] = self.app_info


def _restart_seconds(restart_after: object) -> float | None:
    if restart_after is None:
        return None
    if not isinstance(restart_after, dt.timedelta) or restart_after < dt.timedelta(0):
        raise InvalidArgument(
            f"restart_after must be a non-negative datetime.timedelta, got {restart_after!r}. "
            "Pass e.g. restart_after=timedelta(minutes=15)."
        )
    return restart_after.total_seconds()


def _check_task(task: object, what: str) -> Task[Any, Any]:
    from pynenc.task import Task

    if not isinstance(task, Task):
        raise InvalidArgument(
            f"{what} expects a pynenc task (a function decorated with @app.task or "
            f"@app.workflow), got {type(task).__name__}: {task!r}."
        )
    return task


class WorkflowRun(Generic[R]):
    """A handle on one invocation started in a :class:`WorkflowEnv`."""

    def __init__(self, env: WorkflowEnv, invocation: DistributedInvocation[Any, R]) -> None:
        self._env = env
        self._app = invocation.app
        self.invocation_id: str = str(invocation.invocation_id)
        """pynenc's invocation id (seeded: the same seed gives the same id)."""
        workflow = invocation.workflow
        self.workflow_id: str | None = str(workflow.workflow_id) if workflow else None
        """The workflow id (the invocation id of a workflow), or None for a plain task."""
        self._invocation = invocation

    @property
    def status(self) -> InvocationStatus:
        """pynenc's current status of the invocation (does not run anything)."""
        return self._app.orchestrator.get_invocation_status(self.invocation_id)

    @property
    def done(self) -> bool:
        """True once the invocation reached a final status (success or failure)."""
        return bool(self.status.is_final())

    @property
    def result(self) -> R:
        """Drive the simulation until this invocation is final and return its result.

        Time skips to the next deadline whenever everything is blocked on time. Raises the
        task's own exception if it failed, :class:`DeadlockError` if it can never finish.
        """
        __tracebackhide__ = True
        sim = self._env._require_sim()
        if not self.done:
            sim.drive(goal=lambda: self.done, goal_ids=[self.invocation_id], on_final=True)
        self._env._check_unfired_at_end()
        try:
            result: R = self._invocation.get_final_result()
        except Exception as error:
            # The task's own exception, as pynenc stored it: pynenc's frames only show the
            # store being read, so they are dropped (the plugin adds the seed line).
            raise error.with_traceback(None) from None
        return result

    @property
    def name(self) -> str:
        """The step name of this invocation (``fulfill_order#1``)."""
        return self._env._require_sim().label(self.invocation_id).split(" [")[0]

    @property
    def history(self) -> list[Step]:
        """The steps of this run: its own workflow and its sub-workflows, in commit order."""
        sim = self._env._require_sim()
        members = {self.workflow_id} if self.workflow_id else set()
        changed = True
        while changed:
            changed = False
            for child, parent in sim.workflow_parent.items():
                if parent in members and child not in members:
                    members.add(child)
                    changed = True
        return [
            s
            for s in sim.history
            if (s.workflow_id in members) or s.invocation_id == self.invocation_id
        ]

    def __repr__(self) -> str:
        return f"<WorkflowRun {self.invocation_id[:8]} status={self.status.value}>"


class WorkflowEnv:
    """A deterministic simulation of pynenc workflows on a virtual clock.

    ``with WorkflowEnv(seed=7) as env:`` starts the virtual clock (freezegun), seeds ids and
    randomness, and runs every app passed to :meth:`use` (or every app of a task passed to
    :meth:`start`) on pynenc's in-memory components driven by a seeded scheduler. The same
    seed gives the same history, byte for byte, in any process.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        start: dt.datetime | None = None,
        max_steps: int = 100_000,
        log_level: str = "error",
        backend: str | Backend = "memory",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidArgument(
                f"seed must be a non-negative int, got {seed!r}. Pass e.g. WorkflowEnv(seed=7)."
            )
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise InvalidArgument(
                f"max_steps must be a positive int, got {max_steps!r}. "
                "The default is 100_000 scheduler steps."
            )
        if log_level not in _LOG_LEVELS:
            raise InvalidArgument(
                f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}."
            )
        self._backend: Backend = resolve_backend(backend, backend_options)
        self._seed = seed
        self._start = normalize_start(start)
        self._max_steps = max_steps
        self._log_level = log_level
        self._patches: ProcessPatches | None = None
        self._sim: Simulation | None = None
        self._clock: VirtualClock | None = None
        self._saved: dict[int, tuple[Pynenc, _SavedApp]] = {}
        self._faults = FaultPlan()
        self._closed = False
        self._non_idempotent: set[str] = set()
        self.rerun_hint: str = f"WorkflowEnv(seed={seed}) (in pytest: --wf-seed={seed})"
        """How to rerun this simulation; the pytest plugin sets the exact command."""

    # ------------------------------------------------------------------ lifetime

    def __enter__(self) -> WorkflowEnv:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> WorkflowEnv:
        """Start the simulation (``with`` does this for you)."""
        global _active_env
        if self._closed:
            raise InvalidArgument("this WorkflowEnv was closed; create a new one.")
        if self._sim is not None:
            return self
        if _active_env is not None:
            raise InvalidArgument(
                "another WorkflowEnv is already open in this process; close it first "
                "(one simulation owns the virtual clock at a time)."
            )
        from pynenc_wf_testing.runtime import components  # noqa: F401 - makes the simulated components selectable
        from pynenc_wf_testing.runtime.patches import ProcessPatches
        from pynenc_wf_testing.runtime.simulation import Simulation

        self._patches = ProcessPatches(
            self._seed, self._start, self._sleep_hook, self._execute_task_hook,
            # "memory-stock" runs pynenc exactly as shipped: no speed-up patches either.
            speedups=not getattr(self._backend, "stock", False),
        )
        self._patches.start()
        self._clock = VirtualClock(self._start, on_move=self._patches.move_to)
        self._sim = Simulation(
            seed=self._seed, clock=self._clock, max_steps=self._max_steps, faults=self._faults,
            worker_tag=str(getattr(self._backend, "worker_tag", "")),
        )
        self._sim.after_crash = self._backend.after_crash
        _active_env = self
        return self

    def close(self) -> None:
        """Stop the simulation and give every used app its own configuration back."""
        global _active_env
        if self._closed:
            return
        self._closed = True
        from pynenc_wf_testing.runtime.components import SIM_ATTR

        try:
            for app, _saved in self._saved.values():
                if getattr(app, SIM_ATTR, None) is not None:
                    setattr(app, SIM_ATTR, None)
            if self._sim is not None:
                self._sim.close()
        finally:
            for app, saved in self._saved.values():
                saved.restore(app)
                if hasattr(app, SIM_ATTR):
                    delattr(app, SIM_ATTR)
            self._saved.clear()
            self._backend.close()
            if self._patches is not None:
                self._patches.stop()
            if _active_env is self:
                _active_env = None

    def _require_sim(self) -> Simulation:
        if self._closed:
            raise InvalidArgument("this WorkflowEnv is closed; create a new one.")
        if self._sim is None:
            self.open()
        assert self._sim is not None
        return self._sim

    def _sleep_hook(self, seconds: float) -> bool:
        return self._sim.sleep_hook(seconds) if self._sim is not None else False

    def _execute_task_hook(self, original: Any, executor: Any, task: Any, a: Any, kw: Any) -> Any:
        if self._sim is None:
            return original(executor, task, *a, **kw)
        return self._sim.execute_task_hook(original, executor, task, a, kw)

    # ------------------------------------------------------------------ apps

    def use(self, app: Pynenc) -> Pynenc:
        """Run ``app`` (a module-level pynenc app, maybe built for production) on simulated
        components until this environment closes. Its production stores are never opened."""
        from pynenc.app import Pynenc

        if not isinstance(app, Pynenc):
            raise InvalidArgument(
                f"use() expects a pynenc app (a Pynenc instance), got {type(app).__name__}: "
                f"{app!r}. Pass your module-level app, e.g. env.use(myshop.tasks.app)."
            )
        sim = self._require_sim()
        if id(app) in self._saved:
            return app
        for other, _ in self._saved.values():
            if other.app_id == app.app_id:
                raise AppConfigurationError(
                    f"two different apps share app_id {app.app_id!r}; pynenc keys apps by id. "
                    "Give each app its own app_id."
                )
        saved = _SavedApp(app)
        self._saved[id(app)] = (app, saved)
        sim_config = {**self._backend.config(app), **SIM_CONFIG}
        app.config_values = {**(app.config_values or {}), **sim_config}
        app.config_values["logging_level"] = self._log_level
        self._attach(app, saved, sim, check=sim_config)
        sim.refresh_triggers()
        assert self._patches is not None
        self._patches.patch_imported_sleep(
            sorted({task.func.__module__ for task in app.tasks.values()})
        )
        return app

    def _attach(
        self, app: Pynenc, saved: _SavedApp, sim: Simulation, check: dict[str, Any] | None = None
    ) -> None:
        """Give ``app`` a fresh store of the backend and attach it to ``sim``, with the
        triggers its module declared (registering them empties pynenc's deferred list)."""
        from pynenc_wf_testing.runtime.components import SIM_ATTR

        self._backend.new_store(app)
        if check is not None:
            self._check_config(app, check)
        setattr(app, SIM_ATTR, sim)
        sim.attach(app)
        app._deferred_trigger_tasks.clear()
        app._deferred_trigger_tasks.update(
            {k: list(v) for k, v in saved.deferred_triggers.items()}
        )
        app.register_deferred_triggers()

    def _check_config(self, app: Pynenc, sim_config: dict[str, Any]) -> None:
        conf = app.conf
        wrong = [
            f"{key}={getattr(conf, key)!r}"
            for key in ("orchestrator_cls", "state_backend_cls", "broker_cls", "runner_cls")
            if getattr(conf, key) != sim_config[key]
        ]
        if wrong:
            raise AppConfigurationError(
                f"app {app.app_id!r} keeps {', '.join(wrong)} although the harness set the "
                "simulated components in its config_values: something with higher priority "
                "(an environment variable PYNENC__..., or a config file) overrides them. "
                "Unset those variables for the test run."
            )

    # ------------------------------------------------------------------ running

    def start(self, task: Task[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowRun[R]:
        """Route ``task(*args, **kwargs)`` in the simulation and return a handle on it.

        Nothing runs until the simulation is driven (``run.result``, :meth:`advance`,
        :meth:`run_until_idle`).
        """
        from pynenc.invocation.dist_invocation import DistributedInvocation

        checked = _check_task(task, "start()")
        self._require_sim()
        self.use(checked.app)
        invocation = checked(*args, **kwargs)
        if not isinstance(invocation, DistributedInvocation):
            raise AppConfigurationError(  # pragma: no cover - SIM_CONFIG forbids dev mode
                f"{checked.task_id.key} did not create a distributed invocation "
                f"({type(invocation).__name__}); is dev_mode_force_sync_tasks on?"
            )
        return WorkflowRun(self, invocation)

    def start_workflow(
        self,
        task: Task[P, R],
        *args: Any,
        workflow_id: str | None = None,
        id_reuse: str = "reuse",
        run_timeout: dt.timedelta | None = None,
        **kwargs: Any,
    ) -> WorkflowRun[R]:
        """:func:`pynenc_wf_testing.engine.start_workflow` in the simulation: start under a
        ``workflow_id`` alias (reuse / reject / allow_after_completion) or with a
        ``run_timeout``."""
        from pynenc_wf_testing.engine import start_workflow

        checked = _check_task(task, "start_workflow()")
        self._require_sim()
        self.use(checked.app)
        invocation = start_workflow(
            checked, *args, workflow_id=workflow_id, id_reuse=id_reuse,  # type: ignore[arg-type]
            run_timeout=run_timeout, **kwargs,
        )
        return WorkflowRun(self, invocation)

    def signal(self, run: WorkflowRun[Any] | str, name: str, payload: Any = None) -> int:
        """Send signal ``name`` with ``payload`` to a workflow (a run or a workflow id)."""
        from pynenc_wf_testing.engine import signal_workflow

        return signal_workflow(self._app_for(run), run, name, payload)

    def query(self, run: WorkflowRun[Any] | str) -> Any:
        """The workflow's published state and status (``WorkflowQuery``); runs nothing."""
        from pynenc_wf_testing.engine import query_workflow

        return query_workflow(self._app_for(run), run)

    def resume(self, run: WorkflowRun[Any] | str) -> None:
        """Resume a halted workflow."""
        from pynenc_wf_testing.engine import resume_workflow

        resume_workflow(self._app_for(run), run)

    def cancel(self, run: WorkflowRun[Any] | str, reason: str = "cancelled") -> None:
        """Cancel a workflow: its next durable operation raises ``WorkflowCancelled``."""
        from pynenc_wf_testing.engine import cancel_workflow

        cancel_workflow(self._app_for(run), run, reason)

    def _app_for(self, run: WorkflowRun[Any] | str) -> Pynenc:
        self._require_sim()
        if isinstance(run, WorkflowRun):
            return run._app
        apps = [app for app, _ in self._saved.values()]
        if len(apps) == 1:
            return apps[0]
        raise InvalidArgument(
            "pass the WorkflowRun rather than a workflow id: several apps are in use."
        )

    def run_of(self, invocation_id: str) -> WorkflowRun[Any]:
        """A handle on an invocation already in the store (e.g. after resuming a store that
        another process left behind)."""
        sim = self._require_sim()
        app = sim._app_of(invocation_id)
        if not sim.is_stored(app, invocation_id):
            raise InvalidArgument(
                f"invocation {invocation_id} is not in this simulation's store. "
                "Start runs with env.start(task, ...)."
            )
        return WorkflowRun(self, app.state_backend.get_invocation(invocation_id))

    def run_until_idle(self) -> None:
        """Run everything runnable at the current virtual time, without moving the clock."""
        self._require_sim().run_until_idle()

    def advance(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
        weeks: float = 0,
    ) -> None:
        """Move the clock forward, running in virtual-time order everything due on the way."""
        amounts = {
            "seconds": seconds, "minutes": minutes, "hours": hours, "days": days, "weeks": weeks
        }
        for key, value in amounts.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InvalidArgument(
                    f"advance({key}={value!r}): expected a number of {key}. "
                    "Use e.g. wf_env.advance(days=30)."
                )
            if value != value or value in (float("inf"), float("-inf")):
                raise InvalidArgument(
                    f"advance({key}={value!r}): expected a finite number of {key}."
                )
            if value < 0:
                raise InvalidArgument(
                    f"advance({key}={value!r}): time only moves forward in a simulation. "
                    "To observe an earlier instant, start a new WorkflowEnv with start=..."
                )
        sim = self._require_sim()
        try:
            delta = dt.timedelta(**{k: float(v) for k, v in amounts.items()})
            sim.clock.now + delta
        except OverflowError:
            raise InvalidArgument(
                f"advance({', '.join(f'{k}={v!r}' for k, v in amounts.items() if v)}): "
                f"that goes past the last representable instant (year 9999) from "
                f"{sim.clock.now.isoformat()}."
            ) from None
        sim.advance_to(sim.clock.micros + delta // dt.timedelta(microseconds=1))

    # ------------------------------------------------------------------ worlds
    # A crash check runs each fault schedule in a fresh world (new durable store, clock back
    # at the start, id streams reseeded) and then puts the user's world back untouched.

    def _capture_world(self) -> _World:
        sim = self._require_sim()
        assert self._clock is not None and self._patches is not None
        components = {
            id(app): {name: getattr(app, name) for name in _COMPONENT_ATTRS}
            for app, _ in self._saved.values()
        }
        return _World(sim, self._clock, self._faults, components, self._patches.save_streams())

    def _install_world(self, world: _World) -> None:
        from pynenc_wf_testing.runtime.components import SIM_ATTR

        assert self._patches is not None
        self._sim, self._clock, self._faults = world.sim, world.clock, world.faults
        for app, _ in self._saved.values():
            for name, value in world.components[id(app)].items():
                setattr(app, name, value)
            setattr(app, SIM_ATTR, world.sim)
            app._runner_instance = world.sim.runners[app.app_id]
        self._patches.restore_streams(world.streams)
        self._patches.move_to(world.clock.now)

    def _fresh_world(self, faults: FaultPlan, *, start: dt.datetime | None = None) -> None:
        """Replace the current world by a fresh one (the caller keeps the old one)."""
        from pynenc_wf_testing.runtime.simulation import Simulation

        assert self._patches is not None
        begin = normalize_start(start) if start is not None else self._start
        self._patches.move_to(begin)
        self._patches.reseed_ids(self._seed)
        self._clock = VirtualClock(begin, on_move=self._patches.move_to)
        self._faults = faults
        self._sim = Simulation(
            seed=self._seed, clock=self._clock, max_steps=self._max_steps, faults=faults,
            worker_tag=str(getattr(self._backend, "worker_tag", "")),
        )
        self._sim.after_crash = self._backend.after_crash
        for app, saved in self._saved.values():
            self._attach(app, saved, self._sim)
        self._sim.refresh_triggers()

    def _drop_world(self) -> None:
        """Detach and end the current world's greenlets (before installing another)."""
        from pynenc_wf_testing.runtime.components import SIM_ATTR

        for app, _ in self._saved.values():
            setattr(app, SIM_ATTR, None)
        if self._sim is not None:
            self._sim.close()

    # ------------------------------------------------------------------ faults

    def crash_after(self, step: StepRef, *, restart_after: dt.timedelta | None = None) -> None:
        """Kill the worker right after ``step`` commits.

        ``step``: a name (``"charge_payment"`` = ``"charge_payment#1"``, ``"uuid#1"``,
        ``"route:charge_payment#2"``), a task object (its first result), a global step number,
        or a predicate over :class:`Step`. Several crash points may be armed. The worker
        restarts at once, or after ``restart_after`` of virtual time, when pynenc's own
        recovery tasks find the dead worker's invocations.
        """
        self._faults.add_crash("after", step, restart_after=_restart_seconds(restart_after))

    def crash_before(self, step: StepRef, *, restart_after: dt.timedelta | None = None) -> None:
        """Kill the worker right before ``step`` commits (its side effect may have happened,
        its result is not recorded: at-least-once)."""
        self._faults.add_crash("before", step, restart_after=_restart_seconds(restart_after))

    def crash_during(
        self, task: Task[Any, Any], *, restart_after: dt.timedelta | None = None
    ) -> None:
        """Kill the worker while the next execution of ``task`` runs: its side effect
        happened, its result is lost (the same point as ``crash_before`` of its result)."""
        checked = _check_task(task, "crash_during()")
        name = checked.task_id.func_name
        self._faults.add_crash(
            "before",
            lambda step: step.kind == "result" and step.task == checked.task_id.key,
            restart_after=_restart_seconds(restart_after),
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
        checked = _check_task(task, "fail()")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise InvalidArgument(f"fail(times={times!r}): expected a positive int.")
        self._faults.failures.append(
            FailFault(checked.task_id.key, checked.task_id.func_name, times, exc)
        )

    def mark_non_idempotent(self, task: Task[Any, Any]) -> None:
        """Treat ``task`` as non-idempotent in this environment's crash checks (see
        :func:`pynenc_wf_testing.non_idempotent` for the decorator form)."""
        self._non_idempotent.add(_check_task(task, "mark_non_idempotent()").task_id.key)

    def duplicate_side_effects(self) -> list[list[Execution]]:
        """Executions of non-idempotent tasks that ran more than once for one logical call."""
        from pynenc_wf_testing.checks.idempotency import marked_keys

        return self._require_sim().duplicate_side_effects(marked_keys() | self._non_idempotent)

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
        recovery tasks bring it back. Your own state in this environment is left as it was.
        """
        from pynenc_wf_testing.checks.crash_check import check_crash_safety

        checked = _check_task(workflow, "check_crash_safety()")
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
            restart_after=_restart_seconds(restart_after),
            before_each=before_each,
            after_start=after_start,
            starter=starter,
            on_blocked=on_blocked,
        )

    @property
    def crashes(self) -> int:
        """How many times the worker crashed so far."""
        return self._require_sim().crashes

    def _check_unfired_at_end(self) -> None:
        sim = self._sim
        if sim is None:
            return
        unfired = self._faults.unfired()
        if unfired and not sim.threads and not sim.ready and not sim.sleepers:
            self._raise_unfired(unfired)

    def _raise_unfired(self, unfired: list[Any]) -> None:
        sim = self._require_sim()
        names = sorted({s.name for s in sim.history if s.is_step})
        wanted = ", ".join(p.snippet() for p in unfired)
        raise UnknownStepError(
            f"{wanted}: that step was never reached. Steps seen: "
            f"{', '.join(names) or 'none'}. Check the name (a task's name is its function "
            "name; '#2' is its second call)."
        )

    def check_faults_fired(self) -> None:
        """Raise :class:`UnknownStepError` for any armed crash point that never fired."""
        unfired = self._faults.unfired()
        if unfired:
            self._raise_unfired(unfired)

    # ------------------------------------------------------------------ observation

    @property
    def backend(self) -> Backend:
        """Where this simulation keeps its durable store."""
        return self._backend

    @property
    def seed(self) -> int:
        """The seed of this simulation."""
        return self._seed

    @property
    def now(self) -> dt.datetime:
        """The current virtual instant (aware UTC datetime)."""
        if self._clock is None:
            return self._start
        return self._clock.now

    @property
    def ledger(self) -> list[Execution]:
        """Every task execution so far: task, arguments, attempt and outcome."""
        return list(self._require_sim().ledger)

    def executions(self, task: Task[Any, Any] | str) -> int:
        """How many times ``task`` was executed: every attempt,
        retries, re-executions after crashes and injected failures (``fail()``) included.
        ``task``: a task object, its function name, its ``module.function`` key, or one
        logical call's step name (``"charge_payment#2"``)."""
        if isinstance(task, str):
            ledger = self._require_sim().ledger
            if "#" in task:  # one logical call: "charge_payment#2"
                return sum(1 for e in ledger if e.name == task)
            if "." in task:  # a full task key: "myshop.tasks.charge_payment"
                return sum(1 for e in ledger if e.task == task)
            return sum(1 for e in ledger if e.task.rsplit(".", 1)[-1] == task)
        key = _check_task(task, "executions()").task_id.key
        return sum(1 for e in self._require_sim().ledger if e.task == key)

    @property
    def history(self) -> list[Step]:
        """Every step and crash/recovery event so far, in commit order."""
        return list(self._require_sim().history)

    @property
    def steps(self) -> list[str]:
        """The names of the numbered steps so far (what crash points can refer to)."""
        return [s.name for s in self._require_sim().history if s.is_step]

    def history_json(self) -> str:
        """The history as stable JSON (byte-identical for the same seed and code): the steps,
        and for every workflow what a :class:`Replayer` needs to replay it."""
        return history_to_json(
            self._require_sim().history, seed=self._seed, workflows=self._workflow_records()
        )

    def _workflow_records(self) -> list[dict[str, Any]]:
        from pynenc_wf_testing.checks.replay import export_workflow

        sim = self._require_sim()
        order = sim._positions
        records = []
        for info in sim.invocations.values():
            if not info.is_workflow:
                continue
            app = sim._app_of(info.invocation_id)
            if not sim.is_stored(app, info.invocation_id):
                continue  # named by a crash_before of its routing: never stored
            children = [c for c in order.get(info.invocation_id, []) if sim.is_stored(app, c)]
            records.append(export_workflow(app, info.invocation_id, children))
        return records

    def render(self) -> str:
        """The workflow tree of this simulation as text (workflow -> sub-workflows ->
        children, with status, attempts, virtual times and crash points)."""
        from pynenc_wf_testing.tools.render import render_text

        return render_text(self)

    def blocked(self) -> dict[str, str]:
        """What each blocked invocation waits on right now."""
        return self._require_sim().blocked_report()
