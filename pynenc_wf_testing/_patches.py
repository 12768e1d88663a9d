"""The one place where the harness monkeypatches process-wide names.

Everything here is applied by :class:`ProcessPatches` when a simulation starts and undone, in
reverse order, when it ends. Each patch says why a subclass or config key could not do the job.
"""

from __future__ import annotations

import datetime as _dt
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import pynenc.invocation.base_invocation as _base_inv
import pynenc.invocation.dist_invocation as _dist_inv
from pynenc.identifiers.invocation_id import InvocationId
from pynenc.workflow.workflow_deterministic import DeterministicExecutor

from ._seeding import derive_rng

REAL_SLEEP: Callable[[float], None] = time.sleep
_SleepFn = Callable[[float], None]
REAL_UUID4: Callable[[], uuid.UUID] = uuid.uuid4

# Called by the patched ``time.sleep``; returns True when the sleep was handled virtually.
_sleep_hook: Callable[[float], bool] | None = None
# Called around ``DeterministicExecutor.execute_task`` (see ProcessPatches).
_execute_task_hook: Callable[..., Any] | None = None
_ORIG_EXECUTE_TASK = DeterministicExecutor.execute_task


def _patched_execute_task(self: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
    hook = _execute_task_hook
    if hook is None:
        return _ORIG_EXECUTE_TASK(self, task, *args, **kwargs)
    return hook(_ORIG_EXECUTE_TASK, self, task, args, kwargs)


def _patched_sleep(seconds: float) -> None:
    hook = _sleep_hook
    if hook is not None and hook(seconds):
        return
    REAL_SLEEP(seconds)


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
    ) -> None:
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
            return InvocationId(str(uuid.UUID(int=inv_rng.getrandbits(128), version=4)))

        def seeded_uuid4() -> uuid.UUID:
            return uuid.UUID(int=uuid_rng.getrandbits(128), version=4)

        _dist_inv.generate_invocation_id = gen_invocation_id  # type: ignore[attr-defined]
        _base_inv.generate_invocation_id = gen_invocation_id  # type: ignore[attr-defined]
        uuid.uuid4 = seeded_uuid4
        random.seed(derive_rng(seed, "random-module").getrandbits(64))

    def start(self) -> None:
        global _sleep_hook
        orig_dist, orig_base = _dist_inv.generate_invocation_id, _base_inv.generate_invocation_id
        orig_uuid4 = uuid.uuid4
        random_state = random.getstate()

        def undo_ids() -> None:
            _dist_inv.generate_invocation_id = orig_dist  # type: ignore[attr-defined]
            _base_inv.generate_invocation_id = orig_base  # type: ignore[attr-defined]
            uuid.uuid4 = orig_uuid4
            random.setstate(random_state)

        self._undo.append(undo_ids)
        self.reseed_ids(self._seed)

        import freezegun.api as _fz
        from freezegun import freeze_time

        self._freezer = freeze_time(self._start, tick=False, real_asyncio=True)
        self.factory = self._freezer.start()
        self._undo.append(self._freezer.stop)
        # freezegun's default ignore list gives the *real* time to any caller whose module name
        # starts with e.g. "queue" or "gi" (a user's queue_worker.py included): in a simulation
        # nothing may escape the virtual clock. An empty list also skips its stack walk.
        _fz.ignore_lists[-1] = ()
        self._restore_real_monotonic()

        previous_hook = _sleep_hook
        original_sleep: Callable[..., None] = time.sleep
        _sleep_hook = self._sleep_hook
        time.sleep = _patched_sleep  # type: ignore[assignment]

        def undo_sleep() -> None:
            global _sleep_hook
            time.sleep = original_sleep
            _sleep_hook = previous_hook

        self._undo.append(undo_sleep)

        global _execute_task_hook
        previous_exec_hook = _execute_task_hook
        _execute_task_hook = self._execute_task_hook
        DeterministicExecutor.execute_task = _patched_execute_task  # type: ignore[method-assign]

        def undo_execute_task() -> None:
            global _execute_task_hook
            DeterministicExecutor.execute_task = _ORIG_EXECUTE_TASK  # type: ignore[method-assign]
            _execute_task_hook = previous_exec_hook

        self._undo.append(undo_execute_task)

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
            from .engine._context import make_wf

            return make_wf(self)

        wf.__doc__ = original.__doc__
        prop = cached_property(wf)
        prop.__set_name__(cls, "wf")
        setattr(cls, "wf", prop)  # noqa: B010


def uninstall_task_wf() -> None:
    for cls, original in list(_ORIGINAL_TASK_WF.items()):
        setattr(cls, "wf", original)  # noqa: B010
    _ORIGINAL_TASK_WF.clear()
