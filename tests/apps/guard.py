"""Keeps a shared module-level app intact around a test that may leave it misconfigured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_COMPONENTS = (
    "_conf",
    "_logger",
    "_orchestrator",
    "_trigger",
    "_broker",
    "_state_backend",
    "_serializer",
    "_client_data_store",
)
_SIM_ATTR = "_pynenc_wf_sim"


@contextmanager
def guard_app(app: Any) -> Iterator[Any]:
    """Snapshot what ``WorkflowEnv.use`` changes on ``app`` and put it back afterwards."""
    config_values = app.config_values
    runner = app._runner_instance
    components = {name: getattr(app, name) for name in _COMPONENTS}
    try:
        yield app
    finally:
        app.config_values = config_values
        app._runner_instance = runner
        for name, value in components.items():
            setattr(app, name, value)
        if hasattr(app, _SIM_ATTR):
            delattr(app, _SIM_ATTR)
