"""Step history: the durable events of a simulation, numbered and named.

A *step* is one durable event in a workflow's history, numbered from 1 in commit order
(docs/faults.md, "Steps where a crash can go"). Names are stable and readable so tests can crash at them:

- ``route:charge_payment#1``: the first ``charge_payment`` child of a workflow was routed;
- ``charge_payment#1``: its result (or failure) was committed;
- ``retry:charge_payment#1``: it failed with a retriable error and was scheduled again;
- ``uuid#1``, ``random#2``, ``utc_now#1``: a deterministic value was recorded;
- ``data:<key>#n``: workflow data was set (the n-th write of that key);
- ``record:charge_payment#1``: ``execute_task`` recorded the child's id (fine-grained step);
- ``retry_status:charge_payment#1``: pynenc wrote the RETRY status but has not routed the
  retry yet (fine-grained step: a crash there strands the invocation, see docs).

Crash and recovery events are history entries too, without a step number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

__all__ = ["HISTORY_FORMAT_VERSION", "Step", "history_to_json"]

#: Version of the JSON produced by :func:`history_to_json`.
HISTORY_FORMAT_VERSION = 1

_NO_DETAIL: dict[str, Any] = {}


class Step(NamedTuple):
    """One entry of a simulation's history (an immutable record).

    ``number`` is the step number (from 1, in commit order) or ``None`` for events that are not
    steps (``crash``, ``recover``). ``time`` is the virtual instant (ISO 8601, UTC).

    A named tuple: a 10,000-workflow simulation makes ~110,000 of them, and a tuple is built
    several times faster than a frozen dataclass. The simulator shares one ``detail`` mapping
    between steps with the same detail: treat it as read-only.
    """

    number: int | None
    kind: str
    name: str
    workflow_id: str | None
    invocation_id: str | None
    time: str
    task: str | None = None
    detail: dict[str, Any] = _NO_DETAIL

    @property
    def is_step(self) -> bool:
        return self.number is not None

    def to_dict(self) -> dict[str, Any]:
        data = self._asdict()
        data["detail"] = dict(self.detail)
        return data

    def __str__(self) -> str:
        label = f"#{self.number}" if self.number is not None else "--"
        return f"{label} {self.name}"


def history_to_json(
    steps: Iterable[Step], *, seed: int | None = None, workflows: list[Any] | None = None
) -> str:
    """Stable JSON of a history: byte-identical for the same run in any process."""
    payload = {
        "format": "pynenc-wf-history",
        "version": HISTORY_FORMAT_VERSION,
        "seed": seed,
        "steps": [step.to_dict() for step in steps],
        "workflows": workflows or [],
    }
    return json.dumps(payload, sort_keys=True, indent=1, ensure_ascii=True)


def in_pynenc_window(step: Step, phase: str) -> bool:
    """Whether crashing ``phase`` (``before``/``after``) ``step`` lands inside one of pynenc's
    own non-atomic sequences, which correct workflows hit too (explored only when asked):

    - ``execute_task`` routes a child, then records its id: after ``route:X`` (made inside
      ``execute_task``) and around ``record:X``;
    - ``set_invocation_retry`` writes RETRY, then routes the retry: after ``retry_status:X``,
      which is the same point as before ``retry:X``.
    """
    if step.kind == "record":
        return True
    if step.kind == "window":
        return phase == "after"
    if step.kind == "retry":
        return phase == "before"
    return phase == "after" and step.kind == "route" and bool(step.detail.get("in_execute_task"))
