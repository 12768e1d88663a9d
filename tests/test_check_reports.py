"""One report shape: ``CrashReport`` and ``InterleavingReport`` share ``CheckReport``."""

from __future__ import annotations

from typing import Any

import pytest

from pynenc_wf_testing import (
    CrashReport,
    CrashSafetyError,
    InterleavingError,
    InterleavingReport,
    Signal,
    WorkflowEnv,
)
from pynenc_wf_testing.checks.report import CheckReport
from tests import fault_apps, interleave_apps


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    fault_apps.reset()


def _message(report: CheckReport[Any], error: type[AssertionError]) -> list[str]:
    with pytest.raises(error) as raised:
        report.assert_ok()
    return str(raised.value).splitlines()


def test_a_crash_report_prints_its_reproduction_in_assert_ok() -> None:
    with WorkflowEnv(seed=7) as env:
        report = env.check_crash_safety(fault_apps.pays, "o-1")
    assert isinstance(report, CrashReport) and isinstance(report, CheckReport)
    assert report.summary() == "pays: 10 fault schedules explored over 8 golden steps, 1 failing (seed 7)"
    assert report.smallest_failure() is report.failing[0]
    assert report.reproduction() == [
        "wf_env.crash_before('charge#1')", "run = wf_env.start(pays, 'o-1')", "run.result",
    ]
    lines = _message(report, CrashSafetyError)
    assert lines[:6] == [
        "crash safety violated: 1 of 10 fault schedules fail for pays (seed 7).",
        "Smallest failing schedule:",
        "    wf_env.crash_before('charge#1')",
        "    run = wf_env.start(pays, 'o-1')",
        "    run.result",
        "What differed:",
    ]
    assert lines[6].startswith("  - [duplicate] non-idempotent charge ran 2 times")
    assert lines[7:] == [
        "Golden run (no faults): returned 'ch-o-1-10'",
        "Reproduce: WorkflowEnv(seed=7) (in pytest: --wf-seed=7)",
    ]


def test_an_interleaving_report_has_the_same_shape() -> None:
    with WorkflowEnv(seed=5) as env:
        report = env.check_interleavings(
            interleave_apps.both_signals_break_it, "k", events=[Signal("a", 1), Signal("b", 2)]
        )
    assert isinstance(report, InterleavingReport) and isinstance(report, CheckReport)
    worst = report.smallest_failure()
    assert worst is not None and len(worst.schedule) == 2
    lines = _message(report, InterleavingError)
    assert lines[0].startswith("interleaving check failed: ")
    assert lines[0].endswith(" event schedules fail for both_signals_break_it (seed 5).")
    reproduction = report.reproduction()
    assert reproduction[0] == "from pynenc_wf_testing import Signal"
    assert reproduction[-2:] == ["run = wf_env.start(both_signals_break_it, 'k')", "run.result"]
    assert lines[1:2 + len(reproduction)] == [
        "Smallest failing schedule:", *(f"    {line}" for line in reproduction),
    ]
    assert lines[2 + len(reproduction)] == "What went wrong:"
    assert lines[-3:-1] == [
        "Delivered: " + "; ".join(worst.delivered), "Golden run (no events): returned 'ok'",
    ]


def test_a_passing_report_has_no_failure_and_no_reproduction() -> None:
    with WorkflowEnv(seed=7) as env:
        report = env.check_crash_safety(fault_apps.sequential, 2)
    assert report.ok and report.failing == [] and report.minimal_failure is None
    assert report.smallest_failure() is None and report.reproduction() == []
    assert report.assert_ok() is None
    assert report.summary().endswith(", 0 failing (seed 7)")
