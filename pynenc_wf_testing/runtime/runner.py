"""SimRunner: a pynenc runner whose loop is the simulation's seeded scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynenc.runner.base_runner import BaseRunner

from pynenc_wf_testing.errors import AppConfigurationError
from pynenc_wf_testing.runtime.components import sim_of

__all__ = ["SimRunner"]

if TYPE_CHECKING:
    from pynenc.identifiers.invocation_id import InvocationId

    from pynenc_wf_testing.runtime.sim_view import AttachedSimulation


class SimRunner(BaseRunner):
    """Runs every invocation in its own greenlet, interleaved by the simulation's scheduler.

    ``.result`` on an unfinished invocation calls :meth:`waiting_for_results`: inside a
    simulated invocation that parks it; outside (test code) it drives the simulation until one
    of the awaited invocations is final.
    """

    @property
    def sim(self) -> AttachedSimulation:
        sim = sim_of(self.app)
        if sim is None:
            raise AppConfigurationError(
                f"app {self.app.app_id!r} is configured with runner_cls='SimRunner' but no "
                "WorkflowEnv is using it. SimRunner only runs inside a simulation: use "
                "`with WorkflowEnv() as env: env.use(app)` or the wf_env pytest fixture."
            )
        return sim

    _queue_names: tuple[str, ...] | None = None
    _round_robin: bool | None = None

    def queue_names_for_retrieval(self) -> tuple[str, ...]:
        # pynenc's, with the configured queue names read once (the config is fixed for the
        # runner's life); several queues keep pynenc's selection strategy.
        names = self._queue_names
        if names is None:
            names = self._queue_names = tuple(self.conf.queues or self.app.broker.conf.queues)
        if len(names) <= 1:
            return names
        return super().queue_names_for_retrieval()  # type: ignore[no-any-return]

    def note_queue_retrieved(self, queue_name: str) -> None:
        # Round robin over a single queue keeps its index at 0: nothing to advance.
        if self._queue_names is not None and len(self._queue_names) <= 1:
            return
        if self._round_robin is None:
            from pynenc.conf.config_runner import QueueSelectionStrategy

            strategy = self.conf.queue_selection_strategy
            self._round_robin = strategy == QueueSelectionStrategy.ROUND_ROBIN
        if self._round_robin:
            super().note_queue_retrieved(queue_name)

    @staticmethod
    def mem_compatible() -> bool:
        return True

    @property
    def max_parallel_slots(self) -> int:
        return 1_000_000_000

    def get_active_child_runner_ids(self) -> list[str]:
        return []

    def _on_start(self) -> None:
        pass

    def _on_stop(self) -> None:
        pass

    def _on_stop_runner_loop(self) -> None:
        pass

    def runner_loop_iteration(self) -> None:
        self.sim.run_until_idle()

    def waiting_for_results(
        self,
        running_invocation_id: InvocationId | None,
        result_invocation_ids: list[InvocationId],
        runner_args: dict[str, Any] | None = None,
    ) -> None:
        self.sim.wait_for_results(list(result_invocation_ids))

    async def async_waiting_for_results(
        self,
        running_invocation_id: InvocationId | None,
        result_invocation_ids: list[InvocationId],
        runner_args: dict[str, Any] | None = None,
    ) -> None:
        self.sim.wait_for_results(list(result_invocation_ids))

    def _waiting_for_results(
        self,
        running_invocation_id: InvocationId,
        result_invocation_ids: list[InvocationId],
        runner_args: dict[str, Any] | None = None,
    ) -> None:
        self.sim.wait_for_results(list(result_invocation_ids))
