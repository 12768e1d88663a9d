"""``DeterministicExecutor.execute_task``: the simulator's hook, and one ``Call`` per child.

pynenc offers no hook where a workflow asks for a child: the method is wrapped so that the
simulator learns which child call a workflow makes at which position of its body (the ledger
names logical calls by it, and a replay that asks for a different call is caught at once).
With ``speedups`` the wrapped method also routes the ``Call`` it already built (see
:func:`_execute_task_one_call`), a copy of pynenc 0.4's method: :mod:`.compat` keeps pynenc
within the releases it was copied from.

Undone by the :class:`PatchSet`: pynenc's method and the previous hook come back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynenc.arguments import Arguments
from pynenc.call import Call
from pynenc.workflow.workflow_deterministic import DeterministicExecutor

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["install_execute_task_hook"]

# Called around ``DeterministicExecutor.execute_task`` with (impl, executor, task, args, kwargs).
_execute_task_hook: Callable[..., Any] | None = None
_ORIG_EXECUTE_TASK = DeterministicExecutor.execute_task


def _execute_task_one_call(self: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
    """pynenc 0.4's ``DeterministicExecutor.execute_task``, routing the ``Call`` it built.

    pynenc builds ``Arguments`` + ``Call`` (signature binding, argument serialization, sha256
    of the call id) to look up the recorded child, then calls ``task(*args, **kwargs)``, which
    builds the same ``Arguments`` and ``Call`` again before ``orchestrator.route_call(call)``.
    Here the first ``Call`` is routed (what ``Task._call`` does). A task class that overrides
    ``__call__``/``_call`` gets pynenc's own method.
    """
    from pynenc.task import Task

    cls = type(task)
    if cls.__call__ is not Task.__call__ or cls._call is not Task._call:
        return _ORIG_EXECUTE_TASK(self, task, *args, **kwargs)
    arguments = Arguments.from_call(task.func, *args, **kwargs)
    call: Call[Any, Any] = Call(task=task, arguments=arguments)
    task_invocation_key = f"task_invocation:{call.call_id}"
    cached_invocation_id = self.app.state_backend.get_workflow_data(
        self.workflow_identity, task_invocation_key
    )
    if cached_invocation_id is not None:
        return self.app.state_backend.get_invocation(cached_invocation_id)
    if task.app.conf.dev_mode_force_sync_tasks:
        invocation = task(*args, **kwargs)
    else:
        invocation = task.app.orchestrator.route_call(call)
    self.app.state_backend.set_workflow_data(
        self.workflow_identity, task_invocation_key, invocation.invocation_id
    )
    return invocation


# What the hook calls as "the original": pynenc's, or the same logic routing one Call.
_execute_task_impl: Callable[..., Any] = _ORIG_EXECUTE_TASK


def _patched_execute_task(self: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
    hook = _execute_task_hook
    if hook is None:
        return _ORIG_EXECUTE_TASK(self, task, *args, **kwargs)
    return hook(_execute_task_impl, self, task, args, kwargs)


def install_execute_task_hook(
    patches: PatchSet, hook: Callable[..., Any] | None, *, one_call: bool
) -> None:
    global _execute_task_hook, _execute_task_impl
    previous = (_execute_task_hook, _execute_task_impl)

    def restore() -> None:
        global _execute_task_hook, _execute_task_impl
        _execute_task_hook, _execute_task_impl = previous

    patches.on_undo(restore)
    _execute_task_hook = hook
    if one_call:
        _execute_task_impl = _execute_task_one_call
    patches.set_attr(DeterministicExecutor, "execute_task", _patched_execute_task)
