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

__all__ = ["check_call", "check_task", "deadline_after", "seconds_or_timedelta"]


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
