"""The step recorder: numbers and names the steps of a simulation and keeps its history.

It knows every invocation it has seen (:class:`InvocationInfo`, a god's view that survives
crashes), gives each a readable name (``charge_payment#2``: the second ``charge_payment`` of its
workflow) and turns workflow-data keys into step kinds and names. It records; it does not
decide anything (crash points are consulted by the caller around :meth:`StepRecorder.commit`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.runtime.clock import VirtualClock
from pynenc_wf_testing.runtime.history import Step

__all__ = ["InvocationInfo", "StepRecorder", "step_workflow"]

if TYPE_CHECKING:
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.workflow.workflow_identity import WorkflowIdentity

# One shared empty detail instead of one per step (~110,000 steps at 10,000 workflows).
_NO_DETAIL: dict[str, Any] = {}

# Workflow-data keys that pynenc writes as bookkeeping of a step already recorded.
_VALUE_KEYS = {"random": "random", "uuid": "uuid", "time": "utc_now"}


@dataclass(slots=True)
class InvocationInfo:
    """What the recorder knows about an invocation (god's view: survives crashes)."""

    invocation_id: str
    task: str
    name: str
    owner_workflow_id: str | None
    workflow_id: str | None
    parent_invocation_id: str | None
    is_workflow: bool
    executions: int = 0
    first_seen: str = ""
    #: (workflow id, task name, k-th call of that task in one execution of the workflow body)
    #: where a workflow first obtained this invocation as a child.
    logical: tuple[str, str, int] | None = None


def step_workflow(info: InvocationInfo) -> str | None:
    """The workflow a step of this invocation belongs to (a sub-workflow's own steps of
    routing and result belong to its parent)."""
    return info.owner_workflow_id or info.workflow_id


class StepRecorder:
    """History, invocation names and step classification of one simulation."""

    __slots__ = (
        "_data_counters",
        "_iso",
        "_iso_at",
        "_name_counters",
        "_step_count",
        "clock",
        "history",
        "invocations",
        "max_steps",
        "over_limit",
        "workflow_parent",
    )

    def __init__(self, clock: VirtualClock, max_steps: int = 1 << 62) -> None:
        self.clock = clock
        #: Committed steps allowed; one more calls ``over_limit`` (once).
        self.max_steps = max_steps
        self.over_limit: Callable[[], None] | None = None
        self.history: list[Step] = []
        self.invocations: dict[str, InvocationInfo] = {}
        #: sub-workflow id -> parent workflow id (None for a top-level workflow)
        self.workflow_parent: dict[str, str | None] = {}
        self._step_count = 0
        self._iso_at = -1
        self._iso = ""
        self._name_counters: dict[tuple[str | None, str], int] = {}
        self._data_counters: dict[tuple[str, str], int] = {}

    def now_iso(self) -> str:
        # Many steps share an instant: format it once per instant.
        micros = self.clock.micros
        if micros != self._iso_at:
            self._iso_at, self._iso = micros, self.clock.now.isoformat()
        return self._iso

    def next_step(
        self,
        kind: str,
        name: str,
        workflow_id: str | None,
        invocation_id: str | None,
        task: str | None,
        detail: dict[str, Any] | None = None,
    ) -> Step:
        """The step that would commit next (not recorded: a before-commit crash may stop it)."""
        return Step(
            self._step_count + 1, kind, name, workflow_id, invocation_id, self.now_iso(), task,
            detail or _NO_DETAIL,
        )

    def commit(self, step: Step) -> None:
        self._step_count += 1
        self.history.append(step)
        if self._step_count > self.max_steps:
            self._limit_reached()

    def _limit_reached(self) -> None:
        over_limit, self.over_limit = self.over_limit, None
        self.max_steps = 1 << 62  # fire once: the run is over
        if over_limit is not None:
            over_limit()

    @property
    def step_count(self) -> int:
        """Steps committed so far."""
        return self._step_count

    def event(
        self,
        kind: str,
        name: str,
        detail: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        invocation_id: str | None = None,
    ) -> None:
        """Record a history entry that is not a step (crash, recovery)."""
        self.history.append(
            Step(
                None, kind, name, workflow_id, invocation_id, self.now_iso(), None,
                detail or _NO_DETAIL,
            )
        )

    def describe_new(self, inv: DistributedInvocation, *, commit: bool = True) -> InvocationInfo:
        """The info of ``inv``, named on first sight. ``commit=False`` builds it without
        using up its name (for a step that may not happen)."""
        inv_id = str(inv.invocation_id)
        info = self.invocations.get(inv_id)
        if info is not None:
            return info
        task = inv.call.task
        is_wf = bool(task.is_workflow_root_task)
        wf = inv.workflow
        owner: str | None
        if wf is None:
            owner = None
        elif is_wf:
            owner = str(wf.parent_workflow_id) if wf.parent_workflow_id else None
            self.workflow_parent[str(wf.workflow_id)] = owner
        else:
            owner = str(wf.workflow_id)
        base = task.task_id.func_name
        key = (owner, base)
        count = self._name_counters.get(key, 0) + 1
        info = InvocationInfo(
            invocation_id=inv_id,
            task=task.task_id.key,
            name=f"{base}#{count}",
            owner_workflow_id=owner,
            workflow_id=str(wf.workflow_id) if wf is not None else None,
            parent_invocation_id=str(inv.parent_invocation_id)
            if inv.parent_invocation_id
            else None,
            is_workflow=is_wf,
            first_seen=self.now_iso(),
        )
        if commit:
            self._name_counters[key] = count
            self.invocations[inv_id] = info
        return info

    def continue_names(self, owner: str, names: list[str]) -> None:
        """Number ``owner``'s next children after ``names`` (``charge#2``: the next charge
        is ``charge#3``): a re-run starts with the steps it reused from the run it re-runs."""
        for name in names:
            base, _, number = name.rpartition("#")
            key = (owner, base)
            self._name_counters[key] = max(self._name_counters.get(key, 0), int(number))

    def label(self, invocation_id: str) -> str:
        info = self.invocations.get(invocation_id)
        short = invocation_id[:8]
        return f"{info.name} [{short}]" if info else f"[{short}]"

    def classify_data(
        self, identity: WorkflowIdentity, key: str, value: Any, *, count: bool
    ) -> tuple[str, str] | None:
        """(kind, name) of the step a workflow-data write is, or None for bookkeeping.
        ``count=False`` names it without using up its number (a before-commit hook)."""
        if engine_schema.is_engine_key(key):
            return self._classify_engine(key, value)
        head, sep, tail = key.partition(":")
        if sep and head in _VALUE_KEYS and tail.isdigit():
            return "value", f"{_VALUE_KEYS[head]}#{tail}"
        if head == "counter" or key == "workflow:base_time":
            return None
        if head == "task_invocation":
            child = self.invocations.get(str(value))
            return "record", f"record:{child.name if child else tail[:12]}"
        wf_key = (str(identity.workflow_id), key)
        n = self._data_counters.get(wf_key, 0) + 1
        if count:
            self._data_counters[wf_key] = n
        return "data", f"data:{key}#{n}"

    def _classify_engine(self, key: str, value: Any) -> tuple[str, str] | None:
        """Step names of the durable engine's records: the engine's schema names them."""
        return engine_schema.classify(key, value, self._child_name)

    def _child_name(self, invocation_id: str) -> str | None:
        child = self.invocations.get(invocation_id)
        return child.name if child else None
