# mypy: disallow-subclassing-any=False
"""SimMemBroker: a queue-name tuple or a priority that passed validation once is not
validated again (the configuration cannot change while the component lives).

Part of the fast memory backend (see ``fast_memory/__init__.py``); docs/benchmarks.md has
what it buys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pynenc.broker.mem_broker import MemBroker
from pynenc.conf.config_broker import validate_priority

if TYPE_CHECKING:
    from pynenc.identifiers.invocation_id import InvocationId

__all__ = ["SimMemBroker"]


class SimMemBroker(MemBroker):
    """``MemBroker`` that validates each queue-name tuple and each priority once.

    ``_validate_queue_names`` checks names against the broker config (fixed for the
    component's life) and either raises (then nothing is memoised), warns once per mismatch
    (pynenc memoises that itself) or passes: a tuple that passed once passes again. The
    same for ``validate_priority`` of a priority value (of the same type).
    """

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._validated: set[tuple[str, ...]] = set()
        self._valid_priorities: set[tuple[type, Any]] = set()
        # (queue name, priority type, priority) pairs that passed both checks
        self._valid_routes: set[tuple[str, type, Any]] = set()

    def _check_route(self, queue_name: str, priority: Any) -> None:
        try:
            if (queue_name, type(priority), priority) in self._valid_routes:
                return  # (both checks below passed for this pair)
        except TypeError:  # an unhashable priority: the checks below decide
            pass
        self._validate_queue_names((queue_name,))
        key = (type(priority), priority)
        try:
            known = key in self._valid_priorities
        except TypeError:  # an unhashable priority: pynenc's check decides
            validate_priority(priority, label="Broker priority")
            return
        if not known:
            validate_priority(priority, label="Broker priority")
            self._valid_priorities.add(key)
        self._valid_routes.add((queue_name, type(priority), priority))

    def route_invocation(
        self, invocation_id: InvocationId, queue_name: str, priority: float
    ) -> None:
        self._check_route(queue_name, priority)
        self._route_invocation(invocation_id, queue_name, priority)

    def route_invocations(
        self, invocation_ids: Sequence[InvocationId], queue_name: str, priority: float
    ) -> None:
        self._check_route(queue_name, priority)
        # (MemBroker._route_invocations: one _route_invocation append per id, in order; no
        # id, no queue entry made)
        if invocation_ids:
            queue = self._queues[queue_name][priority]
            for invocation_id in invocation_ids:
                queue.append(invocation_id)

    def retrieve_invocation(self, queue_name: str | None = None) -> InvocationId | None:
        """MemBroker's: the highest priority's oldest id, with a queue name that passed
        validation not validated again."""
        queue = self.conf.queues[0] if queue_name is None else queue_name
        if (queue,) not in self._validated:
            self._validate_queue_names((queue,))
        by_priority = self._queues[queue]
        for priority in sorted(by_priority, reverse=True):
            if by_priority[priority]:
                return by_priority[priority].popleft()
        return None

    def _validate_queue_names(self, queue_names: Sequence[str]) -> None:
        key = tuple(queue_names)
        if key in self._validated:
            return
        super()._validate_queue_names(queue_names)
        self._validated.add(key)
