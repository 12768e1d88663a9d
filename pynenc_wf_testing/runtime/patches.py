"""The engine's ``task.wf`` swap (moving into the engine).

Every other monkeypatch lives in :mod:`pynenc_wf_testing.runtime.monkeypatches`, one module per
thing patched, each undone through one :class:`~pynenc_wf_testing.runtime.monkeypatches.PatchSet`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install_task_wf", "uninstall_task_wf"]


# ---------------------------------------------------------------------- the engine's task.wf

_ORIGINAL_TASK_WF: dict[type, Any] = {}


def install_task_wf() -> None:
    """Make ``task.wf`` the durable engine's context for apps that enabled it.

    pynenc builds ``task.wf`` in a ``cached_property`` of ``Task`` (and of ``WorkflowTask``)
    and offers no config key or hook to choose its class, so those properties are replaced,
    once, by one that returns pynenc's own objects for every app that did not enable the
    engine. ``uninstall_task_wf()`` puts pynenc's properties back.
    """
    from functools import cached_property

    from pynenc.task import Task, WorkflowTask

    if _ORIGINAL_TASK_WF:
        return
    for cls in (Task, WorkflowTask):
        original = cls.__dict__["wf"]
        _ORIGINAL_TASK_WF[cls] = original

        def wf(self: Any) -> Any:
            from pynenc_wf_testing.engine._context import make_wf

            return make_wf(self)

        wf.__doc__ = original.__doc__
        prop = cached_property(wf)
        prop.__set_name__(cls, "wf")
        setattr(cls, "wf", prop)  # noqa: B010


def uninstall_task_wf() -> None:
    for cls, original in list(_ORIGINAL_TASK_WF.items()):
        setattr(cls, "wf", original)  # noqa: B010
    _ORIGINAL_TASK_WF.clear()
