"""WorkflowRun: a handle on one invocation started in an environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pynenc_wf_testing.env._faults import check_unfired_at_end
from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.invocation.status import InvocationStatus

    from pynenc_wf_testing.env._lifecycle import EnvCore

R = TypeVar("R")


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
    def status(self) -> InvocationStatus:
        """pynenc's current status of the invocation (does not run anything)."""
        # The app is module-level: once its environment closed it reads another store (its
        # own, or a later environment's), which does not hold this run. (.sim raises
        # InvalidArgument once the environment closed.)
        _ = self._world.sim
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
        sim = self._world.sim
        if not self.done:
            sim.drive(goal=lambda: self.done, goal_ids=[self.invocation_id], on_final=True)
        check_unfired_at_end(self._world.sim)
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
        return self._world.sim.label(self.invocation_id).split(" [")[0]

    @property
    def history(self) -> list[Step]:
        """The steps of this run: its own workflow and its sub-workflows, in commit order."""
        sim = self._world.sim
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
        if self._world.closed:
            return f"<WorkflowRun {self.invocation_id[:8]} (environment closed)>"
        return f"<WorkflowRun {self.invocation_id[:8]} status={self.status.value}>"
