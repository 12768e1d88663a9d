"""The side-effect ledger: one entry per execution of a task function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Execution"]


@dataclass(slots=True)
class Execution:
    """One execution of a task function inside the simulation.

    ``name`` is the logical step name of the call (``charge_payment#1``), ``attempt`` counts
    executions of the same invocation from 1 (pynenc does not count recoveries; we do),
    ``started``/``finished`` are virtual instants (ISO 8601). ``outcome`` is ``running``
    while it runs, then ``success``, ``failed``, ``retry``,
    ``crashed`` (the worker died while it ran) or ``stalled`` (it returned without a final status).
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
        }
