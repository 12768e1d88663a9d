"""pytest plugin of pynenc-wf-testing (installed as the module ``pytest_pynenc_wf``).

A thin mapping of pytest options, ini values and the ``wf`` marker onto
:class:`pynenc_wf_testing.WorkflowEnv`, plus failure reports that say how to reproduce a run.

Importing this module imports only pytest and the standard library: ``pynenc`` and
``pynenc_wf_testing`` are imported inside the ``wf_env`` fixture, so tests that do not use it
pay nothing (the model is Hypothesis' ``_hypothesis_pytestplugin``).

Seed of a test, first found wins: ``@pytest.mark.wf(seed=N)``, ``--wf-seed=N``, the ini value
``wf_seed``, else a seed derived from the test's node id (stable in every process, under any
``PYTHONHASHSEED`` and under pytest-xdist).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from ._report import (
    SECTION_TITLE,
    EnvSnapshot,
    failure_section,
    seed_line,
    shell_quote,
    summary_table,
    take_snapshot,
)

if TYPE_CHECKING:
    from pynenc import Pynenc

    from pynenc_wf_testing.env.environment import WorkflowEnv

__all__ = ["wf_env"]

# ---------------------------------------------------------------------- option names

GROUP = "pynenc-wf"
MARKER = "wf"

OPT_SEED = "--wf-seed"
INI_SEED = "wf_seed"
OPT_APP = "--wf-app"
INI_APP = "wf_app"
OPT_MAX_STEPS = "--wf-max-steps"
INI_MAX_STEPS = "wf_max_steps"
OPT_SLICE_TIMEOUT = "--wf-slice-timeout"
INI_SLICE_TIMEOUT = "wf_slice_timeout"
OPT_WORKERS = "--wf-workers"
INI_WORKERS = "wf_workers"
OPT_SLOTS = "--wf-slots"
INI_SLOTS = "wf_slots"
OPT_LOG_LEVEL = "--wf-log-level"
INI_LOG_LEVEL = "wf_log_level"
OPT_SUMMARY = "--wf-summary"
INI_SUMMARY = "wf_summary"

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_LOG_LEVEL = "error"
OPT_BACKEND = "--wf-backend"
INI_BACKEND = "wf_backend"
OPT_RECORD = "--wf-record"
OPT_REPLAY = "--wf-replay"
OPT_REPORT = "--wf-report"

OPT_KEEP_DB = "--wf-keep-db"
OPT_NO_REPLAY_CHECK = "--wf-no-replay-check"
INI_REPLAY_CHECK = "wf_replay_check"
REDIS_URL_ENV = "PYNENC_WF_REDIS_URL"

MARKER_KWARGS = (
    "seed", "max_steps", "app", "start", "backend", "backend_options", "slice_timeout",
    "replay", "workers", "slots", "worker_queues", "slow_workers",
)

#: Name a report row travels under (a report attribute: survives pytest-xdist serialization).
REPORT_ATTR = "pynenc_wf"

#: pynenc 0.4's ``JsonPickleSerializer`` calls ``jsonpickle.dumps/loads`` without ``keys=``, and
#: jsonpickle 4 warns ``keys will default to True in jsonpickle 5.0.0`` (DeprecationWarning,
#: attributed by ``stacklevel=2`` to pynenc's serializer module) on every call: thousands per
#: suite. Ignored for that message from that module only: the user's own warnings, and their own
#: jsonpickle calls, still show.
PYNENC_JSONPICKLE_FILTER = (
    "ignore:keys will default to True in jsonpickle:DeprecationWarning:"
    r"pynenc\.serializer\.json_pickle_serializer"
)


@dataclass(frozen=True)
class Setting:
    """A resolved option value and where it came from (for error messages)."""

    value: Any
    origin: str


@dataclass(frozen=True)
class Settings:
    """The session-wide configuration of the plugin, resolved once in ``pytest_configure``."""

    seed: Setting | None
    app: Setting | None
    max_steps: Setting | None
    log_level: str
    summary: bool
    backend: Setting | None = None
    record_dir: str | None = None
    report_dir: str | None = None
    keep_db_dir: str | None = None
    #: After each passing test, replay every workflow of its env from the recorded history.
    replay_check: bool = True
    #: real seconds one slice may run (0: no watchdog); None: the library's default
    slice_timeout: Setting | None = None
    #: simulated workers and slots per worker (None: no worker pool)
    workers: Setting | None = None
    slots: Setting | None = None


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


SETTINGS_KEY = pytest.StashKey[Settings]()
DATA_KEY = pytest.StashKey[WfTestData]()

# ---------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "pynenc-wf-testing (deterministic workflow simulation)")
    group.addoption(
        OPT_SEED,
        type=int,
        default=None,
        metavar="N",
        help=f"seed of every wf_env simulation (overrides ini {INI_SEED}; a test's "
        "@pytest.mark.wf(seed=...) still wins). Default: a seed derived from each test id.",
    )
    group.addoption(
        OPT_APP,
        default=None,
        metavar="MODULE:APP",
        help=f"pynenc app that wf_env uses automatically, e.g. myshop.tasks:app "
        f"(overrides ini {INI_APP}).",
    )
    group.addoption(
        OPT_MAX_STEPS,
        type=int,
        default=None,
        metavar="N",
        help=f"scheduler step limit of each simulation (overrides ini {INI_MAX_STEPS}).",
    )
    group.addoption(
        OPT_SLICE_TIMEOUT,
        type=float,
        default=None,
        metavar="SECONDS",
        help="real seconds one slice of a simulated invocation may run before the watchdog "
        f"stops it (0 disables it; overrides ini {INI_SLICE_TIMEOUT}; default 5).",
    )
    group.addoption(
        OPT_WORKERS,
        type=int,
        default=None,
        metavar="N",
        help=f"simulate N workers (overrides ini {INI_WORKERS}; a test's "
        "@pytest.mark.wf(workers=...) still wins). Default: no worker pool (unlimited "
        "parallelism).",
    )
    group.addoption(
        OPT_SLOTS,
        type=int,
        default=None,
        metavar="M",
        help=f"slots of each simulated worker (overrides ini {INI_SLOTS}; default 1 with "
        "a worker pool).",
    )
    group.addoption(
        OPT_LOG_LEVEL,
        default=None,
        choices=LOG_LEVELS,
        help=f"pynenc log level inside simulations (overrides ini {INI_LOG_LEVEL}; "
        f"default {DEFAULT_LOG_LEVEL}).",
    )
    group.addoption(
        OPT_SUMMARY,
        action="store_true",
        default=False,
        help="print a table of every test that used wf_env: seed, steps, crashes, "
        "executions, virtual time, outcome.",
    )
    group.addoption(
        OPT_BACKEND,
        default=None,
        metavar="NAME",
        help=f"durable store of every wf_env simulation: memory (default), sqlite or redis "
        f"(overrides ini {INI_BACKEND}; @pytest.mark.wf(backend=...) still wins).",
    )
    group.addoption(
        OPT_KEEP_DB,
        default=None,
        metavar="DIR",
        help="with the sqlite backend, keep each test's database under DIR/<test id>/ (open "
        "it with pynenc's monitor, see docs/backends.md).",
    )
    group.addoption(
        OPT_RECORD,
        default=None,
        metavar="DIR",
        help="write each wf_env test's history (replayable JSON) to DIR/<test id>.json.",
    )
    group.addoption(
        OPT_REPLAY,
        default=None,
        metavar="PATH",
        help="replay every history in PATH (a directory of *.json histories, or one file) "
        "against the current code; each workflow is a test that fails with the first "
        "divergent step (record on main, replay on a branch).",
    )
    group.addoption(
        OPT_REPORT,
        default=None,
        metavar="DIR",
        help="write a self-contained HTML report (workflow tree, virtual timeline) per wf_env "
        "test to DIR/<test id>.html.",
    )
    group.addoption(
        OPT_NO_REPLAY_CHECK,
        action="store_true",
        default=False,
        help=f"do not replay the workflows of each passing wf_env test from their recorded "
        f"history after the test (overrides ini {INI_REPLAY_CHECK}; "
        f"@pytest.mark.{MARKER}(replay=True) still wins).",
    )
    parser.addini(INI_BACKEND, f"durable store of wf_env simulations (see {OPT_BACKEND}).", default="")
    parser.addini(INI_SEED, f"seed of every wf_env simulation (see {OPT_SEED}).", default="")
    parser.addini(INI_APP, "pynenc app that wf_env uses automatically (module:app).", default="")
    parser.addini(INI_MAX_STEPS, "scheduler step limit of each wf_env simulation.", default="")
    parser.addini(
        INI_SLICE_TIMEOUT,
        "real seconds one slice of a wf_env simulation may run (0 disables the watchdog).",
        default="",
    )
    parser.addini(INI_WORKERS, f"simulated workers of wf_env simulations (see {OPT_WORKERS}).", default="")
    parser.addini(INI_SLOTS, f"slots of each simulated worker (see {OPT_SLOTS}).", default="")
    parser.addini(INI_LOG_LEVEL, "pynenc log level inside wf_env simulations.", default="")
    parser.addini(INI_SUMMARY, f"same as {OPT_SUMMARY}.", type="bool", default=False)
    parser.addini(
        INI_REPLAY_CHECK,
        "replay every workflow of each passing wf_env test from its recorded history after "
        f"the test (default true; false: same as {OPT_NO_REPLAY_CHECK}).",
        type="bool",
        default=True,
    )


def _ini_int(config: pytest.Config, name: str, *, minimum: int) -> Setting | None:
    raw = str(config.getini(name)).strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise pytest.UsageError(
            f"ini option {name} = {raw!r}: expected an integer >= {minimum}, e.g. {name} = 7."
        )
    return Setting(value, f"ini option {name}")


def _cli_int(config: pytest.Config, opt: str, *, minimum: int) -> Setting | None:
    value = config.getoption(opt)
    if value is None:
        return None
    if value < minimum:
        raise pytest.UsageError(f"{opt}={value}: expected an integer >= {minimum}.")
    return Setting(value, opt)


def _slice_timeout(config: pytest.Config) -> Setting | None:
    value = config.getoption(OPT_SLICE_TIMEOUT)
    if value is not None:
        if value < 0:
            raise pytest.UsageError(
                f"{OPT_SLICE_TIMEOUT}={value}: expected seconds >= 0 (0 disables the watchdog)."
            )
        return Setting(value, OPT_SLICE_TIMEOUT)
    raw = str(config.getini(INI_SLICE_TIMEOUT)).strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise pytest.UsageError(
            f"ini option {INI_SLICE_TIMEOUT} = {raw!r}: expected seconds >= 0 (0 disables the "
            f"watchdog), e.g. {INI_SLICE_TIMEOUT} = 30."
        )
    return Setting(seconds, f"ini option {INI_SLICE_TIMEOUT}")


def _output_dir(config: pytest.Config, opt: str) -> str | None:
    """A directory option (``--wf-record`` ...), made at start-up: a file's path or a place
    where no directory can be made is a usage error now, not an error in every test."""
    import os

    value: str | None = config.getoption(opt)
    if not value:
        return None
    if os.path.exists(value) and not os.path.isdir(value):
        raise pytest.UsageError(f"{opt}={value}: exists and is not a directory. Name a directory.")
    try:
        os.makedirs(value, exist_ok=True)
    except OSError as error:
        raise pytest.UsageError(
            f"{opt}={value}: cannot create the directory ({error.strerror or error}). Name a "
            "directory you can write to."
        ) from None
    return value


def _backend_setting(config: pytest.Config) -> Setting | None:
    setting = _cli_or_ini_text(config, OPT_BACKEND, INI_BACKEND)
    if setting is None:
        return None
    from pynenc_wf_testing.runtime.backends import backend_names

    names = backend_names()
    if setting.value not in names:
        where = setting.origin if setting.origin.startswith("ini") else OPT_BACKEND
        raise pytest.UsageError(
            f"{where} = {setting.value!r}: unknown backend; choose one of {', '.join(names)} "
            "(a backend added with register_backend must be registered before pytest starts "
            "its session, e.g. in conftest.py)."
        )
    return setting


def _cli_or_ini_text(config: pytest.Config, opt: str, ini: str) -> Setting | None:
    if config.getoption(opt):
        return Setting(config.getoption(opt), opt)
    raw = str(config.getini(ini)).strip()
    return Setting(raw, f"ini option {ini}") if raw else None


def _resolve_settings(config: pytest.Config) -> Settings:
    seed = _cli_int(config, OPT_SEED, minimum=0) or _ini_int(config, INI_SEED, minimum=0)
    max_steps = _cli_int(config, OPT_MAX_STEPS, minimum=1) or _ini_int(
        config, INI_MAX_STEPS, minimum=1
    )
    app = _cli_or_ini_text(config, OPT_APP, INI_APP)
    log_level = config.getoption(OPT_LOG_LEVEL)
    if log_level is None:
        raw = str(config.getini(INI_LOG_LEVEL)).strip().lower()
        if raw and raw not in LOG_LEVELS:
            raise pytest.UsageError(
                f"ini option {INI_LOG_LEVEL} = {raw!r}: expected one of {', '.join(LOG_LEVELS)}."
            )
        log_level = raw or DEFAULT_LOG_LEVEL
    summary = bool(config.getoption(OPT_SUMMARY)) or bool(config.getini(INI_SUMMARY))
    backend = _backend_setting(config)
    replay_check = not config.getoption(OPT_NO_REPLAY_CHECK) and bool(
        config.getini(INI_REPLAY_CHECK)
    )
    return Settings(
        seed=seed,
        app=app,
        max_steps=max_steps,
        log_level=log_level,
        summary=summary,
        backend=backend,
        record_dir=_output_dir(config, OPT_RECORD),
        report_dir=_output_dir(config, OPT_REPORT),
        keep_db_dir=_output_dir(config, OPT_KEEP_DB),
        replay_check=replay_check,
        slice_timeout=_slice_timeout(config),
        workers=_cli_int(config, OPT_WORKERS, minimum=1) or _ini_int(config, INI_WORKERS, minimum=1),
        slots=_cli_int(config, OPT_SLOTS, minimum=1) or _ini_int(config, INI_SLOTS, minimum=1),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(seed=None, max_steps=None, app=None, start=None, backend=None, "
        "backend_options=None, slice_timeout=None, replay=None, workers=None, slots=None, "
        "worker_queues=None, slow_workers=None): settings of this test's wf_env simulation "
        "(seed: reproduce a run; app: 'module:app' to use automatically; start: the virtual "
        "start instant; backend: memory, sqlite or redis, with backend_options such as "
        "{'path': ...}; slice_timeout: a timedelta or seconds one slice may run, 0 disables "
        "the watchdog; replay: False to skip replaying this test's workflows from their history "
        "after it; workers/slots: a pool of simulated workers with slots each, "
        "worker_queues: {worker: [queue, ...]} the queues a worker consumes, slow_workers: "
        "{worker: factor} how many times longer its tasks' work takes).",
    )
    # Appended after the user's own ini filters, so it wins over a blanket ``error``; a ``-W``
    # on the command line still comes last and wins (pytest applies those after ini ones).
    config.addinivalue_line("filterwarnings", PYNENC_JSONPICKLE_FILTER)
    settings = _resolve_settings(config)
    config.stash[SETTINGS_KEY] = settings
    replay_dir = config.getoption(OPT_REPLAY)
    if replay_dir and not config.pluginmanager.has_plugin("pynenc-wf-replay"):
        from ._replay import ReplayPlugin

        config.pluginmanager.register(ReplayPlugin(replay_dir), "pynenc-wf-replay")
    # Under pytest-xdist only the controller prints (workers have ``workerinput``).
    if (
        settings.summary
        and not hasattr(config, "workerinput")
        and not config.pluginmanager.has_plugin(SummaryRecorder.name)
    ):
        config.pluginmanager.register(SummaryRecorder(), SummaryRecorder.name)


def pytest_report_header(config: pytest.Config) -> str:
    settings = config.stash.get(SETTINGS_KEY, None)
    seed = settings.seed if settings is not None else None
    shown = str(seed.value) if seed is not None else "per-test (derived from test id)"
    return f"pynenc-wf-testing: seed={shown}"


# ---------------------------------------------------------------------- the fixture


def _marker_kwargs(item: pytest.Item) -> dict[str, Any]:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return {}
    unknown = sorted(set(marker.kwargs) - set(MARKER_KWARGS))
    if marker.args or unknown:
        got = ", ".join([*map(repr, marker.args), *unknown])
        pytest.fail(
            f"@pytest.mark.{MARKER} takes only keyword arguments {', '.join(MARKER_KWARGS)}; "
            f"got {got}. Write e.g. @pytest.mark.{MARKER}(seed=7).",
            pytrace=False,
        )
    kwargs = dict(marker.kwargs)
    replay = kwargs.get("replay")
    if replay is not None and not isinstance(replay, bool):
        pytest.fail(
            f"@pytest.mark.{MARKER}(replay={replay!r}): expected True or False (False skips "
            "replaying this test's workflows from their history after it).",
            pytrace=False,
        )
    options = kwargs.get("backend_options")
    if options is not None and not isinstance(options, dict):
        pytest.fail(
            f"@pytest.mark.{MARKER}(backend_options={options!r}): expected a dict, e.g. "
            f"@pytest.mark.{MARKER}(backend='sqlite', backend_options={{'path': 'wf.db'}}).",
            pytrace=False,
        )
    return kwargs


def _resolve_seed(item: pytest.Item, marker: dict[str, Any], settings: Settings) -> Setting:
    if marker.get("seed") is not None:
        return Setting(marker["seed"], f"@pytest.mark.{MARKER}(seed=...)")
    if settings.seed is not None:
        return settings.seed
    from pynenc_wf_testing.runtime.seeding import seed_from_text

    return Setting(seed_from_text(item.nodeid), "derived from the test id")


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


def _check_faults_fired(env: WorkflowEnv) -> None:
    __tracebackhide__ = True
    from pynenc_wf_testing.errors import UnknownStepError

    try:
        env.check_faults_fired()
    except UnknownStepError as exc:
        # The harness' frames say nothing about the user's test: show just the error.
        raise exc.with_traceback(None) from None


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
    marker = _marker_kwargs(item)
    seed = _resolve_seed(item, marker, settings)
    data = WfTestData(seed=seed.value)
    item.stash[DATA_KEY] = data

    from pynenc_wf_testing.env.environment import WorkflowEnv

    from ._isolation import RegistrySnapshot

    kwargs: dict[str, Any] = {"log_level": settings.log_level}
    if marker.get("max_steps") is not None:
        kwargs["max_steps"] = marker["max_steps"]
    elif settings.max_steps is not None:
        kwargs["max_steps"] = settings.max_steps.value
    slice_timeout = marker.get("slice_timeout")
    if slice_timeout is None and settings.slice_timeout is not None:
        slice_timeout = settings.slice_timeout.value
    if slice_timeout is not None:
        # 0 (or a zero timedelta) disables the watchdog
        kwargs["slice_timeout"] = slice_timeout or None
    for name in ("workers", "slots"):
        value = marker.get(name)
        if value is None:
            setting = settings.workers if name == "workers" else settings.slots
            value = setting.value if setting is not None else None
        if value is not None:
            kwargs[name] = value
    for name in ("worker_queues", "slow_workers"):
        if marker.get(name) is not None:
            kwargs[name] = marker[name]
    if marker.get("start") is not None:
        kwargs["start"] = marker["start"]
    if marker.get("backend") is not None:
        kwargs["backend"] = marker["backend"]
    elif settings.backend is not None:
        kwargs["backend"] = settings.backend.value
    options = dict(marker.get("backend_options") or {})
    if kwargs.get("backend") == "sqlite" and settings.keep_db_dir and "path" not in options:
        import os

        options["path"] = os.path.join(settings.keep_db_dir, artifact_name(item.nodeid, ""))
        os.makedirs(options["path"], exist_ok=True)
    if kwargs.get("backend") == "redis" and "url" not in options:
        import os

        if os.environ.get(REDIS_URL_ENV):
            # A real server for the whole suite (CI starts one); fakeredis otherwise.
            options["url"] = os.environ[REDIS_URL_ENV]
    if options:
        kwargs["backend_options"] = options
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
    env: WorkflowEnv | None = None
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
        _write_artifacts(env, item.nodeid, settings)
        if data.call_passed:
            # A crash point that never fired means the test did not test what it says. (On
            # top of a failure it would be noise: the test stopped before reaching it.)
            _check_faults_fired(env)
            replay = marker.get("replay")
            if replay if replay is not None else settings.replay_check:
                _check_replay(env)
    finally:
        try:
            if env is not None:
                if data.snapshot is None:
                    data.snapshot = take_snapshot(env)
                env.close()
        finally:
            registries.restore()


class WfReplayWarning(pytest.PytestWarning):
    """The after-test replay of a workflow could not run (not a divergence: the test's
    outcome is left alone)."""


_REPLAY_OPT_OUT = (
    f"(the after-test replay of the workflows this test ran; skip it with "
    f"@pytest.mark.{MARKER}(replay=False), {OPT_NO_REPLAY_CHECK} or ini "
    f"{INI_REPLAY_CHECK} = false)"
)


def _check_replay(env: WorkflowEnv) -> None:
    """Replay every workflow the test's world ran from its recorded history, each in a fresh
    world (the Replayer's isolation puts the env's own world back): a finished workflow must
    take exactly its recorded steps and end as recorded, one still running must replay up to
    where it stopped. A divergence fails the test with the NondeterminismError naming the
    step; a replay that cannot run is a warning."""
    __tracebackhide__ = True
    import warnings

    from ._replay import auto_replay

    divergences, problems = auto_replay(env)
    for problem in problems:
        warnings.warn(WfReplayWarning(f"{problem} {_REPLAY_OPT_OUT}"), stacklevel=1)
    if divergences:
        first = divergences[0]
        more = f" ({len(divergences) - 1} more workflow(s) diverged too)" if len(divergences) > 1 else ""
        error = type(first)(f"{first}{more} {_REPLAY_OPT_OUT}")
        raise error.with_traceback(None) from None


def artifact_name(nodeid: str, suffix: str) -> str:
    """A file name for a test's artifact: readable, unique per node id, safe everywhere."""
    import hashlib
    import re

    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:120]
    return f"{stem}-{hashlib.sha256(nodeid.encode()).hexdigest()[:8]}{suffix}"


