"""What an environment does to its workflows: start them, drive them, talk to them."""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import numbers
import weakref
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pynenc_wf_testing.env._faults import check_task
from pynenc_wf_testing.env._lifecycle import EnvCore
from pynenc_wf_testing.env._run import WorkflowRun
from pynenc_wf_testing.errors import AppConfigurationError, InvalidArgument

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.task import Task

P = ParamSpec("P")
R = TypeVar("R")


#: The keywords of ``advance()``, the units ``datetime.timedelta`` takes.
_ADVANCE_UNITS = ("seconds", "minutes", "hours", "days", "weeks")

#: function -> its signature (``inspect.signature`` costs more than a whole start).
_SIGNATURES: weakref.WeakKeyDictionary[Any, inspect.Signature] = weakref.WeakKeyDictionary()


def check_arguments(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                    what: str) -> None:
    """Refuse, at the call, arguments that the task's function cannot take (pynenc would
    raise a bare ``TypeError`` from deep inside its argument binding)."""
    func = task.func
    signature = _SIGNATURES.get(func)
    if signature is None:
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
            return
        with contextlib.suppress(TypeError):  # (a callable that takes no weak reference)
            _SIGNATURES[func] = signature
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise InvalidArgument(
            f"{what}: {task.task_id.func_name}({', '.join(map(_param, signature.parameters.values()))}) "
            "cannot be called with these "
            f"arguments ({error}). Pass the arguments of the task's function, e.g. "
            f"env.start(task, *args, **kwargs)."
        ) from None


def _param(parameter: Any) -> str:
    """A parameter as written, without its annotation (often a string under PEP 563)."""
    stars = {parameter.VAR_POSITIONAL: "*", parameter.VAR_KEYWORD: "**"}
    return stars.get(parameter.kind, "") + str(parameter.name)


