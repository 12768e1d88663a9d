"""What a host of the engine reads and drives beyond the client API: the seam the simulator
(``runtime/``), the harness's run handles (``env/``) and history export (``checks/``) use,
so that none of them reaches into the engine's private modules.

Each name is the engine's own function; this module only gives it a public home.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine._chain import chain_runs, latest_run
from pynenc_wf_testing.engine._close_watch import close_run
from pynenc_wf_testing.engine._ops import WorkflowExecution, workflows_enabled
from pynenc_wf_testing.engine._suspend import suspension_of

if TYPE_CHECKING:
    from pynenc import Pynenc

    from pynenc_wf_testing.engine.atomic import AtomicStore

__all__ = [
    "blocked_result_deadline",
    "chain_runs",
    "close_run",
    "latest_run",
    "suspension_of",
    "timer_tick",
    "workflows_enabled",
]


def blocked_result_deadline(
    app: Pynenc, invocation: Any, awaited: list[str]
) -> dt.datetime | bool | None:
    """A plain ``.result`` of workflow run ``invocation`` on ``awaited`` is about to block
    (in the simulator): the run deadline to wake it at (None or False: none), or True when it
    must not block (an awaited invocation became final meanwhile)."""
    return WorkflowExecution(app, invocation).blocked_result_deadline(awaited)


def timer_tick(app: Pynenc, store: AtomicStore, now: float | None = None) -> int:
    """One tick of the engine's timer service for ``app`` at ``now`` (default: the clock):
    what a host with its own clock calls at the instants it chooses."""
    # Imported here: the service module builds a pynenc app at import (which loads pynenc's
    # plugins), a cost only a host that ticks should pay.
    from pynenc_wf_testing.engine._service import tick

    return tick(app, store, now)
