"""The ``wf`` marker: its keyword arguments, the line that registers it, their validation,
and the seed of a test (marker, then option or ini value, then the test id)."""

from __future__ import annotations

from typing import Any

import pytest

from ._options import MARKER
from ._settings import Setting, Settings

MARKER_KWARGS = (
    "seed", "max_steps", "app", "start", "backend", "backend_options", "slice_timeout",
    "replay", "workers", "slots", "worker_queues", "slow_workers", "evict",
)

#: The marker's line in ``pytest --markers`` (registered in ``pytest_configure``).
MARKER_HELP = (
    f"{MARKER}(seed=None, max_steps=None, app=None, start=None, backend=None, "
    "backend_options=None, slice_timeout=None, replay=None, workers=None, slots=None, "
    "worker_queues=None, slow_workers=None, evict=None): settings of this test's wf_env "
    "simulation (seed: reproduce a run; app: 'module:app' to use automatically; start: the "
    "virtual start instant; backend: memory, sqlite or redis, with backend_options such as "
    "{'path': ...}; slice_timeout: a timedelta or seconds one slice may run, 0 disables "
    "the watchdog; replay: False to skip replaying this test's workflows from their history "
    "after it; workers/slots: a pool of simulated workers with slots each, "
    "worker_queues: {worker: [queue, ...]} the queues a worker consumes, slow_workers: "
    "{worker: factor} how many times longer its tasks' work takes; evict: 'every_wait' to "
    "evict waiting workflows at each wait, 'never' to keep them cached)."
)


def marker_kwargs(item: pytest.Item) -> dict[str, Any]:
    """The keyword arguments of the test's ``wf`` marker, checked; a mistake fails the test."""
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


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A ``wf`` marker written on a test that never asks for ``wf_env`` would do nothing:
    fail that test at setup and say so. A marker on a module or class (``pytestmark``) is
    left alone: it sets defaults for the tests there that do use ``wf_env``."""
    if "wf_env" in getattr(item, "fixturenames", ()):
        return
    if any(mark.name == MARKER for mark in getattr(item, "own_markers", ())):
        pytest.fail(
            f"@pytest.mark.{MARKER}(...) on {item.name} has no effect: the test does not use "
            f"the wf_env fixture, whose simulation the marker configures. Add wf_env to the "
            f"test's arguments (or to a fixture it uses), or remove the marker.",
            pytrace=False,
        )


def resolve_seed(item: pytest.Item, marker: dict[str, Any], settings: Settings) -> Setting:
    """The test's seed and where it came from: marker, option or ini value, else the node id."""
    if marker.get("seed") is not None:
        return Setting(marker["seed"], f"@pytest.mark.{MARKER}(seed=...)")
    if settings.seed is not None:
        return settings.seed
    from pynenc_wf_testing.runtime.seeding import seed_from_text

    return Setting(seed_from_text(item.nodeid), "derived from the test id")
