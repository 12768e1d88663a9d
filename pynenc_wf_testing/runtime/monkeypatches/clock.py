"""The virtual wall clock: freezegun, started once per environment, and its speed-ups.

freezegun moves ``datetime.now()``/``time.time()`` for user code and pynenc alike. It is
started once per environment (its start scans every loaded module) and then moved with
``move_to``. What the harness changes beyond ``freeze_time(...).start()``, and why:

- freezegun's default ignore list (prefixes such as "queue", "gi", "threading", "selenium")
  would leave the real clock to any module whose name starts with one, a user's
  ``queue_worker.py`` included: in a simulation nothing may escape the virtual clock, so the
  list is emptied (which also spares freezegun's stack walk on every fake call).
- ``time.monotonic``/``perf_counter`` (and their ``_ns`` forms) are put back to the real ones
  wherever freezegun put its fakes: tools measure real durations with them (time-machine 3
  does the same).
- While freezegun starts, its ``_get_module_attributes_hash`` (``dir()`` of every loaded
  module, to validate its per-module cache) is replaced by :func:`_module_names_hash`.
- With ``speedups``: ``FakeDatetime.now`` and ``fake_time`` answer from a memo while the frozen
  instant is unchanged (freezegun recomputes both on every call; pynenc calls them several
  times per status change). Both count their calls in
  :data:`~pynenc_wf_testing.runtime.watchdog.CLOCK_READS` (busy-wait detection; only with
  speed-ups: the stock backend runs freezegun as shipped).

These use freezegun's private module state (``freeze_factories``, ``tz_offsets``,
``ignore_lists``, ``undo_changes``, ``reals``, ...): :mod:`.compat` names the freezegun
releases this was written against. Undone by the :class:`PatchSet`, the freezer's own
``stop`` last.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import freezegun.api as _fz

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet
from pynenc_wf_testing.runtime.watchdog import CLOCK_READS

__all__ = ["start_frozen_clock"]

_FZ_MODULE_HASH: Callable[[Any], str] = _fz._get_module_attributes_hash
_MODULE_DIR: Any = types.ModuleType.__dir__


def _module_names_hash(module: Any) -> str:
    """A stand-in for freezegun's ``_get_module_attributes_hash`` (``id`` + hash of
    ``frozenset(dir(m))``), the key under which freezegun reuses the datetime/time names it
    found in a module. For a plain module without a ``__dir__`` hook, ``dir(m)`` is its
    ``__dict__``'s keys: the hash of the keys as a tuple (in insertion order) changes whenever
    the names change (and sometimes when only their order does: then freezegun rescans, as it
    does for any new key), at half the cost of building a frozenset. A key made by freezegun's
    own function never matches one of these (the "t" prefix): a rescan, never a stale reuse."""
    if getattr(type(module), "__dir__", None) is _MODULE_DIR:
        namespace = getattr(module, "__dict__", None)
        if type(namespace) is dict and "__dir__" not in namespace:
            return f"t{id(module)}-{hash(tuple(namespace))}"
    return _FZ_MODULE_HASH(module)


def start_frozen_clock(patches: PatchSet, start: _dt.datetime, *, speedups: bool) -> Any:
    """Start freezegun at ``start``; returns its factory (``move_to`` moves the clock)."""
    from freezegun import freeze_time

    # real_asyncio=False: freezegun would create and close an event loop here (~1 ms) to
    # give asyncio loops the real monotonic clock; _restore_real_monotonic below puts the
    # real time.monotonic back for everyone, asyncio included.
    freezer: Any = freeze_time(start, tick=False, real_asyncio=False)
    freezer.ignore = ()
    original_hash = _fz._get_module_attributes_hash
    _fz._get_module_attributes_hash = _module_names_hash
    try:
        factory = freezer.start()
    finally:
        _fz._get_module_attributes_hash = original_hash
    patches.on_undo(freezer.stop)
    _restore_real_monotonic(patches, freezer)
    if speedups:
        _install_memos(patches, freezer)
    return factory


def _restore_real_monotonic(patches: PatchSet, freezer: Any) -> None:
    patches.set_attr(time, "monotonic", _fz.real_monotonic)
    patches.set_attr(time, "perf_counter", _fz.real_perf_counter)
    patches.set_attr(time, "monotonic_ns", _fz.real_monotonic_ns)
    patches.set_attr(time, "perf_counter_ns", _fz.real_perf_counter_ns)
    reals = {
        id(_fz.fake_monotonic): _fz.real_monotonic,
        id(_fz.fake_perf_counter): _fz.real_perf_counter,
        id(_fz.fake_monotonic_ns): _fz.real_monotonic_ns,
        id(_fz.fake_perf_counter_ns): _fz.real_perf_counter_ns,
    }
    for module, attribute, original in freezer.undo_changes:
        current = getattr(module, attribute, None)
        if id(current) in reals:
            patches.set_attr(module, attribute, original)


def _memo_fake_now() -> Callable[..., Any]:
    """freezegun's ``FakeDatetime.now`` remembered per frozen instant (and tz, class, offset).

    freezegun builds two ``FakeDatetime`` objects per call (~10 us); pynenc calls it for every
    status record, history record and condition context. While the frozen time object is
    the same (freezegun replaces it on every ``move_to``) the answer is the same immutable
    value."""
    original = _fz.FakeDatetime.__dict__["now"].__func__
    frozen_factory = _fz.FrozenDateTimeFactory
    cache: dict[tuple[Any, Any], tuple[Any, Any, Any, Any]] = {}

    reads = CLOCK_READS

    def now(cls: Any, tz: Any = None) -> Any:
        reads.count += 1
        if reads.count >= reads.limit:
            reads.check()
        factories = _fz.freeze_factories
        if not factories or type(factories[-1]) is not frozen_factory:
            return original(cls, tz)
        frozen = factories[-1].time_to_freeze
        offset = _fz.tz_offsets[-1]
        key = (cls, tz)  # (by value; the identity check below tells equal zones apart)
        try:
            hit = cache[key]
        except KeyError:
            hit = None
        except TypeError:  # an unhashable tzinfo
            return original(cls, tz)
        if hit is not None and hit[0] is frozen and hit[1] is offset and hit[2] is tz:
            return hit[3]
        value = original(cls, tz)
        cache[key] = (frozen, offset, tz, value)
        return value

    return now


def _memo_fake_time() -> Callable[[], float]:
    """freezegun's ``fake_time`` remembered per frozen instant (``timetuple`` + ``timegm`` on
    every ``time.time()`` call otherwise). The caller-module check freezegun makes for its
    ignore list is kept (same frames: this function stands where ``fake_time`` stood)."""
    fz: Any = _fz
    real_time = fz.real_time
    frozen_factory = fz.FrozenDateTimeFactory
    memo: list[Any] = [None, 0.0]
    reads = CLOCK_READS

    def time_() -> float:
        reads.count += 1
        if reads.count >= reads.limit:
            reads.check()
        ignore_lists = fz.ignore_lists
        if not ignore_lists:
            return real_time()  # type: ignore[no-any-return]
        ignore = ignore_lists[-1]
        if ignore and fz.call_stack_inspection_limit:
            frame: Any = sys._getframe(1)
            for _ in range(fz.call_stack_inspection_limit):
                module_name = frame.f_globals.get("__name__")
                if module_name and module_name.startswith(ignore):
                    return real_time()  # type: ignore[no-any-return]
                frame = frame.f_back
                if frame is None:
                    break
        factory = fz.freeze_factories[-1]
        if type(factory) is not frozen_factory:
            current = factory()
            return fz.calendar.timegm(current.timetuple()) + current.microsecond / 1000000.0  # type: ignore[no-any-return]
        frozen = factory.time_to_freeze
        if frozen is not memo[0]:
            memo[0] = frozen
            memo[1] = fz.calendar.timegm(frozen.timetuple()) + frozen.microsecond / 1000000.0
        return memo[1]  # type: ignore[no-any-return]

    return time_


def _install_memos(patches: PatchSet, freezer: Any) -> None:
    patches.set_attr(_fz.FakeDatetime, "now", classmethod(_memo_fake_now()))
    fast_time = _memo_fake_time()
    if time.time is _fz.fake_time:
        patches.set_attr(time, "time", fast_time)
    for module, attribute, _original in freezer.undo_changes:
        if getattr(module, attribute, None) is _fz.fake_time:
            patches.set_attr(module, attribute, fast_time)
    # Modules imported later may take time.time (now fast_time): freezegun's stop puts the
    # real function back wherever it finds one of its fakes, this one included.
    reals = getattr(freezer, "reals", None)  # absent when another freezer runs
    if reals is not None:
        reals[id(fast_time)] = _fz.real_time
