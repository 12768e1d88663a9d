"""The lifetime of an environment: arguments, open/close, the world it owns, app binding."""

from __future__ import annotations

import datetime as dt
import weakref
from typing import TYPE_CHECKING, Any, Self

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.backends import Backend, resolve_backend
from pynenc_wf_testing.runtime.clock import normalize_start
from pynenc_wf_testing.runtime.faults import ArmedFaults
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


class EnvCore:
    """What every part of :class:`WorkflowEnv` stands on: its arguments and its world."""

    def __init__(
        self,
        seed: int = 0,
        *,
        start: dt.datetime | None = None,
        max_steps: int = 100_000,
        log_level: str = "error",
        backend: str | Backend = "memory",
        backend_options: dict[str, Any] | None = None,
        slice_timeout: dt.timedelta | float | None = dt.timedelta(seconds=DEFAULT_SLICE_TIMEOUT),
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
        self._host = WorldHost(
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
        self.rerun_hint: str = f"WorkflowEnv(seed={seed}) (in pytest: --wf-seed={seed})"
        """How to rerun this simulation; the pytest plugin sets the exact command."""

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
