"""An app built with ``pynenc.builder.PynencBuilder`` for SQLite, at a path chosen by the test.

The task is still module-level: ``build()`` binds the module attribute ``ping`` to the task so
pynenc can resolve ``tests.apps.builder_app.ping``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pynenc import Pynenc
from pynenc.builder import PynencBuilder

app: Pynenc | None = None
ping: Any = None


def _ping(x: int) -> int:
    return x + 1


_ping.__name__ = _ping.__qualname__ = "ping"


def build(db_path: Path, app_id: str) -> Pynenc:
    """A production-style app on SQLite at ``db_path`` with one task, ``ping``."""
    global app, ping
    app = PynencBuilder().app_id(app_id).sqlite(str(db_path)).build()
    ping = app.task(_ping)
    return app
