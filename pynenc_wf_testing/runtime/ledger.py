"""The side-effect ledger: one entry per execution of a task function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Execution", "ExecutionLedger"]


@dataclass(slots=True)
class Execution:
    """One execution of a task function inside the simulation.

    ``name`` is the logical step name of the call (``charge_payment#1``), ``attempt`` counts
    executions of the same invocation from 1 (pynenc does not count recoveries; we do),
    ``started``/``finished`` are virtual instants (ISO 8601). ``outcome`` is ``running``
    while it runs, then ``success``, ``failed``, ``retry``,
    ``crashed`` (the worker died while it ran), ``stalled`` (it returned without a final status),
    ``suspended`` (evicted at a durable wait), ``aborted`` (the run stopped it for good) or
    ``cancelled`` (the engine terminated it: its parent workflow closed or was cancelled).
    ``mocked``: ``wf_env.mock`` ran instead of the task function. ``worker``: the pool
    worker that ran it (``WorkflowEnv(workers=N)``; 0 without a pool).
    ``arguments`` are pynenc's serialized arguments (stable strings): the call's own mapping,
    shared, not copied (read-only).
    """

    task: str
    name: str
    invocation_id: str
    workflow_id: str | None
    attempt: int
    arguments: dict[str, str]
    started: str
    outcome: str = "running"
    logical_call: tuple[str, str, int] | None = None
    injected: bool = False
    finished: str | None = None
    #: True when ``wf_env.mock`` ran instead of the task function.
    mocked: bool = False
    #: The pool worker (1-based) that ran it; 0 without a worker pool.
    worker: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of this execution."""
        return {
            "task": self.task,
            "name": self.name,
            "invocation_id": self.invocation_id,
            "workflow_id": self.workflow_id,
            "attempt": self.attempt,
            "arguments": dict(sorted(self.arguments.items())),
            "started": self.started,
            "outcome": self.outcome,
            "injected": self.injected,
            "finished": self.finished,
            # only when true: histories without mocks keep their bytes
            **({"mocked": True} if self.mocked else {}),
            **({"worker": self.worker} if self.worker else {}),
        }


class ExecutionLedger:
    """Every execution of one simulation, in start order, and the ones still running.

    ``now`` gives the virtual instant (ISO 8601) an execution ends at.
    """

    __slots__ = ("_now", "_running", "entries")

    def __init__(self, now: Callable[[], str]) -> None:
        self._now = now
        self.entries: list[Execution] = []
        self._running: dict[str, Execution] = {}

    def open(self, execution: Execution) -> None:
        self.entries.append(execution)
        self._running[execution.invocation_id] = execution

    def finish(self, invocation_id: str, outcome: str) -> None:
        execution = self._running.pop(invocation_id, None)
        if execution is not None:
            execution.outcome = outcome
            execution.finished = self._now()

    def crash_running(self) -> None:
        """The worker died: everything running ends ``crashed`` now."""
        for execution in list(self._running.values()):
            execution.outcome = "crashed"
            execution.finished = self._now()
        self._running.clear()

    def duplicate_side_effects(self, keys: set[str]) -> list[list[Execution]]:
        """Executions of non-idempotent tasks (``keys``) that ran more than once for the same
        logical call. Executions that raised (failed, retry) or were injected failures are
        not side effects; crashed ones may be (at-least-once)."""
        by_call: dict[tuple[str, str, int], list[Execution]] = {}
        for execution in self.entries:
            if execution.task not in keys or execution.injected:
                continue
            if execution.outcome in ("failed", "retry", "aborted"):
                continue
            assert execution.logical_call is not None
            by_call.setdefault(execution.logical_call, []).append(execution)
        return [runs for runs in by_call.values() if len(runs) > 1]