def _write_artifacts(env: WorkflowEnv, nodeid: str, settings: Settings) -> None:
    import os

    if settings.record_dir:
        os.makedirs(settings.record_dir, exist_ok=True)
        path = os.path.join(settings.record_dir, artifact_name(nodeid, ".json"))
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(env.history_json())
    if settings.report_dir:
        from pynenc_wf_testing.env.report import render_html

        os.makedirs(settings.report_dir, exist_ok=True)
        path = os.path.join(settings.report_dir, artifact_name(nodeid, ".html"))
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(render_html(env, title=nodeid))


# ---------------------------------------------------------------------- reports


def _add_note(exc: BaseException, note: str) -> None:
    if isinstance(exc, (pytest.skip.Exception, pytest.xfail.Exception, pytest.exit.Exception)):
        return
    # add_note raises TypeError if an exotic exception set __notes__ to a non-list.
    with contextlib.suppress(TypeError):
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def _summary_outcome(outcomes: dict[str, str]) -> str:
    if outcomes.get("setup") == "failed":
        return "error"
    call = outcomes.get("call", outcomes.get("setup", "?"))
    if outcomes.get("teardown") == "failed":
        return "error" if call == "passed" else f"{call}+error"
    return call


_WORLD_MODULE = "pynenc_wf_testing.runtime.world"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """An environment the test body opened and did not close is closed here, and the test
    fails naming where it was opened: left open, it would keep the virtual clock frozen and
    refuse every later environment of the process."""
    world = sys.modules.get(_WORLD_MODULE)  # not imported: nothing could have opened one
    before = world.active_world() if world is not None else None
    try:
        result = yield
    except BaseException:
        _close_forgotten(before)  # the test failed already: just do not poison the next
        raise
    message = _close_forgotten(before)
    if message:
        pytest.fail(message, pytrace=False)
    return result


