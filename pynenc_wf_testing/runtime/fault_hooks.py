"""Fault hooks: what the simulator asks of a fault plan, defined where the simulator lives.

The simulator consults its faults at two kinds of point: around each step commit (crash
``before`` or ``after`` it, or deliver an external event right after it) and at the start of
each task execution (an injected failure). The
fault vocabulary as data (schedules) belongs to the checks layer, above the runtime; what is
armed on one run is :class:`~pynenc_wf_testing.runtime.faults.ArmedFaults`, which satisfies
:class:`FaultHooks` structurally and is passed in by the environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, Protocol

from pynenc_wf_testing.runtime.history import Step

__all__ = ["NO_FAULTS", "CrashPointView", "FaultHooks", "InterruptView", "NoFaults"]

#: Where a crash point sits relative to a step's commit.
CommitPhase = Literal["before", "after"]


class CrashPointView(Protocol):
    """One crash point as the simulator sees it: whether it fired, how long the worker stays
    down, and how to print it in messages."""

    @property
    def fired(self) -> bool: ...

    @property
    def restart_after(self) -> float | None: ...

    def snippet(self) -> str: ...


class InterruptView(Protocol):
    """An external event armed at a step boundary, as the simulator sees it."""

    def deliver(self, step: Step) -> None: ...


class FaultHooks(Protocol):
    """The faults armed on one simulation, consulted by the simulator.

    ``crash_points`` is read on every store write (an empty sequence means the before-commit
    hooks build no step at all), so it must be a plain sequence, not computed.
    """

    @property
    def crash_points(self) -> Sequence[CrashPointView]: ...

    @property
    def interrupts(self) -> Sequence[Any]:
        """External events armed at step boundaries (``wf_env.deliver_after``); read on
        every commit, so a plain sequence (empty: nothing more is done)."""
        ...

    def interrupts_for(self, step: Step) -> Sequence[InterruptView]:
        """Every unfired interrupt matching ``step`` (just committed), marked fired."""
        ...

    @property
    def mocks(self) -> Mapping[str, Any]:
        """Mocked tasks by key (``wf_env.mock``); read at each execution start, so a plain
        mapping (empty: nothing is mocked, nothing more is done)."""
        ...

    def mock_attempt(self, mock: Any, invocation_id: str, retries: int) -> int:
        """The attempt number of this try of a mocked task."""
        ...

    def crash_for(self, step: Step, phase: CommitPhase) -> CrashPointView | None:
        """The first unfired crash point matching ``step`` in ``phase``, marked fired."""
        ...

    def failure_for(self, task_key: str) -> BaseException | None:
        """The exception an execution of ``task_key`` raises instead of running, if any."""
        ...

    def unfired(self) -> Sequence[CrashPointView]:
        """The crash points armed but not reached (an error once nothing can run)."""
        ...


class NoFaults:
    """No fault armed: what a simulation built without a fault plan consults."""

    __slots__ = ()

    crash_points: tuple[CrashPointView, ...] = ()
    interrupts: tuple[Any, ...] = ()
    mocks: Mapping[str, Any] = MappingProxyType({})

    def mock_attempt(self, mock: Any, invocation_id: str, retries: int) -> int:
        return 0

    def crash_for(self, step: Step, phase: CommitPhase) -> CrashPointView | None:
        return None

    def failure_for(self, task_key: str) -> BaseException | None:
        return None

    def interrupts_for(self, step: Step) -> Sequence[InterruptView]:
        return ()

    def unfired(self) -> Sequence[CrashPointView]:
        return ()


NO_FAULTS: FaultHooks = NoFaults()
