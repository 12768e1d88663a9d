"""Virtual sleep: ``time.sleep`` and ``asyncio.sleep`` park a simulated invocation.

freezegun does not patch ``time.sleep``. Inside a simulated invocation both sleeps park that
invocation until the virtual deadline while others run (the environment's hook decides);
outside one they sleep for real. A module that did ``from time import sleep`` holds the real
function under its own name, out of reach of the ``time.sleep`` patch:
:func:`patch_imported_sleep` replaces that name in the modules that define the simulated tasks
(scanning every module would cost what freezegun's start costs).

Undone by the :class:`PatchSet`: the real functions and the previous hook come back.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["REAL_SLEEP", "install_sleep", "patch_imported_sleep"]

REAL_SLEEP: Callable[[float], None] = time.sleep
REAL_ASYNC_SLEEP = asyncio.sleep

# Called by the patched sleeps; returns True when the sleep was handled virtually.
_sleep_hook: Callable[[float], bool] | None = None


async def _patched_async_sleep(delay: float, result: Any = None) -> Any:
    """``asyncio.sleep`` in an async task: parks the simulated invocation (its whole event
    loop with it) until the virtual deadline, like ``time.sleep``."""
    hook = _sleep_hook
    if hook is not None and hook(delay):
        return result
    return await REAL_ASYNC_SLEEP(delay, result)


def _patched_sleep(seconds: float) -> None:
    hook = _sleep_hook
    if hook is not None and hook(seconds):
        return
    REAL_SLEEP(seconds)


def install_sleep(patches: PatchSet, hook: Callable[[float], bool]) -> None:
    patches.set_attr(sys.modules[__name__], "_sleep_hook", hook)
    patches.set_attr(time, "sleep", _patched_sleep)
    patches.set_attr(asyncio, "sleep", _patched_async_sleep)


def patch_imported_sleep(patches: PatchSet, module_names: list[str]) -> None:
    for name in module_names:
        module = sys.modules.get(name)
        if module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if value is REAL_SLEEP:
                patches.set_attr(module, attribute, _patched_sleep)
