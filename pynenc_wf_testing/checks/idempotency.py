"""Marking tasks whose side effect must never happen twice for the same logical call."""

from __future__ import annotations

from typing import Any, TypeVar

from pynenc_wf_testing.errors import InvalidArgument

__all__ = ["is_non_idempotent", "non_idempotent"]

T = TypeVar("T")

# Task keys (``module.function``) marked process-wide by the decorator; sorted when read.
_MARKED: dict[str, str] = {}


def _task_key(task: Any, what: str) -> str:
    from pynenc.task import Task

    if not isinstance(task, Task):
        raise InvalidArgument(
            f"{what} expects a pynenc task (decorated with @app.task), got "
            f"{type(task).__name__}: {task!r}. Put @non_idempotent above @app.task."
        )
    return str(task.task_id.key)


def non_idempotent(task: T) -> T:
    """Mark a task as non-idempotent: running it twice for one logical call is a violation.

    Use it as a decorator above ``@app.task``::

        @non_idempotent
        @app.task
        def charge_payment(order_id: str, amount: int) -> str: ...

    The crash checks then report any fault schedule under which the task's function runs
    more than once (to completion, or up to a crash) for the same call of its workflow,
    even with different arguments. A run that raised does not count: it had no effect.
    """
    _MARKED[_task_key(task, "non_idempotent")] = "decorator"
    return task


def is_non_idempotent(task: Any) -> bool:
    """True if ``task`` (a task or its ``module.function`` key) was marked non-idempotent."""
    key = task if isinstance(task, str) else _task_key(task, "is_non_idempotent")
    return key in _MARKED


def marked_keys() -> set[str]:
    return set(_MARKED)
