"""Simulated pynenc components: pynenc's own classes with observation hooks.

Selected by the config keys ``orchestrator_cls`` / ``state_backend_cls`` / ``runner_cls`` (pynenc
finds a component by class ``__name__`` among loaded subclasses, so importing this module is
what makes them selectable). Each hook reports to the simulation attached to the app; without
one (an app configured with these names outside a WorkflowEnv) they behave like their bases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pynenc.orchestrator.mem_orchestrator import MemOrchestrator
from pynenc.state_backend.mem_state_backend import MemStateBackend

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.serialization import check_call_arguments, check_workflow_data

__all__ = ["SIM_ATTR", "SimOrchestratorMixin", "not_in_simulated_store", "SimStateBackendMixin", "SimStockMemOrchestrator", "SimStockMemStateBackend", "sim_of"]

if TYPE_CHECKING:
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext
    from pynenc.workflow.workflow_identity import WorkflowIdentity

    from pynenc_wf_testing.runtime.sim_view import AttachedSimulation

SIM_ATTR = "_pynenc_wf_sim"


def sim_of(app: Any) -> AttachedSimulation | None:
    return getattr(app, SIM_ATTR, None)


def not_in_simulated_store(invocation_id: str) -> InvalidArgument:
    """The error for an invocation the simulated orchestrator has never seen (its status was
    asked for, e.g. by ``.result``)."""
    return InvalidArgument(
        f"invocation {invocation_id} is not in the simulated store: it was created "
        "before env.use(app) put its app on simulated components (or by another "
        "WorkflowEnv). Start it inside the environment: env.start(task, ...)."
    )


class SimOrchestratorMixin:
    """Reports status changes and routing to the simulation; iterates sets in sorted order.

    pynenc's memory orchestrator iterates Python sets of invocation ids in a few places
    (recovery, rerouting): their order depends on PYTHONHASHSEED, so we sort.
    """

    app: Any

    # The hooks below run for every routing and status change: they read the simulation
    # attribute directly (sim_of's getattr without the extra call).

    def set_invocation_status(
        self, invocation_id: InvocationId, status: InvocationStatus, runner_ctx: RunnerContext
    ) -> None:
        sim: AttachedSimulation | None = getattr(self.app, SIM_ATTR, None)
        if sim is not None and sim.faults.crash_points:  # before-hooks only serve crash points
            sim.before_status(self.app, invocation_id, status)
        super().set_invocation_status(invocation_id, status, runner_ctx)  # type: ignore[misc]
        if sim is not None:
            sim.after_status(self.app, invocation_id, status)

    def register_new_invocations(self, invocations: list[DistributedInvocation]) -> None:
        sim: AttachedSimulation | None = getattr(self.app, SIM_ATTR, None)
        if sim is not None:
            if sim.check_serialization:
                # Before anything is written: the call fails where it is made.
                check_call_arguments(self.app, invocations)
            if sim.faults.crash_points:
                sim.before_register(self.app, invocations)
        super().register_new_invocations(invocations)  # type: ignore[misc]
        if sim is not None:
            sim.after_register(self.app, invocations)

    def route_invocation(self, invocation: DistributedInvocation) -> None:
        super().route_invocation(invocation)  # type: ignore[misc]
        sim = sim_of(self.app)
        if sim is not None:
            sim.broker_dirty = True

    def route_invocations(self, invocations: Sequence[DistributedInvocation]) -> None:
        super().route_invocations(invocations)  # type: ignore[misc]
        sim: AttachedSimulation | None = getattr(self.app, SIM_ATTR, None)
        if sim is not None:
            sim.broker_dirty = True

    def set_invocation_retry(
        self, invocation: DistributedInvocation, exception: Exception, runner_ctx: RunnerContext
    ) -> None:
        sim = sim_of(self.app)
        if sim is not None and isinstance(exception, AssertionError):
            # An assertion in workflow or task code is a test failure, never a transient
            # error: fail the invocation and the test at once (Temporal does the same).
            self.set_invocation_exception(  # type: ignore[attr-defined]
                invocation, exception, runner_ctx
            )
            sim.assertion_failed(invocation, exception)
            return
        super().set_invocation_retry(invocation, exception, runner_ctx)  # type: ignore[misc]
        if sim is not None:
            # pynenc sets RETRY, then routes the invocation again: the retry is scheduled
            # only once routed (a crash in between is explored by fine-grained checks).
            sim.after_retry(self.app, invocation.invocation_id)

    def reroute_invocations(
        self, invocations_to_reroute: Any, runner_ctx: RunnerContext
    ) -> None:
        super().reroute_invocations(sorted(invocations_to_reroute), runner_ctx)  # type: ignore[misc]

    def get_pending_invocations_for_recovery(self) -> Iterator[InvocationId]:
        return iter(sorted(super().get_pending_invocations_for_recovery()))  # type: ignore[misc]

    def get_running_invocations_for_recovery(self) -> Iterator[InvocationId]:
        return iter(sorted(super().get_running_invocations_for_recovery()))  # type: ignore[misc]


class SimStateBackendMixin:
    """Reports workflow-data writes (deterministic values, recorded children, user data)."""

    app: Any

    def set_workflow_data(self, workflow_identity: WorkflowIdentity, key: str, value: Any) -> None:
        sim = sim_of(self.app)
        if sim is not None and sim.faults.crash_points:
            sim.before_data(self.app, workflow_identity, key, value)
        super().set_workflow_data(workflow_identity, key, value)  # type: ignore[misc]
        if sim is not None:
            sim.after_data(self.app, workflow_identity, key, value)


class SimStockMemOrchestrator(SimOrchestratorMixin, MemOrchestrator):
    """pynenc's ``MemOrchestrator`` observed by the simulation (backend ``"memory-stock"``;
    the default memory backend uses ``fast_memory.SimMemOrchestrator``)."""


class SimStockMemStateBackend(SimStateBackendMixin, MemStateBackend):
    """pynenc's ``MemStateBackend`` observed by the simulation (backend ``"memory-stock"``;
    the default memory backend uses ``fast_memory.SimMemStateBackend``, a subclass).

    pynenc keeps workflow data by reference here: a value its serializer would lose (a
    lambda, an open file) fails the write all the same, as on a persistent backend."""

    def set_workflow_data(self, workflow_identity: WorkflowIdentity, key: str, value: Any) -> None:
        sim = sim_of(self.app)
        if sim is not None and sim.check_serialization:
            check_workflow_data(self.app, workflow_identity, key, value, "memory")
        super().set_workflow_data(workflow_identity, key, value)
