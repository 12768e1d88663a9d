# mypy: disallow-subclassing-any=False
"""SimMemOrchestrator: one lock for every status transition instead of a lock object
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
the broker config, fixed while the component lives) are read and validated once per task,
as are its concurrency options and the app id. The external runner context pynenc rebuilds
for every registration from outside a runner is built once per thread, and a history written
for a status record made in the same call takes the record's timestamp (the clock is frozen
within a call).

Part of the fast memory backend (see ``fast_memory/__init__.py``); docs/benchmarks.md has
what it buys.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pynenc import context as pynenc_context
from pynenc.conf.config_task import ConcurrencyControlType
from pynenc.exceptions import InvocationStatusError
from pynenc.invocation.dist_invocation import DistributedInvocation
from pynenc.invocation.status import (
    InvocationStatus,
    InvocationStatusRecord,
    status_record_transition,
)
from pynenc.orchestrator.mem_orchestrator import ArgPair, MemOrchestrator
from pynenc.runner.base_runner import ExternalRunner
from pynenc.runner.runner_context import RunnerContext

from pynenc_wf_testing.runtime.components import SimOrchestratorMixin
from pynenc_wf_testing.runtime.fast_memory.state_backend import SimMemStateBackend

if TYPE_CHECKING:
    from pynenc.call import Call
    from pynenc.identifiers.call_id import CallId
    from pynenc.identifiers.invocation_id import InvocationId

__all__ = ["SimMemOrchestrator"]


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
        self._app_id_known: str | None = None
        # id(task) -> (task, (registration_concurrency off, running_concurrency off))
        self._concurrency_off: dict[int, tuple[Any, tuple[bool, bool]]] = {}
        # (hostname, pid, thread id) -> the external runner context of that thread
        self._external_ctx: dict[tuple[str, int, int], RunnerContext] = {}

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
            self._records = {}
        return self._records

    def _record_now(self, status: InvocationStatus, owner: str | None) -> InvocationStatusRecord:
        """The record ``status_record_transition`` would make now for an accepted transition
        to ``status`` with ``owner`` (its timestamp is ``datetime.now(UTC)``, as the
        dataclass's default), shared like :meth:`_shared_record`'s."""
        now = _dt.datetime.now(_dt.UTC)
        records = self._records_at_instant(now)
        key = (status, owner)
        if key in records:
            return records[key]
        record = records[key] = InvocationStatusRecord(status, owner, now)
        return record

    def _register_new_invocations(
        self, invocations: list[DistributedInvocation], runner_id: str | None = None
    ) -> InvocationStatusRecord:
        """MemOrchestrator's, in its order, with the status record shared (see
        :meth:`_shared_record`) and ``call_id_to_inv_id`` holding a call's only invocation
        id itself instead of a one-element set (see :meth:`get_call_invocation_ids`)."""
        # (InvocationStatusRecord(REGISTERED, runner_id) stamps datetime.now(UTC), as
        # _record_now does, and then is shared the same way.)
        status_record = self._record_now(InvocationStatus.REGISTERED, runner_id)
        calls: dict[Any, Any] = self.call_id_to_inv_id
        for invocation in invocations:
            # (the invocation id and call are plain attributes behind pynenc's properties)
            invocation_id = invocation._invocation_id
            call = invocation._call
            call_id = call.call_id
            self._interanl_atomic_status_transition(invocation_id, None, status_record)
            self.task_id_to_inv_id[call.task.task_id].add(invocation_id)
            known = calls[call_id] if call_id in calls else None  # noqa: SIM401
            if known is None:
                calls[call_id] = invocation_id
            elif type(known) is set:
                known.add(invocation_id)
            elif known != invocation_id:
                # The set pynenc would hold, built by the same adds in the same order.
                calls[call_id] = {known, invocation_id}
            self.inv_id_to_call_id[invocation_id] = call_id
            self.invocation_retries[invocation_id] = 0
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
        # (Lookups are `in` + subscript, not .get(): no call per lookup on this hot path.)
        with self._one_lock:
            status_records = self.invocation_status_record
            previous = status_records[invocation_id] if invocation_id in status_records else None  # noqa: SIM401
            key = (
                (previous.status, previous.runner_id, status, runner_id)
                if previous is not None
                else (None, None, status, runner_id)
            )
            owners = self._owners
            owner = owners[key] if key in owners else _UNKNOWN  # noqa: SIM401
            if owner is _UNKNOWN:
                # pynenc's validation (it raises for a transition or owner it refuses) and
                # new owner: pure functions of the key, so an accepted key is remembered.
                record = self._shared_record(status_record_transition(previous, status, runner_id))
                self._owners[key] = record.runner_id
            else:
                # (_record_now, inlined: this runs for every status change)
                now = _dt.datetime.now(_dt.UTC)
                if now is not self._records_at:
                    self._records_at = now
                    self._records = {}
                records = self._records
                record_key = (status, owner)
                if record_key in records:
                    record = records[record_key]
                else:
                    record = records[record_key] = InvocationStatusRecord(status, owner, now)
            if previous:
                self.status_index[previous.status].discard(invocation_id)
            self.status_index[record.status].add(invocation_id)
            status_records[invocation_id] = record
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

    def get_additional_invocations_to_run(
        self,
        missing_invocations: int,
        blocking_invocation_ids: set[InvocationId],
        invocations_to_reroute: set[InvocationId],
        runner_ctx: RunnerContext,
        queue_provider: Callable[[], Sequence[str]],
        on_queue_retrieved: Callable[[str], None],
    ) -> Iterator[DistributedInvocation]:
        """pynenc's loop, step for step, with the broker looked up once per call (the
        concurrency checks answer from the task's option read once per task, see
        :meth:`_running_concurrency_off`)."""
        broker = self.app.broker
        while missing_invocations > 0:
            retrieved_invocation = False
            for queue_name in queue_provider():
                invocation_id = broker.retrieve_invocation(queue_name)
                if not invocation_id:
                    continue
                retrieved_invocation = True
                on_queue_retrieved(queue_name)
                if invocation_id not in blocking_invocation_ids:
                    invocation_status = self.get_invocation_status(invocation_id)
                    if invocation_status.is_available_for_run():
                        invocation = self.app.state_backend.get_invocation(invocation_id)
                        if not self.is_candidate_to_run_by_concurrency_control(invocation):
                            if invocation.task.conf.reroute_on_concurrency_control:
                                self.set_invocation_status(
                                    invocation_id,
                                    InvocationStatus.CONCURRENCY_CONTROLLED,
                                    runner_ctx,
                                )
                                invocations_to_reroute.add(invocation_id)
                            else:
                                self.set_invocation_status(
                                    invocation_id,
                                    InvocationStatus.CONCURRENCY_CONTROLLED_FINAL,
                                    runner_ctx,
                                )
                            break
                        try:
                            self.set_invocation_status(
                                invocation_id, InvocationStatus.PENDING, runner_ctx
                            )
                            missing_invocations -= 1
                            yield invocation
                        except InvocationStatusError as ex:
                            self.app.logger.warning(
                                f"Could not set invocation:{invocation_id} to status:pending: {ex}"
                            )
                            break
                break
            if not retrieved_invocation:
                break

    def is_candidate_to_run_by_concurrency_control(
        self, invocation: DistributedInvocation[Any, Any]
    ) -> bool:
        # pynenc's answers True at once for a task whose running concurrency is disabled.
        if self._running_concurrency_off(invocation):
            return True
        return bool(super().is_candidate_to_run_by_concurrency_control(invocation))

    def is_authorize_to_run_by_concurrency_control(
        self, invocation: DistributedInvocation[Any, Any]
    ) -> bool:
        # pynenc's answers True at once for a task whose running concurrency is disabled.
        if self._running_concurrency_off(invocation):
            return True
        return bool(super().is_authorize_to_run_by_concurrency_control(invocation))

    def _running_concurrency_off(self, invocation: DistributedInvocation[Any, Any]) -> bool:
        return self._concurrency_of(invocation._call.task)[1]

    def _concurrency_of(self, task: Any) -> tuple[bool, bool]:
        """(registration concurrency disabled, running concurrency disabled) of ``task``:
        its options, fixed while this component lives (as its broker queue, see
        :meth:`_route_of`), read once per task instead of on every route and fetch."""
        key = id(task)
        known = self._concurrency_off[key] if key in self._concurrency_off else None  # noqa: SIM401
        if known is None or known[0] is not task:
            conf = task.conf
            known = self._concurrency_off[id(task)] = (
                task,
                (
                    conf.registration_concurrency == ConcurrencyControlType.DISABLED,
                    conf.running_concurrency == ConcurrencyControlType.DISABLED,
                ),
            )
        return known[1]

    # Routing: pynenc's steps in pynenc's order; its log lines are formatted only when the
    # logger would emit them (pynenc builds each f-string first: ``str(call)`` included).

    def route_call(self, call: Call[Any, Any]) -> DistributedInvocation[Any, Any]:
        if not self._concurrency_of(call.task)[0]:
            return super().route_call(call)
        logger = call.task.logger
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(f"New invocation for call {call}")
        return self._route_new_call_invocation(call)

    def _route_new_call_invocation(
        self, call: Call[Any, Any], runner_id: str | None = None
    ) -> DistributedInvocation[Any, Any]:
        app = self.app
        app_id = self._app_id()
        new_invocation = DistributedInvocation.from_parent(
            call,
            parent_invocation=pynenc_context.get_dist_invocation_context(app_id),
            parent_event_id=pynenc_context.get_trigger_event_context(app_id),
        )
        self.register_new_invocations([new_invocation])
        registration_off, running_off = self._concurrency_of(call.task)
        if not (registration_off and running_off):
            self.index_arguments_for_concurrency_control(new_invocation)
        logger = app.logger
        if logger.isEnabledFor(logging.INFO):
            logger.info(f"invocation:{new_invocation.invocation_id} ROUTED")
        return new_invocation

    def _app_id(self) -> str:
        # The app's id (a config read through two properties): the identity pynenc keys
        # every context and store by, fixed for the app's life; read once per component.
        app_id = self._app_id_known
        if app_id is None:
            app_id = self._app_id_known = self.app.app_id
        return app_id

    def _route_of(self, task: Any) -> tuple[str, float]:
        # A task's broker queue and priority come from its options and the broker config,
        # both fixed while this component lives: read (and validated) once per task.
        key = id(task)
        known = self._routes[key] if key in self._routes else None  # noqa: SIM401
        if known is None or known[0] is not task:
            known = self._routes[id(task)] = (task, task.broker_queue, task.broker_priority)
        return known[1], known[2]

    def route_invocation(self, invocation: DistributedInvocation[Any, Any]) -> None:
        queue, priority = self._route_of(invocation.task)
        self.app.broker.route_invocation(invocation.invocation_id, queue, priority)

    def route_invocations(self, invocations: Sequence[DistributedInvocation[Any, Any]]) -> None:
        if len(invocations) == 1:  # (one group of one: what the grouping below makes)
            invocation = invocations[0]
            queue_name, priority = self._route_of(invocation._call.task)
            self.app.broker.route_invocations([invocation._invocation_id], queue_name, priority)
            return
        # pynenc's grouping by (queue, priority), in first-seen order.
        routes: dict[tuple[str, float], list[InvocationId]] = {}
        for invocation in invocations:
            routes.setdefault(self._route_of(invocation.task), []).append(invocation.invocation_id)
        broker = self.app.broker
        for (queue_name, priority), invocation_ids in routes.items():
            broker.route_invocations(invocation_ids, queue_name, priority)

    def _runner_context(self) -> RunnerContext:
        """``get_or_create_runner_context(app_id)``: the context set for the app, else one
        from the current runner, else the external runner's context of this host, process
        and thread. pynenc builds that last one anew on every call, equal field by field
        (``ExternalRunner@host-pid``, no parent); it is built once per (host, pid, thread)
        here. Nobody tells the instances apart: pynenc keeps them by ``runner_id`` and
        reads their fields, never mutates one."""
        app_id = self._app_id()
        runner_ctx = pynenc_context.get_runner_context(app_id)
        if runner_ctx:
            return runner_ctx
        runner = pynenc_context.get_current_runner(app_id)
        if runner:
            return RunnerContext.from_runner(runner)
        # (threading.current_thread().ident, the context's thread id, is get_ident())
        key = (socket.gethostname(), os.getpid(), threading.get_ident())
        known = self._external_ctx[key] if key in self._external_ctx else None  # noqa: SIM401
        if known is None:
            known = self._external_ctx[key] = ExternalRunner.get_default_external_runner_context()
        return known

    def register_new_invocations(self, invocations: list[DistributedInvocation[Any, Any]]) -> None:
        app = self.app
        runner_ctx = self._runner_context()
        runner_id = runner_ctx.runner_id
        app.state_backend.upsert_invocations(invocations)
        status_record = self._register_new_invocations(invocations, runner_id)
        inv_ids = [invocation._invocation_id for invocation in invocations]
        backend = app.state_backend
        if type(backend) is SimMemStateBackend:
            # (the record was made by this call: its timestamp is the histories' now)
            backend.add_histories_made_now(invocations, status_record, runner_ctx)
        else:
            backend.add_histories(invocations, status_record, runner_ctx)
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
        backend = app.state_backend
        if type(backend) is SimMemStateBackend:
            # The record was made by this call at this frozen instant: the history's
            # datetime.now(UTC) would be its timestamp object (see add_history_made_now).
            backend.add_history_made_now(invocation_id, new_status_record, runner_ctx)
        else:
            backend.add_history(invocation_id, new_status_record, runner_ctx)
        app.trigger.report_tasks_status([invocation_id], status)
        logger = app.logger
        if logger.isEnabledFor(logging.INFO):
            logger.info(f"invocation:{invocation_id} status:{status.value}")


class SimMemOrchestrator(SimOrchestratorMixin, _FastMemOrchestrator):
    """The observed fast memory orchestrator (see :class:`_FastMemOrchestrator`)."""
