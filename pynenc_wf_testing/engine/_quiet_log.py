"""Keep pynenc's "pause ... not implemented yet" warning out of the logs for the engine's own
pauses.

pynenc 0.4's ``DistributedInvocation.run`` (``pynenc/invocation/dist_invocation.py``) logs
``Workflow pause requested but not implemented yet: <reason>`` at WARNING whenever a
``WorkflowPauseError`` ends an execution. The engine ends executions that way on purpose (a
durable wait suspending, a halt, ``continue_as_new``) and has already given the invocation its
status, so the line would fire at every suspension of every workflow and say something false.

A ``logging.Filter`` on the app's logger (``pynenc.<app_id>``, the one ``task.logger`` is)
drops exactly those records: the record is that message *and* the exception being handled,
which the filter sees through ``sys.exc_info()`` since pynenc logs inside its ``except``, is
one of the engine's. A ``WorkflowPauseError`` of pynenc's own, or of user code, still logs.
One filter object, added at most once per logger: nothing grows, nothing of pynenc is patched.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["quiet_engine_pauses"]

_PYNENC_TEXT = "Workflow pause requested but not implemented yet"


class _EnginePauseFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        #: The engine's pause exceptions (given by ``exceptions``, which this module must not
        #: import: it imports this one).
        self.kinds: tuple[type[BaseException], ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or _PYNENC_TEXT not in str(record.msg):
            return True
        handled = sys.exc_info()[1]
        return not (self.kinds and isinstance(handled, self.kinds))


_FILTER = _EnginePauseFilter()


def quiet_engine_pauses(app: Any, kinds: tuple[type[BaseException], ...]) -> None:
    """Add the filter to ``app``'s logger unless it has it (called as a pause of one of
    ``kinds`` is raised)."""
    _FILTER.kinds = kinds
    if app is None:
        return
    logger = logging.getLogger(f"pynenc.{app.app_id}")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
