"""Simulated workers with slots: ``WorkflowEnv(workers=N, slots=M)``.

Without a pool (the default) the simulated process fetches everything routed at once and runs
it with unlimited parallelism, as it always did. With a :class:`PoolSpec`, N workers with M
slots each fetch from pynenc's broker the way pynenc's ``ThreadRunner`` does: at most as many
invocations as they have free slots, in the broker's order (highest priority first), from the
queues they consume, through ``orchestrator.get_invocations_to_run`` (so pynenc's concurrency
control decides, as in production).

Who holds a slot (the same rule as pynenc's ``ThreadRunner``, whose ``_reclaim_available_slots``
does not count threads waiting for results):

- a fetched invocation from the moment it is fetched until it finishes, crashes or parks;
- ``time.sleep`` inside a task keeps its slot (the thread is busy: a slow task);
- a parked invocation releases its slot: waiting on a child's ``.result`` and every durable
  wait of the engine (``wf.root.sleep``, ``wait_for_signal``, ``wait_condition``, ...). It
  stays bound to its worker (its frames live in that process) and takes a free slot of that
  worker again when it wakes: a woken workflow can wait for a slot (starvation shows).

A :class:`WorkerDown` takes one worker down at a virtual instant while the others keep going;
what it owned is recovered by pynenc's recovery core tasks (the others run them) once its
heartbeat is older than pynenc's ``runner_considered_dead_after_minutes``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolSpec", "WorkerDown"]


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """``workers`` simulated workers with ``slots`` slots each.

    ``queues``: per worker (index 0 is worker 1), the broker queues it consumes, or None for
    the queues pynenc's runner config gives (``runner.queues``, else every broker queue).
    ``slowdown``: per worker, how many times longer the work of its tasks takes (a
    ``time.sleep(s)`` inside a task it runs lasts ``s * slowdown`` virtual seconds); 1.0 is
    normal speed. Durable timers (``wf.root.sleep``) are not work: they are not stretched.
    """

    workers: int
    slots: int
    queues: tuple[tuple[str, ...] | None, ...]
    slowdown: tuple[float, ...] = ()

    def queues_of(self, worker: int) -> tuple[str, ...] | None:
        """The queues worker ``worker`` (1-based) consumes (None: the runner's)."""
        return self.queues[worker - 1]


@dataclass(slots=True)
class WorkerDown:
    """Worker ``worker`` dies at virtual ``at`` (micros); back after ``down_for`` micros, or
    never (None)."""

    worker: int
    at: int
    down_for: int | None
    reason: str
    fired: bool = False
