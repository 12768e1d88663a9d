"""The world of one environment: the simulated process that crash checks and replays swap.

Internal API of the runtime, below :class:`pynenc_wf_testing.WorkflowEnv` and the checks.

A :class:`WorldHost` owns what one open environment installs in the process: the patches
(virtual clock, seeded ids, virtual sleep), the apps bound to simulated components (with what
they had before, to put back), and the current :class:`World` (scheduler, clock, per-app
components, id streams). A crash check runs each fault schedule in a fresh world (a new
durable store, the clock back at the start, id streams reseeded) and then puts the user's
world back untouched: :meth:`WorldHost.isolated` and :meth:`WorldHost.renew`.

One host is open per process (it owns the virtual clock): :func:`active_world`. Closing is
total: whatever fails on the way out, every patch is undone, every app gets its own
configuration back and the slot is freed.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from pynenc_wf_testing.errors import AppConfigurationError, InvalidArgument
from pynenc_wf_testing.runtime.clock import VirtualClock, normalize_start
from pynenc_wf_testing.runtime.pool import PoolSpec
from pynenc_wf_testing.runtime.watchdog import CLOCK_READS, DEFAULT_SLICE_TIMEOUT

if TYPE_CHECKING:
    import datetime as dt

    from pynenc.app import Pynenc

    from pynenc_wf_testing.runtime.backends import Backend
    from pynenc_wf_testing.runtime.faults import ArmedFaults, ArmedMock
    from pynenc_wf_testing.runtime.monkeypatches import ProcessPatches
    from pynenc_wf_testing.runtime.simulation import Simulation

__all__ = [
    "COMPONENT_ATTRS",
    "SIM_CONFIG",
    "SavedApp",
    "World",
    "WorldHost",
    "active_world",
    "private_world",
    "take_forgotten",
]

#: Config keys that put an app on the simulated runner, whatever the backend (pynenc selects
#: components by class name; the backend adds the store's component classes).
SIM_CONFIG: dict[str, Any] = {
    "runner_cls": "SimRunner",
    # With a frozen clock a cached status never expires: a waiting parent would never see
    # its child finish (DESIGN.md section 4).
    "cached_status_time": 0,
    "dev_mode_force_sync_tasks": False,
    # The blocking-control index iterates sets (PYTHONHASHSEED order); the scheduler already
    # knows who waits on whom.
    "blocking_control": False,
    # pynenc's coloured log lines end up in pytest's captured output: keep them plain.
    "log_use_colors": False,
}

#: The cached component attributes of a pynenc app: a world has its own set of them.
COMPONENT_ATTRS = (
    "_conf", "_logger", "_orchestrator", "_trigger", "_broker", "_state_backend",
    "_serializer", "_client_data_store",
)

CLOSED_MESSAGE = "this WorkflowEnv is closed; create a new one."
NOT_OPEN_MESSAGE = "this WorkflowEnv is not open yet: use `with WorkflowEnv(...) as env:`."

_active: WorldHost | None = None
# Where forgotten environments were opened: closed when garbage-collected, reported by the
# pytest plugin (a test that forgets one fails, naming the line).
_forgotten: list[str] = []
_FORGOTTEN_KEPT = 100
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def active_world() -> WorldHost | None:
    """The open host of this process, if any."""
    return _active


@contextlib.contextmanager
def private_world(seed: int) -> Iterator[WorldHost]:
    """An open host with an environment's defaults, closed on the way out (a replay with
    no environment open uses one)."""
    from pynenc_wf_testing.runtime.backends import resolve_backend

    host = WorldHost(
        seed=seed, start=normalize_start(None), max_steps=100_000, log_level="error",
        backend=resolve_backend("memory", None),
    )
    host.open()
    try:
        yield host
    finally:
        host.close()


def take_forgotten() -> list[str]:
    """Where the environments closed since the last call because nobody closed them were
    opened (``file:line``); empties the list."""
    found = list(_forgotten)
    _forgotten.clear()
    return found


def _caller_location() -> str:
    """The first frame outside this package: where the user opened the environment."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"  # pragma: no cover - the interpreter's own frame is outside


