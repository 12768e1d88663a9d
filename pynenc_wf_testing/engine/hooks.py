"""What the engine asks of a simulator, and where a simulator plugs in.

The engine runs on any pynenc runner. On a stock runner a durable wait polls the store and
sleeps; under a simulator (pynenc-wf-testing's runtime, or any other) the invocation must
instead hand control back to the simulator's scheduler, and the simulator wants to hear of a
few engine events to name steps and check determinism. :class:`SimulatorHooks` is that
interface. A simulator registers an implementation with :func:`register_hooks` while it runs
and removes it with :func:`unregister_hooks`; with none registered (production) the engine
never calls out.

Every method takes the app whose invocation is concerned: a simulator that drives only some
apps answers as production would for the others (``in_simulated_invocation`` False, the rest
no-ops).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pynenc.app import Pynenc

__all__ = [
    "SimulatorHooks",
    "SuspendingHooks",
    "active_hooks",
    "register_hooks",
    "suspension_mode",
    "unregister_hooks",
]


class SimulatorHooks(Protocol):
    """The simulator's side of the engine. Wake-up keys the engine waits on:
    ``schema.wake(workflow_id)`` (the engine notifies it on signals, cancellation and resume),
    ``"inv:<invocation id>"`` (the simulator notifies it when that invocation reaches a final
    status) and ``"task:<task key>"`` (when any run of that task does)."""

    def in_simulated_invocation(self, app: Pynenc) -> bool:
        """Whether the code running now is an invocation of ``app`` driven by the simulator
        (then the engine waits through :meth:`wait` and reports children)."""
        ...

    def wait(
        self, app: Pynenc, keys: tuple[str, ...], deadline: dt.datetime | None, what: str
    ) -> None:
        """Park the current simulated invocation until one of ``keys`` is notified or the
        (simulated) clock reaches ``deadline``. ``what`` describes the wait for diagnostics
        (a deadlock report). The engine re-checks its condition when this returns."""
        ...

    def notify(self, app: Pynenc, key: str) -> None:
        """Wake whatever waits on ``key`` (called from inside or outside invocations)."""
        ...

    def child_obtained(self, app: Pynenc, invocation: Any) -> None:
        """The current simulated workflow invocation obtained child ``invocation`` without
        routing it (the engine adopted it from its own records): count it as the next child
        call, as if it had been routed here."""
        ...

    def child_positions(self, app: Pynenc, workflow_id: str) -> tuple[int, int] | None:
        """(children the current simulated execution of workflow ``workflow_id`` obtained so
        far, children any execution of it obtained), or None outside a simulated
        invocation. More of the latter means an earlier execution went further."""
        ...

    def workflow_restarted(self, app: Pynenc, workflow_id: str) -> None:
        """A halted workflow was routed again: forget that it stopped without finishing."""
        ...

    def drives(self, app: Pynenc) -> bool:
        """Whether the simulator runs ``app``'s invocations (called from anywhere: test code,
        another invocation). A cancellation then reaches a workflow blocked in a plain
        ``.result`` through the simulator (``schema.interrupt`` key)."""
        ...

    def invocation_cancelled(self, app: Pynenc, invocation_id: str) -> None:
        """The engine is about to terminate ``invocation_id`` (a child whose parent workflow
        closed or was cancelled): a simulated execution of it stops for good, as a thread
        would whose result nobody will accept."""
        ...

    def replaying_finished_history(self, app: Pynenc, workflow_id: str) -> bool:
        """Whether the current simulated execution of ``workflow_id`` replays a history that
        had finished (that run went past every point: ``patched()`` answers False)."""
        ...

    def rerun_started(self, app: Pynenc, workflow_id: str, reused: list[str]) -> None:
        """Workflow ``workflow_id`` is a re-run that starts with the steps ``reused`` (their
        names in the run it re-runs): name its own children after them (``charge#2``
        reused: its next charge is ``charge#3``)."""
        ...

    def child_steps(self, app: Pynenc, workflow_id: str) -> list[tuple[str, str]] | None:
        """(step name, invocation id) of the children workflow ``workflow_id`` routed, in the
        order the simulator saw them, named as its history names them (``charge_payment#1``);
        None if it does not drive ``app``. ``rerun_workflow`` names steps with it."""
        ...


class SuspendingHooks(Protocol):
    """Optional addition to :class:`SimulatorHooks`: a simulator whose hooks also have
    ``suspends_waits`` chooses, per app, how a simulated invocation waits."""

    def suspends_waits(self, app: Pynenc) -> bool:
        """True: a waiting simulated workflow takes the production path (records its
        condition, goes PAUSED and leaves; it is routed again when the condition holds).
        False: it parks in :meth:`SimulatorHooks.wait` (what hooks without this method
        get)."""
        ...


class AdoptingHooks(Protocol):
    """Optional addition to :class:`SimulatorHooks`: a simulator whose hooks also have
    ``adopt`` takes an app over before the engine's client functions read its components
    (``start_workflow(...)`` or ``describe_workflow(app, ...)`` as the first use of a
    production-built app in a test), as it does before pynenc routes a task call."""

    def adopt(self, app: Pynenc) -> None:
        """Run ``app`` on the simulator's components from now on (a no-op for an app it
        already drives, or when no simulation is open)."""
        ...


def suspension_mode(app: Pynenc, hooks: SimulatorHooks | None, simulated: bool) -> bool:
    """Whether a wait of the current invocation suspends (production, or a simulator that
    asks for it) rather than parking in the simulator."""
    if not simulated:
        return True
    choose = getattr(hooks, "suspends_waits", None)
    return bool(choose(app)) if choose is not None else False


# A list, not one slot: an implementation registered twice (nested set-ups) stays until each
# registration is removed. The last registered answers.
_registered: list[SimulatorHooks] = []


def register_hooks(hooks: SimulatorHooks) -> None:
    """Plug a simulator in (until :func:`unregister_hooks` with the same object)."""
    _registered.append(hooks)


def unregister_hooks(hooks: SimulatorHooks) -> None:
    """Remove one registration of ``hooks``; a no-op if it is not registered."""
    for index in range(len(_registered) - 1, -1, -1):
        if _registered[index] is hooks:
            del _registered[index]
            return


def active_hooks() -> SimulatorHooks | None:
    """The simulator plugged in now, or None (production)."""
    return _registered[-1] if _registered else None
