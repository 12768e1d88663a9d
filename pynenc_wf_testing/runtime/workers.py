"""The simulated worker process: one :class:`SimRunner` per attached app, replaced when it dies.

Each crash ends a worker *generation*: its runners' ids are remembered as dead (pynenc's
recovery finds what they owned) and the next generation's runners get new ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynenc.runner.runner_context import RunnerContext

from pynenc_wf_testing.runtime.runner import SimRunner

__all__ = ["Workers"]

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class Workers:
    """The apps of one simulation and the runners of its current worker generation."""

    __slots__ = ("after_crash", "apps", "dead_runner_ids", "generation", "runners", "worker_tag")

    def __init__(self, *, worker_tag: str) -> None:
        #: Appended to worker ids: a backend that resumes another process's store tells its
        #: own workers apart from the dead process's ones.
        self.worker_tag = worker_tag
        self.apps: list[Any] = []
        self.runners: dict[str, SimRunner] = {}
        self.generation = 1
        self.dead_runner_ids: set[str] = set()
        #: Called with each app when its worker dies (the backend drops in-process state).
        self.after_crash: Callable[[Any], None] | None = None

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
        return runner

    def heartbeat(self) -> None:
        for app in self.apps:
            runner = self.runners[app.app_id]
            app.orchestrator.register_runner_heartbeats([runner.runner_id], consumed_queues=None)

    def bury(self) -> None:
        """The current generation died: its runner ids are dead, the backends drop their
        in-process state, and the next runners belong to a new generation."""
        for app in self.apps:
            self.dead_runner_ids.add(self.runners[app.app_id].runner_id)
            if self.after_crash is not None:
                self.after_crash(app)
        self.generation += 1

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
