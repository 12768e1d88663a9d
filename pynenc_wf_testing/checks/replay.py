"""Recorded workflow histories and the Replayer.

A history document (format ``pynenc-wf-history``, see docs/history-format.md) holds the step
list of a run plus, per workflow, what its code needs to replay: its arguments, each child
call in the order the code made it (task, call id, arguments, status, result), and its
workflow data (deterministic values, timers, signals, ...), all as pynenc-serialized strings.

The Replayer seeds a fresh simulated store with one workflow's records and runs the workflow
invocation through the same runner and pynenc code as any simulated run: its children are
already final, so nothing but the workflow body executes. A divergence raises
``NondeterminismError`` naming the first divergent step. A finished history replays only if the
code takes exactly its steps and ends as recorded (``_Watch``); one still in flight replays
up to where it stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.errors import HistoryFormatError, InvalidArgument, NondeterminismError
from pynenc_wf_testing.runtime.history import HISTORY_FORMAT_VERSION, Step

if TYPE_CHECKING:
    from pynenc.app import Pynenc

    from pynenc_wf_testing.runtime.world import WorldHost

__all__ = [
    "History",
    "ReplayResult",
    "Replayer",
    "export_histories",
    "load_history",
]

FORMAT_NAME = "pynenc-wf-history"

#: Where a replay of a finished history diverges because the code changed.
_PATCH_HINT = (
    "If the change is intended, branch on wf.root.patched(\"<change-id>\") so runs recorded "
    "before it take the old path (docs/engine.md, versioning)."
)


def digest(text: str | None) -> str | None:
    """Short stable digest of a serialized payload (sha256, 16 hex chars)."""
    if text is None:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------- export


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


def _payload(app: Pynenc, getter: Any, inv_id: str) -> str | None:
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
        record["result"] = _payload(app, backend._get_result, inv_id)
    elif status.value == "failed":
        record["exception"] = _payload(app, backend._get_exception, inv_id)
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
    from pynenc_wf_testing.engine._ops import workflows_enabled
    from pynenc_wf_testing.engine.exceptions import UnknownWorkflow

    if not workflows_enabled(app):
        return None
    try:
        return engine_client.describe_workflow(app, workflow_id).run_id
    except UnknownWorkflow:
        return None


# ---------------------------------------------------------------------- load and validate

#: Required fields and their JSON types (a tuple: any of them).
_WORKFLOW_FIELDS: dict[str, tuple[type, ...]] = {
    "workflow_id": (str,),
    "task": (str,),
    "arguments": (dict,),
    "status": (str,),
    "children": (list,),
    "data": (dict,),
}
_WORKFLOW_OPTIONAL: dict[str, tuple[type, ...]] = {
    "awaited": (list,),
    "result": (str, type(None)),
    "exception": (str, type(None)),
}
_CHILD_FIELDS: dict[str, tuple[type, ...]] = {
    "invocation_id": (str,),
    "task": (str,),
    "call_id": (str,),
    "arguments": (dict,),
    "status": (str,),
}
_CHILD_OPTIONAL: dict[str, tuple[type, ...]] = {
    "result": (str, type(None)),
    "exception": (str, type(None)),
    "is_workflow": (bool,),
}
_STEP_FIELDS: dict[str, tuple[type, ...]] = {
    "number": (int, type(None)),
    "kind": (str,),
    "name": (str,),
    "workflow_id": (str, type(None)),
    "invocation_id": (str, type(None)),
    "time": (str,),
}
_STEP_OPTIONAL: dict[str, tuple[type, ...]] = {
    "task": (str, type(None)),
    "detail": (dict,),
}
_JSON_NAMES = {
    str: "string", int: "integer", dict: "object", list: "list", bool: "boolean",
    type(None): "null", float: "number",
}
#: What to do about a document that is not what this version writes.
_REDO = (
    "Record or export it again (wf_env.history_json(), --wf-record or `pynenc-wf export`) "
    "rather than editing it by hand."
)


@dataclass
class History:
    """A loaded, validated history document."""

    steps: list[Step]
    workflows: list[dict[str, Any]]
    seed: int | None = None
    source: str = "<memory>"

    def workflow(self, workflow_id: str | None = None) -> dict[str, Any]:
        if not self.workflows:
            raise HistoryFormatError(
                f"{self.source}: the history holds no workflow records, so there is nothing "
                f"to replay. {_REDO}"
            )
        if workflow_id is None:
            return self.workflows[0]
        for record in self.workflows:
            if record["workflow_id"] == workflow_id:
                return record
        known = ", ".join(r["workflow_id"] for r in self.workflows)
        raise HistoryFormatError(
            f"{self.source}: no workflow {workflow_id!r} in the history (it has: {known})."
        )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _json_type(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _require(
    obj: Mapping[str, Any],
    fields: Mapping[str, tuple[type, ...]],
    where: str,
    source: str,
    optional: Mapping[str, tuple[type, ...]] | None = None,
) -> None:
    for name in fields:
        if name not in obj:
            raise HistoryFormatError(f"{source}: {where} lacks the field {name!r}. {_REDO}")
    for name, kinds in {**fields, **(optional or {})}.items():
        if name not in obj:
            continue
        value = obj[name]
        # bool is an int to Python, not to JSON: a step number of true is wrong.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            expected = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
            raise HistoryFormatError(
                f"{source}: {where}.{name} should be {_article(expected)} {expected}, got "
                f"{_json_type(value)} "
                f"({_short(json.dumps(value, default=repr), 60)}). {_REDO}"
            )


def _require_strings(mapping: Mapping[str, Any], where: str, source: str) -> None:
    """Arguments and workflow data hold the app serializer's strings."""
    for key, value in mapping.items():
        if not isinstance(value, str):
            raise HistoryFormatError(
                f"{source}: {where}[{key!r}] should be a string (a serialized payload), got "
                f"{_json_type(value)}. {_REDO}"
            )


