"""``task.wf`` becomes the engine's context for apps that enabled it; reversibly.

pynenc builds ``task.wf`` in a ``functools.cached_property`` of ``Task`` (and of
``WorkflowTask``) and offers no config key or hook to choose its class. The engine replaces
those two properties, once per process, by one that returns pynenc's own objects for every app
that did not enable the engine (see ``_context.make_wf``); :func:`uninstall_task_wf` puts
pynenc's properties back.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from pynenc_wf_testing.engine.exceptions import UnsupportedPynencVersion

__all__ = ["install_task_wf", "task_wf_installed", "uninstall_task_wf"]

_ORIGINAL_TASK_WF: dict[type, cached_property[Any]] = {}
_LOCK = threading.Lock()


def _wf(self: Any) -> Any:
    from pynenc_wf_testing.engine._context import make_wf

    return make_wf(self)


def install_task_wf() -> None:
    """Install the engine's ``task.wf`` (idempotent)."""
    from pynenc.task import Task, WorkflowTask

    with _LOCK:
        if _ORIGINAL_TASK_WF:
            return
        originals: dict[type, cached_property[Any]] = {}
        for cls in (Task, WorkflowTask):
            original = cls.__dict__.get("wf")
            if not isinstance(original, cached_property):
                raise UnsupportedPynencVersion(
                    f"the durable-workflow engine replaces pynenc's {cls.__name__}.wf, a "
                    f"functools.cached_property in pynenc 0.4, but the installed pynenc has "
                    f"{type(original).__name__} there. This engine supports pynenc >=0.4,<0.5."
                )
            originals[cls] = original
        for cls, original in originals.items():
            prop: cached_property[Any] = cached_property(_wf)
            prop.__doc__ = original.__doc__
            prop.__set_name__(cls, "wf")
            setattr(cls, "wf", prop)  # noqa: B010
        _ORIGINAL_TASK_WF.update(originals)


def uninstall_task_wf() -> None:
    """Put pynenc's own ``task.wf`` properties back.

    Tasks that already built their ``wf`` keep it (a ``cached_property`` stores it on the
    instance); drop it with ``task.__dict__.pop("wf", None)`` to rebuild it with pynenc's."""
    with _LOCK:
        for cls, original in _ORIGINAL_TASK_WF.items():
            setattr(cls, "wf", original)  # noqa: B010
        _ORIGINAL_TASK_WF.clear()


def task_wf_installed() -> bool:
    return bool(_ORIGINAL_TASK_WF)