class SavedApp:
    """Everything of a user's app that binding it changes, to put back on close."""

    def __init__(self, app: Pynenc) -> None:
        self.config_values = app.config_values
        self.runner_instance = app._runner_instance
        self.components = {name: getattr(app, name) for name in COMPONENT_ATTRS}
        self.deferred_triggers = {k: list(v) for k, v in app._deferred_trigger_tasks.items()}
        # A memory state backend registers the app's info (with the simulated config) in a
        # class-level registry: put back what was there.
        from pynenc.state_backend.mem_state_backend import MemStateBackend

        self.app_id = app.app_id
        self.app_info = MemStateBackend._app_info_registry.get(self.app_id)

    def restore(self, app: Pynenc) -> None:
        app.config_values = self.config_values
        app._runner_instance = self.runner_instance
        for name, value in self.components.items():
            setattr(app, name, value)
        app._deferred_trigger_tasks.clear()
        app._deferred_trigger_tasks.update(self.deferred_triggers)
        from pynenc.state_backend.mem_state_backend import MemStateBackend

        with MemStateBackend._registry_lock:
            if self.app_info is None:
                MemStateBackend._app_info_registry.pop(self.app_id, None)
            else:
                MemStateBackend._app_info_registry[self.app_id] = self.app_info


@dataclass(frozen=True)
class World:
    """One simulated world, as captured: its scheduler (with its faults), clock, the
    components of every bound app (app id -> attribute -> value) and the id streams."""

    sim: Simulation
    clock: VirtualClock
    components: dict[int, dict[str, Any]]
    streams: Any