class EnvClient(EnvCore):
    """The client part of :class:`WorkflowEnv`: start, drive, signal, query."""

    def start(self, task: Task[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowRun[R]:
        """Route ``task(*args, **kwargs)`` in the simulation and return a handle on it.

        Nothing runs until the simulation is driven (``run.result``, :meth:`advance`,
        :meth:`run_until_idle`).
        """
        from pynenc.invocation.dist_invocation import DistributedInvocation

        checked = check_task(task, "start()")
        check_arguments(checked, args, kwargs, "start()")
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

        checked = check_task(task, "start_workflow()")
        # workflow_id, id_reuse and run_timeout are the engine's to check (InvalidWorkflowArgument,
        # before anything is routed): one check, one exception type, in and out of the simulator.
        check_arguments(checked, args, kwargs, "start_workflow()")
        self._require_sim()
        self.use(checked.app)
        invocation = start_workflow(
            checked, *args, workflow_id=workflow_id, id_reuse=id_reuse,  # type: ignore[arg-type]
            run_timeout=run_timeout, **kwargs,
        )
        return WorkflowRun(self, invocation)

    def signal(self, run: WorkflowRun[Any] | str, name: str, payload: Any = None) -> int:
        """Send signal ``name`` with ``payload`` to a running workflow (a run, its workflow
        id given to :meth:`start_workflow`, or its invocation id)."""
        from pynenc_wf_testing.engine import signal_workflow

        return signal_workflow(self._app_for(run), run, name, payload)

    def query(self, run: WorkflowRun[Any] | str) -> Any:
        """The workflow's published state and status (``WorkflowQuery``); runs nothing."""
        from pynenc_wf_testing.engine import query_workflow

        return query_workflow(self._app_for(run), run)

    def describe(self, run: WorkflowRun[Any] | str) -> Any:
        """The current run of a workflow (``WorkflowDescription``: ids, status); runs
        nothing."""
        from pynenc_wf_testing.engine import describe_workflow

        return describe_workflow(self._app_for(run), run)

    def resume(self, run: WorkflowRun[Any] | str) -> None:
        """Resume a halted workflow."""
        from pynenc_wf_testing.engine import resume_workflow

        resume_workflow(self._app_for(run), run)

    def cancel(self, run: WorkflowRun[Any] | str, reason: str = "cancelled") -> None:
        """Cancel a workflow: its next durable operation raises ``WorkflowCancelled``."""
        from pynenc_wf_testing.engine import cancel_workflow

        if not isinstance(reason, str):
            raise InvalidArgument(
                f"cancel(reason={reason!r}): expected a string (it is recorded and shown in "
                "WorkflowCancelled), e.g. cancel(run, reason='customer asked')."
            )
        cancel_workflow(self._app_for(run), run, reason)

    def rerun(
        self, run: WorkflowRun[Any] | str, from_step: str | None = None
    ) -> WorkflowRun[Any]:
        """:func:`pynenc_wf_testing.engine.rerun_workflow` in the simulation: a new run of a
        finished workflow that reuses the results recorded before ``from_step``
        (``"charge_payment#1"``, a name from :meth:`workflow_steps`) and executes it and what follows
        again, under the same workflow id. Returns the new run (driven like any other)."""
        from pynenc_wf_testing.engine import rerun_workflow

        return WorkflowRun(self, rerun_workflow(self._app_for(run), run, from_step))

    def invalidate(self, run: WorkflowRun[Any] | str, step: str | Task[Any, Any]) -> list[str]:
        """:func:`pynenc_wf_testing.engine.invalidate_result`: the next :meth:`rerun` of this
        finished run computes ``step`` (a step name, or every call of a task) again."""
        from pynenc_wf_testing.engine import invalidate_result

        return invalidate_result(self._app_for(run), run, step)

    def workflow_steps(self, run: WorkflowRun[Any] | str) -> list[str]:
        """The step names of a workflow run's child calls, in call order
        (:func:`pynenc_wf_testing.engine.workflow_steps`)."""
        from pynenc_wf_testing.engine import workflow_steps

        return workflow_steps(self._app_for(run), run)

    def _app_for(self, run: WorkflowRun[Any] | str) -> Pynenc:
        self._require_sim()
        if isinstance(run, WorkflowRun):
            if run._world is not self.world:
                raise InvalidArgument(
                    f"{run.invocation_id[:8]} is a run of another WorkflowEnv; each environment "
                    "has its own store. Signal, query or cancel it through the environment "
                    "that started it (before it closes), or start it in this one."
                )
            app: Pynenc = run.invocation.app
            return app
        if not isinstance(run, str):
            raise InvalidArgument(
                f"expected a WorkflowRun (what env.start returns) or a workflow id string, "
                f"got {type(run).__name__}: {run!r}."
            )
        apps = self.world.apps
        if len(apps) == 1:
            return apps[0]
        holding = [app for app in apps if self._find_run(app, run) is not None]
        if len(holding) == 1:
            return holding[0]
        raise InvalidArgument(
            f"pass the WorkflowRun rather than the id {run!r}: several apps are in use, and "
            f"{'none' if not holding else 'more than one'} of them has a workflow by that id."
        )

    def _find_run(self, app: Pynenc, workflow_id: str) -> str | None:
        """The run id of ``workflow_id`` (a workflow id or an invocation id) in ``app``."""
        from pynenc_wf_testing.engine import WorkflowEngineError, describe_workflow

        if self._require_sim().is_stored(app, workflow_id):
            return workflow_id
        try:  # WorkflowsNotEnabled included: such an app has no workflow ids
            return describe_workflow(app, workflow_id).run_id
        except WorkflowEngineError:
            return None

    def run_of(self, invocation_id: str) -> WorkflowRun[Any]:
        """A handle on an invocation already in the store (e.g. after resuming a store that
        another process left behind), by its invocation id or the workflow id given to
        :meth:`start_workflow` (its current run)."""
        sim = self._require_sim()
        if not isinstance(invocation_id, str):
            raise InvalidArgument(
                f"run_of() expects an invocation id or a workflow id (a str), got "
                f"{type(invocation_id).__name__}: {invocation_id!r}."
            )
        apps = self.world.apps
        # With no app in use yet there is no store to look in (the id is unknown).
        app: Pynenc | None = sim.app_of(invocation_id) if apps else None
        run_id = None if app is None else self._find_run(app, invocation_id)
        if app is None or run_id is None:
            others = [a for a in apps if a is not app]
            found = [(a, r) for a in others if (r := self._find_run(a, invocation_id))]
            if len(found) != 1:
                raise InvalidArgument(
                    f"{invocation_id!r} is neither an invocation id nor a workflow id in this "
                    "simulation's store. Start runs with env.start(task, ...) or "
                    "env.start_workflow(task, ..., workflow_id=...)."
                )
            app, run_id = found[0]
        return WorkflowRun(self, app.state_backend.get_invocation(run_id))

    def run_until_idle(self) -> None:
        """Run everything runnable at the current virtual time, without moving the clock."""
        self._require_sim().run_until_idle()

    if TYPE_CHECKING:

        def advance(
            self,
            *,
            seconds: float = 0,
            minutes: float = 0,
            hours: float = 0,
            days: float = 0,
            weeks: float = 0,
        ) -> None:
            """Move the clock forward, running in virtual-time order everything due on the
            way."""

    else:

        def advance(self, *args, **units):
            """Move the clock forward, running in virtual-time order everything due on the
            way: ``advance(seconds=, minutes=, hours=, days=, weeks=)``."""
            # Python's own TypeError for advance(months=1) or advance(30) would name
            # EnvClient.advance(); type checkers still see the keyword-only signature above.
            unknown = sorted(units.keys() - set(_ADVANCE_UNITS))
            if args or unknown:
                given = ", ".join([*(repr(a) for a in args), *(f"{k}=..." for k in unknown)])
                hint = (
                    f" (for a timedelta: advance(seconds={args[0].total_seconds()!r}))"
                    if len(args) == 1 and isinstance(args[0], dt.timedelta) else ""
                )
                raise InvalidArgument(
                    f"advance({given}): takes the amount by unit, as keywords: "
                    f"{', '.join(f'{u}=' for u in _ADVANCE_UNITS)} (no months or years: "
                    f"their length varies). Use e.g. wf_env.advance(days=30){hint}."
                )
            self._advance(**units)

    def _advance(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
        weeks: float = 0,
    ) -> None:
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

    if not TYPE_CHECKING:
        advance.__signature__ = inspect.signature(_advance)  # what help() and IDEs show
