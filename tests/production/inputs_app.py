"""Bad inputs given to ``wf.root`` inside a running workflow, shared by the production test
(tests/production/test_inputs_production.py, ThreadRunner + SQLite) and the simulator's
(tests/test_engine_inputs.py): the same workflow, the same cases, the same answers.

``bind(app)`` makes the functions below tasks of ``app`` (pynenc resolves a task by
``module.function``, so they live at module level and are rebound for each test's app).
``inputs(case)`` runs one case and returns the error it raised as ``"Type: message"``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pynenc import Pynenc

UTC = dt.UTC


def add(x: int, y: int) -> int:
    return x + y


def inputs(case: str) -> str:
    root = inputs.wf.root  # type: ignore[attr-defined]
    action: Callable[[Any], Any] = CASES[case]
    try:
        action(root)
    except Exception as error:
        from pynenc.workflow.workflow_exceptions import WorkflowPauseError

        if isinstance(error, WorkflowPauseError):
            raise  # a wait leaving its worker: not an answer
        return f"{type(error).__name__}: {error}"
    return "no error"


def _saga(root: Any, *call: Any) -> None:
    with root.saga() as saga:
        saga.add_compensation(*call)


#: case -> what the workflow body does with ``root`` (its ``wf.root``).
CASES: dict[str, Callable[[Any], Any]] = {
    "sleep-nan": lambda root: root.sleep(float("nan")),
    "sleep-inf": lambda root: root.sleep(float("inf")),
    "sleep-past-9999": lambda root: root.sleep(dt.timedelta.max),
    "sleep-until-str": lambda root: root.sleep_until("2030-01-01"),
    "sleep-until-date": lambda root: root.sleep_until(dt.date(2030, 1, 1)),
    "signal-timeout-past-9999": lambda root: root.wait_for_signal(
        "go", timeout=dt.timedelta.max
    ),
    "task-wait-timeout-past-9999": lambda root: root.wait_for_task(
        add, timeout=dt.timedelta.max
    ),
    "execute-task-none": lambda root: root.execute_task(None),
    "execute-task-invocation": lambda root: root.execute_task(root.execute_task(add, 1, 2)),
    "execute-task-function": lambda root: root.execute_task(add.func, 1, 2),  # type: ignore[attr-defined]
    "execute-task-missing-argument": lambda root: root.execute_task(add, 1),
    "start-child-extra-argument": lambda root: root.start_child(add, 1, 2, 3),
    "retry-unknown-keyword": lambda root: root.execute_task_with_retry(add, 1, z=2),
    "retry-none": lambda root: root.execute_task_with_retry(None),
    "saga-none": lambda root: _saga(root, None),
    "saga-function": lambda root: _saga(root, add.func, 1, 2),  # type: ignore[attr-defined]
    "saga-missing-argument": lambda root: _saga(root, add, 1),
    # jsonpickle writes a dict's int keys as strings: a re-execution would read another value
    "side-effect-int-keys": lambda root: root.side_effect(lambda: {1: "a"}),
    "save-state-int-keys": lambda root: inputs.wf.save_state({1: "b"}),  # type: ignore[attr-defined]
    "halt-int-reason": lambda root: root.halt(5),
}

#: case -> (error type, the start of its message).
EXPECTED: dict[str, tuple[str, str]] = {
    "sleep-nan": ("InvalidWorkflowArgument", "sleep() expects a finite number of seconds, got nan"),
    "sleep-inf": ("InvalidWorkflowArgument", "sleep() expects a finite number of seconds, got inf"),
    "sleep-past-9999": ("InvalidWorkflowArgument", "sleep(): datetime.timedelta(days=999999999"),
    "sleep-until-str": (
        "InvalidWorkflowArgument",
        "sleep_until() expects an aware datetime.datetime, got str: '2030-01-01'",
    ),
    "sleep-until-date": (
        "InvalidWorkflowArgument",
        "sleep_until() expects an aware datetime.datetime, got ",  # date (FakeDate, frozen)
    ),
    "signal-timeout-past-9999": (
        "InvalidWorkflowArgument", "wait_for_signal(timeout=): datetime.timedelta(days=999999999"
    ),
    "task-wait-timeout-past-9999": (
        "InvalidWorkflowArgument", "wait_for_task(timeout=): datetime.timedelta(days=999999999"
    ),
    "execute-task-none": (
        "InvalidWorkflowArgument",
        "execute_task() expects a pynenc task (a function decorated with @app.task or "
        "@app.workflow), got NoneType: None. Pass the task itself",
    ),
    "execute-task-invocation": (
        "InvalidWorkflowArgument", "execute_task() expects a pynenc task"
    ),
    "execute-task-function": ("InvalidWorkflowArgument", "execute_task() expects a pynenc task"),
    "execute-task-missing-argument": (
        "InvalidWorkflowArgument",
        "execute_task(): add(x, y) cannot be called with these arguments "
        "(missing a required argument: 'y'). Pass the arguments of add's function.",
    ),
    "start-child-extra-argument": (
        "InvalidWorkflowArgument",
        "start_child(): add(x, y) cannot be called with these arguments "
        "(too many positional arguments)",
    ),
    "retry-unknown-keyword": (
        "InvalidWorkflowArgument",
        "execute_task_with_retry(): add(x, y) cannot be called",
    ),
    "retry-none": (
        "InvalidWorkflowArgument", "execute_task_with_retry() expects a pynenc task"
    ),
    "saga-none": ("InvalidWorkflowArgument", "saga.add_compensation() expects a pynenc task"),
    "saga-function": ("InvalidWorkflowArgument", "saga.add_compensation() expects a pynenc task"),
    "saga-missing-argument": (
        "InvalidWorkflowArgument",
        "saga.add_compensation(): add(x, y) cannot be called",
    ),
    "side-effect-int-keys": (
        "InvalidWorkflowArgument",
        "side_effect(): the function's result (dict) does not survive pynenc's serializer: "
        "{1: 'a'} reads back as {'1': 'a'}. Pass plain data",
    ),
    "save-state-int-keys": (
        "InvalidWorkflowArgument",
        "wf.save_state(): the snapshot (dict) does not survive pynenc's serializer: "
        "{1: 'b'} reads back as {'1': 'b'}.",
    ),
    "halt-int-reason": (
        "InvalidWorkflowArgument", "halt(reason=5): the reason is a string"
    ),
}


#: What the simulator answers instead: its own check of every stored value (docs/backends.md)
#: refuses the same values at the same call, with the harness's error.
SIMULATOR: dict[str, tuple[str, str]] = {
    "side-effect-int-keys": (
        "WorkflowDataSerializationError", "workflow tests.production.inputs_app.inputs"
    ),
    "save-state-int-keys": (
        "WorkflowDataSerializationError", "workflow tests.production.inputs_app.inputs"
    ),
}


def bind(app: Pynenc) -> None:
    """Make ``add`` a task and ``inputs`` a workflow of ``app`` (module attributes)."""
    namespace = globals()
    for name, kind in (("add", "task"), ("inputs", "workflow")):
        func = namespace[name]
        func = getattr(func, "func", func)  # already a task of an earlier test's app
        namespace[name] = (app.workflow if kind == "workflow" else app.task)(func)
