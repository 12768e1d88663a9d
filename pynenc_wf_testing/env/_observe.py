"""What an environment shows: history, steps, ledger, executions, blocked."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.env._faults import check_task
from pynenc_wf_testing.env._lifecycle import EnvCore
from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.history import Step, history_to_json
from pynenc_wf_testing.runtime.ledger import Execution

if TYPE_CHECKING:
    from pynenc.task import Task

    from pynenc_wf_testing.runtime.backends import Backend


class EnvObservation(EnvCore):
    """The observation part of :class:`WorkflowEnv`: it reads, it never runs anything."""

    @property
    def backend(self) -> Backend:
        """Where this simulation keeps its durable store."""
        return self.world.backend

    @property
    def seed(self) -> int:
        """The seed of this simulation."""
        return self.world.seed

    @property
    def now(self) -> dt.datetime:
        """The current virtual instant (aware UTC datetime)."""
        clock = self.world.clock
        if clock is None:
            return self.world.start
        return clock.now

    @property
    def ledger(self) -> list[Execution]:
        """Every task execution so far: task, arguments, attempt and outcome."""
        return list(self._require_sim().ledger)

    def executions(self, task: Task[Any, Any] | str) -> int:
        """How many times ``task`` was executed: every attempt,
        retries, re-executions after crashes and injected failures (``fail()``) included.
        ``task``: a task object, its function name, its ``module.function`` key, or one
        logical call's step name (``"charge_payment#2"``)."""
        if isinstance(task, str):
            ledger = self._require_sim().ledger
            if "#" in task:  # one logical call: "charge_payment#2"
                count = sum(1 for e in ledger if e.name == task)
            elif "." in task:  # a full task key: "myshop.tasks.charge_payment"
                count = sum(1 for e in ledger if e.task == task)
            else:
                count = sum(1 for e in ledger if e.task.rsplit(".", 1)[-1] == task)
            if count == 0:
                self._check_task_name(task)
            return count
        key = check_task(task, "executions()").task_id.key
        return sum(1 for e in self._require_sim().ledger if e.task == key)

    def _check_task_name(self, name: str) -> None:
        """A name that is no task of the apps in use counts 0 forever: a typo would make
        ``executions("charge_paymnet") == 0`` pass. Refuse it, listing the names."""
        base = name.rpartition("#")[0] if "#" in name else name
        known: set[str] = set()
        for app in self.world.apps:
            for task_id in app.tasks:
                known.update((task_id.func_name, task_id.key))
        if base in known:
            return
        names = sorted(k for k in known if "." not in k)
        raise InvalidArgument(
            f"executions({name!r}): no task of the apps in use is named {base!r} (known: "
            f"{', '.join(names) or 'none: call env.use(app) first'}). Pass the task object, "
            "its function name, its module.function key or a step name such as "
            "'charge_payment#2'."
        )

    @property
    def history(self) -> list[Step]:
        """Every step and crash/recovery event so far, in commit order."""
        return list(self._require_sim().history)

    @property
    def steps(self) -> list[str]:
        """The names of the numbered steps so far (what crash points can refer to)."""
        return [s.name for s in self._require_sim().history if s.is_step]

    def history_json(self) -> str:
        """The history as stable JSON (byte-identical for the same seed and code): the steps,
        and for every workflow what a :class:`Replayer` needs to replay it."""
        return history_to_json(
            self._require_sim().history, seed=self.seed, workflows=self._workflow_records()
        )

    def _workflow_records(self) -> list[dict[str, Any]]:
        from pynenc_wf_testing.checks.replay import export_workflow

        sim = self._require_sim()
        order = sim.positions
        records = []
        for info in sim.invocations.values():
            if not info.is_workflow:
                continue
            app = sim.app_of(info.invocation_id)
            if not sim.is_stored(app, info.invocation_id):
                continue  # named by a crash_before of its routing: never stored
            children = [c for c in order.get(info.invocation_id, []) if sim.is_stored(app, c)]
            records.append(export_workflow(app, info.invocation_id, children))
        return records

    def blocked(self) -> dict[str, str]:
        """What each blocked invocation waits on right now."""
        return self._require_sim().blocked_report()
