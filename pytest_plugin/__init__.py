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

import pytest

# The plugin's modules, by concern (docs/architecture.md); the hooks and the fixture are
# imported here because pytest registers this module. Every name stays importable from here.
from ._after_test import WfReplayWarning as WfReplayWarning
from ._after_test import artifact_name as artifact_name
from ._fixture import DATA_KEY as DATA_KEY
from ._fixture import WfTestData as WfTestData
from ._fixture import load_app as load_app
from ._fixture import wf_env as wf_env
from ._forgotten_env import pytest_runtest_call as pytest_runtest_call
from ._marker import MARKER_HELP
from ._marker import MARKER_KWARGS as MARKER_KWARGS
from ._marker import pytest_runtest_setup as pytest_runtest_setup
from ._options import *  # noqa: F403  (the option and ini names)
from ._options import OPT_REPLAY
from ._options import pytest_addoption as pytest_addoption
from ._report_hooks import REPORT_ATTR as REPORT_ATTR
from ._report_hooks import SummaryRecorder as SummaryRecorder
from ._report_hooks import pytest_runtest_makereport as pytest_runtest_makereport
from ._settings import SETTINGS_KEY, resolve_settings
from ._settings import Setting as Setting
from ._settings import Settings as Settings

__all__ = ["wf_env"]

#: pynenc 0.4's ``JsonPickleSerializer`` calls ``jsonpickle.dumps/loads`` without ``keys=``, and
#: jsonpickle 4 warns ``keys will default to True in jsonpickle 5.0.0`` (DeprecationWarning,
#: attributed by ``stacklevel=2`` to pynenc's serializer module) on every call: thousands per
#: suite. Ignored for that message from that module only: the user's own warnings, and their own
#: jsonpickle calls, still show.
PYNENC_JSONPICKLE_FILTER = (
    "ignore:keys will default to True in jsonpickle:DeprecationWarning:"
    r"pynenc\.serializer\.json_pickle_serializer"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    # Appended after the user's own ini filters, so it wins over a blanket ``error``; a ``-W``
    # on the command line still comes last and wins (pytest applies those after ini ones).
    config.addinivalue_line("filterwarnings", PYNENC_JSONPICKLE_FILTER)
    settings = resolve_settings(config)
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
