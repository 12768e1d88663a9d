"""Where a simulation keeps its durable store: the backend extension point.

A backend names the pynenc component classes that hold the durable state and says what a
fresh store and a process death mean for it. The runner, the scheduler and the clock are the
same for every backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pynenc_wf_testing.errors import InvalidArgument

if TYPE_CHECKING:
    from pynenc.app import Pynenc

__all__ = ["Backend", "MemoryBackend", "resolve_backend"]


@runtime_checkable
class Backend(Protocol):
    """The durable store of a simulation.

    - ``config(app)``: config keys selecting the store's component classes (merged into the
      app's config_values by ``WorkflowEnv.use``), e.g. ``orchestrator_cls``.
    - ``new_store(app)``: give ``app`` a fresh, empty store (every fault run of a crash
      check starts from one).
    - ``after_crash(app)``: the worker process died: drop every in-process object of the
      app (components, caches, connections) so that recovery reads only the store.
    - ``close()``: release what the backend holds (files, servers).
    """

    name: str

    def config(self, app: Pynenc) -> dict[str, Any]: ...

    def new_store(self, app: Pynenc) -> None: ...

    def after_crash(self, app: Pynenc) -> None: ...

    def close(self) -> None: ...


class MemoryBackend:
    """pynenc's in-memory components. The component objects *are* the store, so a crash
    keeps them (they play the role of the database server) and drops only the worker.

    By default the simulator's fast subclasses of pynenc's memory components
    (the ``fast_memory`` package: the same stored state, minus work nobody observes);
    ``stock=True`` (backend name ``"memory-stock"``) selects pynenc's own memory classes, with
    the same observation hooks.

    pynenc's memory components keep arguments and workflow data by reference: the harness
    checks that they would survive the app's serializer all the same
    (``runtime/serialization.py``); ``check_serialization=False`` turns that off.
    """

    name = "memory"

    def __init__(self, *, stock: bool = False, check_serialization: bool = True) -> None:
        if not isinstance(check_serialization, bool):
            raise InvalidArgument(
                "backend_options['check_serialization'] must be True or False, got "
                f"{check_serialization!r}."
            )
        self.stock = stock
        self.check_serialization = check_serialization
        if stock:
            self.name = "memory-stock"

    def config(self, app: Pynenc) -> dict[str, Any]:
        from pynenc_wf_testing.runtime.fast_memory import (
            FAST_MEMORY_CONFIG,
            STOCK_MEMORY_CONFIG,
        )

        return dict(STOCK_MEMORY_CONFIG if self.stock else FAST_MEMORY_CONFIG)

    def new_store(self, app: Pynenc) -> None:
        app._reset_cached_components()

    def after_crash(self, app: Pynenc) -> None:
        pass

    def close(self) -> None:
        pass


# --- persistent backends (issue 6): imported only when chosen, so that importing the package
# loads neither pynenc's SQLite components nor pynenc-redis/fakeredis.


def _sqlite_backend(**options: Any) -> Backend:
    from pynenc_wf_testing.runtime.sqlite_backend import SQLiteBackend

    return SQLiteBackend.from_options(**options)


def _redis_backend(**options: Any) -> Backend:
    from pynenc_wf_testing.runtime.monkeypatches.compat import check_versions, redis_distributions

    # Before the import: the module subclasses pynenc-redis classes at import time.
    check_versions(*redis_distributions(options.get("url")))
    from pynenc_wf_testing.runtime.redis_backend import RedisBackend

    return RedisBackend.from_options(**options)


def _memory_options(name: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - {"check_serialization"})
    if unknown:
        raise InvalidArgument(
            f"unknown backend_options for the {name} backend: {', '.join(unknown)}; "
            "it accepts: check_serialization."
        )


def _memory_backend(**options: Any) -> Backend:
    _memory_options("memory", options)
    return MemoryBackend(**options)


def _memory_stock_backend(**options: Any) -> Backend:
    _memory_options("memory-stock", options)
    return MemoryBackend(stock=True, **options)


_FACTORIES: dict[str, Any] = {
    "memory": _memory_backend,
    "memory-stock": _memory_stock_backend,
    "sqlite": _sqlite_backend,
    "redis": _redis_backend,
}
# --- end persistent backends


def backend_names() -> list[str]:
    """The names ``WorkflowEnv(backend=...)`` accepts now (built-in and registered)."""
    return sorted(_FACTORIES)


def register_backend(name: str, factory: Any) -> None:
    """Make ``WorkflowEnv(backend=name)`` build its backend with ``factory(**options)``."""
    _FACTORIES[name] = factory


def resolve_backend(backend: str | Backend, options: dict[str, Any] | None = None) -> Backend:
    if options is not None and not (
        isinstance(options, dict) and all(isinstance(key, str) for key in options)
    ):
        raise InvalidArgument(
            f"backend_options must be a dict of option name -> value, got {options!r}. "
            "Pass e.g. backend='sqlite', backend_options={'path': 'wf.db'}."
        )
    if options and not isinstance(backend, str):
        raise InvalidArgument(
            f"backend_options={options!r} go with a backend name; a Backend object is built "
            "with its options already. Pass them to its constructor instead."
        )
    if isinstance(backend, str):
        factory = _FACTORIES.get(backend)
        if factory is None:
            known = ", ".join(sorted(_FACTORIES))
            raise InvalidArgument(
                f"unknown backend {backend!r}; choose one of: {known}."
            )
        return factory(**(options or {}))  # type: ignore[no-any-return]
    if isinstance(backend, Backend):
        return backend
    raise InvalidArgument(
        f"backend must be a name ('memory', ...) or a Backend object, got {backend!r}."
    )