class WorldHost:
    """The simulated process of one environment: patches, bound apps, the current world."""

    def __init__(
        self,
        *,
        seed: int,
        start: dt.datetime,
        max_steps: int,
        log_level: str,
        backend: Backend,
        faults: ArmedFaults | None = None,
        slice_timeout: float | None = DEFAULT_SLICE_TIMEOUT,
        pool: PoolSpec | None = None,
    ) -> None:
        self.seed = seed
        #: Simulated workers and slots (None: one process, unlimited parallelism).
        self.pool = pool
        self.start = start
        self.max_steps = max_steps
        #: Real seconds one slice may run (None: no watchdog).
        self.slice_timeout = slice_timeout
        self.log_level = log_level
        self.backend = backend
        self.opened_at = ""
        """``file:line`` of the user's code that opened this host (empty before)."""
        self._faults = faults
        self._patches: ProcessPatches | None = None
        self._sim: Simulation | None = None
        self._clock: VirtualClock | None = None
        self._saved: dict[int, tuple[Pynenc, SavedApp]] = {}
        self._closed = False
        self.mocks: dict[str, ArmedMock] = {}
        """``wf_env.mock`` by task key: armed on every world of this host (crash checks
        and replays included), removed when it closes."""

    # ------------------------------------------------------------------ lifetime

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (a host does not reopen)."""
        return self._closed

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._sim is not None and not self._closed

    def open(self) -> None:
        """Install the patches and the first world; claim the process slot."""
        global _active
        if self._closed:
            raise InvalidArgument("this WorkflowEnv was closed; create a new one.")
        if self._sim is not None:
            return
        if _active is not None:
            # An unreachable environment that nobody closed is still in a reference cycle:
            # collecting it closes it (see WorkflowEnv's finalizer).
            gc.collect()
        if _active is not None:
            raise InvalidArgument(
                "another WorkflowEnv is already open in this process (opened at "
                f"{_active.opened_at}); close it first (one simulation owns the virtual "
                "clock at a time)."
            )
        from pynenc_wf_testing.runtime import components  # noqa: F401 - makes the simulated components selectable
        from pynenc_wf_testing.runtime.engine_hooks import plug_in
        from pynenc_wf_testing.runtime.monkeypatches import ProcessPatches

        self.opened_at = _caller_location()
        _active = self
        try:
            self._patches = ProcessPatches(
                self.seed, self.start, self._sleep_hook, self._execute_task_hook,
                # "memory-stock" runs pynenc exactly as shipped: no speed-up patches either.
                speedups=not getattr(self.backend, "stock", False),
                adopt_hook=self._adopt,
            )
            self._patches.start()
            CLOCK_READS.count = 0
            CLOCK_READS.on_limit = self._clock_reads_check
            plug_in()
            self._new_world(self.start, self._faults)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the simulation and give every bound app its own configuration back.

        Every step runs even if an earlier one raised (a world left in any state by a
        ``BaseException``, a backend whose close fails); the first error is re-raised after.
        """
        global _active
        if self._closed:
            return
        self._closed = True
        from pynenc_wf_testing.runtime.components import SIM_ATTR
        from pynenc_wf_testing.runtime.engine_hooks import unplug

        sim = self._sim
        inside = sim is not None and sim.in_simulated_invocation()

        errors: list[BaseException] = []

        def attempt(action: Callable[[], object]) -> None:
            try:
                action()
            except BaseException as exc:  # finish closing first, re-raise after
                errors.append(exc)

        for app, _saved in self._saved.values():
            if getattr(app, SIM_ATTR, None) is not None:
                setattr(app, SIM_ATTR, None)
        if self._sim is not None:
            attempt(self._sim.close)
        for app, saved in self._saved.values():
            attempt(functools.partial(saved.restore, app))
            if hasattr(app, SIM_ATTR):
                delattr(app, SIM_ATTR)
        self._saved.clear()
        self.mocks.clear()
        attempt(self.backend.close)
        if self._patches is not None:
            attempt(self._patches.stop)
            attempt(unplug)
            if CLOCK_READS.on_limit == self._clock_reads_check:
                CLOCK_READS.on_limit = None
        if _active is self:
            _active = None
        if errors:
            raise errors[0]
        if inside:
            assert sim is not None
            # The invocation that closed its own world cannot go on (its store is gone): end
            # it, and tell the code driving the simulation why its run stopped.
            sim.abort(
                InvalidArgument(
                    "env.close() was called from inside a simulated task: the environment is "
                    "now closed (the real clock, ids and sleep are back) and the run cannot "
                    "go on. Close the environment from the test, or leave it to `with` or "
                    "the wf_env fixture."
                )
            )

    def close_forgotten(self) -> None:
        """Close a host whose environment became unreachable while open; remember where it
        was opened (``take_forgotten``) and warn as an unclosed file does."""
        if self._closed or self._sim is None:
            return
        _forgotten.append(self.opened_at)
        # Outside pytest nobody drains the list: keep the latest few, not one per env forever.
        del _forgotten[:-_FORGOTTEN_KEPT]
        warnings.warn(
            f"a WorkflowEnv opened at {self.opened_at} was never closed; closed it now. "
            "Use `with WorkflowEnv(...) as env:` or call env.close().",
            ResourceWarning,
            stacklevel=2,
        )
        with contextlib.suppress(Exception):  # a finalizer must not raise
            self.close()

    @property
    def sim(self) -> Simulation:
        """The current world's scheduler (only while open)."""
        if self._sim is None or self._closed:
            raise InvalidArgument(CLOSED_MESSAGE if self._closed else NOT_OPEN_MESSAGE)
        return self._sim

    @property
    def clock(self) -> VirtualClock | None:
        """The current world's clock (None before open)."""
        return self._clock

    @property
    def faults(self) -> ArmedFaults:
        """The fault plan of the current world (armed before open: the first world's)."""
        if self._sim is not None:
            # Every world this host builds is given an ArmedFaults (see _new_world).
            return cast("ArmedFaults", self._sim.faults)
        if self._faults is None:
            raise InvalidArgument(NOT_OPEN_MESSAGE)
        return self._faults

    @property
    def patches(self) -> ProcessPatches:
        """The process patches (only while open)."""
        if self._patches is None or self._closed:
            raise InvalidArgument(CLOSED_MESSAGE if self._closed else NOT_OPEN_MESSAGE)
        return self._patches

    def _clock_reads_check(self, frame: Any) -> None:
        if self._sim is not None:
            self._sim.clock_reads_check(frame)

    def _sleep_hook(self, seconds: float) -> bool:
        return self._sim.sleep_hook(seconds) if self._sim is not None else False

    def _execute_task_hook(self, original: Any, executor: Any, task: Any, a: Any, kw: Any) -> Any:
        if self._sim is None:
            return original(executor, task, *a, **kw)
        if id(task.app) not in self._saved:
            # A child of an app nobody used yet: routed without Task._call (see _adopt).
            self._adopt(task.app)
        return self._sim.execute_task_hook(original, executor, task, a, kw)

    def _adopt(self, app: Pynenc) -> None:
        """A task of ``app`` is about to be routed (a direct call ``my_task(1)``, a batch, a
        child): bind the app if it is not yet, as ``use(app)`` would, so that the call goes
        into the simulation and ``.result`` drives it (monkeypatches/direct_calls.py)."""
        if id(app) in self._saved or self._sim is None or self._closed:
            return
        self.bind(app)

    # ------------------------------------------------------------------ apps

    @property
    def apps(self) -> list[Pynenc]:
        """The apps bound to this host, in binding order."""
        return [app for app, _ in self._saved.values()]

    def bind(self, app: Pynenc) -> Pynenc:
        """Run ``app`` on simulated components of the backend until the host closes. Its
        production stores are never opened."""
        sim = self.sim
        if id(app) in self._saved:
            return app
        # Snapshot first: reading ``app.app_id`` below parses and caches the app's config
        # (``app._conf``), which close must put back as it was.
        saved = SavedApp(app)
        for other, _ in self._saved.values():
            if other.app_id == app.app_id:
                raise AppConfigurationError(
                    f"two different apps share app_id {app.app_id!r}; pynenc keys apps by id. "
                    "Give each app its own app_id."
                )
        self._saved[id(app)] = (app, saved)
        sim_config = {**self.backend.config(app), **SIM_CONFIG}
        app.config_values = {**(app.config_values or {}), **sim_config}
        app.config_values["logging_level"] = self.log_level
        # The app's config_values are pynenc's lowest source: [tool.pynenc] of pyproject.toml,
        # config files and PYNENC__ variables would override them. The harness's keys (and
        # those the backend adds, e.g. the SQLite file) win; the rest of the file applies.
        self.patches.force_config(
            app.config_values, {*sim_config, "logging_level"}, saved.config_values
        )
        self._attach(app, saved, sim, check=sim_config)
        sim.refresh_triggers()
        self.patches.patch_imported_sleep(
            sorted({task.func.__module__ for task in app.tasks.values()})
        )
        return app

    def _attach(
        self, app: Pynenc, saved: SavedApp, sim: Simulation, check: dict[str, Any] | None = None
    ) -> None:
        """Give ``app`` a fresh store of the backend and attach it to ``sim``, with the
        triggers its module declared (registering them empties pynenc's deferred list)."""
        from pynenc_wf_testing.runtime.components import SIM_ATTR

        self.backend.new_store(app)
        if check is not None:
            _check_config(app, check)
        setattr(app, SIM_ATTR, sim)
        sim.attach(app)
        app._deferred_trigger_tasks.clear()
        app._deferred_trigger_tasks.update(
            {k: list(v) for k, v in saved.deferred_triggers.items()}
        )
        app.register_deferred_triggers()

    # ------------------------------------------------------------------ worlds

    def _new_world(self, begin: dt.datetime, faults: ArmedFaults | None) -> None:
        from pynenc_wf_testing.runtime.faults import ArmedFaults
        from pynenc_wf_testing.runtime.simulation import Simulation

        if faults is None:
            faults = ArmedFaults()  # a fresh world can still be armed (crash checks do)
        faults.mocks = self.mocks
        patches = self.patches
        self._clock = VirtualClock(begin, on_move=patches.move_to)
        self._sim = Simulation(
            seed=self.seed, clock=self._clock, max_steps=self.max_steps, faults=faults,
            worker_tag=str(getattr(self.backend, "worker_tag", "")),
            slice_timeout=self.slice_timeout, pool=self.pool,
        )
        self._sim.after_crash = self.backend.after_crash
        patches.bind_ids(self._sim)
        self._sim.check_serialization = bool(getattr(self.backend, "check_serialization", True))

    def arm_mock(self, mock: ArmedMock) -> None:
        """Mock ``mock.task_key`` in every world of this host until it closes; the first
        mock installs the execution swap (pynenc's ``run_task_sync``), undone on close."""
        import pynenc.invocation.dist_invocation as dist_inv

        from pynenc_wf_testing.runtime.faults import clear_pending, mocked_run_task_sync

        if not self.mocks:
            patches = self.patches
            patches.set_attr(
                dist_inv, "run_task_sync", mocked_run_task_sync(dist_inv.run_task_sync)
            )
            patches.on_undo(clear_pending)
        self.mocks[mock.task_key] = mock

    def capture(self) -> World:
        """The current world, to :meth:`install` again later."""
        sim = self.sim
        assert self._clock is not None
        components = {
            id(app): {name: getattr(app, name) for name in COMPONENT_ATTRS}
            for app, _ in self._saved.values()
        }
        return World(sim, self._clock, components, self.patches.save_streams())

    def install(self, world: World) -> None:
        """Make ``world`` current again (after :meth:`drop` of the one in place)."""
        from pynenc_wf_testing.runtime.components import SIM_ATTR

        patches = self.patches
        self._sim, self._clock = world.sim, world.clock
        for app, saved in self._saved.values():
            components = world.components.get(id(app))
            if components is None:
                # Bound after ``world`` was captured (a task of a new app called inside a
                # crash check's run): it gets a fresh store in this world too.
                self._attach(app, saved, world.sim)
                continue
            for name, value in components.items():
                setattr(app, name, value)
            setattr(app, SIM_ATTR, world.sim)
            app._runner_instance = world.sim.runners[app.app_id]
        patches.restore_streams(world.streams)
        patches.move_to(world.clock.now)

    def fresh(self, *, start: dt.datetime | None = None) -> None:
        """Replace the current world by a fresh one with no faults: a new store for every
        bound app, the clock at ``start`` (default: the host's start), id streams reseeded.
        The caller keeps the old world (:meth:`capture`) if it wants it back."""
        patches = self.patches
        begin = normalize_start(start) if start is not None else self.start
        patches.move_to(begin)
        patches.reseed_ids(self.seed)
        self._new_world(begin, None)
        assert self._sim is not None
        for app, saved in self._saved.values():
            self._attach(app, saved, self._sim)
        self._sim.refresh_triggers()

    def drop(self) -> None:
        """Detach the bound apps from the current world and end its greenlets."""
        from pynenc_wf_testing.runtime.components import SIM_ATTR

        for app, _ in self._saved.values():
            setattr(app, SIM_ATTR, None)
        if self._sim is not None:
            self._sim.close()

    def renew(self, *, start: dt.datetime | None = None) -> Simulation:
        """Drop the current world and make a fresh one (:meth:`fresh`); return its scheduler."""
        self.drop()
        self.fresh(start=start)
        return self.sim

    def reseed_ids(self, seed: int) -> None:
        """Restart the invocation-id and ``uuid4`` streams from ``seed``."""
        self.patches.reseed_ids(seed)

    @contextlib.contextmanager
    def isolated(self) -> Iterator[None]:
        """Inside, worlds may be renewed at will; on the way out (any way out) the world
        current on entry is put back untouched."""
        outer = self.capture()
        try:
            yield
        finally:
            # Closed inside (e.g. by a task): there is no world to put back, and putting its
            # id streams back would overwrite the real random state close() restored.
            if not self._closed:
                self.drop()
                self.install(outer)


def _check_config(app: Pynenc, sim_config: dict[str, Any]) -> None:
    conf = app.conf
    wrong = [
        f"{key}={getattr(conf, key)!r}"
        for key in ("orchestrator_cls", "state_backend_cls", "broker_cls", "runner_cls")
        if getattr(conf, key) != sim_config[key]
    ]
    if wrong:  # pragma: no cover - the harness's keys win over every source (config_priority)
        raise AppConfigurationError(
            f"app {app.app_id!r} keeps {', '.join(wrong)} although the harness set the "
            "simulated components in its config_values and made them win over pynenc's "
            "config files and environment variables: something replaced the app's config "
            "after use(app). Configure the app before the WorkflowEnv uses it."
        )
