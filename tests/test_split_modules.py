"""The modules split out of checks/replay.py, tools/cli.py and the plugin's __init__.py: every
name stays importable from where it was, and the plugin module still carries pytest's hooks."""

from __future__ import annotations

import importlib

import pytest
import pytest_pynenc_wf

from pynenc_wf_testing.checks import replay
from pynenc_wf_testing.tools import cli

# Module-level names of checks/replay.py, tools/cli.py and pytest_plugin/__init__.py before
# the split (underscored ones aside): callers may import any of them from there.
REPLAY_NAMES = (
    "FORMAT_NAME", "History", "ReplayResult", "Replayer", "digest", "export_histories",
    "export_workflow", "load_history",
)
CLI_NAMES = ("CommandError", "main")
PLUGIN_NAMES = (
    "DATA_KEY", "DEFAULT_LOG_LEVEL", "EVICT_MODES", "GROUP", "INI_APP", "INI_BACKEND",
    "INI_EVICT", "INI_LOG_LEVEL", "INI_MAX_STEPS", "INI_REPLAY_CHECK", "INI_SEED",
    "INI_SLICE_TIMEOUT", "INI_SLOTS", "INI_SUMMARY", "INI_WORKERS", "LOG_LEVELS", "MARKER",
    "MARKER_KWARGS", "OPT_APP", "OPT_BACKEND", "OPT_EVICT", "OPT_KEEP_DB", "OPT_LOG_LEVEL",
    "OPT_MAX_STEPS", "OPT_NO_REPLAY_CHECK", "OPT_RECORD", "OPT_REPLAY", "OPT_REPORT",
    "OPT_SEED", "OPT_SLICE_TIMEOUT", "OPT_SLOTS", "OPT_SUMMARY", "OPT_WORKERS",
    "PYNENC_JSONPICKLE_FILTER", "REDIS_URL_ENV", "REPORT_ATTR", "SETTINGS_KEY", "Setting",
    "Settings", "SummaryRecorder", "WfReplayWarning", "WfTestData", "artifact_name",
    "load_app", "wf_env",
)
PLUGIN_HOOKS = (
    "pytest_addoption", "pytest_configure", "pytest_report_header", "pytest_runtest_call",
    "pytest_runtest_makereport",
)


@pytest.mark.parametrize(
    ("module", "names"),
    [(replay, REPLAY_NAMES), (cli, CLI_NAMES), (pytest_pynenc_wf, PLUGIN_NAMES + PLUGIN_HOOKS)],
    ids=["replay", "cli", "plugin"],
)
def test_names_stay_importable_from_the_split_modules(module: object, names: tuple[str, ...]) -> None:
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


def test_public_surfaces_are_unchanged() -> None:
    assert replay.__all__ == [
        "History", "ReplayResult", "Replayer", "export_histories", "load_history",
    ]
    assert cli.__all__ == ["main"]
    assert pytest_pynenc_wf.__all__ == ["wf_env"]


def test_the_parts_live_in_private_modules_beside_their_facade() -> None:
    """A name moved out of a module is the same object at its old and new home, and the new
    home is private (an underscore module of the same package)."""
    homes = [
        (replay, "load_history", "pynenc_wf_testing.checks._history_format"),
        (replay, "export_workflow", "pynenc_wf_testing.checks._history_export"),
        (replay, "digest", "pynenc_wf_testing.checks._replay_watch"),
        (cli, "CommandError", "pynenc_wf_testing.tools._command"),
        (pytest_pynenc_wf, "wf_env", "pytest_pynenc_wf._fixture"),
        (pytest_pynenc_wf, "pytest_addoption", "pytest_pynenc_wf._options"),
        (pytest_pynenc_wf, "Settings", "pytest_pynenc_wf._settings"),
        (pytest_pynenc_wf, "pytest_runtest_makereport", "pytest_pynenc_wf._report_hooks"),
    ]
    for facade, name, home in homes:
        assert getattr(facade, name) is getattr(importlib.import_module(home), name), name


def test_the_plugin_hooks_are_pytest_hook_implementations(pytestconfig: pytest.Config) -> None:
    """pytest registered the plugin module with the hooks it imports from its parts."""
    plugin = pytestconfig.pluginmanager.get_plugin("pynenc_wf")
    assert plugin is pytest_pynenc_wf
    for hook in PLUGIN_HOOKS:
        impls = getattr(pytestconfig.pluginmanager.hook, hook).get_hookimpls()
        assert any(impl.plugin is pytest_pynenc_wf for impl in impls), hook
