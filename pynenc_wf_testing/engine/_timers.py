"""Starting the timer service (``_service``) when none is alive, and its settings.

Separate from ``_service`` so that what suspends workflows (``_ops``, ``_halt``) can start
the service without importing it: the service is routed by its task id, which any runner
resolves (a module-level task, bound by pynenc to the app that runs it).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.engine._errors import UnsupportedStateBackend
from pynenc_wf_testing.engine.atomic import AtomicStore, atomic_store
from pynenc_wf_testing.engine.hooks import active_hooks

if TYPE_CHECKING:
    from pynenc.app import Pynenc

#: Where the service's task lives (``_service.engine_timer_service``).
SERVICE_MODULE = "pynenc_wf_testing.engine._service"
SERVICE_TASK = "engine_timer_service"

TICK_SECONDS = 0.25
STALE_SECONDS = 5.0

_LAST_CHECK: dict[str, float] = {}
_CHECK_LOCK = threading.Lock()


def tick_seconds(app: Pynenc) -> float:
    return float((app.config_values or {}).get("engine_timer_tick_sec", TICK_SECONDS))


def stale_seconds(app: Pynenc) -> float:
    values = app.config_values or {}
    return max(float(values.get("engine_timer_stale_sec", STALE_SECONDS)), 4 * tick_seconds(app))


def ensure_timer_service(app: Pynenc) -> None:
    """Start the timer service if none is alive (no fresh heartbeat). Reads the heartbeat at
    most once per tick per process; a no-op under a simulator."""
    if active_hooks() is not None:
        return
    now = time.monotonic()
    with _CHECK_LOCK:
        if now - _LAST_CHECK.get(app.app_id, -1e9) < tick_seconds(app):
            return
        _LAST_CHECK[app.app_id] = now
    store = atomic_store(app)
    beat = store.get(schema.SERVICE_BEAT)
    if beat is not None and time.time() - float(beat) < stale_seconds(app):
        return
    start_timer_service(app, store)


def start_timer_service(app: Pynenc, store: AtomicStore | None = None) -> Any:
    """Route a new generation of the timer service (the previous one stops at its next
    tick); returns its invocation."""
    from pynenc.identifiers.task_id import TaskId

    store = store or atomic_store(app)
    generation = store.incr(schema.SERVICE_GEN)
    store.set(schema.SERVICE_BEAT, str(time.time()))  # others wait for this one to start
    task = app.get_task(TaskId(SERVICE_MODULE, SERVICE_TASK))
    # Routed from a thread of its own: pynenc's invocation context is per thread, so the
    # service is nobody's child (routed from the suspending workflow's thread, it would be
    # that workflow's child, and end with it).
    routed: list[Any] = []
    errors: list[BaseException] = []

    def route() -> None:
        try:
            routed.append(task(generation))
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=route, name="pynenc-wf-timer-service-start")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return routed[0]


def service_status(app: Pynenc) -> dt.datetime | None:
    """When the timer service last ticked (None: never)."""
    beat = atomic_store(app).get(schema.SERVICE_BEAT)
    return None if beat is None else dt.datetime.fromtimestamp(float(beat), dt.UTC)


def index_run_deadline(app: Pynenc, workflow_id: str, deadline: str) -> None:
    """Production: index the run deadline (ISO-8601) of workflow run ``workflow_id`` for
    the timer service (a later call for the same run replaces it)."""
    hooks = active_hooks()
    if hooks is not None and hooks.drives(app):
        return  # a simulator times the run out at its virtual deadline itself
    when = dt.datetime.fromisoformat(deadline).timestamp()
    try:
        atomic_store(app).schedule(schema.RUN_DEADLINES, workflow_id, when)
    except UnsupportedStateBackend:
        return  # no timer service there: the run's engine operations still see the deadline
    ensure_timer_service(app)
