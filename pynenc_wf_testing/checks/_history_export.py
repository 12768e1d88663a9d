"""Export: the replayable record of workflows read from an app's state backend.

``export_workflow`` reads one workflow (its arguments, its children in the order its code
obtained them, its workflow data) as pynenc-serialized strings; ``export_histories`` wraps
one or every run of a workflow type in a history document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.errors import HistoryFormatError, InvalidArgument
from pynenc_wf_testing.runtime.history import HISTORY_FORMAT_VERSION

from ._history_format import FORMAT_NAME

if TYPE_CHECKING:
    from pynenc.app import Pynenc

__all__ = ["export_histories", "export_workflow", "read_payload"]


def _enumerate_workflow_data(app: Pynenc, workflow_id: str) -> dict[str, Any]:
    backend = app.state_backend
    data = getattr(backend, "_workflow_data", None)
    if isinstance(data, Mapping):
        return dict(data.get(workflow_id, {}))
    tables = getattr(backend, "tables", None)
    path = getattr(backend, "sqlite_db_path", None)
    if tables is not None and path:
        import sqlite3

        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                f"SELECT data_key, data_value FROM {tables.WORKFLOW_DATA} WHERE workflow_id = ? "
                "ORDER BY rowid",
                (workflow_id,),
            ).fetchall()
        return {key: app.client_data_store.deserialize(value) for key, value in rows}
    lister = getattr(backend, "list_workflow_data", None)
    if callable(lister):
        return dict(lister(workflow_id))
    raise HistoryFormatError(
        f"cannot list the workflow data of {type(backend).__name__}: exporting histories "
        "supports pynenc's memory and SQLite state backends (or a backend with "
        "list_workflow_data(workflow_id))."
    )


def read_payload(app: Pynenc, getter: Any, inv_id: str) -> str | None:
    """A stored result or exception as text; None when the backend holds none."""
    try:
        return str(getter(inv_id))
    except Exception:
        return None


def _child_record(app: Pynenc, inv_id: str) -> dict[str, Any]:
    backend = app.state_backend
    invocation = backend.get_invocation(inv_id)
    status = app.orchestrator.get_invocation_status(inv_id)
    record: dict[str, Any] = {
        "invocation_id": inv_id,
        "task": invocation.call.task.task_id.key,
        "call_id": str(invocation.call.call_id),
        "arguments": dict(sorted(invocation.call.serialized_arguments.items())),
        "status": str(status.value),
        "is_workflow": bool(invocation.call.task.is_workflow_root_task),
        "result": None,
        "exception": None,
    }
    if status.value == "success":
        record["result"] = read_payload(app, backend._get_result, inv_id)
    elif status.value == "failed":
        record["exception"] = read_payload(app, backend._get_exception, inv_id)
    return record


def _child_order_from_store(app: Pynenc, workflow_id: str, data: dict[str, Any]) -> list[str]:
    """The order in which the workflow's code obtained its children, read from the store:
    ``execute_task`` records each child's id in the workflow data when it first routes it
    (the data keeps insertion order), so the recorded keys give the call order."""
    children = [str(c) for c in app.state_backend.get_child_invocations(workflow_id)]
    known = set(children)
    order: list[str] = []
    for key, value in data.items():
        if (
            (key.startswith("task_invocation:") or engine_schema.records_child(key))
            and str(value) in known
            and str(value) not in order
        ):
            order.append(str(value))
    rest = [c for c in children if c not in order]

    def first_seen(inv_id: str) -> str:
        history = app.state_backend.get_history(inv_id)
        return history[0].timestamp.isoformat() if history else ""

    return order + sorted(rest, key=lambda c: (first_seen(c), children.index(c)))


def export_workflow(
    app: Pynenc, workflow_id: str, child_order: list[str] | None = None
) -> dict[str, Any]:
    """The replayable record of one workflow from ``app``'s state backend.

    ``child_order``: child invocation ids in the order the workflow's code obtained them
    (the simulator knows it); otherwise children are ordered by their first status record.
    """
    root = _child_record(app, workflow_id)
    data = _enumerate_workflow_data(app, workflow_id)
    if child_order is None:
        child_order = _child_order_from_store(app, workflow_id, data)
    serializer = app.serializer
    doc: dict[str, Any] = {
        "workflow_id": workflow_id,
        "task": root["task"],
        "arguments": root["arguments"],
        "status": root["status"],
        "result": root["result"],
        "exception": root["exception"],
        "children": [_child_record(app, c) for c in child_order],
        "data": {key: serializer.serialize(value) for key, value in sorted(data.items())},
    }
    awaited = _awaited_runs(data, set(child_order))
    if awaited:  # (only then: histories without such waits stay byte-identical)
        doc["awaited"] = [_child_record(app, inv_id) for inv_id in awaited]
    return doc


def _awaited_runs(data: dict[str, Any], children: set[str]) -> list[str]:
    """Invocations the workflow's code read but did not call: the run of another task that a
    ``wait_for_task(task)`` returned (its result is read on replay too)."""
    prefix = engine_schema.task_wait(0).rsplit(":", 1)[0] + ":"
    found: list[str] = []
    for key, value in data.items():
        if key.startswith(prefix) and isinstance(value, Mapping):
            done = value.get("done")
            if isinstance(done, str) and done not in children and done not in found:
                found.append(done)
    return found


def export_histories(
    app: Pynenc,
    *,
    workflow_id: str | None = None,
    workflow_type: str | None = None,
) -> dict[str, Any]:
    """A history document of workflows stored in ``app``'s (production) state backend:
    one by ``workflow_id`` (its invocation id, or the id given to the engine's
    ``start_workflow``: its current run), or every run of ``workflow_type``
    (``module.function``). An id that names no stored run gives no workflow record."""
    if (workflow_id is None) == (workflow_type is None):
        raise InvalidArgument("pass exactly one of workflow_id= or workflow_type=.")
    if workflow_id is not None:
        run_id = _stored_run_id(app, workflow_id)
        ids = [] if run_id is None else [run_id]
    else:
        from pynenc.identifiers.task_id import TaskId

        assert workflow_type is not None
        ids = sorted(
            str(w.workflow_id)
            for w in app.state_backend.get_workflow_runs(TaskId.from_key(workflow_type))
        )
    return {
        "format": FORMAT_NAME,
        "version": HISTORY_FORMAT_VERSION,
        "seed": None,
        "steps": [],
        "workflows": [export_workflow(app, wid) for wid in ids],
    }


def _stored_run_id(app: Pynenc, workflow_id: str) -> str | None:
    """The invocation id ``workflow_id`` names in ``app``'s store: itself when it is one,
    else the current run of a workflow id given to ``start_workflow`` (apps with the
    engine), else None (not a bare ``InvocationNotFoundError`` from the store)."""
    from pynenc.exceptions import InvocationNotFoundError

    try:
        app.state_backend.get_invocation(workflow_id)
        return workflow_id
    except InvocationNotFoundError:
        pass
    from pynenc_wf_testing.engine import client as engine_client
    from pynenc_wf_testing.engine.exceptions import UnknownWorkflow
    from pynenc_wf_testing.engine.host import workflows_enabled

    if not workflows_enabled(app):
        return None
    try:
        return engine_client.describe_workflow(app, workflow_id).run_id
    except UnknownWorkflow:
        return None