def _read_text(path: str) -> str:
    if os.path.isdir(path):
        raise HistoryFormatError(
            f"{path} is a directory, not a history file: pass one of the .json files in it "
            "(or the directory to --wf-replay, which replays all of them)."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as error:
        raise HistoryFormatError(
            f"{path}: not a UTF-8 text file (byte {error.start}: {error.reason}); a history "
            f"is JSON text. Check that you passed the right file. {_REDO}"
        ) from None
    except OSError as error:
        raise HistoryFormatError(
            f"cannot read history file {path}: {error.strerror or error}. Check the path."
        ) from None


def _parse(text: str, label: str) -> Any:
    if not text.strip():
        raise HistoryFormatError(
            f"{label}: the file is empty (an interrupted write?). {_REDO}"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        # An unterminated string runs to the end of the text: cut short, like an error at
        # the very end.
        cut = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string")
        raise HistoryFormatError(
            f"{label}: not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno})"
            + ("; the document ends early: the file looks truncated" if cut else "")
            + f". {_REDO}"
        ) from None
    except RecursionError:
        raise HistoryFormatError(f"{label}: JSON nested too deeply to be a history. {_REDO}") from None


def load_history(source: str | os.PathLike[str] | Mapping[str, Any]) -> History:
    """Load and validate a history (a path, a JSON string or an already-parsed dict).

    Anything that is not a well-formed ``pynenc-wf-history`` document of a supported version
    raises ``HistoryFormatError`` saying what is wrong and what to do."""
    label = "<dict>"
    if isinstance(source, Mapping):
        doc: Any = dict(source)
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if not isinstance(text, str):
            text = os.fsdecode(text)
        if not text.strip():
            raise HistoryFormatError(
                "load_history() got an empty string: pass the path of a history file, its "
                "JSON text or the parsed dict."
            )
        if isinstance(source, os.PathLike) or not text.lstrip().startswith("{"):
            label = text
            text = _read_text(text)
        else:
            label = "<json>"
        doc = _parse(text, label)
    else:
        raise HistoryFormatError(
            f"load_history() expects a path, JSON text or a dict, got {type(source).__name__}."
        )
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise HistoryFormatError(
            f"{label}: not a pynenc-wf history (expected \"format\": \"{FORMAT_NAME}\"). "
            "Produce one with wf_env.history_json(), --wf-record or `pynenc-wf export`."
        )
    version = doc.get("version")
    if version != HISTORY_FORMAT_VERSION or isinstance(version, bool):
        raise HistoryFormatError(
            f"{label}: history format version {version!r} is not supported (this "
            f"pynenc-wf-testing reads version {HISTORY_FORMAT_VERSION}). Replay it with the "
            "pynenc-wf-testing release that wrote it, or record it again with this one."
        )
    steps_raw = doc.get("steps", [])
    if not isinstance(steps_raw, list):
        raise HistoryFormatError(
            f"{label}: 'steps' should be a list, got {_json_type(steps_raw)}. {_REDO}"
        )
    steps: list[Step] = []
    for index, raw in enumerate(steps_raw):
        where = f"steps[{index}]"
        if not isinstance(raw, dict):
            raise HistoryFormatError(
                f"{label}: {where} is malformed: it should be an object, got "
                f"{_json_type(raw)}. {_REDO}"
            )
        unknown = sorted(set(raw) - set(_STEP_FIELDS) - set(_STEP_OPTIONAL))
        if unknown:
            raise HistoryFormatError(
                f"{label}: {where} is malformed: unknown field(s) {', '.join(unknown)}. {_REDO}"
            )
        _require(raw, _STEP_FIELDS, where, label, _STEP_OPTIONAL)
        steps.append(Step(**raw))
    workflows = doc.get("workflows", [])
    if not isinstance(workflows, list):
        raise HistoryFormatError(
            f"{label}: 'workflows' should be a list, got {_json_type(workflows)}. {_REDO}"
        )
    for index, record in enumerate(workflows):
        where = f"workflows[{index}]"
        if not isinstance(record, dict):
            raise HistoryFormatError(
                f"{label}: {where} should be an object, got {_json_type(record)}. {_REDO}"
            )
        _require(record, _WORKFLOW_FIELDS, where, label, _WORKFLOW_OPTIONAL)
        if not record["workflow_id"].strip():
            raise HistoryFormatError(f"{label}: {where}.workflow_id is empty. {_REDO}")
        if "." not in record["task"]:
            raise HistoryFormatError(
                f"{label}: {where}.task should name the workflow as module.function, got "
                f"{record['task']!r}. {_REDO}"
            )
        _require_strings(record["arguments"], f"{where}.arguments", label)
        _require_strings(record["data"], f"{where}.data", label)
        for c_index, child in enumerate([*record["children"], *record.get("awaited", [])]):
            c_where = f"{where}.children[{c_index}]"
            if not isinstance(child, dict):
                raise HistoryFormatError(
                    f"{label}: {c_where} should be an object, got {_json_type(child)}. {_REDO}"
                )
            _require(child, _CHILD_FIELDS, c_where, label, _CHILD_OPTIONAL)
            _require_strings(child["arguments"], f"{c_where}.arguments", label)
    seed = doc.get("seed")
    return History(steps=steps, workflows=workflows,
                   seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                   source=label)


# ---------------------------------------------------------------------- replay


@dataclass
class ReplayResult:
    """The outcome of replaying one workflow."""

    workflow_id: str
    ok: bool
    completed: bool
    result: Any = None
    error: NondeterminismError | None = None
    replayed_calls: int = 0
    steps: list[Step] = field(default_factory=list)


class Replayer:
    """Replays recorded workflow histories against the current code, in the simulator.

    ``Replayer(app).replay(history)`` re-runs the workflow's code with the recorded child
    results, deterministic values, timer firings and signals; nothing else executes. Use it
    in CI to learn whether workflows already in flight will replay under new code.
    """

    def __init__(self, app: Pynenc, *, seed: int = 0) -> None:
        from pynenc.app import Pynenc as _Pynenc

        if not isinstance(app, _Pynenc):
            raise InvalidArgument(
                f"Replayer() expects a pynenc app, got {type(app).__name__}: {app!r}."
            )
        self.app = app
        self.seed = seed

    def replay(
        self,
        history: History | str | os.PathLike[str] | Mapping[str, Any],
        *,
        workflow_id: str | None = None,
        raise_on_replay_failure: bool = True,
    ) -> ReplayResult:
        """Replay one workflow of ``history`` (the first, or ``workflow_id``)."""
        loaded = history if isinstance(history, History) else load_history(history)
        record = loaded.workflow(workflow_id)
        from pynenc_wf_testing.runtime.world import active_world, private_world

        active = active_world()
        if active is not None:
            result = _replay_in(active, self.app, record, loaded)
        else:
            with private_world(self.seed) as private:
                result = _replay_in(private, self.app, record, loaded)
        if result.error is not None and raise_on_replay_failure:
            raise result.error
        return result


def _replay_in(world: WorldHost, app: Pynenc, record: dict[str, Any], history: History) -> ReplayResult:
    from pynenc_wf_testing.runtime.seeding import derive_seed

    world.bind(app)
    # The replay runs in a fresh world; the environment's own is put back however it ends.
    with world.isolated():
        world.renew(start=_start_of(history))
        # The recorded ids came from some seed's id stream: draw the replay's own new ids
        # (a divergent child) from a stream of their own so they can never collide.
        world.reseed_ids(derive_seed(world.seed, "replay"))
        return _run_replay(world, app, record, history)


def _start_of(history: History) -> Any:
    import datetime as dt

    times = [s.time for s in history.steps if s.time]
    if not times:
        return None
    return dt.datetime.fromisoformat(max(times))


def _parent_workflow(history: History, workflow_id: str) -> str | None:
    """The workflow that called ``workflow_id`` as a sub-workflow, from the history's steps
    (its routing is a step of its parent); None for a top-level one or without steps."""
    for step in history.steps:
        if step.kind == "route" and step.invocation_id == workflow_id:
            return None if step.workflow_id in (None, workflow_id) else step.workflow_id
    return None


def _run_replay(
    world: WorldHost, app: Pynenc, record: dict[str, Any], history: History
) -> ReplayResult:
    from pynenc.call import Call
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.identifiers.task_id import TaskId
    from pynenc.invocation.dist_invocation import TaskInvocation, WorkflowInvocation
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.runner_context import RunnerContext
    from pynenc.workflow.workflow_identity import WorkflowIdentity

    from pynenc_wf_testing.runtime.components import SIM_ATTR
    from pynenc_wf_testing.runtime.determinism import ReplayFrontier

    sim = world.sim
    workflow_id = record["workflow_id"]
    task = app.get_task(TaskId.from_key(record["task"]))
    parent = _parent_workflow(history, workflow_id)
    identity = WorkflowIdentity(
        workflow_id=InvocationId(workflow_id),
        workflow_type=task.task_id,
        # A sub-workflow replays as one (continue_as_new, for one, refuses to run there).
        parent_workflow_id=None if parent is None else InvocationId(parent),
    )
    serializer = app.serializer
    ctx = RunnerContext(runner_cls="Replayer", runner_id="replayer")

    child_ids = {c["invocation_id"] for c in record["children"]}
    for key, text in record["data"].items():
        if key.startswith("task_invocation:"):
            referenced = str(serializer.deserialize(text))
            if referenced not in child_ids:
                raise HistoryFormatError(
                    f"workflow {workflow_id}: its data records child {referenced} (under "
                    f"{key!r}) but the history's children list lacks it: the file was edited "
                    "or truncated."
                )

    # Seed the store with the recorded children and data, unobserved (not steps of the replay).
    setattr(app, SIM_ATTR, None)
    try:
        seen: set[str] = set()
        # The awaited runs of other tasks are stored like children (the code reads their
        # result) but are no child calls: the recorded call order below lists children only.
        for child in [*record["children"], *record.get("awaited", [])]:
            child_id = child["invocation_id"]
            if child_id in seen:
                continue
            seen.add(child_id)
            child_task = app.get_task(TaskId.from_key(child["task"]))
            call = Call(child_task, _serialized_arguments=dict(child["arguments"]))
            if child.get("is_workflow"):
                invocation: Any = WorkflowInvocation(
                    call=call,
                    invocation_id=InvocationId(child_id),
                    parent_invocation_id=InvocationId(workflow_id),
                    workflow=WorkflowIdentity(
                        workflow_id=InvocationId(child_id),
                        workflow_type=child_task.task_id,
                        parent_workflow_id=InvocationId(workflow_id),
                    ),
                    stored_in_backend=False,
                )
            else:
                invocation = TaskInvocation(
                    call=call,
                    invocation_id=InvocationId(child_id),
                    parent_invocation_id=InvocationId(workflow_id),
                    workflow=identity,
                    stored_in_backend=False,
                )
            app.orchestrator._register_new_invocations([invocation], ctx.runner_id)
            status = child["status"]
            if status in ("success", "failed"):
                for step in (InvocationStatus.PENDING, InvocationStatus.RUNNING):
                    app.orchestrator.set_invocation_status(child_id, step, ctx)
                if status == "success":
                    app.state_backend._set_result(child_id, child.get("result") or "null")
                    app.orchestrator.set_invocation_status(child_id, InvocationStatus.SUCCESS, ctx)
                else:
                    app.state_backend._set_exception(child_id, child.get("exception") or "")
                    app.orchestrator.set_invocation_status(child_id, InvocationStatus.FAILED, ctx)
        for key, text in record["data"].items():
            app.state_backend.set_workflow_data(identity, key, serializer.deserialize(text))
    finally:
        setattr(app, SIM_ATTR, sim)

    # The recorded order of child calls: a replay must ask for the same ones.
    sim.positions[workflow_id] = [child["invocation_id"] for child in record["children"]]
    sim.replay_calls[workflow_id] = [child["call_id"] for child in record["children"]]
    recorded_calls = len(record["children"])
    finished = record["status"] in ("success", "failed")
    sim.replay_limits[workflow_id] = (recorded_calls, finished)
    watch = _Watch(sim, app, record, history) if finished else None

    call = Call(task, _serialized_arguments=dict(record["arguments"]))
    root = WorkflowInvocation(
        call=call,
        invocation_id=InvocationId(workflow_id),
        parent_invocation_id=None,
        workflow=identity,
        stored_in_backend=False,
    )
    app.orchestrator.register_new_invocations([root])
    result = ReplayResult(workflow_id=workflow_id, ok=True, completed=False)
    try:
        # No clock move in a replay: the clock stands at the history's last instant, where
        # every recorded timer has fired, so a wait that would need time to pass is new.
        sim.drive(goal=lambda: root.status.is_final() or not (sim.ready or sim.broker_dirty),
                  goal_ids=[workflow_id])
    except NondeterminismError as error:
        # Against a recorded history the usual cause is a code change, not a nondeterministic
        # value: point at versioning as well.
        result.ok, result.error = False, NondeterminismError(f"{error} {_PATCH_HINT}")
        if _PATCH_HINT in str(error):
            result.error = error
    except ReplayFrontier:
        pass
    result.steps = list(sim.history)
    result.replayed_calls = len(sim.positions.get(workflow_id, ()))
    status = root.status
    result.completed = result.error is None and status.is_final()
    if watch is not None:
        watch.close()
        if result.error is None:
            result.error = watch.stopped_early() if not status.is_final() else watch.ended(status)
            result.ok = result.error is None
    if status.value == "success":  # (also when it differs from the record: to compare)
        result.result = serializer.deserialize(app.state_backend._get_result(workflow_id))
    return result


@functools.cache
def _consumed_prefixes() -> tuple[str, ...]:
    """Keys of records the workflow's own code consumes by position (pynenc's deterministic
    values, the engine's timers, waits and values): one the replay never reads is a step the
    new code no longer takes. Patch markers are left out on purpose: a retired patch must
    not break the histories recorded with it. (Computed on first use: the engine imports
    pynenc, which loading a history does not need.)"""
    from pynenc_wf_testing.engine import schema

    return (
        "random:",
        "uuid:",
        "time:",
        schema.signal_wait("", 0).rsplit(":", 2)[0] + ":",
        *(
            key(0).rsplit(":", 1)[0] + ":"
            for name, key in schema.POSITIONED
            # A retried call's intents are not read back once its attempt is known: its
            # attempts are child calls, compared one by one.
            if name != "retry_call"
        ),
    )


# Keys of patched() decisions (schema.patch("x") is "<prefix>x").
_PATCH_PREFIX = engine_schema.patch("")


class _Watched(list[Step]):
    """The replay world's step list: tells the watch of each step as it commits."""

    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def append(self, step: Step) -> None:
        super().append(step)
        self.watch.on_step(step)


class _Watch:
    """What a replay of a finished history must hold to (see docs/history-format.md):
    no durable step the history lacks, no stop before the end, every recorded step taken,
    the recorded status, result or failure."""

    def __init__(self, sim: Any, app: Pynenc, record: dict[str, Any], history: History) -> None:
        self.sim = sim
        self.app = app
        self.record = record
        self.history = history
        self.workflow_id: str = record["workflow_id"]
        self.read: set[str] = set()
        sim.record_into(_Watched(self))
        backend = app.state_backend
        original = backend.get_workflow_data
        workflow_id = self.workflow_id
        read = self.read

        # An instance attribute on the replay world's own backend (dropped with that world).
        def get_workflow_data(identity: Any, key: str, default: Any = None) -> Any:
            if str(identity.workflow_id) == workflow_id:
                read.add(key)
            return original(identity, key, default)

        self._backend = backend
        self._had_own = "get_workflow_data" in vars(backend)
        self._own = vars(backend).get("get_workflow_data")
        backend.get_workflow_data = get_workflow_data

    def close(self) -> None:
        """Stop tracking reads (the backend may outlive the replay world)."""
        if self._had_own:
            self._backend.get_workflow_data = self._own
        else:
            vars(self._backend).pop("get_workflow_data", None)

    # -- wording

    @property
    def label(self) -> str:
        return f"workflow {self.sim.label(self.workflow_id)}"

    def _call_text(self, index: int) -> str:
        child = self.record["children"][index]
        args = ", ".join(f"{k}={v}" for k, v in sorted(child["arguments"].items()))
        return f"child call #{index + 1} {child['task'].rsplit('.', 1)[-1]}({args})"

    def _where(self) -> str:
        obtained = min(self.sim.replay_obtained.get(self.workflow_id, 0),
                       len(self.record["children"]))
        if obtained == 0:
            return "before its first child call"
        return f"after {self._call_text(obtained - 1)}"

    def _recorded_next(self) -> str:
        obtained = self.sim.replay_obtained.get(self.workflow_id, 0)
        if obtained < len(self.record["children"]):
            return self._call_text(obtained)
        return f"the end of the workflow ({self.record['status']})"

    def _error(self, now: str, *, hint: str = _PATCH_HINT) -> NondeterminismError:
        return NondeterminismError(
            f"{self.label} diverged from its recorded history {self._where()}: the history "
            f"recorded next {self._recorded_next()}, but the replayed code now {now}. {hint}"
        )

    # -- a new step, at once

    def on_step(self, step: Step) -> None:
        if step.workflow_id != self.workflow_id or self._expected(step):
            return
        what = {"timer": "durable timer", "signal": "signal", "value": "recorded value",
                "data": "workflow data write", "state": "state snapshot", "halt": "halt"}
        self.sim.abort(self._error(
            f"takes the step {step.name} (a {what.get(step.kind, step.kind)}), which the "
            "history does not have"
        ))

    def _expected(self, step: Step) -> bool:
        if step.invocation_id == self.workflow_id and step.kind in ("route", "result"):
            return True  # the replayed invocation itself: its status is compared at the end
        if step.kind in ("route", "record"):
            return True  # a child call: the simulator compares it with the recorded calls
        key = str(step.detail.get("key", ""))
        if key.startswith(_PATCH_PREFIX):
            return True  # patched() records its decision on every path
        # The body rewrites data it wrote when recorded (the history keeps the last value).
        return step.kind == "data" and key in self.record["data"]

    # -- at the end

    def stopped_early(self) -> NondeterminismError:
        sim = self.sim
        thread = sim.threads.get(self.workflow_id)
        stalled = sim.stalled.get(self.workflow_id)
        if thread is not None and thread.waiting_for is not None:
            until = (f" (until {_iso_micros(thread.sleeping_until)})"
                     if thread.sleeping_until is not None else "")
            now = (f"waits for {thread.waiting_what}{until}, a wait the history does not "
                   "have (the replay stops there)")
        elif thread is not None and thread.sleeping_until is not None:
            return self._error(
                f"sleeps in time.sleep() until {_iso_micros(thread.sleeping_until)} (the replay "
                "stops there)",
                hint="A time.sleep() in a workflow body is not recorded, so a replay cannot "
                "tell it from new code, and a crash re-runs it in full: use the durable "
                "wf.root.sleep() instead (docs/engine.md, timers).",
            )
        elif thread is not None and thread.waiting_on:
            now = f"waits for the result of {', '.join(sim.label(i) for i in thread.waiting_on)}"
        elif stalled is not None:
            now = f"stops: it {stalled}"
        else:
            now = "stops before the end (nothing left to run in the replay)"
        return self._error(now)

    def ended(self, status: Any) -> NondeterminismError | None:
        missing = self._missing_step(status)
        if missing is not None:
            return missing
        record = self.record
        backend = self.app.state_backend
        if status.value != record["status"]:
            return NondeterminismError(
                f"{self.label} ended {status.value} on replay but the history recorded "
                f"{record['status']}"
                + (f" ({_exception_text(record['exception'])})" if record.get("exception")
                   else "")
                + (f"; now: {_exception_text(backend._get_exception(self.workflow_id))}"
                   if status.value == "failed" else "")
                + f". {_PATCH_HINT}"
            )
        if status.value == "success":
            text = backend._get_result(self.workflow_id)
            if record.get("result") is not None and digest(text) != digest(record["result"]):
                return NondeterminismError(
                    f"{self.label} returned {_short(text)} on replay but the history recorded "
                    f"{_short(record['result'])}. {_PATCH_HINT}"
                )
        elif record.get("exception") is not None:
            text = _payload(self.app, backend._get_exception, self.workflow_id)
            if digest(text) != digest(record["exception"]):
                return NondeterminismError(
                    f"{self.label} failed on replay with {_exception_text(text)} but the "
                    f"history recorded a failure with {_exception_text(record['exception'])}. "
                    f"{_PATCH_HINT}"
                )
        return None

    def _missing_step(self, status: Any) -> NondeterminismError | None:
        """The first recorded step the replayed code finished without taking."""
        record = self.record
        children = record["children"]
        obtained = self.sim.replay_obtained.get(self.workflow_id, 0)
        unread = [
            key for key in record["data"]
            if key.startswith(_consumed_prefixes()) and key not in self.read
        ]
        # Name the one that came first in the recording (when the file has its steps).
        order: dict[str, tuple[int, str]] = {}
        for step in self.history.steps:
            if step.workflow_id != self.workflow_id or step.number is None:
                continue
            key = step.detail.get("key")
            if key in record["data"]:
                order.setdefault(str(key), (step.number, step.name))
            if step.kind == "result" and step.invocation_id != self.workflow_id:
                order.setdefault(f"child:{step.invocation_id}", (step.number, step.name))
        candidates: list[tuple[float, str, str]] = []
        if obtained < len(children):
            child_key = f"child:{children[obtained]['invocation_id']}"
            number = order.get(child_key, (float("inf"), ""))[0]
            candidates.append((number, "child", self._call_text(obtained)))
        for key in unread:
            number, name = order.get(key, (float("inf"), key))
            candidates.append((number, "record", f"{name} (workflow data {key!r})"))
        if not candidates:
            return None
        _, kind, what = min(candidates, key=lambda c: c[0])
        if kind == "child":
            # The same wording as the simulator's own child-call divergences.
            child = children[obtained]
            args = ", ".join(f"{k}={v}" for k, v in sorted(child["arguments"].items()))
            return NondeterminismError(
                f"{self.label} diverged from its recorded history at child call "
                f"#{obtained + 1}: the history recorded {child['task'].rsplit('.', 1)[-1]}"
                f"({args}) but the replayed code finished ({status.value}) "
                "without making that call. "
                f"{_PATCH_HINT}"
            )
        return NondeterminismError(
            f"{self.label} diverged from its recorded history: the history recorded the step "
            f"{what} but the replayed code finished without taking it. {_PATCH_HINT}"
        )


def _iso_micros(micros: int) -> str:
    from pynenc_wf_testing.runtime.clock import from_micros

    return from_micros(micros).isoformat()


def _exception_text(text: str | None) -> str:
    """``ValueError('no stock')`` from pynenc's serialized exception (its JSON envelope
    around the jsonpickle of the exception), or the text itself when it has another shape."""
    try:
        envelope = json.loads(text or "")
        name = str(envelope["error_name"])
        reduced = json.loads(envelope["error_data"])["py/reduce"][1]["py/tuple"]
        return f"{name}({', '.join(repr(arg) for arg in reduced)})"
    except Exception:
        return _short(text)


def _short(text: str | None, limit: int = 200) -> str:
    text = "None" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
