"""Caches of work pynenc repeats with the same inputs and results (issue 7).

Installed with ``speedups`` (every backend but ``"memory-stock"``, pynenc as shipped, which is
what ``tests/test_equivalence.py`` compares these against). None of them has a config key or a
subclass hook: each replaces one pynenc name.

- ``Arguments.from_call``: pynenc binds every task call through ``inspect.signature(func)``;
  the signature is computed once per function and a simple complete call is bound without a
  ``BoundArguments`` (:class:`Binder`).
- ``pynenc.call.compute_args_id``: the same sha256 over the same bytes, without a
  ``JSONEncoder`` per key and value (:func:`compute_args_id`).
- ``pynenc.util.import_app.extract_module_info`` (a scan of every loaded module, run for each
  new state backend: every fault run of a crash check) is remembered per app
  (:func:`_cached_module_info`).
- ``DistributedInvocation.status`` without its non-final cache (:func:`_sim_status`).
- ``run_task_sync`` as ``DistributedInvocation.run`` calls it, with
  ``inspect.iscoroutinefunction`` asked once per task function (:func:`_run_task_sync`).

Undone by the :class:`PatchSet`, which also empties the signature and coroutine caches (they
hold the task functions of the environment).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

import pynenc.call as _call_module
import pynenc.invocation.dist_invocation as _dist_inv
import pynenc.util.import_app as _import_app
from pynenc.arguments import Arguments

from pynenc_wf_testing.runtime.components import not_in_simulated_store, sim_of
from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["Binder", "compute_args_id", "install_pynenc_speedups"]

_json_encode_basestring: Callable[[str], str] = json.encoder.encode_basestring
_ORIG_MODULE_INFO: Callable[[Any], Any] = _import_app.extract_module_info


class Binder:
    """``inspect.signature(func)`` of one function, plus what binding needs when every
    parameter is positional-or-keyword (the usual task signature)."""

    __slots__ = ("defaults", "names", "signature", "simple")

    def __init__(self, func: Any) -> None:
        self.signature = inspect.signature(func)
        params = list(self.signature.parameters.values())
        self.simple = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self.names = tuple(p.name for p in params)
        self.defaults = tuple(p.default for p in params)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """``sig.bind(*args, **kwargs)`` + ``apply_defaults()``: the same ordered dict, or
        pynenc's own path (and its TypeError) for anything but a simple complete call."""
        names = self.names
        if self.simple and len(args) <= len(names):
            bound = dict(zip(names, args, strict=False))
            used = 0
            empty = inspect.Parameter.empty
            for index in range(len(args), len(names)):
                name = names[index]
                if name in kwargs:
                    bound[name] = kwargs[name]
                    used += 1
                elif self.defaults[index] is not empty:
                    bound[name] = self.defaults[index]
                else:
                    break  # a missing argument: let inspect raise its TypeError
            else:
                if used == len(kwargs):
                    return bound
        bound_args = self.signature.bind(*args, **kwargs)
        bound_args.apply_defaults()
        return bound_args.arguments


_BINDERS: dict[Any, Binder] = {}


def _from_call_cached(cls: type[Arguments], func: Any, *args: Any, **kwargs: Any) -> Arguments:
    """``Arguments.from_call`` with ``inspect.signature(func)`` computed once per function
    while a simulation runs (pynenc recomputes it for every call of every task) and simple
    calls bound without building a ``BoundArguments``."""
    try:
        binder = _BINDERS[func]
    except KeyError:
        binder = _BINDERS[func] = Binder(func)
    except TypeError:  # an unhashable callable
        binder = Binder(func)
    return cls(binder.bind(args, kwargs))


