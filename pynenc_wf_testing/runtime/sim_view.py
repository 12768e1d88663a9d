"""What the simulated components, the runner and the engine hooks read of the simulation
attached to an app (``components.sim_of``): a Protocol, typing only.

They sit below :class:`~pynenc_wf_testing.runtime.simulation.Simulation` (which builds on the
scheduler, the workers and their runners), so they name this narrow view of it instead of
importing the coordinator. ``simulation.py`` checks that ``Simulation`` satisfies it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.invocation.status import InvocationStatus
    from pynenc.workflow.workflow_identity import WorkflowIdentity

    from pynenc_wf_testing.runtime.clock import VirtualClock
    from pynenc_wf_testing.runtime.fault_hooks import FaultHooks

__all__ = ["AttachedSimulation", "RunningThread"]


class RunningThread(Protocol):
    """The invocation running now (``scheduler.SimThread``), as the engine hooks read it."""

    @property
    def child_seq(self) -> int: ...


class AttachedSimulation(Protocol):
    """The simulation attached to an app, as its components, runner and engine hooks use it."""

    #: Something was routed since the last fetch (set by the components).
    broker_dirty: bool
    #: Whether call arguments and workflow data must survive pynenc's serializer (an error
    #: naming the value when they cannot).
    check_serialization: bool

    @property
    def faults(self) -> FaultHooks: ...

    @property
    def clock(self) -> VirtualClock: ...

    @property
    def current(self) -> RunningThread | None: ...

    @property
    def stalled(self) -> dict[str, str]: ...

    @property
    def positions(self) -> dict[str, list[str]]: ...

    @property
    def replay_limits(self) -> dict[str, tuple[int, bool]]: ...

    # Re-runs (engine.rerun_workflow): their step names.
    def continue_names(self, owner: str, names: list[str]) -> None: ...

    def child_steps(self, workflow_id: str) -> list[tuple[str, str]]: ...

    # What the components report (store_hooks.StoreHooks).
    def before_register(self, app: Pynenc, invocations: list[DistributedInvocation]) -> None: ...

    def after_register(self, app: Pynenc, invocations: list[DistributedInvocation]) -> None: ...

    def before_status(self, app: Pynenc, invocation_id: Any, status: InvocationStatus) -> None: ...

    def after_status(self, app: Pynenc, invocation_id: Any, status: InvocationStatus) -> None: ...

    def after_retry(self, app: Pynenc, invocation_id: Any) -> None: ...

    def before_data(self, app: Pynenc, identity: WorkflowIdentity, key: str, value: Any) -> None: ...

    def after_data(self, app: Pynenc, identity: WorkflowIdentity, key: str, value: Any) -> None: ...

    def assertion_failed(self, invocation: Any, error: AssertionError) -> None: ...

    # What the engine hooks call (scheduler.Scheduler, determinism.DeterminismGuard).
    def in_simulated_invocation(self) -> bool: ...

    def wait_condition(self, keys: tuple[str, ...], deadline: int | None, what: str) -> None: ...

    def notify(self, key: str) -> None: ...

    def drop_invocation(self, invocation_id: str) -> None: ...

    def child_obtained(self, thread: Any, child: Any) -> None: ...

    # What the runner drives.
    def wait_for_results(self, invocation_ids: list[Any]) -> None: ...

    def run_until_idle(self) -> None: ...
