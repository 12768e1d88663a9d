"""The timer service's tick on pynenc's ThreadRunner + SQLite: its store round trips do not
grow with the number of workflows waiting on other invocations (issue 12, point 10).

Counts calls, never time: the tick is called directly, the invocations are real ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine._service import tick
from pynenc_wf_testing.engine.atomic import atomic_store
from tests.production import prod_app as pa
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
]

#: The orchestrator's methods that read statuses from the database.
STATUS_READS = ("get_invocation_status_record", "filter_by_status")


def count_status_reads(prod: Production, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    orchestrator = prod.app.orchestrator
    for name in STATUS_READS:
        method = getattr(orchestrator, name)

        def counted(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _method(*args, **kwargs)

        monkeypatch.setattr(orchestrator, name, counted)
    return calls


def test_a_tick_reads_the_watched_statuses_in_one_query_whatever_their_number(
    prod: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = prod.start_runner()
    done = pa.note("done")
    finished_workflow = pa.sleeper(0.0)  # never suspended: nothing to reroute
    assert prod.result(done) == "done"
    prod.result(finished_workflow)
    prod.stop_runner(runner)
    # routed with no runner left: they stay non-final for the whole test
    waiting = [pa.note(f"pending {i}") for i in range(30)]
    store = atomic_store(prod.app)
    calls = count_status_reads(prod, monkeypatch)

    store.add_member(schema.WATCHED, f"{waiting[0].invocation_id} wf-0")
    tick(prod.app, store)
    one_watched = len(calls)

    calls.clear()
    for i, run in enumerate(waiting[1:], start=1):
        store.add_member(schema.WATCHED, f"{run.invocation_id} wf-{i}")
    # a final one among them: its member leaves the watch set
    final_member = f"{done.invocation_id} {finished_workflow.invocation_id}"
    store.add_member(schema.WATCHED, final_member)
    tick(prod.app, store)

    assert one_watched == len(calls) == 1, calls  # one query for 1 or 31 watched
    members = store.members(schema.WATCHED)
    assert len(members) == 30
    assert final_member not in members
