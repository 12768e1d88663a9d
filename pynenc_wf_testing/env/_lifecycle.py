"""The lifetime of an environment: arguments, open/close, the world it owns, app binding."""

from __future__ import annotations

import datetime as dt
import inspect
import math
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.backends import Backend, resolve_backend
from pynenc_wf_testing.runtime.clock import normalize_start
from pynenc_wf_testing.runtime.faults import ArmedFaults
from pynenc_wf_testing.runtime.pool import PoolSpec
from pynenc_wf_testing.runtime.suspensions import check_evict_mode
from pynenc_wf_testing.runtime.watchdog import DEFAULT_SLICE_TIMEOUT
from pynenc_wf_testing.runtime.world import CLOSED_MESSAGE, WorldHost

if TYPE_CHECKING:
    from pynenc.app import Pynenc

    from pynenc_wf_testing.runtime.simulation import Simulation

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _slice_seconds(value: dt.timedelta | float | None) -> float | None:
    """``slice_timeout`` as seconds (None: no watchdog)."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise InvalidArgument(
            f"slice_timeout must be a positive timedelta (or seconds), or None to disable the "
            f"watchdog, got {value!r}. The default is {DEFAULT_SLICE_TIMEOUT:g} seconds."
        )
    return float(seconds)


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(
            f"{name} must be a positive int, got {value!r}. Pass e.g. "
            "WorkflowEnv(workers=2, slots=4): 2 simulated workers with 4 slots each."
        )
    return value


def _worker_of(name: str, worker: object, count: int) -> int:
    if isinstance(worker, bool) or not isinstance(worker, int) or not 1 <= worker <= count:
        raise InvalidArgument(
            f"{name}: {worker!r} is not a worker of this pool; workers are numbered 1 to "
            f"{count}."
        )
    return worker


def _slowdown(slow_workers: Mapping[int, float] | None, count: int) -> tuple[float, ...]:
    factors = [1.0] * count
    if slow_workers is None:
        return tuple(factors)
    if not isinstance(slow_workers, Mapping):
        raise InvalidArgument(
            f"slow_workers must map a worker number to how many times slower it works, got "
            f"{slow_workers!r}. Pass e.g. slow_workers={{2: 3.0}}."
        )
    for worker, factor in slow_workers.items():
        number = _worker_of("slow_workers", worker, count)
        if (
            isinstance(factor, bool)
            or not isinstance(factor, (int, float))
            or not math.isfinite(factor)
            or factor <= 0
        ):
            raise InvalidArgument(
                f"slow_workers[{worker}] must be a positive number (3.0: its tasks' work takes "
                f"three times as long), got {factor!r}."
            )
        factors[number - 1] = float(factor)
    return tuple(factors)


def _check_constructor_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse an unknown keyword or a second positional argument of ``WorkflowEnv(...)``
    with the options it takes (and the closest one to a typo)."""
    import difflib

    names = [n for n in inspect.signature(EnvCore._init).parameters if n != "self"]
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" Did you mean {close[0]}=?" if close else ""
        raise InvalidArgument(
            f"WorkflowEnv() got an unknown option {unknown[0]}={kwargs[unknown[0]]!r}.{hint} "
            f"It takes: {', '.join(names)}."
        )
    if len(args) > 1:
        raise InvalidArgument(
            f"WorkflowEnv() takes only the seed positionally, got {len(args)} positional "
            f"arguments {args!r}. Pass the others by name, e.g. WorkflowEnv(7, "
            "start=datetime(2030, 1, 1, tzinfo=UTC))."
        )


def pool_spec(
    workers: int | None,
    slots: int | None,
    worker_queues: Mapping[int, Sequence[str]] | None,
    slow_workers: Mapping[int, float] | None = None,
) -> PoolSpec | None:
    """``WorkflowEnv``'s worker-pool arguments as a :class:`PoolSpec` (None: no pool)."""
    if workers is None and slots is None:
        for name, value in (("worker_queues", worker_queues), ("slow_workers", slow_workers)):
            if value:
                raise InvalidArgument(
                    f"{name} needs a worker pool: pass workers= (and slots=) too, e.g. "
                    f"WorkflowEnv(workers=2, {name}={{2: ...}})."
                )
        return None
    count = 1 if workers is None else _positive("workers", workers)
    per_worker = 1 if slots is None else _positive("slots", slots)
    queues: list[tuple[str, ...] | None] = [None] * count
    if worker_queues is not None:
        if not isinstance(worker_queues, Mapping):
            raise InvalidArgument(
                f"worker_queues must map a worker number to its queue names, got "
                f"{worker_queues!r}. Pass e.g. worker_queues={{2: ['reports']}}."
            )
        from pynenc.conf.config_broker import validate_queue_name
        from pynenc.exceptions import ConfigError

        for worker, names in worker_queues.items():
            _worker_of("worker_queues", worker, count)
            if isinstance(names, str) or not isinstance(names, Sequence) or not names:
                raise InvalidArgument(
                    f"worker_queues[{worker}] must be a non-empty list of queue names, got "
                    f"{names!r}. Pass e.g. worker_queues={{{worker}: ['default', 'reports']}}."
                )
            try:
                checked = tuple(validate_queue_name(name) for name in names)
            except ConfigError as error:
                raise InvalidArgument(f"worker_queues[{worker}]: {error}") from None
            if len(set(checked)) != len(checked):
                raise InvalidArgument(
                    f"worker_queues[{worker}] names a queue twice: {list(checked)!r}."
                )
            queues[worker - 1] = checked
    return PoolSpec(
        workers=count, slots=per_worker, queues=tuple(queues),
        slowdown=_slowdown(slow_workers, count),
    )


