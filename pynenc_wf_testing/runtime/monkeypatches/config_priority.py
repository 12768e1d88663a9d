"""``ConfigPynencBase.__init__``: the harness's config keys win over pynenc's other sources.

pynenc resolves every config field (through cistell) from these sources, lowest first: the
app's ``config_values``, ``[tool.pynenc]`` of ``./pyproject.toml``, the app's config file,
the file named by ``PYNENC__FILEPATH``, and ``PYNENC__...`` environment variables. The harness
puts an app on simulated components through its ``config_values``, the lowest of them: a
project that chooses its components in ``[tool.pynenc]`` (as pynenc's own samples do) or in
the environment would keep its production runner and stores.

While an app is in use, every pynenc config object built from its ``config_values`` dict
(``app.conf`` and each component's ``conf``) gets the keys the harness set assigned directly
after pynenc resolved it (cistell's highest priority: direct assignment), with the provenance
``pynenc-wf-testing`` (``conf.explain()`` shows it). Every other field keeps what the file and
the environment say. The forced keys are the harness's (``SIM_CONFIG``, the backend's component
classes, ``logging_level``) and any key a backend adds to the dict later (the SQLite store's
``sqlite_db_path``); a key the user's own ``config_values`` held and the harness left alone is
not forced.

Undone by the :class:`PatchSet` (which also forgets every registered dict); the app gets its
own ``config_values`` back when the environment closes.
"""

from __future__ import annotations

import functools
from typing import Any

from pynenc.conf.config_base import ConfigPynencBase

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["PROVENANCE", "ConfigPriority"]

PROVENANCE = "pynenc-wf-testing"

_ORIG_INIT = ConfigPynencBase.__init__

#: id(config_values) -> (that dict, keys forced always, keys of the user's own config_values).
_FORCED: dict[int, tuple[dict[str, Any], frozenset[str], frozenset[str]]] = {}


@functools.wraps(_ORIG_INIT)
def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _ORIG_INIT(self, *args, **kwargs)
    if not _FORCED:
        return
    values = kwargs["config_values"] if "config_values" in kwargs else (args[0] if args else None)
    entry = _FORCED.get(id(values)) if values is not None else None
    if entry is None or entry[0] is not values:
        return
    _, always, users = entry
    fields = set(self.all_fields)
    provenance = self._provenance
    for key in always | (values.keys() - users):
        if key in fields and key in values:
            setattr(self, key, values[key])
            provenance[key] = PROVENANCE


class ConfigPriority:
    """Registers the ``config_values`` dicts whose harness keys win (see the module)."""

    def __init__(self, patches: PatchSet) -> None:
        self._patches = patches
        self._installed = False

    def force(
        self, config_values: dict[str, Any], keys: set[str], user_values: dict[str, Any] | None
    ) -> None:
        """Make ``keys`` of ``config_values`` (and any key added to it later that the user's
        ``user_values`` did not hold) win over every other config source."""
        if not self._installed:
            self._installed = True
            self._patches.set_attr(ConfigPynencBase, "__init__", _init)
            self._patches.on_undo(_FORCED.clear)
        _FORCED[id(config_values)] = (
            config_values, frozenset(keys), frozenset(user_values or ()),
        )
