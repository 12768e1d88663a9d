"""pynenc-redis 0.3.0 compatibility layer for pynenc 0.4.0.

Why this module exists: pynenc-redis 0.3.0 (the latest release) was written for pynenc 0.3 and
cannot be used with pynenc 0.4.0 as released:

- ``RedisBroker`` cannot be instantiated: pynenc 0.4's ``BaseBroker`` added named queues and
  priorities, with the new abstract methods ``_route_invocation(invocation_id, queue_name,
  priority)`` and ``_route_invocations(...)``; pynenc-redis still overrides the public
  ``route_invocation(invocation_id)`` / ``route_invocations(ids)`` with the old one-argument
  signatures, and ``retrieve_invocation()`` / ``count_invocations()`` without the new
  ``queue_name`` / ``queue_names`` arguments (pynenc 0.4's orchestrator passes them).
- ``RedisOrchestrator.register_runner_heartbeats(runner_ids, can_run_atomic_service)`` lacks
  the ``consumed_queues`` keyword that every pynenc 0.4 runner passes (a ``TypeError`` at the
  first heartbeat).

The classes below are the smallest subclasses that make pynenc-redis 0.3.0 work on pynenc 0.4:
the broker keeps one Redis list per (queue, priority) and a sorted set of the priorities in use
per queue (higher priority first, FIFO within a priority, like pynenc's ``MemBroker`` and
``SQLiteBroker``); the orchestrator accepts ``consumed_queues`` and ignores it (pynenc uses it
only to show which queues a runner consumes: ``ActiveRunnerInfo.consumed_queues`` stays empty).
Nothing else of pynenc-redis is changed.

``tests/test_backends_redis.py::test_redis_compat_layer_is_still_needed`` fails as soon as an
installed pynenc-redis makes either fix unnecessary: then delete this module and use the
upstream classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pynenc.broker.base_broker import BaseBroker
from pynenc.identifiers.invocation_id import InvocationId
from pynenc_redis.broker.redis_broker import RedisBroker  # type: ignore[import-untyped]
from pynenc_redis.orchestrator.redis_orchestrator import (  # type: ignore[import-untyped]
    RedisOrchestrator,
)

if TYPE_CHECKING:
    import redis

__all__ = ["PYNENC_REDIS_VERSION", "CompatRedisBroker", "CompatRedisOrchestrator"]

#: The pynenc-redis release this layer was written against.
PYNENC_REDIS_VERSION = "0.3.0"


class CompatRedisBroker(RedisBroker):  # type: ignore[misc]
    """``RedisBroker`` with pynenc 0.4's queue-and-priority broker API."""

    # pynenc-redis overrides the public methods with pynenc 0.3 signatures: take pynenc 0.4's
    # own (validation, then the abstract hooks below) back.
    route_invocation = BaseBroker.route_invocation
    route_invocations = BaseBroker.route_invocations

    def _queue_key(self, queue_name: str, priority: float) -> str:
        return f"{self.key.prefix}queue:{queue_name}:{float(priority)!r}"

    def _priorities_key(self, queue_name: str) -> str:
        return f"{self.key.prefix}queue_priorities:{queue_name}"

    def _route_invocation(
        self, invocation_id: InvocationId, queue_name: str, priority: float
    ) -> None:
        self._route_invocations([invocation_id], queue_name, priority)

    def _route_invocations(
        self, invocation_ids: Sequence[InvocationId], queue_name: str, priority: float
    ) -> None:
        if not invocation_ids:
            return
        key = self._queue_key(queue_name, priority)
        with self.client.pipeline() as pipe:
            pipe.zadd(self._priorities_key(queue_name), {key: float(priority)})
            pipe.rpush(key, *[str(i) for i in invocation_ids])
            pipe.execute()

    def _queue_keys(self, queue_name: str) -> list[str]:
        """The lists of ``queue_name``, highest priority first."""
        keys = self.client.zrevrange(self._priorities_key(queue_name), 0, -1)
        return [k.decode() if isinstance(k, bytes) else str(k) for k in keys]

    def _pop(self, keys: list[str]) -> Any:
        """Pop from the first non-empty list: a blocking pop with the broker's timeout,
        as pynenc-redis does (``BLPOP`` checks its keys in order)."""
        found = self.client.blpop(keys, timeout=self.conf.queue_timeout_sec)
        return found[1] if found else None

    def retrieve_invocation(self, queue_name: str | None = None) -> InvocationId | None:
        queue = self.conf.queues[0] if queue_name is None else queue_name
        self._validate_queue_names((queue,))
        keys = self._queue_keys(queue)
        if not keys:
            return None
        value = self._pop(keys)
        if value is None:
            return None
        return InvocationId(value.decode() if isinstance(value, bytes) else str(value))

    def count_invocations(self, queue_names: Sequence[str] | None = None) -> int:
        queues = self.conf.queues if queue_names is None else tuple(queue_names)
        self._validate_queue_names(queues)
        client: redis.Redis = self.client
        return sum(client.llen(key) for queue in queues for key in self._queue_keys(queue))


class CompatRedisOrchestrator(RedisOrchestrator):  # type: ignore[misc]
    """``RedisOrchestrator`` whose heartbeat accepts pynenc 0.4's ``consumed_queues``."""

    def register_runner_heartbeats(
        self,
        runner_ids: list[str],
        can_run_atomic_service: bool = False,
        consumed_queues: Sequence[str] | None = None,
    ) -> None:
        # consumed_queues only feeds the monitor's runner view: pynenc-redis has nowhere to
        # keep it, so it is dropped.
        super().register_runner_heartbeats(runner_ids, can_run_atomic_service)
