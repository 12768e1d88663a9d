"""What the ``wf_env`` fixture does after a test: the checks (every armed crash point fired,
the workflows replay from their recorded history) and the artifacts (``--wf-record``,
``--wf-report``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ._options import INI_REPLAY_CHECK, MARKER, OPT_NO_REPLAY_CHECK
from ._settings import Settings

if TYPE_CHECKING:
    from pynenc_wf_testing.env.environment import WorkflowEnv


def check_faults_fired(env: WorkflowEnv) -> None:
    """An armed crash point that never fired errors the test, with no harness frames."""
    __tracebackhide__ = True
    from pynenc_wf_testing.errors import UnknownStepError

    try:
        env.check_faults_fired()
    except UnknownStepError as exc:
        # The harness' frames say nothing about the user's test: show just the error.
        raise exc.with_traceback(None) from None


class WfReplayWarning(pytest.PytestWarning):
    """The after-test replay of a workflow could not run (not a divergence: the test's
    outcome is left alone)."""


_REPLAY_OPT_OUT = (
    f"(the after-test replay of the workflows this test ran; skip it with "
    f"@pytest.mark.{MARKER}(replay=False), {OPT_NO_REPLAY_CHECK} or ini "
    f"{INI_REPLAY_CHECK} = false)"
)


def check_replay(env: WorkflowEnv) -> None:
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


def write_artifacts(env: WorkflowEnv, nodeid: str, settings: Settings) -> None:
    """The test's history (``--wf-record``) and HTML report (``--wf-report``) files."""
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
