"""The simulated worker process: one :class:`SimRunner` per attached app, replaced when it dies.

Each crash ends a worker *generation*: its runners' ids are remembered as dead (pynenc's
recovery finds what they owned) and the next generation's runners get new ids.

With a worker pool (``PoolSpec``) each of the N workers has, per app, its own runner context
(``sim-w<k>-<generation of k>-<app id>``) with which it fetches and runs invocations, and its
own generation: one worker can die and come back while the others keep going.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynenc.runner.runner_context import RunnerContext

from pynenc_wf_testing.runtime.pool import PoolSpec
from pynenc_wf_testing.runtime.runner import SimRunner

__all__ = ["Workers"]

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class Workers:
    """The apps of one simulation and the runners of its current worker generation."""

    __slots__ = (
        "after_crash",
        "apps",
        "contexts",
        "dead_runner_ids",
        "down",
        "generation",
        "pool",
        "runners",
        "worker_generations",
        "worker_tag",
    )

    def __init__(self, *, worker_tag: str, pool: PoolSpec | None = None) -> None:
        #: Appended to worker ids: a backend that resumes another process's store tells its
        #: own workers apart from the dead process's ones.
        self.worker_tag = worker_tag
        self.apps: list[Any] = []
        self.runners: dict[str, SimRunner] = {}
        self.generation = 1
        self.dead_runner_ids: set[str] = set()
        #: Called with each app when its worker dies (the backend drops in-process state).
        self.after_crash: Callable[[Any], None] | None = None
        #: The worker pool (None: one worker process with unlimited parallelism).
        self.pool = pool
        workers = pool.workers if pool is not None else 0
        #: Generation of each pool worker (index: worker number; index 0 unused).
        self.worker_generations: list[int] = [1] * (workers + 1)
        #: Pool workers that are down now (index: worker number).
        self.down: list[bool] = [False] * (workers + 1)
        #: Per app id, each pool worker's runner context (index: worker number).
        self.contexts: dict[str, list[RunnerContext | None]] = {}

    def attach(self, app: Pynenc) -> None:
        self.apps.append(app)
        self.new_runner(app)

    def new_runner(self, app: Pynenc) -> SimRunner:
        ctx = RunnerContext(
            runner_cls="SimRunner",
            runner_id=f"sim-worker-{self.generation}-{app.app_id}{self.worker_tag}",
        )
        runner = SimRunner(app, runner_context=ctx)
        self.runners[app.app_id] = runner
        app.orchestrator.register_runner_heartbeats([ctx.runner_id], consumed_queues=None)
        if self.pool is not None:
            contexts = self.contexts[app.app_id] = [None] * (self.pool.workers + 1)
            for worker in range(1, self.pool.workers + 1):
                if not self.down[worker]:
                    contexts[worker] = self._worker_context(app, worker)
        return runner

    def _worker_context(self, app: Pynenc, worker: int) -> RunnerContext:
        ctx = RunnerContext(
            runner_cls="SimRunner",
            runner_id=(
                f"sim-w{worker}-{self.worker_generations[worker]}-{app.app_id}{self.worker_tag}"
            ),
        )
        app.orchestrator.register_runner_heartbeats([ctx.runner_id], consumed_queues=None)
        return ctx

    def context(self, app_id: str, worker: int) -> RunnerContext | None:
        """Pool worker ``worker``'s runner context for the app (None while it is down)."""
        return self.contexts[app_id][worker]

    def heartbeat(self) -> None:
        for app in self.apps:
            app_id = app.app_id  # (a config read: once per app and beat)
            runner = self.runners[app_id]
            app.orchestrator.register_runner_heartbeats([runner.runner_id], consumed_queues=None)
            contexts = self.contexts.get(app_id)
            if contexts is not None:
                ids = [ctx.runner_id for ctx in contexts if ctx is not None]
                if ids:
                    app.orchestrator.register_runner_heartbeats(ids, consumed_queues=None)

    def worker_down(self, worker: int) -> None:
        """Pool worker ``worker`` died: its runner ids are dead and stop beating; the other
        workers (and their in-process state) are untouched."""
        self.down[worker] = True
        for app in self.apps:
            ctx = self.contexts[app.app_id][worker]
            if ctx is not None:
                self.dead_runner_ids.add(ctx.runner_id)
            self.contexts[app.app_id][worker] = None
        self.worker_generations[worker] += 1

    def worker_up(self, worker: int) -> None:
        """Pool worker ``worker`` starts again, with new runner ids."""
        self.down[worker] = False
        for app in self.apps:
            self.contexts[app.app_id][worker] = self._worker_context(app, worker)

    def bury(self) -> None:
        """The current generation died: its runner ids are dead, the backends drop their
        in-process state, and the next runners belong to a new generation."""
        for app in self.apps:
            self.dead_runner_ids.add(self.runners[app.app_id].runner_id)
            for ctx in self.contexts.get(app.app_id, ()):
                if ctx is not None:
                    self.dead_runner_ids.add(ctx.runner_id)
            if self.after_crash is not None:
                self.after_crash(app)
        self.generation += 1
        for worker in range(1, len(self.worker_generations)):
            if not self.down[worker]:
                self.worker_generations[worker] += 1

    def app_of(self, inv_id: str) -> Any:
        """The app whose store holds ``inv_id`` (the first app when none does)."""
        if len(self.apps) == 1:
            return self.apps[0]
        for app in self.apps:
            try:
                app.orchestrator.get_invocation_status(inv_id)
                return app
            except Exception:
                continue
        return self.apps[0]

    @staticmethod
    def is_stored(app: Any, inv_id: str) -> bool:
        try:
            app.orchestrator.get_invocation_status_record(inv_id)
        except Exception:
            return False
        return True
