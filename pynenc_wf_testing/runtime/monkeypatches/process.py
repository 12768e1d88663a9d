"""The patches one environment installs on open and undoes on close."""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Callable
from typing import Any

import freezegun.api as _fz

from pynenc_wf_testing.runtime.monkeypatches import sleep as _sleep
from pynenc_wf_testing.runtime.monkeypatches.clock import start_frozen_clock
from pynenc_wf_testing.runtime.monkeypatches.compat import check_versions
from pynenc_wf_testing.runtime.monkeypatches.config_priority import ConfigPriority
from pynenc_wf_testing.runtime.monkeypatches.croniter_cache import install_croniter_cache
from pynenc_wf_testing.runtime.monkeypatches.deterministic_executor import (
    install_execute_task_hook,
)
from pynenc_wf_testing.runtime.monkeypatches.direct_calls import install_adopt_hook
from pynenc_wf_testing.runtime.monkeypatches.gc_thresholds import tune_gc
from pynenc_wf_testing.runtime.monkeypatches.ids import SeededIds
from pynenc_wf_testing.runtime.monkeypatches.pynenc_logging import install_logger_dedup
from pynenc_wf_testing.runtime.monkeypatches.pynenc_speedups import install_pynenc_speedups
from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

#: The datetime class freezegun keeps (``datetime.datetime`` is its FakeDatetime while
#: frozen, whose isinstance check runs Python code).
_REAL_DATETIME: type[_dt.datetime] = _fz.real_datetime

__all__ = ["ProcessPatches"]


class ProcessPatches:
    """Process-wide patches of one simulation: virtual wall clock, seeded ids, virtual sleep,
    the simulator's ``execute_task`` hook, the adoption of apps whose tasks are called directly
    (``adopt_hook``), the priority of the harness's config keys over pynenc's config files and
    environment (:meth:`force_config`), pynenc's logger filters and (``speedups``) caches of
    repeated pynenc/freezegun work. Each module of this package says what it patches and why;
    all of them go into one :class:`PatchSet`, undone in reverse order by :meth:`stop`."""

    def __init__(
        self,
        seed: int,
        start: _dt.datetime,
        sleep_hook: Callable[[float], bool],
        execute_task_hook: Callable[..., Any] | None = None,
        *,
        speedups: bool = True,
        adopt_hook: Callable[[Any], None] | None = None,
    ) -> None:
        self._speedups = speedups
        self._seed = seed
        self._start = start
        self._sleep_hook = sleep_hook
        self._execute_task_hook = execute_task_hook
        self._adopt_hook = adopt_hook
        self._patches = PatchSet()
        self._ids = SeededIds(self._patches)
        self._config = ConfigPriority(self._patches)
        self.factory: Any = None

    def start(self) -> None:
        """Check the versions of what is patched, then patch; a failure part-way undoes what
        was already applied before it propagates."""
        check_versions("pynenc", "freezegun")
        try:
            self._ids.install(self._seed)
            self.factory = start_frozen_clock(self._patches, self._start, speedups=self._speedups)
            if self._speedups:
                install_pynenc_speedups(self._patches)
                install_croniter_cache(self._patches)
            tune_gc(self._patches)
            _sleep.install_sleep(self._patches, self._sleep_hook)
            install_execute_task_hook(
                self._patches, self._execute_task_hook, one_call=self._speedups
            )
            install_logger_dedup(self._patches)
            if self._adopt_hook is not None:
                install_adopt_hook(self._patches, self._adopt_hook)
        except BaseException:
            # The error that stopped the patching is the one to report, not an undo's.
            with contextlib.suppress(Exception):
                self._patches.undo()
            raise

    def save_streams(self) -> tuple[Any, Any]:
        """The seeded values' state of the current world (ids drawn, environment streams)."""
        return self._ids.save()

    def restore_streams(self, state: tuple[Any, Any]) -> None:
        self._ids.restore(state)

    def reseed_ids(self, seed: int) -> None:
        """Restart the seeded values from ``seed`` (each fault run of a crash check starts
        from the same seed)."""
        self._ids.reseed(seed)

    def bind_ids(self, sim: Any) -> None:
        """Values drawn inside an invocation of ``sim`` (a new world's simulation) derive from
        that invocation; crashes of ``sim`` free the ids that never reached its store."""
        self._ids.bind(sim)

    def patch_imported_sleep(self, module_names: list[str]) -> None:
        """``from time import sleep`` (and ``from uuid import uuid4``, ``from random import
        randint``, ...) in the simulated tasks' modules."""
        _sleep.patch_imported_sleep(self._patches, module_names)
        self._ids.patch_imported(module_names)

    def force_config(
        self, config_values: dict[str, Any], keys: set[str], user_values: dict[str, Any] | None
    ) -> None:
        """Make the harness's ``keys`` of an app's ``config_values`` win over pynenc's config
        files and environment variables (see :mod:`.config_priority`)."""
        self._config.force(config_values, keys, user_values)

    def move_to(self, when: _dt.datetime) -> None:
        """freezegun's ``FrozenDateTimeFactory.move_to(when)`` for a datetime (the
        simulator's clock always passes one): the same operations on the same objects
        (``convert_to_timezone_naive``, the delta from the frozen time, ``tick``'s add of a
        timedelta), without its parsing of other input kinds and ``tick``'s two ``numbers``
        ABC checks of a delta that is a ``timedelta``: about ten calls per clock move."""
        factory = self.factory
        if type(factory) is not _fz.FrozenDateTimeFactory or not isinstance(when, _REAL_DATETIME):
            factory.move_to(when)
            return
        target = when
        if target.tzinfo:
            offset: Any = target.utcoffset()
            target -= offset
            target = target.replace(tzinfo=None)
        frozen = factory.time_to_freeze
        factory.time_to_freeze = frozen + (target - frozen)

    def set_attr(self, target: Any, name: str, value: Any) -> None:
        """One more patch while open (e.g. the mock swap), undone by :meth:`stop`."""
        self._patches.set_attr(target, name, value)

    def on_undo(self, action: Callable[[], None]) -> None:
        self._patches.on_undo(action)

    def stop(self) -> None:
        self._patches.undo()
