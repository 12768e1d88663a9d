"""Recorded workflow histories and the Replayer.

The Replayer seeds a fresh simulated store with one workflow's records and runs the workflow
invocation through the same runner and pynenc code as any simulated run: its children are
already final, so nothing but the workflow body executes. A divergence raises
``NondeterminismError`` naming the first divergent step. A finished history replays only if the
code takes exactly its steps and ends as recorded (``_replay_watch.ReplayWatch``); one still in
flight replays up to where it stopped.

The parts live beside it: the document and its loading (``_history_format``: ``History``,
``load_history``), export from a state backend (``_history_export``), and the checks on a
finished history (``_replay_watch``). Every name stays importable from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.errors import HistoryFormatError, InvalidArgument, NondeterminismError
from pynenc_wf_testing.runtime.history import Step

from ._history_export import export_histories as export_histories
from ._history_export import export_workflow as export_workflow
from ._history_format import FORMAT_NAME as FORMAT_NAME
from ._history_format import History as History
from ._history_format import load_history as load_history
from ._replay_watch import PATCH_HINT, ReplayWatch
from ._replay_watch import digest as digest

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
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidArgument(
                f"Replayer(seed=...) must be a non-negative int, got {seed!r}. Pass e.g. "
                "Replayer(app, seed=7) (it seeds only the ids of calls the history lacks)."
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
        if not isinstance(raise_on_replay_failure, bool):
            raise InvalidArgument(
                f"replay(raise_on_replay_failure={raise_on_replay_failure!r}): expected True or "
                "False (a string such as 'no' would count as true). Pass "
                "raise_on_replay_failure=False to get the failure in ReplayResult.error."
            )
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


def _require_own_app(app: Pynenc, task_id: Any) -> None:
    """Refuse to replay a workflow on an app that is not the one its module defines it on:
    its children would run on the wrong app and the replay would "diverge" at its first child
    call, naming no cause."""
    import importlib

    from pynenc.task import Task

    try:
        defined = getattr(importlib.import_module(task_id.module), task_id.func_name, None)
    except ImportError:
        return  # reported by the task lookup that follows
    if isinstance(defined, Task) and defined.app.app_id != app.app_id:
        raise InvalidArgument(
            f"Replayer(app) got app {app.app_id!r}, but the history's workflow "
            f"{task_id.key} is a task of app {defined.app.app_id!r} (defined in "
            f"{task_id.module}). Replay it with that app."
        )


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
    task_id = TaskId.from_key(record["task"])
    _require_own_app(app, task_id)
    task = app.get_task(task_id)
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
    watch = ReplayWatch(sim, app, record, history) if finished else None

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
        result.ok, result.error = False, NondeterminismError(f"{error} {PATCH_HINT}")
        if PATCH_HINT in str(error):
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
