"""``Task._call`` and ``Task.parallelize``: a task called directly joins the open simulation.

pynenc routes every call of a task through its app's orchestrator, in ``Task._call`` (a direct
call ``my_task(1)``) and ``Task.parallelize`` (a batch). An app that no environment uses yet
would route to its own components there, and ``.result`` would poll them in real time for good:
nothing runs them. While an environment is open, both methods first hand the task's app to the
environment's hook, which binds it as ``env.use(app)`` (and ``env.start``) do; this happens
before pynenc reads ``app.conf`` or ``app.orchestrator``, so the app's production stores are
never opened. The simulator's ``execute_task`` hook does the same for a child of another app
(it routes without ``Task._call``).

Why here and not elsewhere: an app's components are cached properties read on every step (a
patched property would cost every access), and module-level apps exist before the environment
opens (watching app creation would miss them). The first route is the one place every call
goes through, once per call; an app already in use costs one dict lookup.

Undone by the :class:`PatchSet`: pynenc's methods and the previous hook come back.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from pynenc.task import Task

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["adopt", "install_adopt_hook"]

#: Called with the app of every task called while an environment is open.
_adopt_hook: Callable[[Any], None] | None = None
_ORIG_CALL = Task._call
_ORIG_PARALLELIZE = Task.parallelize


@functools.wraps(_ORIG_CALL)
def _call(self: Any, arguments: Any) -> Any:
    hook = _adopt_hook
    if hook is not None:
        hook(self.app)
    return _ORIG_CALL(self, arguments)


@functools.wraps(_ORIG_PARALLELIZE)
def _parallelize(self: Any, *args: Any, **kwargs: Any) -> Any:
    hook = _adopt_hook
    if hook is not None:
        hook(self.app)
    return _ORIG_PARALLELIZE(self, *args, **kwargs)


def adopt(app: Any) -> None:
    """Hand ``app`` to the open environment now, as a task call would (the engine's client
    functions ask for it through ``engine.hooks.AdoptingHooks``); a no-op when none is open."""
    hook = _adopt_hook
    if hook is not None:
        hook(app)


def install_adopt_hook(patches: PatchSet, hook: Callable[[Any], None] | None) -> None:
    """Call ``hook(task.app)`` before pynenc routes any task call, until ``patches`` undo."""
    patches.set_attr(sys.modules[__name__], "_adopt_hook", hook)
    patches.set_attr(Task, "_call", _call)
    patches.set_attr(Task, "parallelize", _parallelize)
