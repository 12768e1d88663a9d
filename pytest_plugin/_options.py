"""Options and ini values of the plugin: their names (constants, one option group) and
``pytest_addoption``. ``_settings`` resolves them."""

from __future__ import annotations

import pytest

__all__ = [
    "GROUP",
    "MARKER",
    "OPT_SEED",
    "INI_SEED",
    "OPT_APP",
    "INI_APP",
    "OPT_MAX_STEPS",
    "INI_MAX_STEPS",
    "OPT_SLICE_TIMEOUT",
    "INI_SLICE_TIMEOUT",
    "OPT_WORKERS",
    "INI_WORKERS",
    "OPT_SLOTS",
    "INI_SLOTS",
    "OPT_LOG_LEVEL",
    "INI_LOG_LEVEL",
    "OPT_SUMMARY",
    "INI_SUMMARY",
    "LOG_LEVELS",
    "DEFAULT_LOG_LEVEL",
    "OPT_BACKEND",
    "INI_BACKEND",
    "OPT_RECORD",
    "OPT_REPLAY",
    "OPT_REPORT",
    "OPT_EVICT",
    "INI_EVICT",
    "EVICT_MODES",
    "OPT_KEEP_DB",
    "OPT_NO_REPLAY_CHECK",
    "INI_REPLAY_CHECK",
    "REDIS_URL_ENV",
    "pytest_addoption",
]

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

OPT_EVICT = "--wf-evict"
INI_EVICT = "wf_evict"
EVICT_MODES = ("never", "every_wait")
OPT_KEEP_DB = "--wf-keep-db"
OPT_NO_REPLAY_CHECK = "--wf-no-replay-check"
INI_REPLAY_CHECK = "wf_replay_check"
REDIS_URL_ENV = "PYNENC_WF_REDIS_URL"


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
        OPT_EVICT,
        default=None,
        choices=EVICT_MODES,
        help="evict waiting workflows: never (default: a waiting workflow stays cached) or "
        "every_wait (each wait suspends it as in production and every resume re-executes "
        f"its body; overrides ini {INI_EVICT}; @pytest.mark.wf(evict=...) still wins).",
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
    parser.addini(INI_EVICT, f"eviction of waiting workflows (see {OPT_EVICT}).", default="")
    parser.addini(INI_SUMMARY, f"same as {OPT_SUMMARY}.", type="bool", default=False)
    parser.addini(
        INI_REPLAY_CHECK,
        "replay every workflow of each passing wf_env test from its recorded history after "
        f"the test (default true; false: same as {OPT_NO_REPLAY_CHECK}).",
        type="bool",
        default=True,
    )
