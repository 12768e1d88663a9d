# mypy: disallow-subclassing-any=False
"""SimMemTrigger: pynenc's status and result reports build a condition context
(loading the invocation and deserializing its arguments) and then look for conditions
sourced from the task: with no such condition registered there is nothing to find.
Its retention purge (run at the end of every trigger-loop iteration) finds expired
monitoring records through a heap by purge time instead of scanning them all, and keeps the
trigger-run indexes exact at each write instead of rebuilding them from every record: the
state it leaves is pynenc's, and a cron firing no longer costs more as records pile up.

Part of the fast memory backend (see ``fast_memory/__init__.py``); docs/benchmarks.md has
what it buys.
"""

from __future__ import annotations

import datetime as _dt
import heapq
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pynenc.invocation.dist_invocation import DistributedInvocation
from pynenc.invocation.status import (
    InvocationStatus,
)
from pynenc.trigger.mem_trigger import MemTrigger
from pynenc.trigger.monitoring import EventRecord, TriggerRunRecord

if TYPE_CHECKING:
    from pynenc.identifiers.invocation_id import InvocationId

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

    def _purge(self) -> None:
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
            old = self._trigger_runs.get(run.trigger_run_id)
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
