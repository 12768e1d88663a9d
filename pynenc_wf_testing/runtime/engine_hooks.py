"""The simulator's side of the engine's hook protocol (``engine.hooks.SimulatorHooks``).

One stateless object serves every simulation: each call finds the simulation attached to the
app (``components.sim_of``), so apps a simulation does not drive, or a world being swapped by
a crash check, get production behaviour. ``WorkflowEnv`` registers it while it is open.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import host, schema
from pynenc_wf_testing.engine.hooks import register_hooks, unregister_hooks
from pynenc_wf_testing.runtime.clock import to_micros
from pynenc_wf_testing.runtime.components import sim_of

if TYPE_CHECKING:
    from pynenc.app import Pynenc

__all__ = [
    "SIMULATOR_HOOKS",
    "SimulationHooks",
    "close_workflow",
    "plug_in",
    "result_wait_interrupts",
    "unplug",
]


class SimulationHooks:
    """``engine.hooks.SimulatorHooks`` over the ``Simulation`` attached to each app."""

    def in_simulated_invocation(self, app: Pynenc) -> bool:
        sim = sim_of(app)
        return sim is not None and sim.in_simulated_invocation()

    def wait(
        self, app: Pynenc, keys: tuple[str, ...], deadline: dt.datetime | None, what: str
    ) -> None:
        sim = sim_of(app)
        assert sim is not None, "wait() outside a simulated invocation"
        sim.wait_condition(keys, None if deadline is None else to_micros(deadline), what)

    def suspends_waits(self, app: Pynenc) -> bool:
        """``engine.hooks.SuspendingHooks``: evict here (``Simulation.evicts_wait``)?"""
        sim = sim_of(app)
        return sim is not None and sim.evicts_wait(app)

    def adopt(self, app: Pynenc) -> None:
        """``engine.hooks.AdoptingHooks``: the open environment takes ``app`` before the
        engine's client reads its components (its production stores are never opened)."""
        from pynenc_wf_testing.runtime.monkeypatches import direct_calls

        direct_calls.adopt(app)

    def notify(self, app: Pynenc, key: str) -> None:
        sim = sim_of(app)
        if sim is not None:
            sim.notify(key)

    def child_obtained(self, app: Pynenc, invocation: Any) -> None:
        sim = sim_of(app)
        if sim is not None and sim.in_simulated_invocation():
            assert sim.current is not None
            sim.child_obtained(sim.current, invocation)

    def child_positions(self, app: Pynenc, workflow_id: str) -> tuple[int, int] | None:
        sim = sim_of(app)
        if sim is None or not sim.in_simulated_invocation():
            return None
        assert sim.current is not None
        return sim.current.child_seq, len(sim.positions.get(workflow_id, ()))

    def workflow_restarted(self, app: Pynenc, workflow_id: str) -> None:
        sim = sim_of(app)
        if sim is not None:
            sim.stalled.pop(workflow_id, None)

    def drives(self, app: Pynenc) -> bool:
        return sim_of(app) is not None

    def invocation_cancelled(self, app: Pynenc, invocation_id: str) -> None:
        sim = sim_of(app)
        if sim is not None:
            sim.drop_invocation(invocation_id)

    def replaying_finished_history(self, app: Pynenc, workflow_id: str) -> bool:
        sim = sim_of(app)
        if sim is None or not sim.in_simulated_invocation():
            return False
        limit = sim.replay_limits.get(workflow_id)
        return limit is not None and bool(limit[1])

    def rerun_started(self, app: Pynenc, workflow_id: str, reused: list[str]) -> None:
        sim = sim_of(app)
        if sim is not None:
            sim.continue_names(workflow_id, reused)

    def child_steps(self, app: Pynenc, workflow_id: str) -> list[tuple[str, str]] | None:
        sim = sim_of(app)
        if sim is None:
            return None
        return sim.child_steps(workflow_id)


#: The instance ``WorkflowEnv`` registers (one is enough: it holds no state).
SIMULATOR_HOOKS = SimulationHooks()


def plug_in() -> None:
    """Let the engine reach the simulations (``WorkflowEnv.open``)."""
    register_hooks(SIMULATOR_HOOKS)


def unplug() -> None:
    """Undo one :func:`plug_in` (``WorkflowEnv.close``)."""
    unregister_hooks(SIMULATOR_HOOKS)


def result_wait_interrupts(
    app: Pynenc, invocation: Any, awaited: list[str]
) -> tuple[tuple[str, ...], int | None] | bool | None:
    """What interrupts a plain ``.result`` on ``awaited`` of a simulated workflow: its
    wake-up keys and run deadline (micros); None for an invocation that is not the root of a
    workflow of an app with the engine; True when it must not block (an awaited invocation
    became final). Raises the workflow's ``WorkflowCancelled`` / ``WorkflowTimeout`` if one
    is due: a blocked workflow ends at the instant it is cancelled or times out."""
    if not host.workflows_enabled(app):  # (first: the cheaper test, on every wait)
        return None
    workflow = invocation.workflow
    if workflow is None:
        return None
    workflow_id = str(workflow.workflow_id)
    if workflow_id != str(invocation.invocation_id):
        return None
    deadline = host.blocked_result_deadline(app, invocation, awaited)
    if deadline is True:
        return True
    micros = None if deadline is None or deadline is False else to_micros(deadline)
    return (schema.interrupt(workflow_id),), micros


def close_workflow(app: Pynenc, workflow_id: str, status: str) -> None:
    """A workflow run reached a final status: apply the parent-close policy to its
    children at that instant (the engine's rule, ``engine.host.close_run``; in production
    the timer service applies it within a tick)."""
    host.close_run(app, workflow_id, status)
