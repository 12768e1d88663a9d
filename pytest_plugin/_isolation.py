"""Snapshot and restore pynenc's process-global registries around one test.

pynenc keeps two class-level dicts that outlive any app: the multiton registry
``Pynenc._instances`` (app_id -> app; a second ``Pynenc(app_id=same)`` silently returns the
first one with its old config) and ``MemStateBackend._app_info_registry`` (app_id -> AppInfo,
written when a runner starts, here with the simulated config). Restoring both in place after
each test keeps tests from leaking into each other, in any order. Imported lazily (it imports
pynenc).
"""

from __future__ import annotations

from typing import Any

from pynenc.app import Pynenc
from pynenc.state_backend.mem_state_backend import MemStateBackend


class RegistrySnapshot:
    """Copies of pynenc's global registries, put back (in place) by :meth:`restore`."""

    def __init__(self) -> None:
        self._instances: dict[str, Any] = dict(Pynenc._instances)
        with MemStateBackend._registry_lock:
            self._app_infos: dict[str, Any] = dict(MemStateBackend._app_info_registry)

    def restore(self) -> None:
        # In place: other code holds references to these very dict objects.
        Pynenc._instances.clear()
        Pynenc._instances.update(self._instances)
        with MemStateBackend._registry_lock:
            MemStateBackend._app_info_registry.clear()
            MemStateBackend._app_info_registry.update(self._app_infos)
