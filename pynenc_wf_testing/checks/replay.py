"""Recorded workflow histories and the Replayer.

A history document (format ``pynenc-wf-history``, see docs/history-format.md) holds the step
list of a run plus, per workflow, what its code needs to replay: its arguments, each child
call in the order the code made it (task, call id, arguments, status, result), and its
workflow data (deterministic values, timers, signals, ...), all as pynenc-serialized strings.

The Replayer seeds a fresh simulated store with one workflow's records and runs the workflow
invocation through the same runner and pynenc code as any simulated run: its children are
already final, so nothing but the workflow body executes. A divergence raises
``NondeterminismError`` naming the first divergent child call.
"""

from __future__ import annotations

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
    return {
        "workflow_id": workflow_id,
        "task": root["task"],
        "arguments": root["arguments"],
        "status": root["status"],
        "result": root["result"],
        "exception": root["exception"],
        "children": [_child_record(app, c) for c in child_order],
        "data": {key: serializer.serialize(value) for key, value in sorted(data.items())},
    }


def export_histories(
    app: Pynenc,
    *,
    workflow_id: str | None = None,
    workflow_type: str | None = None,
) -> dict[str, Any]:
    """A history document of workflows stored in ``app``'s (production) state backend:
    one by ``workflow_id``, or every run of ``workflow_type`` (``module.function``)."""
    if (workflow_id is None) == (workflow_type is None):
        raise InvalidArgument("pass exactly one of workflow_id= or workflow_type=.")
    if workflow_id is not None:
        ids = [workflow_id]
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


# ---------------------------------------------------------------------- load and validate

_WORKFLOW_FIELDS = {
    "workflow_id": str,
    "task": str,
    "arguments": dict,
    "status": str,
    "children": list,
    "data": dict,
}
_CHILD_FIELDS = {"invocation_id": str, "task": str, "call_id": str, "arguments": dict, "status": str}


@dataclass
class History:
    """A loaded, validated history document."""

    steps: list[Step]
    workflows: list[dict[str, Any]]
    seed: int | None = None
    source: str = "<memory>"

    def workflow(self, workflow_id: str | None = None) -> dict[str, Any]:
        if not self.workflows:
            raise HistoryFormatError(f"{self.source}: the history holds no workflow records.")
        if workflow_id is None:
            return self.workflows[0]
        for record in self.workflows:
            if record["workflow_id"] == workflow_id:
                return record
        known = ", ".join(r["workflow_id"] for r in self.workflows)
        raise HistoryFormatError(
            f"{self.source}: no workflow {workflow_id!r} in the history (it has: {known})."
        )


def _require(obj: Mapping[str, Any], fields: Mapping[str, type], where: str, source: str) -> None:
    for name, kind in fields.items():
        if name not in obj:
            raise HistoryFormatError(f"{source}: {where} lacks the field {name!r}.")
        if not isinstance(obj[name], kind):
            raise HistoryFormatError(
                f"{source}: {where}.{name} should be a {kind.__name__}, got "
                f"{type(obj[name]).__name__}."
            )


def load_history(source: str | os.PathLike[str] | Mapping[str, Any]) -> History:
    """Load and validate a history (a path, a JSON string or an already-parsed dict)."""
    label = "<dict>"
    if isinstance(source, Mapping):
        doc: Any = dict(source)
    else:
        text = str(source)
        if not text.lstrip().startswith("{"):
            label = text
            try:
                with open(text, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as error:
                raise HistoryFormatError(f"cannot read history file {label}: {error}") from error
        else:
            label = "<json>"
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as error:
            raise HistoryFormatError(
                f"{label}: not valid JSON ({error.msg} at line {error.lineno} column "
                f"{error.colno})."
            ) from error
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise HistoryFormatError(
            f"{label}: not a pynenc-wf history (expected \"format\": \"{FORMAT_NAME}\"). "
            "Produce one with wf_env.history_json(), --wf-record or `pynenc-wf export`."
        )
    version = doc.get("version")
    if version != HISTORY_FORMAT_VERSION:
        raise HistoryFormatError(
            f"{label}: history format version {version!r} is not supported (this "
            f"pynenc-wf-testing reads version {HISTORY_FORMAT_VERSION})."
        )
    steps_raw = doc.get("steps", [])
    if not isinstance(steps_raw, list):
        raise HistoryFormatError(f"{label}: 'steps' should be a list.")
    steps: list[Step] = []
    for index, raw in enumerate(steps_raw):
        try:
            steps.append(Step(**raw))
        except TypeError as error:
            raise HistoryFormatError(f"{label}: steps[{index}] is malformed: {error}.") from error
    workflows = doc.get("workflows", [])
    if not isinstance(workflows, list):
        raise HistoryFormatError(f"{label}: 'workflows' should be a list.")
    for index, record in enumerate(workflows):
        if not isinstance(record, dict):
            raise HistoryFormatError(f"{label}: workflows[{index}] should be an object.")
        _require(record, _WORKFLOW_FIELDS, f"workflows[{index}]", label)
        for c_index, child in enumerate(record["children"]):
            if not isinstance(child, dict):
                raise HistoryFormatError(
                    f"{label}: workflows[{index}].children[{c_index}] should be an object."
                )
            _require(child, _CHILD_FIELDS, f"workflows[{index}].children[{c_index}]", label)
    seed = doc.get("seed")
    return History(steps=steps, workflows=workflows, seed=seed if isinstance(seed, int) else None,
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
        return _run_replay(world, app, record)


def _start_of(history: History) -> Any:
    import datetime as dt

    times = [s.time for s in history.steps if s.time]
    if not times:
        return None
    return dt.datetime.fromisoformat(max(times))


def _run_replay(world: WorldHost, app: Pynenc, record: dict[str, Any]) -> ReplayResult:
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
    identity = WorkflowIdentity(
        workflow_id=InvocationId(workflow_id), workflow_type=task.task_id
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
        for child in record["children"]:
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
        sim.drive(goal=lambda: root.status.is_final() or not (sim.ready or sim.broker_dirty),
                  goal_ids=[workflow_id])
    except NondeterminismError as error:
        result.ok, result.error = False, error
    except ReplayFrontier:
        pass
    result.steps = list(sim.history)
    result.replayed_calls = len(sim.positions.get(workflow_id, ()))
    status = root.status
    if result.error is None and status.is_final():
        result.completed = True
        if record["status"] not in ("success", "failed"):
            pass
        elif status.value != record["status"]:
            result.ok = False
            result.error = NondeterminismError(
                f"workflow {task.task_id.func_name} [{workflow_id[:8]}] ended "
                f"{status.value} on replay but the history recorded {record['status']}."
            )
        elif status.value == "success":
            text = app.state_backend._get_result(workflow_id)
            result.result = serializer.deserialize(text)
            if record.get("result") is not None and digest(text) != digest(record["result"]):
                result.ok = False
                result.error = NondeterminismError(
                    f"workflow {task.task_id.func_name} [{workflow_id[:8]}] returned "
                    f"{text} on replay but the history recorded {record['result']}."
                )
        obtained = sim.replay_obtained.get(workflow_id, 0)
        if result.ok and finished and obtained < recorded_calls:
            missing = record["children"][obtained]
            result.ok = False
            result.error = NondeterminismError(
                f"workflow {task.task_id.func_name} [{workflow_id[:8]}] diverged from its "
                f"recorded history at child call #{obtained + 1}: the history recorded "
                f"{missing['task'].rsplit('.', 1)[-1]}("
                + ", ".join(f"{k}={v}" for k, v in sorted(missing["arguments"].items()))
                + ") but the replayed code finished without making that call."
            )
    return result