def compute_args_id(serialized_args: dict[str, str]) -> str:
    """``pynenc.call.compute_args_id`` with the same bytes hashed: each key and value through
    the function ``json.dumps(s, ensure_ascii=False)`` uses for a str (without building a
    ``JSONEncoder`` per call), all fed to one sha256 (the digest of concatenated updates)."""
    if not serialized_args:
        return "no_args"
    encode = _json_encode_basestring
    parts = []
    for key in sorted(serialized_args.keys()):
        value = serialized_args[key]
        ek = encode(key) if isinstance(key, str) else json.dumps(key, ensure_ascii=False)
        ev = encode(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{ek}={ev};")
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()


# id(app) -> (weak reference to the app, len(sys.modules), result). Kept across environments
# (the scan is the expensive part of a new store); the weak reference drops an entry with its
# app, so apps made per environment do not pile up here.
_MODULE_INFO: dict[int, tuple[weakref.ref[Any], int, Any]] = {}


def _cached_module_info(app: Any) -> Any:
    """``pynenc.util.import_app.extract_module_info`` (a scan of every loaded module for the
    variable holding the app, run each time a state backend is created: every fault run of a
    crash check) remembered per app while ``sys.modules`` keeps its size and the module found
    still holds the app under that name."""
    hit = _MODULE_INFO.get(id(app))
    if hit is not None and hit[0]() is app and hit[1] == len(sys.modules):
        module_name, _path, variable = hit[2]
        module = sys.modules.get(module_name) if module_name else None
        if variable is None or (module is not None and getattr(module, variable, None) is app):
            return hit[2]
    result = _ORIG_MODULE_INFO(app)
    key = id(app)
    _MODULE_INFO[key] = (weakref.ref(app, lambda _ref: _MODULE_INFO.pop(key, None)), len(sys.modules), result)
    return result


def _sim_status(self: Any) -> Any:
    """``DistributedInvocation.status`` as pynenc computes it when ``cached_status_time`` is
    0, which every simulated app is configured with (``SIM_CONFIG``: a frozen clock would
    never expire the cache): a final status is remembered, anything else is read from the
    orchestrator. The config read and the TTL clock check per call are left out; an app
    outside the simulation (it keeps its own cache time) only reads its status fresh."""
    cached = self._cached_status
    if cached is not None and cached.is_final():
        return cached
    try:
        status = self.app.orchestrator.get_invocation_status(self.invocation_id)
    except KeyError:
        if sim_of(self.app) is None:
            raise
        # Awaited where the mistake shows (``.result``), not as pynenc's bare KeyError.
        raise not_in_simulated_store(self.invocation_id) from None
    self._cached_status = status
    self._cached_status_time = time.time()
    return status


#: task function -> ``inspect.iscoroutinefunction(func)`` (emptied on undo: it holds the
#: environment's task functions).
_COROUTINE: dict[Any, bool] = {}
_ORIG_RUN_TASK_SYNC: Callable[..., Any] = _dist_inv.run_task_sync


def _run_task_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
    """``run_task_sync`` (how ``DistributedInvocation.run`` calls the task function) with
    ``inspect.iscoroutinefunction(func)`` asked once per function: pynenc asks it on every
    run (about 14 calls through ``functools``/``inspect`` helpers), and the answer, read from
    the function's code flags and markers, does not change for a task function. A plain
    function is called as pynenc calls it; a coroutine function (or an unhashable callable)
    takes pynenc's own path."""
    try:
        coroutine = _COROUTINE.get(func)
    except TypeError:
        return _ORIG_RUN_TASK_SYNC(func, *args, **kwargs)
    if coroutine is None:
        coroutine = _COROUTINE[func] = inspect.iscoroutinefunction(func)
    if coroutine:
        return _ORIG_RUN_TASK_SYNC(func, *args, **kwargs)
    return func(*args, **kwargs)


_SIM_STATUS = property(_sim_status, doc=_dist_inv.DistributedInvocation.status.__doc__)


def install_pynenc_speedups(patches: PatchSet) -> None:
    patches.on_undo(_BINDERS.clear)
    patches.on_undo(_COROUTINE.clear)
    patches.set_attr(_dist_inv, "run_task_sync", _run_task_sync)
    patches.set_attr(Arguments, "from_call", classmethod(_from_call_cached))
    patches.set_attr(_call_module, "compute_args_id", compute_args_id)
    patches.set_attr(_import_app, "extract_module_info", _cached_module_info)
    patches.set_attr(_dist_inv.DistributedInvocation, "status", _SIM_STATUS)
