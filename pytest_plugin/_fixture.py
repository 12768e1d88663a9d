"""The ``wf_env`` fixture: a fresh, open ``WorkflowEnv`` per test, built from the marker,
the options and the ini values, and the per-test data the report hooks read."""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from ._after_test import artifact_name, check_faults_fired, check_replay, write_artifacts
from ._marker import marker_kwargs, resolve_seed
from ._options import INI_APP, MARKER, REDIS_URL_ENV
from ._report import EnvSnapshot, shell_quote, take_snapshot
from ._settings import SETTINGS_KEY, Setting, Settings

if TYPE_CHECKING:
    from pynenc import Pynenc

    from pynenc_wf_testing.env.environment import WorkflowEnv


@dataclass
class WfTestData:
    """Per-test data of a test that requested ``wf_env`` (kept in ``item.stash``)."""

    seed: int
    env: WorkflowEnv | None = None
    start: dt.datetime | None = None
    snapshot: EnvSnapshot | None = None
    outcomes: dict[str, str] = field(default_factory=dict)

    @property
    def call_passed(self) -> bool:
        """The test body passed (not failed, skipped or xfailed)."""
        return self.outcomes.get("call") in ("passed", "xpassed")


DATA_KEY = pytest.StashKey[WfTestData]()


def load_app(spec: str, origin: str) -> Pynenc:
    """Import ``"package.module:app"`` (``origin`` names the option, for the error message)."""
    __tracebackhide__ = True
    from pynenc import Pynenc

    where = f"{origin} = {spec!r}"
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        pytest.fail(
            f"{where}: expected 'package.module:app' (the module that defines your pynenc app "
            f"and the app's variable name), e.g. {INI_APP} = myshop.tasks:app",
            pytrace=False,
        )
    try:
        obj: Any = importlib.import_module(module_name.strip())
    except Exception as exc:
        pytest.fail(
            f"{where}: cannot import module {module_name.strip()!r} "
            f"({type(exc).__name__}: {exc}). Check that it is importable in the test run "
            "(installed, or on sys.path / the ini option pythonpath).",
            pytrace=False,
        )
    for part in attr.strip().split("."):
        if not hasattr(obj, part):
            pytest.fail(
                f"{where}: module {module_name.strip()!r} has no attribute {attr.strip()!r}.",
                pytrace=False,
            )
        obj = getattr(obj, part)
    if not isinstance(obj, Pynenc):
        pytest.fail(
            f"{where}: {spec} is a {type(obj).__name__}, not a pynenc app "
            "(a pynenc.Pynenc instance such as app = Pynenc(...)).",
            pytrace=False,
        )
    return obj


