"""WorkflowRun: a handle on one invocation started in an environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.env._faults import check_unfired_at_end
from pynenc_wf_testing.errors import WorkflowTestingError
from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    from pynenc.invocation.dist_invocation import DistributedInvocation

    from pynenc_wf_testing.env._lifecycle import EnvCore

R = TypeVar("R")


def drive_chain(sim: Any, run: Any) -> None:
    """Drive ``sim`` until ``run`` is done, one run of its chain at a time (a deadlock then
    names the run that is stuck, not the first of the chain)."""
    while not run.done:
        current = run.current
        stuck = current.invocation_id
        sim.drive(goal=_moved_on(current), goal_ids=[stuck], on_final=True)


def _may_continue(app: Any) -> bool:
    """Whether a run of ``app`` can continue as new: only the engine writes the link, and
    only on an app with ``enable_workflows`` (checked, so that an app without the engine
    reads no link after every final status)."""
    from pynenc_wf_testing.engine.host import workflows_enabled

    return workflows_enabled(app)


def _moved_on(current: WorkflowRun[Any]) -> Callable[[], bool]:
    """``run.done or run.current is not current``, for ``current`` the run's current run:
    the goal is checked after every final status, and reading it through ``run.current``
    walks the chain from its first run each time. A chain only grows at its end, so the run
    moved on exactly when ``current`` is final or has continued as new."""
    from pynenc_wf_testing.engine import schema

    app = current._app
    get_status = app.orchestrator.get_invocation_status
    inv_id = current.invocation_id
    identity = current._invocation.workflow
    if identity is None or not _may_continue(app):
        return lambda: bool(get_status(inv_id).is_final())
    get_data = app.state_backend.get_workflow_data
    continued = schema.CONTINUED_AS
    return lambda: bool(get_status(inv_id).is_final()) or (
        get_data(identity, continued, None) is not None
    )


class WorkflowRun(Generic[R]):
    """A handle on one invocation started in a :class:`WorkflowEnv`."""

    def __init__(self, env: EnvCore, invocation: DistributedInvocation[Any, R]) -> None:
        # Held so that an environment reachable only through its runs stays open.
        self._env = env
        self._world = env.world
        self._app = invocation.app
        self.invocation_id: str = str(invocation.invocation_id)
        """pynenc's invocation id (seeded: the same seed gives the same id)."""
        workflow = invocation.workflow
        self.workflow_id: str | None = str(workflow.workflow_id) if workflow else None
        """The workflow id (the invocation id of a workflow), or None for a plain task."""
        self._invocation = invocation

    @property
    def invocation(self) -> DistributedInvocation[Any, R]:
        """pynenc's invocation behind this run (reading it drives nothing)."""
        return self._invocation

    @property
    def current(self) -> WorkflowRun[R]:
        """The run this workflow is in now: itself, or, after ``wf.root.continue_as_new``,
        the last run of its chain (reads the store; runs nothing)."""
        from pynenc_wf_testing.engine.host import latest_run

        if self.workflow_id is None or not _may_continue(self._app):
            return self
        latest = latest_run(self._app, self._invocation)
        if latest is self._invocation:
            return self
        return WorkflowRun(self._env, latest)

    @property
    def runs(self) -> list[WorkflowRun[R]]:
        """Every run of this workflow's chain, oldest first (one unless it continued as new)."""
        from pynenc_wf_testing.engine.host import chain_runs

        current = self.current
        if self.workflow_id is None:
            return [self]
        backend = self._app.state_backend
        return [
            self if run_id == self.invocation_id else current if run_id == current.invocation_id
            else WorkflowRun(self._env, backend.get_invocation(run_id))
            for run_id in chain_runs(self._app, current._invocation)
        ]

    @property
    def status(self) -> InvocationStatus:
        """pynenc's current status of the workflow's current run (see :attr:`current`);
        does not run anything."""
        # The app is module-level: once its environment closed it reads another store (its
        # own, or a later environment's), which does not hold this run. (.sim raises
        # InvalidArgument once the environment closed.)
        _ = self._world.sim
        return self._app.orchestrator.get_invocation_status(self.current.invocation_id)

    @property
    def done(self) -> bool:
        """True once the invocation reached a final status (success or failure); for a
        workflow that continued as new, once the last run of its chain did."""
        return bool(self.status.is_final())

    @property
    def result(self) -> R:
        """Drive the simulation until this invocation is final and return its result (for a
        workflow that continues as new: until its chain's last run is, and that run's result).

        Time skips to the next deadline whenever everything is blocked on time. Raises the
        task's own exception if it failed, :class:`DeadlockError` if it can never finish.
        """
        __tracebackhide__ = True
        sim = self._world.sim
        drive_chain(sim, self)
        check_unfired_at_end(self._world.sim)
        if self.status == InvocationStatus.CONCURRENCY_CONTROLLED_FINAL:
            task = self._invocation.task
            raise WorkflowTestingError(
                f"{self.name} never ran: pynenc's concurrency control refused it "
                f"(running_concurrency={task.conf.running_concurrency.value}) because another "
                "invocation of it was pending or running, and with "
                "reroute_on_concurrency_control=False that is final. Set "
                "reroute_on_concurrency_control=True on the task to queue it until the other "
                "one finishes."
            )
        try:
            result: R = self.current._invocation.get_final_result()
        except Exception as error:
            # The task's own exception, as pynenc stored it: pynenc's frames only show the
            # store being read, so they are dropped (the plugin adds the seed line).
            raise error.with_traceback(None) from None
        return result

    @property
    def name(self) -> str:
        """The step name of this invocation (``fulfill_order#1``)."""
        return self._world.sim.label(self.invocation_id).split(" [")[0]

    @property
    def history(self) -> list[Step]:
        """The steps of this run: its own workflow and its sub-workflows, in commit order
        (with every run of its chain, if it continued as new)."""
        sim = self._world.sim
        members = {run.workflow_id for run in self.runs if run.workflow_id}
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
        if self._world.closed:
            return f"<WorkflowRun {self.invocation_id[:8]} (environment closed)>"
        try:
            status = self.status.value
        except Exception:  # a store that cannot answer (repr must not raise)
            status = "unknown"
        return f"<WorkflowRun {self.invocation_id[:8]} status={status}>"