def _close_forgotten(before: object) -> str | None:
    """Close an environment opened during the test body and still open; say where the ones
    closed this way (or on garbage collection) were opened."""
    world = sys.modules.get(_WORLD_MODULE)
    if world is None:
        return None
    places: list[str] = world.take_forgotten()
    active = world.active_world()
    if active is not None and active is not before:
        places.append(active.opened_at)
        with contextlib.suppress(Exception):
            active.close()
    if not places:
        return None
    return (
        f"this test left a WorkflowEnv open (opened at {', '.join(places)}); the harness "
        "closed it. Use `with WorkflowEnv(...) as env:`, call env.close(), or use the "
        "wf_env fixture."
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    data = item.stash.get(DATA_KEY, None)
    if data is None:
        return (yield)
    if call.excinfo is not None and call.when in ("call", "teardown"):
        # Before the report is built, so the note shows under the user's own exception.
        # (A setup error is a configuration problem: the seed would not help.)
        _add_note(call.excinfo.value, seed_line(data.seed, item.nodeid))
    report = yield
    data.outcomes[call.when] = _outcome(report)
    if report.failed and call.when in ("call", "teardown"):
        snapshot = data.snapshot
        if snapshot is None and data.env is not None:
            snapshot = take_snapshot(data.env)
        report.sections.append((SECTION_TITLE, failure_section(data.seed, item.nodeid, snapshot)))
    if call.when == "teardown":
        snap = data.snapshot
        elapsed = 0.0
        if snap is not None and snap.now is not None and data.start is not None:
            elapsed = (snap.now - data.start).total_seconds()
        setattr(
            report,
            REPORT_ATTR,
            {
                "nodeid": item.nodeid,
                "seed": data.seed,
                "steps": snap.steps if snap else 0,
                "crashes": snap.crashes if snap else 0,
                "executions": snap.executions if snap else 0,
                "elapsed": elapsed,
                "outcome": _summary_outcome(data.outcomes),
            },
        )
        # Items live until the session ends: do not keep each test's simulation alive.
        data.env = None
        data.snapshot = None
    return report


class SummaryRecorder:
    """Collects the rows of the ``--wf-summary`` table; registered only when it is asked for.

    Rows arrive on teardown reports (as the ``pynenc_wf`` attribute), so under pytest-xdist
    they reach the controller, where the table is printed.
    """

    name = "pynenc-wf-summary"

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        row = getattr(report, REPORT_ATTR, None)
        if row is not None and report.when == "teardown":
            self.rows.append(dict(row))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_sep("=", "pynenc-wf summary")
        if not self.rows:
            terminalreporter.write_line("no test used wf_env")
            return
        for text in summary_table(self.rows):
            terminalreporter.write_line(text)
