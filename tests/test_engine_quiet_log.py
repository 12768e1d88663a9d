"""pynenc's "Workflow pause requested but not implemented yet" warning is kept out of the logs
for the engine's own pauses (suspensions, halts, continue_as_new), and only for those."""

from __future__ import annotations

import logging

import pytest
from pynenc.workflow.workflow_exceptions import WorkflowPauseError

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.engine._quiet_log import _FILTER, quiet_engine_pauses
from pynenc_wf_testing.engine.exceptions import WorkflowSuspended
from tests import fuzz_apps as f

PYNENC_TEXT = "Workflow pause requested but not implemented yet"


def _record() -> logging.LogRecord:
    return logging.LogRecord(
        "pynenc.x", logging.WARNING, __file__, 1, f"invocation:1 {PYNENC_TEXT}: why", None, None
    )


def test_suspensions_log_no_pause_warning(capfd: pytest.CaptureFixture[str]) -> None:
    with WorkflowEnv(seed=1, evict="every_wait", log_level="warning") as env:
        env.use(f.app)
        assert env.start(f.chain, 2).result == 6  # suspends at its durable sleep
        assert env.executions(f.chain) == 2  # it did suspend and re-execute
    out, err = capfd.readouterr()
    assert PYNENC_TEXT not in out + err
    logger = logging.getLogger(f"pynenc.{f.app.app_id}")
    assert logger.filters.count(_FILTER) <= 1  # one filter, never one per pause


def test_the_filter_drops_only_the_engines_pauses() -> None:
    quiet_engine_pauses(None, (WorkflowSuspended,))
    try:
        raise WorkflowSuspended("workflow w suspended: waits for timer #1")
    except WorkflowSuspended:
        assert _FILTER.filter(_record()) is False
    try:
        raise WorkflowPauseError("a pause of pynenc's own")
    except WorkflowPauseError:
        assert _FILTER.filter(_record()) is True  # still logged: the engine did not handle it
    assert _FILTER.filter(_record()) is True  # outside any except


def test_the_filter_is_added_once_per_logger() -> None:
    logger = logging.getLogger(f"pynenc.{f.app.app_id}")
    for _ in range(3):
        quiet_engine_pauses(f.app, (WorkflowSuspended,))
    assert logger.filters.count(_FILTER) == 1
    logger.removeFilter(_FILTER)
