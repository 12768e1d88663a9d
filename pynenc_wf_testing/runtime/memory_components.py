# mypy: disallow-subclassing-any=False
"""Fast simulated components: pynenc's memory components minus work nobody observes.

Selected only inside the simulator (``MemoryBackend.config``); ``WorkflowEnv(backend=
"memory-stock")`` selects pynenc's own memory classes with the same observation hooks, and
``tests/test_equivalence.py`` checks that both store exactly the same state for the same
workflows and seed. Each class below is a subclass of pynenc's own component (or of our observed
one) and says what it skips and why the skipped work is unobservable:

- :class:`SimMemTrigger`: pynenc's status and result reports build a condition context
  (loading the invocation and deserializing its arguments) and then look for conditions
  sourced from the task: with no such condition registered there is nothing to find.
  Its retention purge (run at the end of every trigger-loop iteration) finds expired
  monitoring records through a heap by purge time instead of scanning them all, and keeps the
  trigger-run indexes exact at each write instead of rebuilding them from every record: the
  state it leaves is pynenc's, and a cron firing no longer costs more as records pile up.
- :class:`SimMemStateBackend`: a new invocation is upserted by its constructor and again,
  identically, by ``register_new_invocations``: the second write is skipped. History records are
  kept as compact rows (rebuilt as pynenc's ``InvocationHistory`` on read): the status record
  alone when the row's runner id, registered-by and timestamp are the record's own (the
  invocation id is the row's key), else a short tuple of what differs; the parent -> children
  index gets a set beside its list once a parent has many children (the list scan made a
  workflow's n children O(n^2)).
- :class:`SimMemOrchestrator`: one lock for every status transition instead of a lock object
  created and kept per invocation (the simulation is single-threaded; one lock still
  serialises transitions), and pynenc's status and fetch paths with their config flags read
  once and the work they do for a disabled feature (blocking control) left out. Equal status
  records (frozen, compared by value) made at one virtual instant are one shared object, and
  ``call_id_to_inv_id`` holds a call's only invocation id itself instead of a one-element set
  (its readers, ``get_call_invocation_ids`` and ``clean_up_invocation``, read both shapes).
  Accepted status transitions are remembered (pynenc's validation is a pure function of the
  old status and owner, the new status and the runner), and the routing path formats its log
  lines only when the logger would emit them (pynenc builds each f-string, ``str(call)``
  included, before the logger drops it); a task's broker queue and priority (its options and
  the broker config, fixed while the component lives) are read and validated once per task.
- :class:`SimMemBroker`: a queue-name tuple or a priority that passed validation once is not
  validated again (the configuration cannot change while the component lives).
- :class:`SimMemClientDataStore`: plain JSON values (``None``, bool, int, float, str and
  lists / str-keyed dicts of them) are serialized and deserialized with the standard ``json``
  module, byte for byte what ``JsonPickleSerializer`` (jsonpickle on the stdlib json backend)
  produces (the text of a small int is one shared str); anything else, or any other
  configured serializer, goes through the serializer.
  The serializer itself is never switched: call ids and replay keys depend on its output.

docs/benchmarks.md has what each of them buys.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from pynenc import context as pynenc_context
from pynenc.broker.mem_broker import MemBroker
from pynenc.client_data_store.mem_client_data_store import MemClientDataStore
from pynenc.conf.config_broker import validate_priority
from pynenc.conf.config_task import ConcurrencyControlType
from pynenc.invocation.dist_invocation import DistributedInvocation
from pynenc.invocation.status import (
    InvocationStatus,
    InvocationStatusRecord,
    status_record_transition,
)
from pynenc.orchestrator.mem_orchestrator import ArgPair, MemOrchestrator
from pynenc.serializer.constants import ReservedKeys
from pynenc.state_backend.base_state_backend import InvocationHistory
from pynenc.trigger.mem_trigger import MemTrigger
from pynenc.trigger.monitoring import EventRecord, TriggerRunRecord

from pynenc_wf_testing.runtime.components import SimOrchestratorMixin, SimStockMemStateBackend

if TYPE_CHECKING:
    from pynenc.call import Call
    from pynenc.identifiers.call_id import CallId
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.models.call_dto import CallDTO
    from pynenc.models.invocation_dto import InvocationDTO
    from pynenc.runner.runner_context import RunnerContext

__all__ = [
    "FAST_MEMORY_CONFIG",
    "STOCK_MEMORY_CONFIG",
    "SimMemBroker",
    "SimMemClientDataStore",
    "SimMemOrchestrator",
    "SimMemStateBackend",
    "SimMemTrigger",
    "dumps_plain",
    "loads_plain",
]

#: Component classes of the default memory backend (fast, observed).
FAST_MEMORY_CONFIG: dict[str, str] = {
    "orchestrator_cls": "SimMemOrchestrator",
    "state_backend_cls": "SimMemStateBackend",
    "broker_cls": "SimMemBroker",
    "trigger_cls": "SimMemTrigger",
    "client_data_store_cls": "SimMemClientDataStore",
}

#: pynenc's own memory classes with the simulator's observation hooks ("memory-stock").
STOCK_MEMORY_CONFIG: dict[str, str] = {
    "orchestrator_cls": "SimStockMemOrchestrator",
    "state_backend_cls": "SimStockMemStateBackend",
    "broker_cls": "MemBroker",
    "trigger_cls": "MemTrigger",
    "client_data_store_cls": "MemClientDataStore",
}


# --------------------------------------------------------------------------- trigger


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


# --------------------------------------------------------------------------- broker


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

    def _check_route(self, queue_name: str, priority: Any) -> None:
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

    def route_invocation(
        self, invocation_id: InvocationId, queue_name: str, priority: float
    ) -> None:
        self._check_route(queue_name, priority)
        self._route_invocation(invocation_id, queue_name, priority)

    def route_invocations(
        self, invocation_ids: Sequence[InvocationId], queue_name: str, priority: float
    ) -> None:
        self._check_route(queue_name, priority)
        self._route_invocations(invocation_ids, queue_name, priority)

    def _validate_queue_names(self, queue_names: Sequence[str]) -> None:
        key = tuple(queue_names)
        if key in self._validated:
            return
        super()._validate_queue_names(queue_names)
        self._validated.add(key)


# --------------------------------------------------------------------------- orchestrator


_UNKNOWN: Any = object()  # "no memo entry" (None is a valid owner)


class _FastMemOrchestrator(MemOrchestrator):
    """``MemOrchestrator`` with one lock, a leaner ``set_invocation_status`` and a smaller
    footprint per invocation.

    - pynenc creates (and keeps forever, in ``self.locks``) one ``threading.Lock`` per
      invocation; a single lock gives the same mutual exclusion to a single-threaded
      simulation at no cost per invocation.
    - ``set_invocation_status`` does pynenc's steps in pynenc's order (atomic transition,
      release waiters and auto-purge entry when final, history, trigger report, log line)
      with the ``blocking_control`` flag read once and the log line formatted only when
      the logger would emit it.
    - Status records are shared (:meth:`_shared_record`) and a call's single invocation id is
      stored as itself in ``call_id_to_inv_id`` (a set only from a second one on, or once
      emptied by clean-up, as pynenc's): one set saved per call.
    """

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._one_lock = threading.Lock()
        self._blocking: bool | None = None
        # Status records made at the current virtual instant, by (status, runner id).
        self._records_at: datetime | None = None
        self._records: dict[tuple[InvocationStatus, str | None], InvocationStatusRecord] = {}
        # Accepted transitions: (from status, its owner, to status, runner id) -> new owner.
        self._owners: dict[tuple[Any, ...], str | None] = {}
        # id(task) -> (task, broker queue, broker priority)
        self._routes: dict[int, tuple[Any, str, float]] = {}

    def _get_invocation_lock(self, invocation_id: InvocationId) -> threading.Lock:
        return self._one_lock

    def _shared_record(self, record: InvocationStatusRecord) -> InvocationStatusRecord:
        """An equal record made earlier at the same instant, else ``record``.

        ``InvocationStatusRecord`` is a frozen dataclass compared by value: handing out one
        instance for equal (status, runner id, timestamp) is unobservable. Equal timestamps
        must be the very same object (the simulator's clock gives one datetime per virtual
        instant), so the shared record holds exactly the timestamp object a new one would.
        The memo never outlives the instant.
        """
        return self._records_at_instant(record.timestamp).setdefault(
            (record.status, record.runner_id), record
        )

    def _records_at_instant(
        self, timestamp: datetime
    ) -> dict[tuple[InvocationStatus, str | None], InvocationStatusRecord]:
        if timestamp is not self._records_at:
            self._records_at = timestamp
            self._records.clear()
        return self._records

    def _record_now(self, status: InvocationStatus, owner: str | None) -> InvocationStatusRecord:
        """The record ``status_record_transition`` would make now for an accepted transition
        to ``status`` with ``owner`` (its timestamp is ``datetime.now(UTC)``, as the
        dataclass's default), shared like :meth:`_shared_record`'s."""
        now = _dt.datetime.now(_dt.UTC)
        records = self._records_at_instant(now)
        record = records.get((status, owner))
        if record is None:
            record = records[(status, owner)] = InvocationStatusRecord(status, owner, now)
        return record

    def _register_new_invocations(
        self, invocations: list[DistributedInvocation], runner_id: str | None = None
    ) -> InvocationStatusRecord:
        """MemOrchestrator's, in its order, with the status record shared (see
        :meth:`_shared_record`) and ``call_id_to_inv_id`` holding a call's only invocation
        id itself instead of a one-element set (see :meth:`get_call_invocation_ids`)."""
        status_record = self._shared_record(
            InvocationStatusRecord(InvocationStatus.REGISTERED, runner_id)
        )
        calls: dict[Any, Any] = self.call_id_to_inv_id
        for invocation in invocations:
            self._interanl_atomic_status_transition(
                invocation.invocation_id, None, status_record
            )
            self.task_id_to_inv_id[invocation.call.task.task_id].add(invocation.invocation_id)
            call_id = invocation.call.call_id
            known = calls.get(call_id)
            if known is None:
                calls[call_id] = invocation.invocation_id
            elif type(known) is set:
                known.add(invocation.invocation_id)
            elif known != invocation.invocation_id:
                # The set pynenc would hold, built by the same adds in the same order.
                calls[call_id] = {known, invocation.invocation_id}
            self.inv_id_to_call_id[invocation.invocation_id] = invocation.call.call_id
            self.invocation_retries[invocation.invocation_id] = 0
        return status_record

    def get_call_invocation_ids(self, call_id: CallId) -> Iterator[InvocationId]:
        """pynenc's, reading either shape of a ``call_id_to_inv_id`` entry: a call's only
        invocation id (a str) or pynenc's set (2+ invocations, or emptied by clean-up)."""
        known: Any = self.call_id_to_inv_id.get(call_id)
        if known is None:
            return
        if type(known) is set:
            yield from known
        else:
            yield known

    def clean_up_invocation(self, invocation_id: InvocationId) -> None:
        """pynenc's, step for step; its discard from the call's ``call_id_to_inv_id`` entry
        leaves what pynenc leaves: the set without the id, an empty set where the entry
        held just this id."""
        self.release_waiters(invocation_id)

        invocation = self.app.state_backend.get_invocation(invocation_id)
        for key, value in invocation.call.serialized_arguments.items():
            self.args_index[ArgPair(key, value)].discard(invocation_id)
        self.status_index[self.invocation_status_record[invocation_id].status].discard(
            invocation_id
        )
        self.task_id_to_inv_id.get(invocation.task.task_id, set()).discard(invocation_id)
        calls: dict[Any, Any] = self.call_id_to_inv_id
        known = calls.get(invocation.call.call_id)
        if type(known) is set:
            known.discard(invocation_id)
        elif known is not None and known == invocation_id:
            calls[invocation.call.call_id] = set()
        self.inv_id_to_call_id.pop(invocation_id, None)
        if args := self.invocation_args.pop(invocation_id, None):
            for arg in args:
                self.args_index[arg].discard(invocation_id)
        self.status_index[self.invocation_status_record[invocation_id].status].discard(
            invocation_id
        )
        self.invocation_status_record.pop(invocation_id, None)
        self.invocation_retries.pop(invocation_id, None)

    def _atomic_status_transition(
        self, invocation_id: InvocationId, status: InvocationStatus, runner_id: str | None = None
    ) -> InvocationStatusRecord:
        # MemOrchestrator's, with its two helper calls inlined (the single lock, the index
        # update of _interanl_atomic_status_transition), and the new record shared with an
        # equal one of the same instant (see _shared_record).
        with self._one_lock:
            previous = self.invocation_status_record.get(invocation_id)
            key = (
                (previous.status, previous.runner_id, status, runner_id)
                if previous is not None
                else (None, None, status, runner_id)
            )
            owner = self._owners.get(key, _UNKNOWN)
            if owner is _UNKNOWN:
                # pynenc's validation (it raises for a transition or owner it refuses) and
                # new owner: pure functions of the key, so an accepted key is remembered.
                record = self._shared_record(
                    status_record_transition(previous, status, runner_id)
                )
                self._owners[key] = record.runner_id
            else:
                record = self._record_now(status, owner)
            if previous:
                self.status_index[previous.status].discard(invocation_id)
            self.status_index[record.status].add(invocation_id)
            self.invocation_status_record[invocation_id] = record
            return record

    def _blocking_on(self) -> bool:
        if self._blocking is None:
            self._blocking = bool(self.app.orchestrator.conf.blocking_control)
        return self._blocking

    def get_invocations_to_run(
        self,
        max_num_invocations: int,
        runner_ctx: RunnerContext,
        queue_provider: Callable[[], Sequence[str]] | None = None,
        on_queue_retrieved: Callable[[str], None] | None = None,
    ) -> Iterator[DistributedInvocation]:
        """pynenc's, minus the blocking-invocations pass when blocking control is off (that
        pass then yields nothing: ``get_blocking_invocations`` checks the same flag)."""
        if self._blocking_on():
            yield from super().get_invocations_to_run(
                max_num_invocations, runner_ctx, queue_provider, on_queue_retrieved
            )
            return
        queue_provider = queue_provider or self.app.runner.queue_names_for_retrieval
        on_queue_retrieved = on_queue_retrieved or self.app.runner.note_queue_retrieved
        invocations_to_reroute: set[InvocationId] = set()
        yield from self.get_additional_invocations_to_run(
            max_num_invocations,
            set(),
            invocations_to_reroute,
            runner_ctx,
            queue_provider,
            on_queue_retrieved,
        )
        self.reroute_invocations(invocations_to_reroute, runner_ctx)

    # Routing: pynenc's steps in pynenc's order; its log lines are formatted only when the
    # logger would emit them (pynenc builds each f-string first: ``str(call)`` included).

    def route_call(self, call: Call[Any, Any]) -> DistributedInvocation[Any, Any]:
        if call.task.conf.registration_concurrency != ConcurrencyControlType.DISABLED:
            return super().route_call(call)
        logger = call.task.logger
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(f"New invocation for call {call}")
        return self._route_new_call_invocation(call)

    def _route_new_call_invocation(
        self, call: Call[Any, Any], runner_id: str | None = None
    ) -> DistributedInvocation[Any, Any]:
        app = self.app
        new_invocation = DistributedInvocation.from_parent(
            call,
            parent_invocation=pynenc_context.get_dist_invocation_context(app.app_id),
            parent_event_id=pynenc_context.get_trigger_event_context(app.app_id),
        )
        self.register_new_invocations([new_invocation])
        task_conf = call.task.conf
        if (
            task_conf.registration_concurrency != ConcurrencyControlType.DISABLED
            or task_conf.running_concurrency != ConcurrencyControlType.DISABLED
        ):
            self.index_arguments_for_concurrency_control(new_invocation)
        logger = app.logger
        if logger.isEnabledFor(logging.INFO):
            logger.info(f"invocation:{new_invocation.invocation_id} ROUTED")
        return new_invocation

    def _route_of(self, task: Any) -> tuple[str, float]:
        # A task's broker queue and priority come from its options and the broker config,
        # both fixed while this component lives: read (and validated) once per task.
        known = self._routes.get(id(task))
        if known is None or known[0] is not task:
            known = self._routes[id(task)] = (task, task.broker_queue, task.broker_priority)
        return known[1], known[2]

    def route_invocation(self, invocation: DistributedInvocation[Any, Any]) -> None:
        queue, priority = self._route_of(invocation.task)
        self.app.broker.route_invocation(invocation.invocation_id, queue, priority)

    def route_invocations(self, invocations: Sequence[DistributedInvocation[Any, Any]]) -> None:
        # pynenc's grouping by (queue, priority), in first-seen order.
        routes: dict[tuple[str, float], list[InvocationId]] = {}
        for invocation in invocations:
            routes.setdefault(self._route_of(invocation.task), []).append(
                invocation.invocation_id
            )
        broker = self.app.broker
        for (queue_name, priority), invocation_ids in routes.items():
            broker.route_invocations(invocation_ids, queue_name, priority)

    def register_new_invocations(self, invocations: list[DistributedInvocation[Any, Any]]) -> None:
        app = self.app
        runner_ctx = pynenc_context.get_or_create_runner_context(app.app_id)
        runner_id = runner_ctx.runner_id
        app.state_backend.upsert_invocations(invocations)
        status_record = self._register_new_invocations(invocations, runner_id)
        inv_ids = [invocation.invocation_id for invocation in invocations]
        app.state_backend.add_histories(invocations, status_record, runner_ctx)
        app.trigger.report_tasks_status(inv_ids, status_record.status)
        self.route_invocations(invocations)
        logger = app.logger
        if logger.isEnabledFor(logging.INFO):
            for invocation in invocations:
                logger.info(
                    f"NEW task:{invocation.call.task.task_id.key} "
                    f"invocation:{invocation.invocation_id} REGISTERED and ROUTED"
                )

    def set_invocation_status(
        self, invocation_id: InvocationId, status: InvocationStatus, runner_ctx: RunnerContext
    ) -> None:
        new_status_record = self._atomic_status_transition(
            invocation_id, status, runner_ctx.runner_id
        )
        app = self.app
        if status.is_final():
            if self._blocking_on():
                self.blocking_control.release_waiters(invocation_id)
            self.set_up_invocation_auto_purge(invocation_id)
        app.state_backend.add_history(invocation_id, new_status_record, runner_ctx)
        app.trigger.report_tasks_status([invocation_id], status)
        logger = app.logger
        if logger.isEnabledFor(logging.INFO):
            logger.info(f"invocation:{invocation_id} status:{status.value}")


class SimMemOrchestrator(SimOrchestratorMixin, _FastMemOrchestrator):
    """The observed fast memory orchestrator (see :class:`_FastMemOrchestrator`)."""


# --------------------------------------------------------------------------- state backend

# A history record as stored under its invocation id, in the smallest of four shapes that
# gives back pynenc's InvocationHistory (invocation id, status record, runner context id,
# registered by, timestamp) on read:
# - the status record itself: the key's id, the record's runner id, registered by None and
#   the record's own timestamp object (the common case: a record and its history row are
#   made at the same virtual instant, and the clock gives one datetime per instant);
# - (record, runner id): the same with another runner id (a status that releases ownership);
# - (record, runner id, registered by): the same, registered by a parent;
# - (invocation id, record, runner id, registered by, timestamp): anything else.
_HistoryRow: TypeAlias = (
    InvocationStatusRecord
    | tuple[InvocationStatusRecord, str]
    | tuple[InvocationStatusRecord, str, str | None]
    | tuple[str, InvocationStatusRecord, str, str | None, datetime]
)


_SMALL_FANOUT = 16


def _make_row(
    invocation_id: str, expected_id: str, record: InvocationStatusRecord, runner_id: str,
    registered_by: str | None, timestamp: datetime,
) -> _HistoryRow:
    """The row for a history of ``invocation_id`` stored under ``expected_id``."""
    if timestamp is record.timestamp and invocation_id == expected_id:
        if registered_by is not None:
            return (record, runner_id, registered_by)
        if runner_id == record.runner_id:
            return record
        return (record, runner_id)
    return (invocation_id, record, runner_id, registered_by, timestamp)


def _expand_row(
    invocation_id: str, row: _HistoryRow
) -> tuple[str, InvocationStatusRecord, str, str | None, datetime]:
    """A row stored under ``invocation_id`` as (invocation id, status record, runner context
    id, registered by, timestamp)."""
    fields: Any = row
    if type(fields) is not tuple:
        return (invocation_id, fields, fields.runner_id, None, fields.timestamp)
    if len(fields) == 5:
        return fields
    record = fields[0]
    return (invocation_id, record, fields[1], fields[2] if len(fields) == 3 else None,
            record.timestamp)


def _history_from_row(invocation_id: str, row: _HistoryRow) -> InvocationHistory:
    """pynenc's InvocationHistory of a row stored under ``invocation_id``."""
    history = InvocationHistory.__new__(InvocationHistory)
    (
        history.invocation_id, history.status_record, history.runner_context_id,
        history.registered_by_inv_id, history._timestamp,
    ) = _expand_row(invocation_id, row)
    return history


class SimMemStateBackend(SimStockMemStateBackend):
    """Observed ``MemStateBackend`` without the identical second write of each new
    invocation, with compact history rows (see ``_HistoryRow``) and a set index of each
    parent's children."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._rows: dict[str, list[_HistoryRow]] = {}
        self._children_seen: dict[str, set[str]] = {}
        self._fresh: dict[str, DistributedInvocation] = {}

    # invocations -----------------------------------------------------------------------

    def upsert_invocations(self, invocations: list[DistributedInvocation]) -> None:
        """Skip the write ``register_new_invocations`` repeats after the invocation's
        constructor stored it (pynenc's only two callers): the same object gives the same
        DTOs (its identity fields are set before the constructor's write and never change),
        so the stored pair would be identical."""
        fresh = self._fresh
        todo = [inv for inv in invocations if fresh.pop(inv.invocation_id, None) is not inv]
        if not todo:
            return
        super().upsert_invocations(todo)
        if len(todo) == 1 and len(invocations) == 1:
            # The constructor's write (one invocation): register_new_invocations follows.
            fresh[todo[0].invocation_id] = todo[0]

    def _upsert_invocations(self, entries: list[tuple[InvocationDTO, CallDTO]]) -> None:
        for inv_dto, call_dto in entries:
            self._cache[inv_dto.invocation_id] = (inv_dto, call_dto)
            if inv_dto.parent_invocation_id is not None:
                self._index_child(
                    self._parent_to_children, self._children_seen,
                    str(inv_dto.parent_invocation_id), str(inv_dto.invocation_id),
                )
            if inv_dto.parent_event_id is not None:
                ev_key = str(inv_dto.parent_event_id)
                child_key = str(inv_dto.invocation_id)
                ev_children = self._event_to_children[ev_key]
                if child_key not in ev_children:
                    ev_children.append(child_key)

    @staticmethod
    def _index_child(
        lists: dict[str, list[str]], seen: dict[str, set[str]], parent: str, child: str
    ) -> None:
        members = seen.get(parent)
        if members is None:
            children = lists[parent]
            if len(children) < _SMALL_FANOUT:  # a short list scan costs less than a set
                if child not in children:
                    children.append(child)
                return
            members = seen[parent] = set(children)
        if child not in members:
            members.add(child)
            lists[parent].append(child)

    # history -----------------------------------------------------------------------------

    def add_histories(
        self,
        invocations: list[DistributedInvocation],
        status_record: InvocationStatusRecord,
        runner_context: RunnerContext,
    ) -> None:
        self.store_runner_context(runner_context)
        registered = status_record.status == InvocationStatus.REGISTERED
        runner_id = runner_context.runner_id
        for invocation in invocations:
            self._add_row(
                invocation.invocation_id, status_record, runner_id,
                invocation.parent_invocation_id if registered else None,
            )

    def add_history(
        self,
        invocation_id: InvocationId,
        status_record: InvocationStatusRecord,
        runner_context: RunnerContext,
    ) -> None:
        # pynenc's store_runner_context, skipped when it would change nothing (this very
        # context object already cached under its id, no parent to store).
        if (
            self._runner_context_cache.get(runner_context.runner_id) is not runner_context
            or runner_context.parent_ctx
        ):
            self.store_runner_context(runner_context)
        self._add_row(invocation_id, status_record, runner_context.runner_id, None)

    def _add_row(
        self, invocation_id: str, record: InvocationStatusRecord, runner_id: str,
        registered_by: str | None,
    ) -> None:
        # The timestamp pynenc's InvocationHistory takes from datetime.now(UTC) at creation
        # (looked up on the module: freezegun replaces datetime.datetime while it runs).
        row = _make_row(
            invocation_id, invocation_id, record, runner_id, registered_by,
            _dt.datetime.now(_dt.UTC),
        )
        rows = self._rows.get(invocation_id)
        if rows is None:
            self._rows[invocation_id] = [row]
        else:
            rows.append(row)

    def _add_histories(
        self, invocation_ids: list[InvocationId], invocation_history: InvocationHistory
    ) -> None:
        for invocation_id in invocation_ids:
            self._add_row_of(invocation_id, invocation_history)

    def _add_row_of(self, invocation_id: str, history: InvocationHistory) -> None:
        row = _make_row(
            history.invocation_id, invocation_id, history.status_record,
            history.runner_context_id, history.registered_by_inv_id, history.timestamp,
        )
        self._rows.setdefault(invocation_id, []).append(row)

    def _get_history(self, invocation_id: InvocationId) -> list[InvocationHistory]:
        return sorted(
            (_history_from_row(invocation_id, row) for row in self._rows.get(invocation_id, ())),
            key=lambda record: record.timestamp,
        )

    def _all_histories(self) -> Iterator[tuple[str, list[InvocationHistory]]]:
        for invocation_id, rows in self._rows.items():
            yield invocation_id, [_history_from_row(invocation_id, row) for row in rows]

    def iter_invocations_in_timerange(
        self, start_time: datetime, end_time: datetime, batch_size: int = 100
    ) -> Iterator[list[InvocationId]]:
        matching: set[InvocationId] = set()
        for invocation_id, rows in self._rows.items():
            if any(start_time <= _expand_row(invocation_id, row)[4] <= end_time for row in rows):
                matching.add(invocation_id)
        ids = sorted(matching)
        for i in range(0, len(ids), batch_size):
            yield ids[i : i + batch_size]

    def iter_history_in_timerange(
        self, start_time: datetime, end_time: datetime, batch_size: int = 100
    ) -> Iterator[list[InvocationHistory]]:
        matching = [
            (row_time, _history_from_row(invocation_id, row))
            for invocation_id, rows in self._rows.items()
            for row in rows
            if start_time <= (row_time := _expand_row(invocation_id, row)[4]) <= end_time
        ]
        matching.sort(key=lambda pair: pair[0])
        for i in range(0, len(matching), batch_size):
            yield [entry for _, entry in matching[i : i + batch_size]]

    def purge(self) -> None:
        super().purge()
        self._rows.clear()
        self._children_seen.clear()
        self._fresh.clear()


# --------------------------------------------------------------------------- client data


_REFERENCE_PREFIX: str = ReservedKeys.CLIENT_DATA.value
_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps(str) returns
_MAX_DEPTH = 32


def _plain_container(obj: Any, seen: set[int], depth: int) -> bool:
    """True if ``obj`` (a list or dict) holds only plain JSON values, every container once
    (jsonpickle writes ``py/id`` references for repeated ones), dict keys str and not
    jsonpickle tags (``py/...`` keys are reserved: jsonpickle drops them)."""
    if depth > _MAX_DEPTH or id(obj) in seen:
        return False
    seen.add(id(obj))
    if type(obj) is dict:
        for key, value in obj.items():
            if type(key) is not str or key.startswith("py/"):
                return False
            if not _plain_value(value, seen, depth):
                return False
        return True
    return all(_plain_value(value, seen, depth) for value in obj)


def _plain_value(value: Any, seen: set[int], depth: int) -> bool:
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return True
    if t is list or t is dict:
        return _plain_container(value, seen, depth + 1)
    return False


# The text of CPython's cached small ints, made once: the serialized arguments and results of
# every call share one str per small int instead of holding a copy each (equal strs: a str's
# identity is not observable state).
_SMALL_INT_TEXT: tuple[str, ...] = tuple(int.__repr__(i) for i in range(-5, 257))


def dumps_plain(obj: Any) -> str | None:
    """``jsonpickle.dumps(obj)`` for a plain JSON value (stdlib json backend, default
    options), or ``None`` when ``obj`` is not plain. jsonpickle passes str/int/float/bool/None
    through unchanged and rebuilds lists and str-keyed dicts in order, then calls
    ``json.dumps(value, sort_keys=False)``: the same text as ``json.dumps(obj)``."""
    t = type(obj)
    if t is str:
        return _encode_str(obj)
    if t is int:
        if -5 <= obj <= 256:
            small: str = _SMALL_INT_TEXT[obj + 5]
            return small
        return int.__repr__(obj)
    if obj is None:
        return "null"
    if t is bool:
        return "true" if obj else "false"
    if t is float or ((t is list or t is dict) and _plain_container(obj, set(), 0)):
        return json.dumps(obj)
    return None


def _plain_keys(value: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if type(value) is dict:
        for key, item in value.items():
            if key.startswith("py/"):
                return False
            if type(item) in (dict, list) and not _plain_keys(item, depth + 1):
                return False
        return True
    if type(value) is list:
        return all(type(item) not in (dict, list) or _plain_keys(item, depth + 1) for item in value)
    return True


_NO_VALUE = object()


def loads_plain(text: str) -> Any:
    """``jsonpickle.loads(text)`` when ``text`` is plain JSON without jsonpickle tags (what
    :func:`dumps_plain` writes), else ``_NO_VALUE``. jsonpickle restores such a document into
    equal lists, dicts and scalars."""
    first = text[:1]
    if first == "{" or first == "[":
        try:
            value = json.loads(text)
        except ValueError:
            return _NO_VALUE
        return value if _plain_keys(value, 0) else _NO_VALUE
    # The commonest documents without the JSON decoder: what json.loads returns for them.
    if first == '"':
        inner = text[1:-1]
        if (
            len(text) >= 2
            and text[-1] == '"'
            and "\\" not in inner
            and '"' not in inner
            and inner.isascii()
            and inner.isprintable()
        ):
            return inner
    elif _JSON_INT.fullmatch(text) is not None:
        return int(text)
    try:
        return json.loads(text)
    except ValueError:
        return _NO_VALUE


_JSON_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")


def _jsonpickle_is_stock_json() -> bool:
    """jsonpickle encodes with the stdlib json backend and its default options."""
    import jsonpickle  # type: ignore[import-untyped]

    backend: Any = jsonpickle.json
    try:
        names = list(backend._backend_names)
        enc = backend._encoder_options.get("json")
        dec = backend._decoder_options.get("json", ((), {}))
    except AttributeError:  # pragma: no cover - another jsonpickle layout
        return False
    return (
        bool(names)
        and names[0] == "json"
        and enc is not None
        and tuple(enc[0]) == ()
        and enc[1] == {"sort_keys": False}
        and tuple(dec[0]) == ()
        and dec[1] == {}
    )


class SimMemClientDataStore(MemClientDataStore):
    """``MemClientDataStore`` with a plain-JSON fast path and its config read once.

    The fast path is used only while the app's serializer is exactly pynenc's
    ``JsonPickleSerializer`` on jsonpickle's stdlib json backend with default options; it
    writes the same text the serializer would (see :func:`dumps_plain`). Size routing
    (inline below ``min_size_to_cache``, external storage above) is pynenc's own.
    """

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._fast: bool | None = None
        self._inline_below = 0
        self._disabled = False

    def _fast_enabled(self) -> bool:
        if self._fast is None:
            from pynenc.serializer.json_pickle_serializer import JsonPickleSerializer

            self._fast = (
                type(self.app.serializer) is JsonPickleSerializer and _jsonpickle_is_stock_json()
            )
            self._disabled = bool(self.conf.disable_client_data_store)
            self._inline_below = int(self.conf.min_size_to_cache)
        return self._fast

    def serialize(self, obj: Any, disable_cache: bool = False) -> str:
        if not (self._fast if self._fast is not None else self._fast_enabled()):
            serialized: str = super().serialize(obj, disable_cache)
            return serialized
        text = dumps_plain(obj)
        if text is None:
            serialized = super().serialize(obj, disable_cache)
            return serialized
        if self._disabled or disable_cache:
            return text
        if type(obj) is str and obj.startswith(_REFERENCE_PREFIX):
            return obj
        if len(text) < self._inline_below:
            return text
        key: str = self._maybe_store(text)
        if self.is_reference(key):
            self._cache_deserialized(key, obj)
        return key

    def resolve(self, data: str) -> Any:
        if data.startswith(_REFERENCE_PREFIX):
            return self._resolve_reference(data)
        if self._fast if self._fast is not None else self._fast_enabled():
            value = loads_plain(data)
            if value is not _NO_VALUE:
                return value
        return self.app.serializer.deserialize(data)

    def is_reference(self, value: str) -> bool:
        return value.startswith(_REFERENCE_PREFIX)
