"""One pynenc logging filter per app logger, and the loggers given back on close.

pynenc's ``create_logger(app)`` (``pynenc/util/log.py``, called by ``app.logger`` on first use)
adds a new ``PynencContextFilter`` to the process-wide logger ``pynenc.<app_id>`` every time
and never removes one. A simulation resets an app's components (its cached logger included) for
every fresh store, so each environment added a filter, and each fault run of a crash check
another: the filters piled up for the life of the process (memory, and every log record walked
all of them). Each filter sets the same record attributes, the newest last, so keeping only the
newest gives every record exactly the attributes it had.

While an environment is open ``pynenc.app.create_logger`` (the name ``app.logger`` calls)
removes the older filters of the app's logger after pynenc's own function ran. Undone by the
:class:`PatchSet`: pynenc's function comes back, and each logger it touched gets back the
filters, handlers, level and propagation it had before the environment (a logger the
environment created is left with none: the app builds its own again on next use).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pynenc.app as _pynenc_app
from pynenc.util.log import PynencContextFilter

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["install_logger_dedup"]

_LoggerState = tuple[list[Any], list[logging.Handler], int, bool]


def install_logger_dedup(patches: PatchSet) -> None:
    original: Callable[..., logging.Logger] = _pynenc_app.create_logger
    saved: dict[str, _LoggerState] = {}

    def create_logger(app: Any, *args: Any, **kwargs: Any) -> logging.Logger:
        name = f"pynenc.{app.app_id}"
        if name not in saved:
            existing = logging.Logger.manager.loggerDict.get(name)
            if isinstance(existing, logging.Logger):
                saved[name] = (
                    list(existing.filters), list(existing.handlers),
                    existing.level, existing.propagate,
                )
            else:
                saved[name] = ([], [], logging.NOTSET, True)
        logger = original(app, *args, **kwargs)
        newest = logger.filters[-1] if logger.filters else None
        for old in list(logger.filters):
            if old is not newest and isinstance(old, PynencContextFilter):
                logger.removeFilter(old)
        return logger

    def give_back() -> None:
        for name, (filters, handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.filters = filters
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        saved.clear()

    patches.on_undo(give_back)
    patches.set_attr(_pynenc_app, "create_logger", create_logger)
