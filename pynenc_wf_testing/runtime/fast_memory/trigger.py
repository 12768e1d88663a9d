# mypy: disallow-subclassing-any=False
"""SimMemTrigger: pynenc's status and result reports build a condition context
(loading the invocation and deserializing its arguments) and then look for conditions
sourced from the task: with no such condition registered there is nothing to find.
Its retention purge (run at the end of every trigger-loop iteration) finds expired
monitoring records through a heap by purge time instead of scanning them all, and keeps the
trigger-run indexes exact at each write instead of rebuilding them from every record: the
state it leaves is pynenc's, and a cron firing no longer costs more as records pile up.

A trigger-loop iteration of an app whose conditions are all plain cron conditions, each
behind single-condition triggers without argument providers, with no valid condition left over
and trigger logging off, is answered by :meth:`SimMemTrigger._sim_cron_iteration`: the same
claims, last-execution stamps, routed invocations (through ``execute_task``) and trigger-run
records, in the same order, without pynenc's per-iteration rebuilding of trigger definitions,
contexts and log lines; the cron condition of a daily expression is decided by arithmetic
(``runtime/cron_steps.py``). Anything else takes pynenc's own loop.

Part of the fast memory backend (see ``fast_memory/__init__.py``); docs/benchmarks.md has
what it buys.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import heapq
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pynenc import context as ctx_mod
from pynenc.arguments import Arguments
from pynenc.invocation.dist_invocation import DistributedInvocation
from pynenc.invocation.status import (
    InvocationStatus,
)
from pynenc.trigger.conditions import ValidCondition
from pynenc.trigger.conditions.cron import CronCondition, CronContext
from pynenc.trigger.mem_trigger import MemTrigger
from pynenc.trigger.monitoring import EventRecord, TriggerRunParticipant, TriggerRunRecord
from pynenc.trigger.trigger_definitions import TriggerDefinition

from pynenc_wf_testing.runtime.cron_steps import cron_condition_satisfied

if TYPE_CHECKING:
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.identifiers.task_id import TaskId
    from pynenc.invocation.base_invocation import BaseInvocation
    from pynenc.models.trigger_definition_dto import TriggerDefinitionDTO
    from pynenc.orchestrator.atomic_service import AtomicServiceRun
    from pynenc.trigger.conditions import TriggerCondition

#: One cron condition of a plain plan: (condition, its id, its triggers as (trigger id, task
#: id, logic value)).
_PlanEntry = tuple[CronCondition, str, list[tuple[str, "TaskId", str]]]

__all__ = ["SimMemTrigger"]


class SimMemTrigger(MemTrigger):
    """``MemTrigger`` that does not build condition contexts when no condition is sourced
    from any task (the common case: no status/result/exception triggers defined).

    pynenc builds a ``StatusContext`` per status change (loading the invocation from the
    store and deserializing its arguments) and a ``ResultContext`` per result, then asks
    ``get_conditions_sourced_from_task``, which can only answer from
    ``_source_task_conditions``: when that index is empty the contexts are discarded unused.
    Failures always take pynenc's path (rare, and it reads ``invocation.status``).
    """

    def _no_task_conditions(self) -> bool:
        sources = self._source_task_conditions
        return not sources or not any(sources.values())

    def report_tasks_status(
        self, invocation_ids: list[InvocationId], status: InvocationStatus | None = None
    ) -> None:
        if not self._source_task_conditions or self._no_task_conditions():
            return
        super().report_tasks_status(invocation_ids, status)

    def report_invocation_result(self, invocation: DistributedInvocation, result: Any) -> None:
        if not self._source_task_conditions or self._no_task_conditions():
            return
        super().report_invocation_result(invocation, result)

    # Retention of monitoring records. pynenc's loop ends every iteration with
    # ``auto_purge_events``: an age purge that scans every event and trigger-run record, and
    # a capacity purge that rebuilds the four trigger-run indexes from every record even when
    # nothing was removed. Records stay for ``event_retention_days`` (7), so a per-minute cron
    # paid for 10,080 records per firing. Here the records sit also in a heap by purge time
    # (lazy: an entry whose record changed or left is re-checked or dropped when it surfaces),
    # and the indexes are kept equal to "built from the current records" at every write and
    # delete, which is what pynenc's rebuild leaves after each iteration.

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._sim_init()

    def _sim_init(self) -> None:
        self._run_heap: list[tuple[datetime, int, str]] = []
        self._event_heap: list[tuple[datetime, int, str]] = []
        self._untimed_runs: set[str] = set()
        self._heap_seq = 0
        # event id -> trigger runs that name it (pynenc drops its own index entry for an event
        # before the cascade delete runs, so the cascade needs one of its own).
        self._sim_runs_by_event: dict[str, set[str]] = {}
        #: Records looked at by the age purges (tests assert it does not grow with time).
        self.purge_visits = 0
        #: Loop iterations answered by the plain-cron path / by pynenc's own loop body.
        self.cron_fast_iterations = 0
        self.cron_stock_iterations = 0

    def _purge(self) -> None:
        self._sim_plan_stale = True
        super()._purge()
        self._sim_init()

    def _push_run(self, run_id: str, run: TriggerRunRecord) -> None:
        when = run.executed_at or run.claimed_at
        if when is None:
            self._untimed_runs.add(run_id)
            return
        self._untimed_runs.discard(run_id)
        self._heap_seq += 1
        heapq.heappush(self._run_heap, (when, self._heap_seq, run_id))

    def _index_run(self, run: TriggerRunRecord) -> None:
        rid = run.trigger_run_id
        for event_id in run.event_ids:
            self._run_ids_by_event_id[event_id].add(rid)
            self._sim_runs_by_event.setdefault(event_id, set()).add(rid)
        if run.triggered_invocation_id:
            self._run_ids_by_invocation_id[run.triggered_invocation_id].add(rid)
        for src in run.source_invocation_ids:
            self._run_ids_by_source_invocation_id[src].add(rid)
        for valid_condition_id in run.valid_condition_ids:
            self._run_ids_by_valid_condition_id[valid_condition_id].add(rid)
        for participant in run.participants or []:
            if participant.valid_condition_id:
                self._run_ids_by_valid_condition_id[participant.valid_condition_id].add(rid)

    def _unindex_run(self, run: TriggerRunRecord) -> None:
        rid = run.trigger_run_id

        def drop(index: dict[str, set[str]], key: str) -> None:
            ids = index.get(key)
            if ids is not None:
                ids.discard(rid)
                if not ids:
                    del index[key]

        for event_id in run.event_ids:
            drop(self._run_ids_by_event_id, event_id)
            drop(self._sim_runs_by_event, event_id)
        if run.triggered_invocation_id:
            drop(self._run_ids_by_invocation_id, run.triggered_invocation_id)
        for src in run.source_invocation_ids:
            drop(self._run_ids_by_source_invocation_id, src)
        for valid_condition_id in run.valid_condition_ids:
            drop(self._run_ids_by_valid_condition_id, valid_condition_id)
        for participant in run.participants or []:
            if participant.valid_condition_id:
                drop(self._run_ids_by_valid_condition_id, participant.valid_condition_id)

    def store_trigger_run(self, run: TriggerRunRecord) -> None:
        with self._monitoring_lock:
            runs = self._trigger_runs
            old = runs[run.trigger_run_id] if run.trigger_run_id in runs else None  # noqa: SIM401
            if old is not None:
                self._unindex_run(old)
            self._trigger_runs[run.trigger_run_id] = run
            self._index_run(run)
            self._push_run(run.trigger_run_id, run)

    def store_event(self, event: EventRecord) -> None:
        super().store_event(event)
        self._heap_seq += 1
        heapq.heappush(self._event_heap, (event.timestamp, self._heap_seq, event.event_id))

    def _delete_run(self, run_id: str) -> None:
        run = self._trigger_runs.pop(run_id)
        self._unindex_run(run)
        self._untimed_runs.discard(run_id)

    def _age_purge_trigger_runs(self, threshold: datetime) -> int:
        if self.conf.event_retention_days <= 0:  # threshold at or after now: pynenc's scan
            return self._sim_full_run_purge(threshold)
        heap, runs = self._run_heap, self._trigger_runs
        removed = 0
        with self._monitoring_lock:
            for run_id in list(self._untimed_runs):  # (records without a time: usually none)
                self.purge_visits += 1
                run = runs.get(run_id)
                if run is None:
                    self._untimed_runs.discard(run_id)
                elif run.executed_at or run.claimed_at:
                    self._push_run(run_id, run)
            while heap and heap[0][0] < threshold:
                _, _, run_id = heapq.heappop(heap)
                self.purge_visits += 1
                run = runs.get(run_id)
                if run is None:
                    continue
                when = run.executed_at or run.claimed_at
                if when is None:
                    self._untimed_runs.add(run_id)
                elif when < threshold:
                    self._delete_run(run_id)
                    removed += 1
                else:  # changed in place since it was pushed: file it under its new time
                    self._push_run(run_id, run)
        return removed

    def _sim_full_run_purge(self, threshold: datetime) -> int:
        now = datetime.now(_dt.UTC)
        drop = [
            rid
            for rid, r in self._trigger_runs.items()
            if (r.executed_at or r.claimed_at or now) < threshold
        ]
        with self._monitoring_lock:
            for rid in drop:
                self._delete_run(rid)
        return len(drop)

    def _age_purge_events(self, threshold: datetime) -> list[str]:
        heap, events = self._event_heap, self._events
        removed: list[str] = []
        with self._monitoring_lock:
            while heap and heap[0][0] < threshold:
                when, _, event_id = heapq.heappop(heap)
                self.purge_visits += 1
                event = events.get(event_id)
                if event is None:
                    continue
                if event.timestamp != when:  # replaced since: its own entry is in the heap
                    continue
                removed.append(event_id)
            if removed:
                # pynenc deletes in the store's order: keep the ids in that order.
                order = {event_id: i for i, event_id in enumerate(removed)}
                removed = [event_id for event_id in events if event_id in order]
                for event_id in removed:
                    del events[event_id]
                self._drop_event_indexes(removed)
        return removed

    def _cascade_delete_runs_for_events(self, event_ids: list[str]) -> int:
        runs = self._trigger_runs
        targets: set[str] = set()
        for event_id in event_ids:
            targets |= self._sim_runs_by_event.get(event_id, set())
        to_drop = [rid for rid in targets if rid in runs]
        with self._monitoring_lock:
            for rid in to_drop:
                self._delete_run(rid)
        return len(to_drop)

    def _cap_purge_trigger_runs(self) -> int:
        cap = self.conf.trigger_run_max_records
        if cap <= 0 or len(self._trigger_runs) <= cap:
            return 0  # nothing to drop, and the indexes already match the records
        with self._monitoring_lock:
            removed: int = super()._cap_purge_trigger_runs()
            self._sim_runs_by_event.clear()
            for run in self._trigger_runs.values():
                for event_id in run.event_ids:
                    self._sim_runs_by_event.setdefault(event_id, set()).add(run.trigger_run_id)
        return removed

    # Plain cron iterations. pynenc's loop body, per iteration: evaluate every cron condition
    # (up to three ``CronContext`` objects and two evaluations each), then per valid condition
    # rebuild each trigger from its DTO (a SHA-256), build trigger contexts, hash the run id,
    # claim it, format two log lines, route the task, and build the run record through three
    # helpers. For a plain plan (below) the same state changes are made here, in the same
    # order, from a plan of the registered conditions and triggers built once.

    #: The plain plan (None: not plain), rebuilt when a registration changes.
    _sim_plan: list[_PlanEntry] | None = None
    _sim_plan_stale = True
    _sim_plan_sizes: tuple[int, int] = (-1, -1)

    def _register_condition(self, condition: TriggerCondition) -> None:
        self._sim_plan_stale = True
        super()._register_condition(condition)

    def register_trigger(self, trigger: TriggerDefinitionDTO) -> None:
        self._sim_plan_stale = True
        super().register_trigger(trigger)

    def clean_task_trigger_definitions(self, task_id: TaskId) -> None:
        self._sim_plan_stale = True
        super().clean_task_trigger_definitions(task_id)

    def _register_source_task_condition(self, task_id: TaskId, condition_id: str) -> None:
        self._sim_plan_stale = True
        super()._register_source_task_condition(task_id, condition_id)

    def _sim_cron_plan(self) -> list[_PlanEntry] | None:
        """The cron conditions with their triggers, if every registered condition is a
        ``CronCondition`` and every trigger of one has that condition alone and no argument
        provider (one run per valid condition, no arguments); else None."""
        sizes = (len(self._conditions), len(self._triggers))
        if self._sim_plan_stale or sizes != self._sim_plan_sizes:
            self._sim_plan = self._sim_build_plan()
            self._sim_plan_stale = False
            self._sim_plan_sizes = sizes
        return self._sim_plan

    def _sim_build_plan(self) -> list[_PlanEntry] | None:
        plan: list[_PlanEntry] = []
        for condition in self._get_all_conditions():
            if type(condition) is not CronCondition:
                return None
            condition_id = condition.condition_id
            triggers: dict[str, tuple[str, TaskId, str]] = {}  # (first seen, like pynenc's)
            for dto in self.get_triggers_for_condition(condition_id):
                if dto.argument_provider_json or list(dto.condition_ids) != [condition_id]:
                    return None
                trigger = TriggerDefinition.from_dto(dto, self.app)
                triggers.setdefault(
                    trigger.trigger_id, (trigger.trigger_id, trigger.task_id, trigger.logic.value)
                )
            plan.append((condition, condition_id, list(triggers.values())))
        return plan

    def _process_loop_iteration_body(self, atomic_service_run: AtomicServiceRun) -> None:
        # pynenc's loop when: a valid condition is left from before, the trigger log lines
        # would be emitted, the scheduler is off, or the plan is not plain.
        plan = None
        if not self._valid_conditions and not self.app.logger.isEnabledFor(logging.INFO):
            plan = self._sim_cron_plan()
        if plan is None or not self.conf.enable_scheduler:
            self.cron_stock_iterations += 1
            super()._process_loop_iteration_body(atomic_service_run)
            return
        self.cron_fast_iterations += 1
        self._sim_cron_iteration(plan, atomic_service_run)

    def _sim_cron_iteration(self, plan: list[_PlanEntry], run: AtomicServiceRun) -> None:
        """``_process_loop_iteration_body`` for a plain plan: the same state changes in the
        same order (an exception leaves what pynenc's would: valid conditions recorded and
        not cleared, claims and last executions kept)."""
        now = datetime.now(_dt.UTC)
        recorded: list[tuple[str, str, list[tuple[str, TaskId, str]], CronContext]] = []
        for condition, condition_id, triggers in plan:  # (check_time_based_triggers)
            context = self._sim_should_trigger(condition, condition_id, now)
            if context is not None:
                valid = ValidCondition(condition, context)
                valid_id = f"valid_condition_{condition_id}_context_{context.context_id}"
                self._valid_conditions[valid_id] = valid
                recorded.append((valid_id, condition_id, triggers, context))
        for valid_id, condition_id, triggers, context in recorded:
            for trigger_id, task_id, logic in triggers:
                # (TriggerDefinition.generate_trigger_run_ids of one valid condition)
                run_id = hashlib.sha256((trigger_id + valid_id).encode("utf-8")).hexdigest()
                if not self.claim_trigger_run(run_id):
                    continue
                invocation = self.execute_task(task_id, {}, parent_event_id=None)
                try:  # (_record_trigger_run: monitoring never breaks the loop)
                    stamp = context.timestamp
                    self.store_trigger_run(
                        TriggerRunRecord(
                            trigger_run_id=run_id,
                            trigger_id=trigger_id,
                            task_id_key=task_id.key,
                            logic_value=logic,
                            valid_condition_ids=[valid_id],
                            condition_ids=[condition_id],
                            event_ids=[],
                            source_invocation_ids=[],
                            triggered_invocation_id=str(invocation.invocation_id),
                            # pynenc reads datetime.now(UTC) for the claim and for the
                            # execution: the simulator's clock is frozen for the whole
                            # iteration (routing is synchronous; it moves only between
                            # slices) and gives one object per instant: both are ``now``.
                            claimed_at=now,
                            executed_at=now,
                            participants=[
                                TriggerRunParticipant(
                                    context_type="CronContext",
                                    condition_id=condition_id,
                                    valid_condition_id=valid_id,
                                    context_timestamp=stamp,
                                    context_summary=f"timestamp:{stamp.isoformat()}",
                                )
                            ],
                            atomic_service_run_id=run.atomic_service_run_id,
                            atomic_service_runner_id=run.runner_id,
                        )
                    )
                except Exception:  # pragma: no cover - logged, never re-raised
                    self.app.logger.exception("trigger.store_trigger_run failed for run %s", run_id)
        for valid_id, _, triggers, _ in recorded:
            if triggers:  # (a condition without triggers stays valid, as in pynenc)
                self._valid_conditions.pop(valid_id, None)

    def execute_task(
        self,
        task_id: TaskId,
        arguments: dict[str, Any] | None = None,
        *,
        parent_event_id: str | None = None,
    ) -> BaseInvocation[Any, Any]:
        """pynenc's ``BaseTrigger.execute_task``, step for step, with the app id read once
        (pynenc reads it through the config four times: it cannot change while the task is
        routed) and its debug line formatted only when the logger would emit it (pynenc
        builds the f-string first)."""
        app = self.app
        task = app.get_task(task_id)
        if not task:
            raise ValueError(f"Task {task_id} not found")
        app_id = app.app_id
        previous_event = ctx_mod.swap_trigger_event_context(app_id, parent_event_id)
        previous_inv = ctx_mod.swap_dist_invocation_context(app_id, None)
        try:
            invocation = task._call(Arguments(kwargs=arguments or {}))
        finally:
            ctx_mod.swap_dist_invocation_context(app_id, previous_inv)
            ctx_mod.swap_trigger_event_context(app_id, previous_event)
        logger = app.logger
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(f"Triggered task:{task_id} with arguments {arguments}")
        return invocation

    def _sim_should_trigger(
        self, condition: CronCondition, condition_id: str, now: datetime
    ) -> CronContext | None:
        """pynenc's ``_should_trigger_cron_condition`` without its log lines: the local cache,
        then the stored last execution, then the optimistic store of ``now``."""
        # (`in` + subscript instead of .get(): no call per lookup, once per firing)
        cache = self._last_cron_execution_cache
        cached = cache[condition_id] if condition_id in cache else None  # noqa: SIM401
        last = None
        if cached:
            if not self._sim_satisfied(condition, now, cached):
                return None
            last = cached
        executions = self._last_cron_executions
        with self._cron_lock:
            stored = executions[condition_id] if condition_id in executions else None  # noqa: SIM401
        if stored:
            cache[condition_id] = stored
            # (the same instant as the cache's was just evaluated: the same answer)
            if stored is not cached and not self._sim_satisfied(condition, now, stored):
                return None
            last = stored
        with self._cron_lock:  # (store_last_cron_execution)
            current = executions[condition_id] if condition_id in executions else None  # noqa: SIM401
            stamped = stored is None or current == stored
            if stamped:
                executions[condition_id] = now
        if not stamped:  # pragma: no cover - another loop claimed it (not in one process)
            fresh = self.get_last_cron_execution(condition_id)
            if fresh:
                cache[condition_id] = fresh
            return None
        cache[condition_id] = now
        return CronContext(timestamp=now, last_execution=last)

    @staticmethod
    def _sim_satisfied(condition: CronCondition, now: datetime, last: datetime) -> bool:
        answer = cron_condition_satisfied(condition, now, last)
        if answer is None:
            answer = condition.is_satisfied_by(CronContext(timestamp=now, last_execution=last))
        return answer

    def _auto_purge_events(self) -> int:
        # Nothing can expire before the oldest record's purge time: with no capacity limits,
        # no record without a time, and no event index to tidy, that is a comparison.
        conf = self.conf
        if (
            conf.event_retention_days > 0
            and conf.event_max_records <= 0
            and conf.trigger_run_max_records <= 0
            and not self._untimed_runs
            and not self._event_ids_by_code
            and not self._event_ids_by_emitter
        ):
            threshold = datetime.now(_dt.UTC) - timedelta(days=conf.event_retention_days)
            runs, events = self._run_heap, self._event_heap
            if (not runs or runs[0][0] >= threshold) and (not events or events[0][0] >= threshold):
                return 0
        deleted: int = super()._auto_purge_events()
        return deleted
