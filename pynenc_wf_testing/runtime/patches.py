"""The one place where the harness monkeypatches process-wide names.

Everything here is applied by :class:`ProcessPatches` when a simulation starts and undone, in
reverse order, when it ends. Each patch says why a subclass or config key could not do the job.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import hashlib
import inspect
import json
import random
import sys
import time
import types
import uuid
from collections.abc import Callable
from typing import Any

import freezegun.api as _freezegun_api
import pynenc.invocation.base_invocation as _base_inv
import pynenc.invocation.dist_invocation as _dist_inv
import pynenc.util.import_app as _pynenc_import_app
from pynenc.arguments import Arguments
from pynenc.call import Call
from pynenc.identifiers.invocation_id import InvocationId
from pynenc.workflow.workflow_deterministic import DeterministicExecutor

from pynenc_wf_testing.runtime.seeding import derive_rng

__all__ = ["REAL_SLEEP", "ProcessPatches", "install_task_wf", "uninstall_task_wf"]

REAL_SLEEP: Callable[[float], None] = time.sleep
REAL_ASYNC_SLEEP = asyncio.sleep
_SleepFn = Callable[[float], None]
REAL_UUID4: Callable[[], uuid.UUID] = uuid.uuid4

# Called by the patched ``time.sleep``; returns True when the sleep was handled virtually.
_sleep_hook: Callable[[float], bool] | None = None
# Called around ``DeterministicExecutor.execute_task`` (see ProcessPatches).
_execute_task_hook: Callable[..., Any] | None = None
_ORIG_EXECUTE_TASK = DeterministicExecutor.execute_task


def _execute_task_one_call(self: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
    """pynenc 0.4's ``DeterministicExecutor.execute_task``, routing the ``Call`` it built.

    pynenc builds ``Arguments`` + ``Call`` (signature binding, argument serialization, sha256
    of the call id) to look up the recorded child, then calls ``task(*args, **kwargs)``, which
    builds the same ``Arguments`` and ``Call`` again before ``orchestrator.route_call(call)``.
    Here the first ``Call`` is routed (what ``Task._call`` does). A task class that overrides
    ``__call__``/``_call`` gets pynenc's own method.
    """
    from pynenc.task import Task

    cls = type(task)
    if cls.__call__ is not Task.__call__ or cls._call is not Task._call:
        return _ORIG_EXECUTE_TASK(self, task, *args, **kwargs)
    arguments = Arguments.from_call(task.func, *args, **kwargs)
    call: Call[Any, Any] = Call(task=task, arguments=arguments)
    task_invocation_key = f"task_invocation:{call.call_id}"
    cached_invocation_id = self.app.state_backend.get_workflow_data(
        self.workflow_identity, task_invocation_key
    )
    if cached_invocation_id is not None:
        return self.app.state_backend.get_invocation(cached_invocation_id)
    if task.app.conf.dev_mode_force_sync_tasks:
        invocation = task(*args, **kwargs)
    else:
        invocation = task.app.orchestrator.route_call(call)
    self.app.state_backend.set_workflow_data(
        self.workflow_identity, task_invocation_key, invocation.invocation_id
    )
    return invocation


# What the execute_task hook calls as "the original": pynenc's, or the same logic routing one
# Call (set by ProcessPatches.start for the pynenc version it was written against).
_execute_task_impl: Callable[..., Any] = _ORIG_EXECUTE_TASK


def _patched_execute_task(self: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
    hook = _execute_task_hook
    if hook is None:
        return _ORIG_EXECUTE_TASK(self, task, *args, **kwargs)
    return hook(_execute_task_impl, self, task, args, kwargs)


# ---------------------------------------------------------------------- speed (issue 7)
# Pure caches of work pynenc and freezegun repeat with the same inputs and results.

_FZ_MODULE_HASH: Callable[[Any], str] = _freezegun_api._get_module_attributes_hash
_MODULE_DIR: Any = types.ModuleType.__dir__
_json_encode_basestring: Callable[[str], str] = json.encoder.encode_basestring
_ORIG_FROM_CALL = Arguments.__dict__["from_call"]


class _Binder:
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


_BINDERS: dict[Any, _Binder] = {}


def _from_call_cached(cls: type[Arguments], func: Any, *args: Any, **kwargs: Any) -> Arguments:
    """``Arguments.from_call`` with ``inspect.signature(func)`` computed once per function
    while a simulation runs (pynenc recomputes it for every call of every task) and simple
    calls bound without building a ``BoundArguments``."""
    try:
        binder = _BINDERS[func]
    except KeyError:
        binder = _BINDERS[func] = _Binder(func)
    except TypeError:  # an unhashable callable
        binder = _Binder(func)
    return cls(binder.bind(args, kwargs))


def _compute_args_id(serialized_args: dict[str, str]) -> str:
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


_MODULE_INFO: dict[int, tuple[Any, int, Any]] = {}


def _cached_module_info(app: Any) -> Any:
    """``pynenc.util.import_app.extract_module_info`` (a scan of every loaded module for the
    variable holding the app, run each time a state backend is created: every fault run of a
    crash check) remembered per app while ``sys.modules`` keeps its size and the module found
    still holds the app under that name."""
    hit = _MODULE_INFO.get(id(app))
    if hit is not None and hit[0] is app and hit[1] == len(sys.modules):
        module_name, _path, variable = hit[2]
        module = sys.modules.get(module_name) if module_name else None
        if variable is None or (module is not None and getattr(module, variable, None) is app):
            return hit[2]
    result = _ORIG_MODULE_INFO(app)
    _MODULE_INFO[id(app)] = (app, len(sys.modules), result)
    return result


_ORIG_MODULE_INFO: Callable[[Any], Any] = _pynenc_import_app.extract_module_info


@functools.cache
def _pynenc_version() -> str:
    from importlib.metadata import version

    return version("pynenc")


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


def _sim_status(self: Any) -> Any:
    """``DistributedInvocation.status`` as pynenc computes it when ``cached_status_time`` is
    0, which every simulated app is configured with (``SIM_CONFIG``: a frozen clock would
    never expire the cache): a final status is remembered, anything else is read from the
    orchestrator. The config read and the TTL clock check per call are left out; an app
    outside the simulation (it keeps its own cache time) only reads its status fresh."""
    cached = self._cached_status
    if cached is not None and cached.is_final():
        return cached
    status = self.app.orchestrator.get_invocation_status(self.invocation_id)
    self._cached_status = status
    self._cached_status_time = time.time()
    return status


_SIM_STATUS = property(_sim_status, doc=_dist_inv.DistributedInvocation.status.__doc__)


def _memo_fake_now(fz: Any) -> Callable[..., Any]:
    """freezegun's ``FakeDatetime.now`` remembered per frozen instant (and tz, class, offset).

    freezegun builds two ``FakeDatetime`` objects per call (~10 us); pynenc calls it for every
    status record, history record and condition context. While the frozen time object is
    the same (freezegun replaces it on every ``move_to``) the answer is the same immutable
    value."""
    original = fz.FakeDatetime.__dict__["now"].__func__
    frozen_factory = fz.FrozenDateTimeFactory
    cache: dict[tuple[Any, int], tuple[Any, Any, Any, Any]] = {}

    def now(cls: Any, tz: Any = None) -> Any:
        factories = fz.freeze_factories
        if not factories or type(factories[-1]) is not frozen_factory:
            return original(cls, tz)
        frozen = factories[-1].time_to_freeze
        offset = fz.tz_offsets[-1]
        key = (cls, id(tz))
        hit = cache.get(key)
        if hit is not None and hit[0] is frozen and hit[1] is offset and hit[2] is tz:
            return hit[3]
        value = original(cls, tz)
        cache[key] = (frozen, offset, tz, value)
        return value

    return now


def _memo_fake_time(fz: Any) -> Callable[[], float]:
    """freezegun's ``fake_time`` remembered per frozen instant (``timetuple`` + ``timegm`` on
    every ``time.time()`` call otherwise). The caller-module check freezegun makes for its
    ignore list is kept (same frames: this function stands where ``fake_time`` stood)."""
    real_time = fz.real_time
    frozen_factory = fz.FrozenDateTimeFactory
    memo: list[Any] = [None, 0.0]

    def time_() -> float:
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


async def _patched_async_sleep(delay: float, result: Any = None) -> Any:
    """``asyncio.sleep`` in an async task: parks the simulated invocation (its whole event
    loop with it) until the virtual deadline, like ``time.sleep``."""
    hook = _sleep_hook
    if hook is not None and hook(delay):
        return result
    return await REAL_ASYNC_SLEEP(delay, result)


def _patched_sleep(seconds: float) -> None:
    hook = _sleep_hook
    if hook is not None and hook(seconds):
        return
    REAL_SLEEP(seconds)


#: gc thresholds while a simulation is open (see ProcessPatches._tune_gc).
_GC_THRESHOLDS = (100_000, 50, 100)

_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def _uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` without building the UUID object."""
    text = "%032x" % ((bits & _UUID4_CLEAR) | _UUID4_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class ProcessPatches:
    """Process-wide patches of one simulation: virtual wall clock, seeded ids, virtual sleep.

    - freezegun moves ``datetime.now()``/``time.time()`` for user code and pynenc alike; it is
      started once (its start scans every loaded module) and then moved with ``move_to``.
      ``time.monotonic``/``perf_counter`` are put back to the real ones: tools measure real
      durations with them (time-machine 3 does the same).
    - ``generate_invocation_id`` is imported by name into two pynenc modules: no config key
      selects it, so both names are replaced with a seeded generator.
    - ``uuid.uuid4`` and the ``random`` module are seeded so activities that use them reproduce
      by seed; their previous state is restored afterwards.
    - ``time.sleep`` is not patched by freezegun; inside a simulated invocation it parks that
      invocation until the virtual deadline.
    - ``DeterministicExecutor.execute_task`` is wrapped to learn which child call a workflow
      makes at which position of its body (pynenc offers no hook there): the ledger names
      logical calls by it and a replay that asks for a different call is caught at once.
    """

    def __init__(
        self,
        seed: int,
        start: _dt.datetime,
        sleep_hook: Callable[[float], bool],
        execute_task_hook: Callable[..., Any] | None = None,
        *,
        speedups: bool = True,
    ) -> None:
        self._speedups = speedups
        self._seed = seed
        self._start = start
        self._sleep_hook = sleep_hook
        self._execute_task_hook = execute_task_hook
        self._undo: list[Callable[[], None]] = []
        self._freezer: Any = None
        self.factory: Any = None

    def save_streams(self) -> tuple[Any, Any, Any]:
        return (self._inv_rng.getstate(), self._uuid_rng.getstate(), random.getstate())

    def restore_streams(self, state: tuple[Any, Any, Any]) -> None:
        self._inv_rng.setstate(state[0])
        self._uuid_rng.setstate(state[1])
        random.setstate(state[2])

    def reseed_ids(self, seed: int) -> None:
        """Restart the id streams (each fault run of a crash check starts from the same seed)."""
        inv_rng = self._inv_rng = derive_rng(seed, "invocation-ids")
        uuid_rng = self._uuid_rng = derive_rng(seed, "uuid4")

        def gen_invocation_id() -> InvocationId:
            return InvocationId(_uuid4_text(inv_rng.getrandbits(128)))

        def seeded_uuid4() -> uuid.UUID:
            return uuid.UUID(int=uuid_rng.getrandbits(128), version=4)

        _dist_inv.generate_invocation_id = gen_invocation_id
        _base_inv.generate_invocation_id = gen_invocation_id
        uuid.uuid4 = seeded_uuid4
        random.seed(derive_rng(seed, "random-module").getrandbits(64))

    def start(self) -> None:
        global _sleep_hook
        orig_dist, orig_base = _dist_inv.generate_invocation_id, _base_inv.generate_invocation_id
        orig_uuid4 = uuid.uuid4
        random_state = random.getstate()

        def undo_ids() -> None:
            _dist_inv.generate_invocation_id = orig_dist
            _base_inv.generate_invocation_id = orig_base
            uuid.uuid4 = orig_uuid4
            random.setstate(random_state)

        self._undo.append(undo_ids)
        self.reseed_ids(self._seed)

        import freezegun.api as _fz
        from freezegun import freeze_time

        # real_asyncio=False: freezegun would create and close an event loop here (~1 ms) to
        # give asyncio loops the real monotonic clock; _restore_real_monotonic below puts the
        # real time.monotonic back for everyone, asyncio included.
        self._freezer = freeze_time(self._start, tick=False, real_asyncio=False)
        # freezegun's default ignore list (prefixes such as "queue", "gi", "threading",
        # "selenium") would leave the real clock to any module whose name starts with one,
        # a user's queue_worker.py included: its start skips such modules when it swaps
        # imported datetime/time names, and its fakes answer them with real time. In a
        # simulation nothing may escape the virtual clock (the stdlib modules it meant to
        # spare only hold monotonic clocks, which stay real: _restore_real_monotonic).
        self._freezer.ignore = ()
        # freezegun's start hashes dir() of every loaded module to validate its per-module
        # cache; the same hash from the module's __dict__ skips dir()'s list and sort.
        original_hash = _fz._get_module_attributes_hash
        _fz._get_module_attributes_hash = _module_names_hash
        try:
            self.factory = self._freezer.start()
        finally:
            _fz._get_module_attributes_hash = original_hash
        self._undo.append(self._freezer.stop)
        # (The empty ignore list also spares freezegun's stack walk on every fake call.)
        self._restore_real_monotonic()
        if self._speedups:
            self._install_speedups()

        self._tune_gc()

        previous_hook = _sleep_hook
        original_sleep: Callable[..., None] = time.sleep
        _sleep_hook = self._sleep_hook
        time.sleep = _patched_sleep  # type: ignore[assignment]

        original_async_sleep = asyncio.sleep
        asyncio.sleep = _patched_async_sleep

        def undo_sleep() -> None:
            global _sleep_hook
            time.sleep = original_sleep
            asyncio.sleep = original_async_sleep
            _sleep_hook = previous_hook

        self._undo.append(undo_sleep)

        global _execute_task_hook
        previous_exec_hook = _execute_task_hook
        _execute_task_hook = self._execute_task_hook
        DeterministicExecutor.execute_task = _patched_execute_task

        def undo_execute_task() -> None:
            global _execute_task_hook
            DeterministicExecutor.execute_task = _ORIG_EXECUTE_TASK
            _execute_task_hook = previous_exec_hook

        self._undo.append(undo_execute_task)

    def _tune_gc(self) -> None:
        """Rarer cyclic garbage collections while the simulation is open (restored on stop).

        A simulation allocates a lot and frees little until it ends (the durable store and the
        history only grow): with CPython's default thresholds (700, 10, 10) the collector
        rescans the growing heap over and over, ~40% of the time at 10,000 workflows. Young
        collections stay, every 100,000 allocations; full ones become rare. Unreachable
        cycles are still collected, later. (``gc.freeze()`` of the heap at start was measured
        too: nothing to gain, the heap a simulation scans is the one it builds.)
        """
        import gc

        thresholds = gc.get_threshold()
        if not thresholds[0] or thresholds[0] >= _GC_THRESHOLDS[0]:
            return  # collection disabled, or already as rare: leave it alone
        gc.set_threshold(*_GC_THRESHOLDS)

        def undo_gc() -> None:
            if gc.get_threshold() == _GC_THRESHOLDS:
                gc.set_threshold(*thresholds)

        self._undo.append(undo_gc)

    def _install_speedups(self) -> None:
        """Caches of repeated work with identical results (issue 7), undone on stop.
        Skipped for ``backend="memory-stock"`` (pynenc as shipped), which is what
        ``tests/test_equivalence.py`` compares these against.

        - ``Arguments.from_call``: pynenc binds every task call through
          ``inspect.signature(func)``; the signature is computed once per function and a
          simple complete call is bound without a ``BoundArguments`` (``_Binder``).
        - ``DeterministicExecutor.execute_task`` routes the ``Call`` it already built
          instead of building it again through ``task(*args)`` (pynenc 0.4 only; see
          ``_execute_task_one_call``).
        - ``pynenc.call.compute_args_id``: the same sha256 over the same bytes, without a
          ``JSONEncoder`` per key and value (``_compute_args_id``).
        - ``pynenc.util.import_app.extract_module_info`` (a scan of every loaded module, run
          for each new state backend: every fault run of a crash check) is remembered per
          app (``_cached_module_info``).
        - ``DistributedInvocation.status`` without its non-final cache (``_sim_status``).
        - freezegun's ``FakeDatetime.now`` and ``fake_time`` answer from a memo while the
          frozen instant is unchanged (freezegun recomputes both on every call; pynenc calls
          them several times per status change).
        """
        global _execute_task_impl
        import freezegun.api as _fz

        Arguments.from_call = classmethod(_from_call_cached)

        def undo_from_call() -> None:
            Arguments.from_call = _ORIG_FROM_CALL
            _BINDERS.clear()

        self._undo.append(undo_from_call)

        import pynenc.call as _call_module
        import pynenc.util.import_app as _import_app

        original_args_id = _call_module.compute_args_id
        original_module_info = _import_app.extract_module_info
        _call_module.compute_args_id = _compute_args_id
        _import_app.extract_module_info = _cached_module_info

        def undo_module_functions() -> None:
            _call_module.compute_args_id = original_args_id
            _import_app.extract_module_info = original_module_info

        self._undo.append(undo_module_functions)

        previous_impl = _execute_task_impl
        if _pynenc_version().startswith("0.4."):
            _execute_task_impl = _execute_task_one_call

        def undo_impl() -> None:
            global _execute_task_impl
            _execute_task_impl = previous_impl

        self._undo.append(undo_impl)

        original_status = _dist_inv.DistributedInvocation.__dict__["status"]
        _dist_inv.DistributedInvocation.status = _SIM_STATUS

        def undo_status() -> None:
            _dist_inv.DistributedInvocation.status = original_status

        self._undo.append(undo_status)

        original_now = _fz.FakeDatetime.__dict__["now"]
        _fz.FakeDatetime.now = classmethod(_memo_fake_now(_fz))  # type: ignore[method-assign,assignment]
        fast_time = _memo_fake_time(_fz)
        replaced: list[tuple[Any, str]] = []
        if time.time is _fz.fake_time:
            time.time = fast_time
            replaced.append((time, "time"))
        for module, attribute, _original in self._freezer.undo_changes:
            if getattr(module, attribute, None) is _fz.fake_time:
                setattr(module, attribute, fast_time)
                replaced.append((module, attribute))
        # Modules imported later may take time.time (now fast_time): freezegun's stop puts
        # the real function back wherever it finds one of its fakes, this one included.
        reals = getattr(self._freezer, "reals", None)  # absent when another freezer runs
        if reals is not None:
            reals[id(fast_time)] = _fz.real_time

        def undo_clock() -> None:
            _fz.FakeDatetime.now = original_now  # type: ignore[method-assign]
            # The module attributes in ``replaced`` came from this freezer's undo list: its
            # stop (next) puts the originals back. time.time too, unless another freezer is
            # still running (then it must see freezegun's own fake again).
            if time.time is fast_time:
                time.time = _fz.fake_time

        self._undo.append(undo_clock)

    def _restore_real_monotonic(self) -> None:
        import freezegun.api as _fz

        time.monotonic = _fz.real_monotonic
        time.perf_counter = _fz.real_perf_counter
        time.monotonic_ns = _fz.real_monotonic_ns
        time.perf_counter_ns = _fz.real_perf_counter_ns
        reals = {
            id(_fz.fake_monotonic): _fz.real_monotonic,
            id(_fz.fake_perf_counter): _fz.real_perf_counter,
            id(_fz.fake_monotonic_ns): _fz.real_monotonic_ns,
            id(_fz.fake_perf_counter_ns): _fz.real_perf_counter_ns,
        }
        for module, attribute, original in self._freezer.undo_changes:
            current = getattr(module, attribute, None)
            if id(current) in reals:
                setattr(module, attribute, original)

    def patch_imported_sleep(self, module_names: list[str]) -> None:
        """Modules that did ``from time import sleep`` hold the real function under their own
        name, out of reach of the ``time.sleep`` patch: patch that name in the modules that
        define the simulated tasks (scanning every module would cost what freezegun's start
        costs)."""
        import sys

        for name in module_names:
            module = sys.modules.get(name)
            if module is None:
                continue
            for attribute, value in list(vars(module).items()):
                if value is REAL_SLEEP:
                    setattr(module, attribute, _patched_sleep)
                    self._undo.append(
                        lambda m=module, a=attribute, v=value: setattr(m, a, v)  # type: ignore[misc]
                    )

    def move_to(self, when: _dt.datetime) -> None:
        self.factory.move_to(when)

    def stop(self) -> None:
        while self._undo:
            self._undo.pop()()


# ---------------------------------------------------------------------- the engine's task.wf

_ORIGINAL_TASK_WF: dict[type, Any] = {}


def install_task_wf() -> None:
    """Make ``task.wf`` the durable engine's context for apps that enabled it.

    pynenc builds ``task.wf`` in a ``cached_property`` of ``Task`` (and of ``WorkflowTask``)
    and offers no config key or hook to choose its class, so those properties are replaced,
    once, by one that returns pynenc's own objects for every app that did not enable the
    engine. ``uninstall_task_wf()`` puts pynenc's properties back.
    """
    from functools import cached_property

    from pynenc.task import Task, WorkflowTask

    if _ORIGINAL_TASK_WF:
        return
    for cls in (Task, WorkflowTask):
        original = cls.__dict__["wf"]
        _ORIGINAL_TASK_WF[cls] = original

        def wf(self: Any) -> Any:
            from pynenc_wf_testing.engine._context import make_wf

            return make_wf(self)

        wf.__doc__ = original.__doc__
        prop = cached_property(wf)
        prop.__set_name__(cls, "wf")
        setattr(cls, "wf", prop)  # noqa: B010


def uninstall_task_wf() -> None:
    for cls, original in list(_ORIGINAL_TASK_WF.items()):
        setattr(cls, "wf", original)  # noqa: B010
    _ORIGINAL_TASK_WF.clear()