@pytest.fixture
def wf_env(request: pytest.FixtureRequest) -> Iterator[WorkflowEnv]:
    """A fresh, open :class:`pynenc_wf_testing.WorkflowEnv` for this test.

    Seeded by ``@pytest.mark.wf(seed=N)``, ``--wf-seed``, ini ``wf_seed`` or the test id; uses
    the app named by ``@pytest.mark.wf(app=...)``, ``--wf-app`` or ini ``wf_app`` if any. On
    teardown an armed crash point that never fired makes the test error. pynenc's global app
    registries are restored after the test.
    """
    __tracebackhide__ = True
    item = request.node
    settings = request.config.stash[SETTINGS_KEY]
    marker = marker_kwargs(item)
    seed = resolve_seed(item, marker, settings)
    data = WfTestData(seed=seed.value)
    item.stash[DATA_KEY] = data

    from pynenc_wf_testing.env.environment import WorkflowEnv

    from ._isolation import RegistrySnapshot

    kwargs = _env_kwargs(item, marker, settings)
    app_setting = settings.app
    if marker.get("app") is not None:
        app_setting = Setting(marker["app"], f"@pytest.mark.{MARKER}(app=...)")

    from pynenc_wf_testing.errors import InvalidArgument

    invalid = ""
    try:
        env_or_none: WorkflowEnv | None = WorkflowEnv(seed=seed.value, **kwargs)
    except InvalidArgument as error:
        env_or_none, invalid = None, str(error)
    if env_or_none is None:  # (failed outside the except: no "during handling" chain)
        # Options and ini values were checked at start-up: what is left comes from the
        # marker (or from what a backend makes of its options).
        given = ", ".join(f"{k}={v!r}" for k, v in marker.items()) or "none"
        pytest.fail(
            f"the settings of this test's wf_env are invalid: {invalid} (@pytest.mark.{MARKER} "
            f"values: {given}; seed {seed.value} from {seed.origin})",
            pytrace=False,
        )
    registries = RegistrySnapshot()
    env = env_or_none
    try:
        env.rerun_hint = (
            f"pytest {shell_quote(item.nodeid)} --wf-seed={seed.value}"
            f"  (or @pytest.mark.{MARKER}(seed={seed.value}))"
        )
        env.open()
        data.env = env
        data.start = env.now
        if app_setting is not None:
            env.use(load_app(str(app_setting.value), app_setting.origin))
        yield env
        data.snapshot = take_snapshot(env)
        write_artifacts(env, item.nodeid, settings)
        if data.call_passed:
            # A crash point that never fired means the test did not test what it says. (On
            # top of a failure it would be noise: the test stopped before reaching it.)
            check_faults_fired(env)
            replay = marker.get("replay")
            if replay if replay is not None else settings.replay_check:
                check_replay(env)
    finally:
        try:
            if data.snapshot is None:
                data.snapshot = take_snapshot(env)
            env.close()
        finally:
            registries.restore()


def _env_kwargs(item: pytest.Item, marker: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``WorkflowEnv`` arguments of this test: the marker's value, else the option's or ini
    value's (validated at start-up), else the library's default."""
    kwargs: dict[str, Any] = {"log_level": settings.log_level}
    chosen = {
        name: _marker_or_setting(marker, name, setting)
        for name, setting in (
            ("max_steps", settings.max_steps),
            ("slice_timeout", settings.slice_timeout),
            ("workers", settings.workers),
            ("slots", settings.slots),
            ("backend", settings.backend),
            ("evict", settings.evict),
        )
    }
    if chosen["max_steps"] is not None:
        kwargs["max_steps"] = chosen["max_steps"]
    if chosen["slice_timeout"] is not None:
        # 0 (or a zero timedelta) disables the watchdog
        kwargs["slice_timeout"] = chosen["slice_timeout"] or None
    for name in ("workers", "slots"):
        if chosen[name] is not None:
            kwargs[name] = chosen[name]
    for name in ("worker_queues", "slow_workers", "start"):
        if marker.get(name) is not None:
            kwargs[name] = marker[name]
    if chosen["backend"] is not None:
        kwargs["backend"] = chosen["backend"]
    options = dict(marker.get("backend_options") or {})
    if kwargs.get("backend") == "sqlite" and settings.keep_db_dir and "path" not in options:
        options["path"] = os.path.join(settings.keep_db_dir, artifact_name(item.nodeid, ""))
        os.makedirs(options["path"], exist_ok=True)
    if kwargs.get("backend") == "redis" and "url" not in options and os.environ.get(REDIS_URL_ENV):
        # A real server for the whole suite (CI starts one); fakeredis otherwise.
        options["url"] = os.environ[REDIS_URL_ENV]
    if options:
        kwargs["backend_options"] = options
    if chosen["evict"] is not None:
        kwargs["evict"] = chosen["evict"]
    return kwargs


def _marker_or_setting(marker: dict[str, Any], name: str, setting: Setting | None) -> Any:
    """The marker's ``name`` if given, else the option's or ini value's; None for neither."""
    if marker.get(name) is not None:
        return marker[name]
    return setting.value if setting is not None else None
