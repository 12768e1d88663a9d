"""runtime/monkeypatches: every patch undone through one PatchSet, nothing left behind."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import random
import time
import uuid
from typing import Any

import pytest
from pynenc.arguments import Arguments

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.runtime.monkeypatches import PatchSet, ProcessPatches
from tests.apps import flows

# --------------------------------------------------------------------------- PatchSet


class _Base:
    inherited = "base"


class _Target(_Base):
    @classmethod
    def make(cls) -> str:
        return "original"


def test_patch_set_restores_raw_entries_and_removes_inherited_names() -> None:
    patches = PatchSet()
    raw = _Target.__dict__["make"]
    patches.set_attr(_Target, "make", classmethod(lambda cls: "patched"))
    patches.set_attr(_Target, "inherited", "patched")
    patches.set_attr(_Target, "inherited", "patched again")  # a reseed keeps the first original
    assert _Target.make() == "patched" and _Target.inherited == "patched again"
    patches.undo()
    assert _Target.__dict__["make"] is raw
    assert "inherited" not in _Target.__dict__ and _Target.inherited == "base"
    assert len(patches) == 0


def test_patch_set_undoes_everything_even_when_one_undo_fails() -> None:
    patches = PatchSet()
    done: list[str] = []
    patches.on_undo(lambda: done.append("first"))

    def broken() -> None:
        raise RuntimeError("undo failed")

    patches.on_undo(broken)
    patches.set_attr(_Target, "inherited", "patched")
    with pytest.raises(RuntimeError, match="undo failed"):
        patches.undo()
    assert done == ["first"]
    assert "inherited" not in _Target.__dict__


# --------------------------------------------------------------------------- ProcessPatches


def _process_names() -> dict[str, Any]:
    """The process-wide names the environment patches, as they are outside one."""
    import pynenc.app
    import pynenc.call
    import pynenc.invocation.base_invocation as base_inv
    import pynenc.invocation.dist_invocation as dist_inv
    import pynenc.util.import_app
    from freezegun.api import FakeDatetime
    from pynenc.workflow.workflow_deterministic import DeterministicExecutor

    return {
        "time.sleep": time.sleep,
        "time.time": time.time,
        "time.monotonic": time.monotonic,
        "time.perf_counter": time.perf_counter,
        "asyncio.sleep": asyncio.sleep,
        "uuid.uuid4": uuid.uuid4,
        "datetime": dt.datetime,
        "dist_inv.generate_invocation_id": dist_inv.generate_invocation_id,
        "base_inv.generate_invocation_id": base_inv.generate_invocation_id,
        "Arguments.from_call": Arguments.__dict__["from_call"],
        "compute_args_id": pynenc.call.compute_args_id,
        "extract_module_info": pynenc.util.import_app.extract_module_info,
        "DistributedInvocation.status": dist_inv.DistributedInvocation.__dict__["status"],
        "FakeDatetime.now": FakeDatetime.__dict__["now"],
        "execute_task": DeterministicExecutor.__dict__["execute_task"],
        "create_logger": pynenc.app.create_logger,
        "imported_sleep": flows.imported_sleep,
        "gc": gc.get_threshold(),
    }


def test_closing_an_environment_puts_every_name_back() -> None:
    before = _process_names()
    random_state = random.getstate()
    with WorkflowEnv(seed=3) as env:
        env.use(flows.app)
        during = _process_names()
        assert env.start(flows.nap_with_imported_sleep, 5.0).result
    changed = {name for name in before if during[name] != before[name]}
    assert changed >= {"time.sleep", "uuid.uuid4", "datetime", "execute_task", "create_logger"}
    assert _process_names() == before
    assert random.getstate() == random_state


def test_a_failure_while_patching_undoes_what_was_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    from pynenc_wf_testing.runtime.monkeypatches import process

    before = _process_names()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("patching failed")

    monkeypatch.setattr(process, "install_execute_task_hook", fail)
    patches = ProcessPatches(1, dt.datetime(2030, 1, 1), lambda seconds: False)
    with pytest.raises(RuntimeError, match="patching failed"):
        patches.start()
    assert _process_names() == before
    monkeypatch.undo()
    with WorkflowEnv() as env:  # nothing was left installed: a new environment opens
        env.use(flows.app)
        assert env.start(flows.sequential, 2).result == [0, 10]


# --------------------------------------------------------------------------- nothing grows


def _registries() -> dict[str, int]:
    """Sizes of the process-wide registries an environment could add to."""
    from pynenc import Pynenc
    from pynenc.state_backend.mem_state_backend import MemStateBackend

    from pynenc_wf_testing.runtime import redis_backend, sqlite_backend
    from pynenc_wf_testing.runtime.monkeypatches import pynenc_speedups, sqlite

    pynenc_loggers = [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("pynenc") and isinstance(logger, logging.Logger)
    ]
    return {
        "pynenc logger filters": sum(len(logger.filters) for logger in pynenc_loggers),
        "pynenc logger handlers": sum(len(logger.handlers) for logger in pynenc_loggers),
        "root handlers": len(logging.getLogger().handlers),
        "loggers": len(logging.Logger.manager.loggerDict),
        "logging handler list": len(logging._handlerList),  # type: ignore[attr-defined]
        "pynenc apps": len(Pynenc._instances),
        "app infos": len(MemStateBackend._app_info_registry),
        "module info cache": len(pynenc_speedups._MODULE_INFO),
        "signature cache": len(pynenc_speedups._BINDERS),
        "sqlite pools": len(sqlite.POOLS),
        "sqlite app settings": len(sqlite_backend._SETTINGS),
        "redis stores": len(redis_backend._CURRENT) + len(redis_backend._CHECK),
    }


def _filters_of(app: Any) -> int:
    return len(logging.getLogger(f"pynenc.{app.app_id}").filters)


def test_fifty_environments_leave_no_logging_filter_or_registry_behind() -> None:
    backends = ("memory", "sqlite", "memory", "redis", "memory-stock")

    def one(i: int) -> None:
        with WorkflowEnv(seed=i, backend=backends[i % 5]) as env:
            env.use(flows.app)
            if i % 10 == 0:
                # every fault run of a crash check builds the app's logger again
                env.check_crash_safety(flows.sequential, 3).assert_ok()
                assert _filters_of(flows.app) == 1
            else:
                assert env.start(flows.sequential, 2).result == [0, 10]
            assert _filters_of(flows.app) == 1

    for i in range(5):
        one(i)  # first use of each backend: imports and one-time caches
    gc.collect()
    before = _registries()
    for i in range(50):
        one(i)
    gc.collect()
    assert _registries() == before


def test_the_logger_an_app_had_before_the_environment_comes_back() -> None:
    logger = flows.app.logger  # pynenc configures it: one filter, one handler
    state = (list(logger.filters), list(logger.handlers), logger.level, logger.propagate)
    try:
        with WorkflowEnv() as env:
            env.use(flows.app)
            env.check_crash_safety(flows.sequential, 2).assert_ok()
            assert len(logger.filters) == 1 and logger.filters != state[0]
        assert (logger.filters, logger.handlers, logger.level, logger.propagate) == state
    finally:
        flows.app._logger = None
        logger.filters, logger.handlers = [], []
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


# --------------------------------------------------------------------------- versions


@pytest.fixture
def fresh_compat(monkeypatch: pytest.MonkeyPatch) -> Any:
    from pynenc_wf_testing.runtime.monkeypatches import compat

    monkeypatch.setattr(compat, "_PASSED", set())
    return compat


def test_the_installed_versions_are_supported(fresh_compat: Any) -> None:
    fresh_compat.check_versions("pynenc", "freezegun", "pynenc-redis", "fakeredis")
    assert {"pynenc", "freezegun", "pynenc-redis", "fakeredis"} == fresh_compat._PASSED


def test_pyproject_bounds_are_the_checked_ranges() -> None:
    import re
    import tomllib
    from pathlib import Path

    from pynenc_wf_testing.runtime.monkeypatches.compat import SUPPORTED

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["redis"]]
    found = {}
    for requirement in requirements:
        name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)(.*)", requirement).groups()  # type: ignore[union-attr]
        found[name] = spec
    for name, supported in SUPPORTED.items():
        assert found[name] == supported.spec, name
        assert "<" in supported.spec or "==" in supported.spec, f"{name} needs an upper bound"


def test_an_unsupported_freezegun_refuses_to_open_an_environment(
    fresh_compat: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pynenc_wf_testing.errors import AppConfigurationError, IncompatibleVersionError

    real = fresh_compat.installed_version
    monkeypatch.setattr(
        fresh_compat, "installed_version",
        lambda name: "1.6.0" if name == "freezegun" else real(name),
    )
    before = _process_names()
    with pytest.raises(IncompatibleVersionError) as info:
        WorkflowEnv().open()
    assert isinstance(info.value, AppConfigurationError)
    message = str(info.value)
    assert "freezegun 1.6.0 is installed" in message
    assert "supports freezegun>=1.5,<1.6 only" in message
    assert "pip install 'freezegun>=1.5,<1.6'" in message
    assert _process_names() == before  # nothing was patched
    monkeypatch.setattr(fresh_compat, "installed_version", real)
    with WorkflowEnv() as env:  # the slot is free
        env.use(flows.app)
        assert env.start(flows.sequential, 1).result == [0]


@pytest.mark.parametrize(
    ("name", "fake"), [("pynenc", "0.5.0"), ("pynenc", "0.3.9"), ("pynenc-redis", "0.3.1")]
)
def test_an_unsupported_version_is_named(
    fresh_compat: Any, monkeypatch: pytest.MonkeyPatch, name: str, fake: str
) -> None:
    from pynenc_wf_testing.errors import IncompatibleVersionError

    monkeypatch.setattr(fresh_compat, "installed_version", lambda n: fake if n == name else "0")
    with pytest.raises(IncompatibleVersionError, match=rf"^{name} {fake} is installed, but"):
        fresh_compat.check_versions(name)


def test_the_redis_backend_checks_pynenc_redis_and_fakeredis(
    fresh_compat: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pynenc_wf_testing.errors import IncompatibleVersionError

    real = fresh_compat.installed_version
    monkeypatch.setattr(
        fresh_compat, "installed_version", lambda n: None if n == "fakeredis" else real(n)
    )
    with pytest.raises(IncompatibleVersionError, match="fakeredis is not installed"):
        WorkflowEnv(backend="redis")
    # A real server's URL does not need fakeredis: the version check passes, and the next
    # check, that the server answers, is what refuses this URL (nothing listens there).
    from pynenc_wf_testing.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="cannot reach the Redis server"):
        WorkflowEnv(backend="redis", backend_options={"url": "redis://127.0.0.1:1/0"})
