# mypy: disallow-subclassing-any=False
"""SimMemStateBackend: a new invocation is upserted by its constructor and again,
identically, by ``register_new_invocations``: the second write is skipped. History records are
kept as compact rows (rebuilt as pynenc's ``InvocationHistory`` on read): the status record
alone when the row's runner id, registered-by and timestamp are the record's own (the
invocation id is the row's key), else a short tuple of what differs; the parent -> children
index gets a set beside its list once a parent has many children (the list scan made a
workflow's n children O(n^2)).

Part of the fast memory backend (see ``fast_memory/__init__.py``); docs/benchmarks.md has
what it buys.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from pynenc.invocation.dist_invocation import DistributedInvocation
from pynenc.invocation.status import (
    InvocationStatus,
    InvocationStatusRecord,
)
from pynenc.state_backend.base_state_backend import InvocationHistory

from pynenc_wf_testing.runtime.components import SimStockMemStateBackend

if TYPE_CHECKING:
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.models.call_dto import CallDTO
    from pynenc.models.invocation_dto import InvocationDTO
    from pynenc.runner.runner_context import RunnerContext

__all__ = ["SimMemStateBackend"]


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
    invocation_id: str,
    expected_id: str,
    record: InvocationStatusRecord,
    runner_id: str,
    registered_by: str | None,
    timestamp: datetime,
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
    return (
        invocation_id,
        record,
        fields[1],
        fields[2] if len(fields) == 3 else None,
        record.timestamp,
    )


def _history_from_row(invocation_id: str, row: _HistoryRow) -> InvocationHistory:
    """pynenc's InvocationHistory of a row stored under ``invocation_id``."""
    history = InvocationHistory.__new__(InvocationHistory)
    (
        history.invocation_id,
        history.status_record,
        history.runner_context_id,
        history.registered_by_inv_id,
        history._timestamp,
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
                    self._parent_to_children,
                    self._children_seen,
                    str(inv_dto.parent_invocation_id),
                    str(inv_dto.invocation_id),
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
                invocation.invocation_id,
                status_record,
                runner_id,
                invocation.parent_invocation_id if registered else None,
            )

    def add_histories_made_now(
        self,
        invocations: list[DistributedInvocation],
        status_record: InvocationStatusRecord,
        runner_context: RunnerContext,
    ) -> None:
        """:meth:`add_histories` of a record made by the caller in this same synchronous
        call (see :meth:`add_history_made_now`): every history's timestamp is the record's."""
        self.store_runner_context(runner_context)
        registered = status_record.status == InvocationStatus.REGISTERED
        runner_id = runner_context.runner_id
        now = status_record.timestamp
        for invocation in invocations:
            self._add_row(
                invocation._invocation_id,
                status_record,
                runner_id,
                invocation.parent_invocation_id if registered else None,
                now,
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

    def add_history_made_now(
        self,
        invocation_id: InvocationId,
        status_record: InvocationStatusRecord,
        runner_context: RunnerContext,
    ) -> None:
        """:meth:`add_history` of a record made by the caller in this same synchronous call:
        the history's ``datetime.now(UTC)`` is the record's timestamp object itself (the
        simulator's clock is frozen within a call and gives one object per instant; see
        ``_FastMemOrchestrator.set_invocation_status``), so it is not asked again."""
        cached = self._runner_context_cache
        runner_id = runner_context.runner_id
        if (
            runner_id not in cached
            or cached[runner_id] is not runner_context
            or runner_context.parent_ctx
        ):
            self.store_runner_context(runner_context)
        self._add_row(
            invocation_id, status_record, runner_context.runner_id, None, status_record.timestamp
        )

    def _add_row(
        self,
        invocation_id: str,
        record: InvocationStatusRecord,
        runner_id: str,
        registered_by: str | None,
        now: datetime | None = None,
    ) -> None:
        # The timestamp pynenc's InvocationHistory takes from datetime.now(UTC) at creation
        # (looked up on the module: freezegun replaces datetime.datetime while it runs).
        row = _make_row(
            invocation_id,
            invocation_id,
            record,
            runner_id,
            registered_by,
            _dt.datetime.now(_dt.UTC) if now is None else now,
        )
        rows = self._rows
        if invocation_id in rows:  # (`in` + subscript: no call per history row)
            rows[invocation_id].append(row)
        else:
            rows[invocation_id] = [row]

    def _add_histories(
        self, invocation_ids: list[InvocationId], invocation_history: InvocationHistory
    ) -> None:
        for invocation_id in invocation_ids:
            self._add_row_of(invocation_id, invocation_history)

    def _add_row_of(self, invocation_id: str, history: InvocationHistory) -> None:
        row = _make_row(
            history.invocation_id,
            invocation_id,
            history.status_record,
            history.runner_context_id,
            history.registered_by_inv_id,
            history.timestamp,
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