def _pool_args(
    pool: PoolSpec,
    worker_queues: Mapping[int, Sequence[str]] | None,
    slow_workers: Mapping[int, float] | None,
) -> str:
    """``, workers=2, slots=1, ...``: the pool arguments a rerun needs."""
    parts = [f"workers={pool.workers}", f"slots={pool.slots}"]
    if worker_queues:
        parts.append(f"worker_queues={ {k: list(v) for k, v in sorted(worker_queues.items())} !r}")
    if slow_workers:
        parts.append(f"slow_workers={dict(sorted(slow_workers.items()))!r}")
    return ", " + ", ".join(parts)


class EnvCore:
    """What every part of :class:`WorkflowEnv` stands on: its arguments and its world."""

    if not TYPE_CHECKING:

        def __init__(self, *args, **kwargs):
            # Python's own TypeError for WorkflowEnv(sed=1) would name EnvCore.__init__ and
            # suggest nothing; type checkers see _init's signature (copied below).
            _check_constructor_call(args, kwargs)
            self._init(*args, **kwargs)

    def _init(
        self,
        seed: int = 0,
        *,
        start: dt.datetime | None = None,
        max_steps: int = 100_000,
        log_level: str = "error",
        backend: str | Backend = "memory",
        backend_options: dict[str, Any] | None = None,
        slice_timeout: dt.timedelta | float | None = dt.timedelta(seconds=DEFAULT_SLICE_TIMEOUT),
        workers: int | None = None,
        slots: int | None = None,
        worker_queues: Mapping[int, Sequence[str]] | None = None,
        slow_workers: Mapping[int, float] | None = None,
        evict: str = "never",
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidArgument(
                f"seed must be a non-negative int, got {seed!r}. Pass e.g. WorkflowEnv(seed=7)."
            )
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise InvalidArgument(
                f"max_steps must be a positive int, got {max_steps!r}. "
                "The default is 100_000 scheduler steps."
            )
        if log_level not in _LOG_LEVELS:
            raise InvalidArgument(
                f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}."
            )
        pool = pool_spec(workers, slots, worker_queues, slow_workers)
        self._host = WorldHost(
            pool=pool,
            slice_timeout=_slice_seconds(slice_timeout),
            seed=seed,
            start=normalize_start(start),
            max_steps=max_steps,
            log_level=log_level,
            backend=resolve_backend(backend, backend_options),
            faults=ArmedFaults(),
            evict=check_evict_mode(evict),
        )
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._non_idempotent: set[str] = set()
        pool_args = "" if pool is None else _pool_args(pool, worker_queues, slow_workers)
        self.rerun_hint: str = (
            f"WorkflowEnv(seed={seed}{pool_args}) (in pytest: --wf-seed={seed})"
        )
        """How to rerun this simulation; the pytest plugin sets the exact command."""

    if TYPE_CHECKING:
        __init__ = _init
    else:
        __init__.__signature__ = inspect.signature(_init)  # what help() and IDEs show

    # ------------------------------------------------------------------ lifetime

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> Self:
        """Start the simulation (``with`` does this for you)."""
        host = self._host
        if host.is_open:
            return self
        host.open()
        # An environment nobody closes (``WorkflowEnv(seed=1).start(...)``) must not leave
        # the clock frozen for the rest of the process: close it when it becomes garbage.
        self._finalizer = weakref.finalize(self, host.close_forgotten)
        return self

    def close(self) -> None:
        """Stop the simulation and give every used app its own configuration back.

        Whatever happened before (an exception of any kind, a backend whose close fails,
        a call from inside a task), the clock, ids and sleep are real again afterwards and
        another environment may open.
        """
        if self._finalizer is not None:
            self._finalizer.detach()
        self._host.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran; a closed environment does not reopen."""
        return self._host.closed

    @property
    def workers(self) -> int | None:
        """Simulated workers (``WorkflowEnv(workers=N)``); None without a worker pool."""
        pool = self._host.pool
        return None if pool is None else pool.workers

    @property
    def slots(self) -> int | None:
        """Slots of each simulated worker; None without a worker pool."""
        pool = self._host.pool
        return None if pool is None else pool.slots

    @property
    def world(self) -> WorldHost:
        """The simulated process behind this environment (internal: crash checks and
        replays swap its worlds)."""
        return self._host

    def _require_sim(self) -> Simulation:
        """The current world's scheduler; the first use opens the environment."""
        if not self._host.is_open and not self._host.closed:
            self.open()
        return self._host.sim

    def _require_open(self, what: str) -> None:
        """Refuse an operation on a closed environment where the call is made."""
        if self._host.closed:
            raise InvalidArgument(f"{what} on a closed WorkflowEnv: {CLOSED_MESSAGE}")

    @property
    def _faults(self) -> ArmedFaults:
        # The current world's plan: a crash check swaps it with the world.
        return self._host.faults

    @property
    def _start(self) -> dt.datetime:
        return self._host.start

    # ------------------------------------------------------------------ apps

    def use(self, app: Pynenc) -> Pynenc:
        """Run ``app`` (a module-level pynenc app, maybe built for production) on simulated
        components until this environment closes. Its production stores are never opened."""
        from pynenc.app import Pynenc

        if not isinstance(app, Pynenc):
            raise InvalidArgument(
                f"use() expects a pynenc app (a Pynenc instance), got {type(app).__name__}: "
                f"{app!r}. Pass your module-level app, e.g. env.use(myshop.tasks.app)."
            )
        self._require_sim()
        return self._host.bind(app)
