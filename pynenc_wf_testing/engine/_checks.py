"""Argument checks shared by the client and ``wf.root``: a bad input is refused where it is
given, with an engine error naming the problem and the fix, before anything is routed or
recorded (pynenc's own answer comes later and from deep inside it: a bare ``TypeError``
from its signature binding, an ``AttributeError`` for a non-task, an ``OverflowError``
from a deadline past year 9999)."""

from __future__ import annotations

import datetime as dt
import inspect
import math
from typing import Any

from pynenc_wf_testing.engine.exceptions import InvalidWorkflowArgument

__all__ = [
    "check_call", "check_round_trip", "check_task", "deadline_after", "seconds_or_timedelta",
]


def check_task(operation: str, task: Any, *, hint: str = "") -> None:
    """``task`` is a pynenc task (what ``@app.task`` / ``@app.workflow`` return)."""
    from pynenc.task import Task

    if not isinstance(task, Task):
        raise InvalidWorkflowArgument(
            f"{operation} expects a pynenc task (a function decorated with @app.task or "
            f"@app.workflow), got {type(task).__name__}: {_short(task)}."
            + (f" {hint}" if hint else "")
        )


def check_call(operation: str, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """``task(*args, **kwargs)`` binds to the task's signature (as pynenc will bind it)."""
    check_task(operation, task)
    signature = inspect.signature(task.func)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        name = task.task_id.func_name
        # shown without annotations: they may be strings (``from __future__ import annotations``)
        shown = signature.replace(
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        raise InvalidWorkflowArgument(
            f"{operation}: {name}{shown} cannot be called with these arguments "
            f"({error}). Pass the arguments of {name}'s function."
        ) from None


def seconds_or_timedelta(operation: str, value: Any) -> dt.timedelta:
    """A non-negative, finite duration given as a ``timedelta`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InvalidWorkflowArgument(
                f"{operation} expects a finite number of seconds, got {value!r}; to wait "
                "for an event without a deadline use wait_for_signal(name) or halt()."
            )
        try:
            value = dt.timedelta(seconds=value)
        except OverflowError:
            raise InvalidWorkflowArgument(
                f"{operation}: {value!r} seconds is longer than a timedelta can hold "
                "(999,999,999 days)."
            ) from None
    if not isinstance(value, dt.timedelta) or value < dt.timedelta(0):
        raise InvalidWorkflowArgument(
            f"{operation} expects a non-negative timedelta or number of seconds, got {value!r}."
        )
    return value


def deadline_after(operation: str, start: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """``start + delta``, or a clear error when it passes the last date Python can hold."""
    try:
        return start + delta
    except OverflowError:
        raise InvalidWorkflowArgument(
            f"{operation}: {delta!r} from {start.isoformat()} is past the year 9999, the last "
            "date Python can hold. Give a shorter duration (or none, for no deadline)."
        ) from None


#: Compared by value after the round trip; other objects may compare by identity, so only
#: their type is checked.
_BY_VALUE = (dict, list, tuple, set, frozenset, str, bytes, int, float, bool)
_PLAIN_DATA = "Pass plain data (str, numbers, lists, dicts with str keys, dataclasses of those)."


def check_round_trip(
    app: Any, operation: str, what: str, value: Any, *, hint: str = "", in_simulator: bool = False
) -> None:
    """``value`` comes back from the app's serializer as given. jsonpickle turns a dict's
    int keys into strings and a lambda into None without complaint: a workflow would see
    one value on its first execution and another when it re-executes from the store (and
    the simulator's in-memory store, which keeps references, would hide it). Under a
    simulator the harness checks every value it stores with the same serializer and raises
    its own ``WorkflowDataSerializationError`` (docs/backends.md): not checked twice here,
    unless ``in_simulator`` (a value the harness does not see stored, e.g. the arguments of
    continue_as_new's next run). ``hint`` is appended to the advice."""
    from pynenc_wf_testing.engine.hooks import active_hooks

    if not in_simulator and active_hooks() is not None:
        return
    serializer = app.serializer
    try:
        back = serializer.deserialize(serializer.serialize(value))
    except Exception as error:
        raise InvalidWorkflowArgument(
            f"{operation}: {what} ({type(value).__name__}) cannot be stored by pynenc's "
            f"serializer ({type(error).__name__}: {error}). {_PLAIN_DATA}{hint}"
        ) from None
    if type(back) is not type(value) or (
        isinstance(value, _BY_VALUE) and back != value and not _both_nan(value, back)
    ):
        raise InvalidWorkflowArgument(
            f"{operation}: {what} ({type(value).__name__}) does not survive pynenc's "
            f"serializer: {_short(value)} reads back as {_short(back)}. {_PLAIN_DATA}{hint}"
        )


def _both_nan(value: Any, back: Any) -> bool:
    return isinstance(value, float) and math.isnan(value) and math.isnan(back)


def _short(value: Any) -> str:
    # Only plain values are shown: another object's repr may hold its address, and a
    # workflow's failure message must be the same when it re-executes.
    if value is not None and not isinstance(value, _BY_VALUE):
        return f"<{type(value).__name__}>"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
